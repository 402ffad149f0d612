/**
 * /workshop: a learner joins a workshop room with the code the instructor
 * gave and a display name (no account), then opens the room's lessons. The
 * link the instructor hands out fills the code in (/workshop?code=ABC234).
 */
import React, { useEffect, useState, type FormEvent, type ReactNode } from 'react';
import Layout from '@theme/Layout';
import Link from '@docusaurus/Link';
import Translate, { translate } from '@docusaurus/Translate';
import type { MyRoom } from '../../protocol/room';
import { useLabServer } from '../components/lab-server';
import styles from '../components/Room/pages.module.css';

export default function Workshop(): ReactNode {
  const { call } = useLabServer();
  const [code, setCode] = useState('');
  const [name, setName] = useState('');
  const [room, setRoom] = useState<MyRoom | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const fromLink = new URLSearchParams(window.location.search).get('code');
    if (fromLink) setCode(fromLink.toUpperCase().slice(0, 6));
    call<MyRoom>('GET', '/api/rooms/mine').then(
      (r) => {
        if (!fromLink || fromLink.toUpperCase() === r.code) setRoom(r);
      },
      () => {},
    );
  }, [call]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    try {
      setRoom(await call<MyRoom>('POST', '/api/rooms/join', { code: code.trim(), name: name.trim() }));
      setProblem(null);
    } catch (err) {
      setProblem((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Layout title={translate({ id: 'workshop.title', message: 'Join a workshop' })}>
      <main className={styles.narrow}>
        {!room ? (
          <>
            <h1>
              <Translate id="workshop.title">Join a workshop</Translate>
            </h1>
            <p>
              <Translate id="workshop.intro">Type the code your instructor gave and the name they will see on their screen. No account is needed.</Translate>
            </p>
            <form onSubmit={(e) => void submit(e)} className={styles.form} data-join-form="">
              <label>
                <Translate id="workshop.code">Code</Translate>
                <input name="code" value={code} onChange={(e) => setCode(e.target.value.toUpperCase())} maxLength={6} required autoComplete="off" spellCheck={false} />
              </label>
              <label>
                <Translate id="workshop.name">Your name</Translate>
                <input name="name" value={name} onChange={(e) => setName(e.target.value)} maxLength={40} required />
              </label>
              <button type="submit" className="button button--primary" disabled={busy}>
                <Translate id="workshop.join">Join</Translate>
              </button>
            </form>
            {problem && (
              <p className={styles.problem} role="alert" data-join-error="">
                {problem}
              </p>
            )}
          </>
        ) : (
          <section data-room={room.code}>
            <h1>{room.name}</h1>
            <p>
              <Translate id="workshop.joined" values={{ name: <strong>{room.displayName}</strong> }}>{'You are in as {name}.'}</Translate>{' '}
              <Translate id="workshop.until" values={{ time: new Date(room.endsAt).toLocaleString() }}>{'The workshop runs until {time}.'}</Translate>
            </p>
            {room.state !== 'open' && (
              <p className={styles.problem}>
                <Translate id="workshop.closed">The room is closed for now; your progress is kept.</Translate>
              </p>
            )}
            {room.recordCommands && (
              <p className={styles.note} data-room-recording="">
                <Translate id="room.banner.recording">This workshop records the command lines you type, for the grade report.</Translate>
              </p>
            )}
            {room.lastBroadcast && (
              <p className={styles.note} data-room-broadcast="">
                <strong>
                  <Translate id="room.banner.broadcast">From your instructor:</Translate>
                </strong>{' '}
                {room.lastBroadcast.message}
              </p>
            )}
            <h2>
              <Translate id="workshop.lessons">Lessons</Translate>
            </h2>
            <ol>
              {room.lessons.map((lab) => (
                <li key={lab}>
                  <Link to={`/docs/${lab}`} data-lesson-link={lab}>
                    {lab}
                  </Link>
                </li>
              ))}
            </ol>
          </section>
        )}
      </main>
    </Layout>
  );
}
