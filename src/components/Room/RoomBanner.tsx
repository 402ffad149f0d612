/**
 * The workshop room's banner on a lesson page: the instructor's broadcast,
 * a pushed hint, "your instructor is watching your terminal", a take-over
 * request the learner accepts or declines, recording on, more time, the
 * end. Events arrive over the terminal socket (lab bus); nothing shows for
 * a learner who is not in a room. Text from the instructor is rendered as
 * text, never as markup.
 */
import React, { useEffect, useState, type ReactNode } from 'react';
import useDocusaurusContext from '@docusaurus/useDocusaurusContext';
import Translate, { translate } from '@docusaurus/Translate';
import type { RoomEvent } from '../../../protocol/room';
import { onRoom } from '../lab-bus';
import { useLabServer } from '../lab-server';
import styles from './styles.module.css';

interface State {
  broadcast?: { message: string; at: string };
  hint?: { task: string; text: string };
  watchers: number;
  takeover: 'none' | 'requested' | 'granted';
  recording: boolean;
  until?: string;
  ended?: string;
}

export default function RoomBanner(): ReactNode {
  const { i18n } = useDocusaurusContext();
  const { call } = useLabServer();
  const locale = i18n.currentLocale;
  const [s, setS] = useState<State>({ watchers: 0, takeover: 'none', recording: false });
  const [problem, setProblem] = useState<string | null>(null);

  useEffect(
    () =>
      onRoom((e: RoomEvent) =>
        setS((prev) => {
          switch (e.kind) {
            case 'broadcast':
              return { ...prev, broadcast: { message: e.message, at: e.at } };
            case 'hint':
              return { ...prev, hint: { task: e.task, text: e.text[locale] ?? e.text.en ?? '' } };
            case 'watched':
              return { ...prev, watchers: e.watchers };
            case 'takeover':
              return { ...prev, takeover: e.state };
            case 'recording':
              return { ...prev, recording: e.on };
            case 'extended':
              return { ...prev, until: e.until };
            case 'ended':
              return { ...prev, ended: e.message };
            case 'reset':
              return prev;
          }
        }),
      ),
    [locale],
  );

  const answer = async (accept: boolean) => {
    try {
      const json = await call<{ state?: 'none' | 'granted' }>('POST', '/api/rooms/mine/takeover', { accept });
      setS((prev) => ({ ...prev, takeover: json?.state ?? 'none' }));
      setProblem(null);
    } catch (e) {
      setProblem((e as Error).message);
    }
  };

  const any = s.broadcast || s.hint || s.watchers > 0 || s.takeover !== 'none' || s.recording || s.until || s.ended;
  if (!any) return null;
  const time = (iso: string) => new Date(iso).toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit' });
  return (
    <div className={styles.banner} data-room-banner="" role="status" aria-live="polite">
      {s.ended && <p className={styles.ended}>{s.ended}</p>}
      {s.broadcast && (
        <p className={styles.broadcast} data-room-broadcast="">
          <strong>
            <Translate id="room.banner.broadcast">From your instructor:</Translate>
          </strong>{' '}
          <span>{s.broadcast.message}</span> <small>({time(s.broadcast.at)})</small>
          <button type="button" className={styles.close} aria-label={translate({ id: 'room.banner.dismiss', message: 'Dismiss' })} onClick={() => setS((p) => ({ ...p, broadcast: undefined }))}>
            ×
          </button>
        </p>
      )}
      {s.hint && (
        <p className={styles.hint} data-room-hint={s.hint.task}>
          <strong>
            <Translate id="room.banner.hint">A hint from your instructor:</Translate>
          </strong>{' '}
          <span>{s.hint.text}</span>
        </p>
      )}
      {s.watchers > 0 && (
        <p className={styles.watched} data-room-watched={s.watchers}>
          <Translate id="room.banner.watched">Your instructor is watching your terminal (read-only).</Translate>
        </p>
      )}
      {s.takeover === 'requested' && (
        <p className={styles.takeover} data-room-takeover="requested">
          <Translate id="room.banner.takeoverAsk">Your instructor asks to type in your terminal.</Translate>{' '}
          <button type="button" className="button button--sm button--primary" onClick={() => void answer(true)}>
            <Translate id="room.banner.allow">Allow</Translate>
          </button>{' '}
          <button type="button" className="button button--sm button--secondary" onClick={() => void answer(false)}>
            <Translate id="room.banner.decline">Decline</Translate>
          </button>
        </p>
      )}
      {s.takeover === 'granted' && (
        <p className={styles.takeover} data-room-takeover="granted">
          <Translate id="room.banner.takeoverOn">Your instructor can type in your terminal; what they type is marked [instructor typing].</Translate>{' '}
          <button type="button" className="button button--sm button--secondary" onClick={() => void answer(false)}>
            <Translate id="room.banner.takeBack">Take back</Translate>
          </button>
        </p>
      )}
      {s.recording && (
        <p className={styles.recording} data-room-recording="">
          <Translate id="room.banner.recording">This workshop records the command lines you type, for the grade report.</Translate>
        </p>
      )}
      {s.until && (
        <p>
          <Translate id="room.banner.extended" values={{ time: time(s.until) }}>{'More time: your sandbox runs until {time}.'}</Translate>
        </p>
      )}
      {problem && <p className={styles.ended}>{problem}</p>}
    </div>
  );
}
