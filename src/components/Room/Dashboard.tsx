/**
 * The workshop dashboard: rooms (create, pick), and for the room picked a
 * live grid of learners x tasks fed by one WebSocket (a snapshot, then each
 * changed row as the server pushes it: no polling), per-task aggregates,
 * stuck flags, help actions, grade exports, the audit log, and a read-only
 * shadow view of one learner's terminal (xterm.js, the terminal replay
 * protocol). Assistants see everything and may shadow; actions are the
 * instructor's (the server enforces this too).
 */
import React, { useCallback, useEffect, useMemo, useRef, useState, type FormEvent, type ReactNode } from 'react';
import clsx from 'clsx';
import useDocusaurusContext from '@docusaurus/useDocusaurusContext';
import { usePluginData } from '@docusaurus/useGlobalData';
import Translate, { translate } from '@docusaurus/Translate';
import { Terminal as XTerm } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import type { LabInfo } from '../../../protocol/lab';
import { reasonText } from '../../../protocol/reasons';
import { DASHBOARD_WS_PATH, SHADOW_WS_PATH, type AuditEntry, type Cell, type DashboardServerMessage, type LearnerRow, type RoomInfo } from '../../../protocol/room';
import { ShadowServerMessage } from '../../../protocol/shadow';
import { TERMINAL_PROTOCOL_VERSION } from '../../../protocol/terminal';
import { useLabServer } from '../lab-server';
import styles from './pages.module.css';

type Role = 'instructor' | 'assistant';


export default function Dashboard(): ReactNode {
  const { call, base } = useLabServer();
  const [role, setRole] = useState<Role | null | undefined>(undefined);
  const [rooms, setRooms] = useState<RoomInfo[]>([]);
  const [code, setCode] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);

  const reload = useCallback(() => call<RoomInfo[]>('GET', '/api/rooms').then(setRooms, (e: Error) => setProblem(e.message)), [call]);
  useEffect(() => {
    call<{ role?: Role }>('GET', '/api/instructor/status').then(
      (s) => setRole(s.role ?? null),
      () => setRole(null),
    );
    setCode(new URLSearchParams(window.location.search).get('room'));
  }, [call]);
  useEffect(() => {
    if (role) void reload();
  }, [role, reload]);

  const pick = (c: string | null) => {
    setCode(c);
    const url = new URL(window.location.href);
    if (c) url.searchParams.set('room', c);
    else url.searchParams.delete('room');
    window.history.replaceState(null, '', url);
  };

  if (role === undefined) return <main className={styles.wide}>…</main>;
  if (role === null)
    return (
      <main className={styles.narrow}>
        <h1>
          <Translate id="dashboard.title">Workshop dashboard</Translate>
        </h1>
        <p>
          <Translate id="dashboard.signIn">This page is for the workshop's instructor and assistants.</Translate>{' '}
          <a href={`${base}/instructor`} data-sign-in="">
            <Translate id="dashboard.signInLink">Sign in</Translate>
          </a>
        </p>
      </main>
    );
  return (
    <main className={styles.wide} data-dashboard={role}>
      {problem && <p className={styles.problem}>{problem}</p>}
      {code ? (
        <RoomView code={code} onBack={() => pick(null)} />
      ) : (
        <>
          <h1>
            <Translate id="dashboard.title">Workshop dashboard</Translate>
          </h1>
          <RoomList rooms={rooms} onPick={pick} />
          {role === 'instructor' && (
            <CreateRoom
              onCreated={(r) => {
                void reload();
                pick(r.code);
              }}
            />
          )}
        </>
      )}
    </main>
  );
}

function RoomList({ rooms, onPick }: { rooms: RoomInfo[]; onPick: (code: string) => void }): ReactNode {
  if (!rooms.length)
    return (
      <p>
        <Translate id="dashboard.noRooms">No rooms yet.</Translate>
      </p>
    );
  return (
    <table>
      <thead>
        <tr>
          <th>
            <Translate id="dashboard.room">Room</Translate>
          </th>
          <th>
            <Translate id="dashboard.code">Code</Translate>
          </th>
          <th>
            <Translate id="dashboard.seats">Seats</Translate>
          </th>
          <th>
            <Translate id="dashboard.state">State</Translate>
          </th>
        </tr>
      </thead>
      <tbody>
        {rooms.map((r) => (
          <tr key={r.code}>
            <td>
              <a href={`?room=${r.code}`} onClick={(e) => (e.preventDefault(), onPick(r.code))} data-room-link={r.code}>
                {r.name}
              </a>
            </td>
            <td>
              <code>{r.code}</code>
            </td>
            <td>
              {r.members}/{r.seats}
            </td>
            <td>{stateText(r.state)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function localInput(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function CreateRoom({ onCreated }: { onCreated: (r: RoomInfo) => void }): ReactNode {
  const { call } = useLabServer();
  const docs = usePluginData('docusaurus-plugin-content-docs') as { versions: { docs: { id: string }[] }[] } | undefined;
  const lessons = useMemo(() => (docs?.versions[0]?.docs ?? []).map((d) => d.id).filter((id) => !id.includes('/')).sort(), [docs]);
  const [form, setForm] = useState(() => ({
    name: '',
    lessons: [] as string[],
    startsAt: localInput(new Date()),
    endsAt: localInput(new Date(Date.now() + 3 * 3_600_000)),
    seats: 20,
    faults: true,
    recordCommands: false,
    stuckMinutes: 10,
    stuckAttempts: 5,
  }));
  const [problem, setProblem] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      const room = await call<RoomInfo>('POST', '/api/rooms', {
        ...form,
        startsAt: new Date(form.startsAt).toISOString(),
        endsAt: new Date(form.endsAt).toISOString(),
      });
      onCreated(room);
    } catch (err) {
      setProblem((err as Error).message);
    }
  };
  const set = <K extends keyof typeof form>(k: K, v: (typeof form)[K]) => setForm((f) => ({ ...f, [k]: v }));
  return (
    <section>
      <h2>
        <Translate id="dashboard.create">Create a room</Translate>
      </h2>
      <form className={styles.form} onSubmit={(e) => void submit(e)} data-create-room="">
        <label>
          <Translate id="dashboard.name">Name</Translate>
          <input name="name" value={form.name} onChange={(e) => set('name', e.target.value)} required maxLength={80} />
        </label>
        <fieldset className={styles.checks}>
          <legend>
            <Translate id="dashboard.lessons">Lessons</Translate>
          </legend>
          {lessons.map((id) => (
            <label key={id}>
              <input
                type="checkbox"
                name="lesson"
                value={id}
                checked={form.lessons.includes(id)}
                onChange={(e) => set('lessons', e.target.checked ? [...form.lessons, id] : form.lessons.filter((x) => x !== id))}
              />
              {id}
            </label>
          ))}
        </fieldset>
        <label>
          <Translate id="dashboard.starts">Starts</Translate>
          <input type="datetime-local" name="startsAt" value={form.startsAt} onChange={(e) => set('startsAt', e.target.value)} required />
        </label>
        <label>
          <Translate id="dashboard.ends">Ends</Translate>
          <input type="datetime-local" name="endsAt" value={form.endsAt} onChange={(e) => set('endsAt', e.target.value)} required />
        </label>
        <label>
          <Translate id="dashboard.seats">Seats</Translate>
          <input type="number" name="seats" min={1} max={200} value={form.seats} onChange={(e) => set('seats', Number(e.target.value))} />
        </label>
        <label>
          <Translate id="dashboard.stuckAttempts">Stuck after this many failed attempts</Translate>
          <input type="number" name="stuckAttempts" min={1} max={100} value={form.stuckAttempts} onChange={(e) => set('stuckAttempts', Number(e.target.value))} />
        </label>
        <label>
          <Translate id="dashboard.stuckMinutes">Stuck after this many minutes without progress</Translate>
          <input type="number" name="stuckMinutes" min={1} max={240} value={form.stuckMinutes} onChange={(e) => set('stuckMinutes', Number(e.target.value))} />
        </label>
        <div className={styles.checks}>
          <label>
            <input type="checkbox" name="faults" checked={form.faults} onChange={(e) => set('faults', e.target.checked)} />
            <Translate id="dashboard.faults">Randomized faults</Translate>
          </label>
          <label>
            <input type="checkbox" name="recordCommands" checked={form.recordCommands} onChange={(e) => set('recordCommands', e.target.checked)} />
            <Translate id="dashboard.recordCommands">Record command lines (learners are told)</Translate>
          </label>
        </div>
        <button type="submit" className="button button--primary">
          <Translate id="dashboard.createButton">Create room</Translate>
        </button>
        {problem && <p className={styles.problem}>{problem}</p>}
      </form>
    </section>
  );
}

const ago = (iso: string, now: number) => {
  const m = Math.max(0, Math.floor((now - Date.parse(iso)) / 60_000));
  return translate({ id: 'dashboard.minutes', message: '{m} min' }, { m: String(m) });
};

const stateText = (s: RoomInfo['state']) =>
  s === 'open'
    ? translate({ id: 'dashboard.state.open', message: 'open' })
    : s === 'closed'
      ? translate({ id: 'dashboard.state.closed', message: 'closed' })
      : translate({ id: 'dashboard.state.ended', message: 'ended' });

/** An eye (SVG: no emoji font needed). */
function Eye(): ReactNode {
  return (
    <svg width="14" height="10" viewBox="0 0 14 10" aria-hidden="true" style={{ verticalAlign: 'middle', marginLeft: 4 }}>
      <path d="M1 5 C3.5 0.5 10.5 0.5 13 5 C10.5 9.5 3.5 9.5 1 5 Z" fill="none" stroke="currentColor" strokeWidth="1.3" />
      <circle cx="7" cy="5" r="1.8" fill="currentColor" />
    </svg>
  );
}

function RoomView({ code, onBack }: { code: string; onBack: () => void }): ReactNode {
  const { call, wsUrl, base } = useLabServer();
  const { i18n } = useDocusaurusContext();
  const locale = i18n.currentLocale;
  const [room, setRoom] = useState<RoomInfo | null>(null);
  const [role, setRole] = useState<Role>('assistant');
  const [rows, setRows] = useState<Map<string, LearnerRow>>(new Map());
  const [audit, setAudit] = useState<AuditEntry[]>([]);
  const [labs, setLabs] = useState<LabInfo[]>([]);
  const [connected, setConnected] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const [message, setMessage] = useState('');
  const [shadow, setShadow] = useState<{ learner: string; name: string; lab: string } | null>(null);
  const [now, setNow] = useState(() => Date.now());

  // The clock of "time on task" (display only; the data is pushed).
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 15_000);
    return () => clearInterval(t);
  }, []);

  useEffect(() => {
    let closed = false;
    let ws: WebSocket | null = null;
    let retry: ReturnType<typeof setTimeout> | null = null;
    const open = () => {
      ws = new WebSocket(wsUrl(DASHBOARD_WS_PATH));
      ws.onopen = () => {
        setConnected(true);
        ws!.send(JSON.stringify({ type: 'watch', room: code }));
      };
      ws.onmessage = (ev) => {
        const msg = JSON.parse(String(ev.data)) as DashboardServerMessage;
        if (msg.type === 'snapshot') {
          setRoom(msg.room);
          setRole(msg.role);
          setRows(new Map(msg.rows.map((r) => [r.learner, r])));
          setAudit(msg.audit);
        } else if (msg.type === 'row') setRows((m) => new Map(m).set(msg.row.learner, msg.row));
        else if (msg.type === 'room') setRoom(msg.room);
        else if (msg.type === 'audit') setAudit((a) => [...a.slice(-199), msg.entry]);
        else if (msg.type === 'error') setProblem(msg.message);
      };
      ws.onclose = () => {
        setConnected(false);
        if (!closed) retry = setTimeout(open, 2000);
      };
    };
    open();
    return () => {
      closed = true;
      if (retry) clearTimeout(retry);
      ws?.close();
    };
  }, [code, wsUrl]);

  const lessonsKey = room?.lessons.join(',') ?? '';
  useEffect(() => {
    if (!lessonsKey) return;
    Promise.all(lessonsKey.split(',').map((id) => call<LabInfo>('GET', `/api/labs/${id}?locale=${locale}`))).then(setLabs, (e: Error) => setProblem(e.message));
  }, [lessonsKey, call, locale]);

  const act = async (method: string, path: string, body?: unknown) => {
    try {
      await call(method, `/api/rooms/${code}${path}`, body);
      setProblem(null);
    } catch (e) {
      setProblem((e as Error).message);
    }
  };

  const columns = labs.flatMap((l) => l.tasks.map((t) => ({ lab: l.id, task: t.id, title: t.title, hints: t.hintCount })));
  const list = Array.from(rows.values());
  const instructor = role === 'instructor';
  const joinLink = room ? `${window.location.origin}${room.joinPath}` : '';

  const aggregate = (lab: string, task: string) => {
    const cells = list.map((r) => r.cells[`${lab}/${task}`]).filter((c): c is Cell => Boolean(c));
    const passed = cells.filter((c) => c.status === 'passed').length;
    const reasons = new Map<string, number>();
    for (const c of cells) if (c.status === 'failed' && c.reason) reasons.set(reasonText(c.reason, locale), (reasons.get(reasonText(c.reason, locale)) ?? 0) + 1);
    const top = Array.from(reasons.entries()).sort((a, b) => b[1] - a[1])[0];
    return { passed, total: list.length, top };
  };

  const flagText = (f: LearnerRow['flags'][number]) =>
    f === 'no-progress'
      ? translate({ id: 'dashboard.flag.noProgress', message: 'no progress' })
      : f === 'many-attempts'
        ? translate({ id: 'dashboard.flag.attempts', message: 'many attempts' })
        : translate({ id: 'dashboard.flag.gone', message: 'sandbox gone' });

  return (
    <section data-room-view={code}>
      <p>
        <button type="button" className="button button--sm button--link" onClick={onBack}>
          ← <Translate id="dashboard.allRooms">All rooms</Translate>
        </button>
      </p>
      <h1>
        {room?.name ?? code} <small className={styles.small}>{connected ? '●' : '○'}</small>
      </h1>
      {room && (
        <p>
          <Translate id="dashboard.joinWith">Learners join at</Translate> <code data-join-link="">{joinLink}</code> <Translate id="dashboard.withCode">with the code</Translate>{' '}
          <strong data-room-code="">{room.code}</strong>. {room.members}/{room.seats} · <span data-room-state={room.state}>{stateText(room.state)}</span> ·{' '}
          <Translate id="dashboard.endsAt">ends</Translate> {new Date(room.endsAt).toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit' })}
        </p>
      )}
      {problem && <p className={styles.problem} data-dashboard-problem="">{problem}</p>}
      {instructor && room && (
        <div className={styles.toolbar}>
          <input
            name="broadcast"
            value={message}
            maxLength={500}
            placeholder={translate({ id: 'dashboard.broadcastPlaceholder', message: 'A message for every learner' })}
            onChange={(e) => setMessage(e.target.value)}
          />
          <button
            type="button"
            className="button button--sm button--primary"
            data-action="broadcast"
            disabled={!message.trim()}
            onClick={() => void act('POST', '/broadcast', { message }).then(() => setMessage(''))}
          >
            <Translate id="dashboard.broadcast">Broadcast</Translate>
          </button>
          <button type="button" className="button button--sm button--secondary" onClick={() => void act('POST', '/extend', { minutes: 15 })}>
            <Translate id="dashboard.extendRoom">+15 min for all</Translate>
          </button>
          {room.state === 'open' ? (
            <button type="button" className="button button--sm button--warning" data-action="close" onClick={() => void act('POST', '/close')}>
              <Translate id="dashboard.close">Close room</Translate>
            </button>
          ) : (
            room.state === 'closed' && (
              <button type="button" className="button button--sm button--secondary" data-action="reopen" onClick={() => void act('POST', '/reopen')}>
                <Translate id="dashboard.reopen">Reopen</Translate>
              </button>
            )
          )}
          <button
            type="button"
            className="button button--sm button--danger"
            data-action="end"
            onClick={() => window.confirm(translate({ id: 'dashboard.endConfirm', message: 'End the workshop for everyone now? Every sandbox of the room is removed; grades stay.' })) && void act('POST', '/end')}
          >
            <Translate id="dashboard.end">End everything</Translate>
          </button>
          <a className="button button--sm button--outline button--primary" href={`${base}/api/rooms/${code}/grades?format=csv`} data-grades="csv">
            CSV
          </a>
          <a className="button button--sm button--outline button--primary" href={`${base}/api/rooms/${code}/grades`} data-grades="json">
            JSON
          </a>
          <a className="button button--sm button--outline button--primary" href={`${base}/api/rooms/${code}/report?locale=${locale}`} target="_blank" rel="noreferrer" data-grades="report">
            <Translate id="dashboard.report">Printable report</Translate>
          </a>
        </div>
      )}
      <div className={styles.gridWrap}>
        {/* A big room goes compact (one line per learner; counts in each cell's tooltip), so 50 learners fit one screen. */}
        <table className={clsx(styles.grid, list.length > 20 && styles.compact)} data-grid="" data-compact={list.length > 20 ? '' : undefined}>
          <thead>
            <tr>
              <th>
                <Translate id="dashboard.learner">Learner</Translate>
              </th>
              {columns.map((c) => (
                <th key={`${c.lab}/${c.task}`} title={`${c.lab}/${c.task}`}>
                  {c.title}
                </th>
              ))}
              <th />
            </tr>
          </thead>
          <tbody>
            {list.map((r) => (
              <tr key={r.learner} data-learner={r.learner} data-name={r.name} data-flags={r.flags.join(' ')} className={clsx(r.flags.length > 0 && styles.stuck)}>
                <th className={styles.learner} scope="row">
                  <span data-learner-name="">{r.name}</span>
                  {r.watchers > 0 && (
                    <span title={translate({ id: 'dashboard.watched', message: 'being watched' })} data-watched={r.watchers}>
                      <Eye />
                    </span>
                  )}
                  {r.flags.map((f) => (
                    <span key={f} className={styles.flag} data-flag={f}>
                      {flagText(f)}
                    </span>
                  ))}
                  {r.current && (
                    <div className={styles.small} data-current={`${r.current.lab}/${r.current.task}`}>
                      {r.current.task} · {ago(r.current.since, now)}
                    </div>
                  )}
                </th>
                {columns.map((c) => {
                  const cell = r.cells[`${c.lab}/${c.task}`];
                  const status = cell?.status ?? 'not-started';
                  const reason = cell?.reason ? reasonText(cell.reason, locale) : '';
                  return (
                    <td
                      key={`${c.lab}/${c.task}`}
                      className={clsx(styles.cell, status === 'passed' ? styles.passed : status === 'failed' ? styles.failed : status === 'pending' ? styles.pending : styles.notStarted)}
                      data-cell={`${c.lab}/${c.task}`}
                      data-status={status}
                      data-attempts={cell?.attempts ?? 0}
                      data-hints={cell?.hints ?? 0}
                      title={[reason || status, cell && (cell.attempts || cell.hints) ? `${cell.attempts} / ${cell.hints}` : ''].filter(Boolean).join(' · ')}
                    >
                      {status === 'passed' ? '✓' : status === 'failed' ? '✗' : status === 'pending' ? '…' : '·'}
                      {cell && (cell.attempts > 0 || cell.hints > 0) && (
                        <div className={styles.small}>
                          {[
                            cell.attempts > 0 ? translate({ id: 'dashboard.tries', message: 'tries: {n}' }, { n: String(cell.attempts) }) : '',
                            cell.hints > 0 ? translate({ id: 'dashboard.hints', message: 'hints: {n}' }, { n: String(cell.hints) }) : '',
                          ]
                            .filter(Boolean)
                            .join(' · ')}
                        </div>
                      )}
                    </td>
                  );
                })}
                <td className={styles.actions}>
                  {(() => {
                    const lab = r.current?.lab ?? Object.keys(r.sandboxes)[0] ?? labs[0]?.id;
                    return (
                      <>
                        {lab && r.sandboxes[lab] === 'live' && (
                          <button type="button" className="button button--sm button--secondary" data-action="shadow" onClick={() => setShadow({ learner: r.learner, name: r.name, lab })}>
                            <Translate id="dashboard.shadow">Shadow</Translate>
                          </button>
                        )}
                        {instructor && lab && (
                          <>
                            <button type="button" className="button button--sm button--secondary" data-action="reset" onClick={() => void act('POST', '/reset', { learner: r.learner, lab })}>
                              <Translate id="dashboard.reset">Reset</Translate>
                            </button>
                            {r.current && (
                              <button type="button" className="button button--sm button--secondary" data-action="hint" onClick={() => void act('POST', '/hint', { learner: r.learner, lab: r.current!.lab, task: r.current!.task })}>
                                <Translate id="dashboard.hint">Hint</Translate>
                              </button>
                            )}
                            <button type="button" className="button button--sm button--secondary" onClick={() => void act('POST', '/extend', { learner: r.learner, minutes: 15 })}>
                              +15
                            </button>
                          </>
                        )}
                      </>
                    );
                  })()}
                </td>
              </tr>
            ))}
            <tr className={styles.aggregate} data-aggregates="">
              <th scope="row">
                <Translate id="dashboard.perTask">Per task</Translate>
              </th>
              {columns.map((c) => {
                const a = aggregate(c.lab, c.task);
                return (
                  <td key={`${c.lab}/${c.task}`} data-aggregate={`${c.lab}/${c.task}`} data-passed={a.passed}>
                    <strong>
                      {a.passed}/{a.total}
                    </strong>
                    {a.top && (
                      <div title={a.top[0]}>
                        {a.top[0].slice(0, 60)} ({a.top[1]}/{a.total})
                      </div>
                    )}
                    {instructor && a.total > a.passed && c.hints > 0 && (
                      <button type="button" className="button button--sm button--link" onClick={() => void act('POST', '/hint', { lab: c.lab, task: c.task })}>
                        <Translate id="dashboard.hintAll">hint to all on it</Translate>
                      </button>
                    )}
                  </td>
                );
              })}
              <td />
            </tr>
          </tbody>
        </table>
      </div>
      {shadow && room && (
        <ShadowView key={`${shadow.learner}/${shadow.lab}`} room={room.code} target={shadow} instructor={instructor} onClose={() => setShadow(null)} onTakeover={() => void act('POST', '/takeover', { learner: shadow.learner, lab: shadow.lab })} />
      )}
      <h2>
        <Translate id="dashboard.audit">Audit log</Translate>
      </h2>
      <ol className={styles.audit} data-audit="">
        {audit
          .slice()
          .reverse()
          .map((a, i) => (
            <li key={`${a.at}-${i}`}>
              {new Date(a.at).toLocaleTimeString(locale)} {a.actor}: {a.action}
              {a.learner ? ` ${list.find((r) => r.learner === a.learner)?.name ?? a.learner}` : ''}
              {a.detail ? ` (${a.detail})` : ''}
            </li>
          ))}
      </ol>
    </section>
  );
}

/** A learner's terminal, live and read-only; typing only once the learner accepted a take-over. */
function ShadowView({
  room,
  target,
  instructor,
  onClose,
  onTakeover,
}: {
  room: string;
  target: { learner: string; name: string; lab: string };
  instructor: boolean;
  onClose: () => void;
  onTakeover: () => void;
}): ReactNode {
  const { wsUrl } = useLabServer();
  const screen = useRef<HTMLDivElement>(null);
  const [control, setControl] = useState<'none' | 'requested' | 'granted'>('none');
  const [state, setState] = useState<'connecting' | 'live' | 'closed'>('connecting');
  const [note, setNote] = useState<string | null>(null);

  useEffect(() => {
    const el = screen.current;
    if (!el) return;
    const term = new XTerm({ disableStdin: false, fontSize: 12, scrollback: 3000, theme: { background: '#0d1117', foreground: '#e6edf3' }, convertEol: false });
    term.open(el);
    const ws = new WebSocket(wsUrl(SHADOW_WS_PATH));
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => ws.send(JSON.stringify({ type: 'shadow', v: TERMINAL_PROTOCOL_VERSION, room, learner: target.learner, lab: target.lab, cols: term.cols, rows: term.rows }));
    ws.onmessage = (ev) => {
      if (ev.data instanceof ArrayBuffer) return void term.write(new Uint8Array(ev.data));
      const parsed = ShadowServerMessage.safeParse(JSON.parse(String(ev.data)));
      if (!parsed.success) return;
      const msg = parsed.data;
      if (msg.type === 'ready') {
        if (msg.reset) term.reset();
        setState('live');
      } else if (msg.type === 'control') setControl(msg.state);
      else if (msg.type === 'error') setNote(msg.message);
    };
    ws.onclose = () => setState('closed');
    const input = term.onData((data) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'input', data }));
    });
    const ping = setInterval(() => ws.readyState === ws.OPEN && ws.send(JSON.stringify({ type: 'ping', t: Date.now() })), 10_000);
    return () => {
      clearInterval(ping);
      input.dispose();
      ws.close();
      term.dispose();
    };
  }, [room, target.learner, target.lab, wsUrl]);

  return (
    <section className={styles.shadow} data-shadow={target.learner} data-shadow-state={state} data-control={control}>
      <div className={styles.toolbar}>
        <strong>
          <Translate id="dashboard.shadowOf" values={{ name: target.name }}>{"{name}'s terminal"}</Translate>
        </strong>
        <span className={styles.small}>
          {control === 'granted' ? (
            <Translate id="dashboard.control.granted">You can type: the learner accepted (your typing is marked in their scrollback).</Translate>
          ) : control === 'requested' ? (
            <Translate id="dashboard.control.requested">Waiting for the learner to accept…</Translate>
          ) : (
            <Translate id="dashboard.control.none">Read-only.</Translate>
          )}
        </span>
        {instructor && control === 'none' && (
          <button type="button" className="button button--sm button--secondary" data-action="takeover" onClick={onTakeover}>
            <Translate id="dashboard.takeover">Ask to take over</Translate>
          </button>
        )}
        <button type="button" className="button button--sm button--secondary" onClick={onClose}>
          <Translate id="dashboard.closeShadow">Close</Translate>
        </button>
      </div>
      {note && <p className={styles.problem}>{note}</p>}
      <div ref={screen} className={styles.shadowScreen} data-shadow-screen="" />
    </section>
  );
}
