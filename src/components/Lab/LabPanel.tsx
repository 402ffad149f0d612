/**
 * The live lab panel: progress, "Start lab" / "Reset lab" / "Check now", the
 * task list with each task's status and reason, live hints, hints revealed
 * one by one, answer fields, and the finished state with the grade.
 *
 * The session is the lab's shared one (../lab-session): the panel and the
 * page's terminals find or start it together, and all of them follow when
 * it is replaced. Task status arrives as the server pushes it over a
 * terminal's socket (lab bus), with a slow poll as a fallback.
 */
import React, { useCallback, useEffect, useMemo, useRef, useState, type FormEvent, type ReactNode } from 'react';
import clsx from 'clsx';
import useDocusaurusContext from '@docusaurus/useDocusaurusContext';
import type { Grade, LabInfo, LabStatus, LabTaskInfo, TaskStatus } from '../../../protocol/lab';
import { reasonText } from '../../../protocol/reasons';
import { onLab } from '../lab-bus';
import {
  ApiFailure,
  findOrStartSession,
  forgetSession,
  labApi,
  pageStorage,
  resetSession,
  type LabServerOptions,
} from '../lab-session';
import { connectionTexts } from '../Terminal/texts';
import type { LabProps } from './index';
import { duration, labTexts as t } from './texts';
import styles from './styles.module.css';

/** The fallback poll; the server pushes changes over the terminal's socket as they happen. */
const POLL_MS = 10_000;
/** Asking again for a session while the machine is full or the server is unreachable. */
const SESSION_RETRY_MS = 5_000;

type SessionState = 'starting' | 'ready' | 'gone' | 'failed';
type Busy = null | 'start' | 'check' | 'reset' | `hint:${string}` | `answer:${string}`;

export default function LabPanel({ lab }: LabProps): ReactNode {
  const { siteConfig, i18n } = useDocusaurusContext();
  const locale = i18n.currentLocale;
  const labServer = typeof siteConfig.customFields?.labServer === 'string' ? siteConfig.customFields.labServer : '';
  const server = useMemo<LabServerOptions>(
    () => ({
      baseUrl: labServer || window.location.origin,
      storage: pageStorage(),
      unexpectedAnswer: connectionTexts().unexpectedAnswer,
    }),
    [labServer],
  );

  const [info, setInfo] = useState<LabInfo | null>(null);
  const [infoProblem, setInfoProblem] = useState<string | null>(null);
  const [sessionId, setSessionId] = useState<string | null>(null);
  const [sessionState, setSessionState] = useState<SessionState>('starting');
  const [sessionProblem, setSessionProblem] = useState<string | null>(null);
  const [status, setStatus] = useState<LabStatus | null>(null);
  const [pushedFinished, setPushedFinished] = useState(false);
  const [busy, setBusy] = useState<Busy>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [grade, setGrade] = useState<Grade | null>(null);
  const [drafts, setDrafts] = useState<Record<string, string>>({});
  const [announcement, setAnnouncement] = useState('');

  const sessionRef = useRef<string | null>(null);
  sessionRef.current = sessionId;
  /** Bumped by every pushed status: a poll that was asked before it must not undo it. */
  const pushes = useRef(0);

  // ---- the lab's description ------------------------------------------------

  const loadInfo = useCallback(() => {
    labApi<LabInfo>(server, 'GET', `/api/labs/${encodeURIComponent(lab)}?locale=${encodeURIComponent(locale)}`).then(
      (i) => {
        setInfo(i);
        setInfoProblem(null);
      },
      (e: Error) => setInfoProblem(e.message),
    );
  }, [server, lab, locale]);

  useEffect(loadInfo, [loadInfo]);

  // ---- the shared session ---------------------------------------------------

  /** Use the lab's session `id` (found, started, or replacing the one shown). */
  const follow = useCallback((id: string) => {
    if (sessionRef.current !== null && id !== sessionRef.current) {
      // Another session: nothing of the old one's status applies.
      setStatus(null);
      setGrade(null);
      setDrafts({});
      setPushedFinished(false);
    }
    sessionRef.current = id;
    setSessionId(id);
    setSessionState('ready');
    setSessionProblem(null);
    setNotice(null);
  }, []);

  useEffect(() => {
    let alive = true;
    let retry: ReturnType<typeof setTimeout> | undefined;
    const off = onLab(lab, (e) => {
      switch (e.kind) {
        case 'session':
        case 'replace-session':
          follow(e.sessionId);
          return;
        case 'session-gone':
          if (e.sessionId === sessionRef.current) setSessionState('gone');
          return;
        case 'tasks':
          if (e.sessionId !== sessionRef.current) return;
          pushes.current++;
          setStatus((s) => (s ? { ...s, tasks: e.tasks } : { lab, tasks: e.tasks, startedAt: '', hints: {}, faults: 0 }));
          setPushedFinished(e.finished);
          return;
        case 'notice':
          setNotice(e.code === 'engine-down' ? e.message : null);
          return;
      }
    });
    // Find or start the session together with the page's terminals (one session for all).
    const ask = () => {
      findOrStartSession(lab, server).then(
        (id) => {
          if (alive) follow(id);
        },
        (err: unknown) => {
          if (!alive) return;
          const message = (err as Error).message;
          setSessionProblem(message);
          if (err instanceof ApiFailure && err.retry) retry = setTimeout(ask, SESSION_RETRY_MS);
          else setSessionState('failed');
        },
      );
    };
    ask();
    return () => {
      alive = false;
      off();
      if (retry) clearTimeout(retry);
    };
  }, [lab, server, follow]);

  // ---- status: pushed, polled, and after each action -------------------------

  const refresh = useCallback(async () => {
    const id = sessionRef.current;
    if (!id) return;
    const pushesBefore = pushes.current;
    try {
      const st = await labApi<LabStatus>(server, 'GET', `/api/sessions/${encodeURIComponent(id)}/lab?locale=${encodeURIComponent(locale)}`);
      if (id !== sessionRef.current) return;
      // A push that came meanwhile is newer than this answer: keep its tasks.
      setStatus((s) => (s && pushes.current !== pushesBefore ? { ...st, tasks: s.tasks } : st));
      setProblem(null);
    } catch (err) {
      if (id !== sessionRef.current) return;
      if (err instanceof ApiFailure && (err.code === 'unknown-session' || err.code === 'forbidden')) {
        // The server no longer knows this session: everyone on the page starts over from a new one.
        forgetSession(lab, id, server.storage);
        setSessionState('gone');
        return;
      }
      setProblem((err as Error).message);
    }
  }, [server, locale, lab]);

  useEffect(() => {
    if (!sessionId || sessionState !== 'ready') return;
    void refresh();
    const timer = setInterval(() => {
      // A hidden tab does not need fresh status; it gets it when shown again.
      if (document.visibilityState !== 'hidden') void refresh();
    }, POLL_MS);
    const onVisible = () => {
      if (document.visibilityState === 'visible') void refresh();
    };
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, [sessionId, sessionState, refresh]);

  useEffect(() => {
    if (!info && infoProblem) {
      const timer = setTimeout(loadInfo, POLL_MS);
      return () => clearTimeout(timer);
    }
    return undefined;
  }, [info, infoProblem, loadInfo]);

  // ---- derived --------------------------------------------------------------

  const tasks: LabTaskInfo[] = info?.tasks ?? [];
  const total = tasks.length;
  const byId = useMemo(() => new Map((status?.tasks ?? []).map((s) => [s.id, s])), [status]);
  const passed = tasks.filter((task) => byId.get(task.id)?.status === 'passed').length;
  const finished = total > 0 && (passed === total || (pushedFinished && byId.size > 0));
  const ready = sessionState === 'ready' && sessionId !== null;

  // Screen readers hear what changed by itself: a task turning green, the lab finishing.
  const seen = useRef<Map<string, string> | null>(null);
  useEffect(() => {
    if (!status || !info) return;
    const before = seen.current;
    const now = new Map(status.tasks.map((s) => [s.id, s.status]));
    seen.current = now;
    if (!before) return;
    const newlyPassed = info.tasks.filter((task) => now.get(task.id) === 'passed' && before.get(task.id) !== 'passed');
    if (newlyPassed.length === 0) return;
    const all = info.tasks.every((task) => now.get(task.id) === 'passed');
    setAnnouncement([...newlyPassed.map((task) => t.announcePassed(task.title)), ...(all ? [t.announceFinished()] : [])].join(' '));
  }, [status, info]);

  useEffect(() => {
    if (!finished) return;
    let alive = true;
    labApi<Grade>(server, 'GET', `/api/labs/${encodeURIComponent(lab)}/grade`).then(
      (g) => alive && setGrade(g),
      () => alive && setGrade(null),
    );
    return () => {
      alive = false;
    };
  }, [finished, server, lab, sessionId]);

  // ---- actions --------------------------------------------------------------

  const act = async (what: Busy, fn: () => Promise<void>) => {
    setBusy(what);
    try {
      await fn();
      setProblem(null);
    } catch (err) {
      if (err instanceof ApiFailure && err.code === 'unknown-session' && sessionRef.current) {
        forgetSession(lab, sessionRef.current, server.storage);
        setSessionState('gone');
      } else setProblem((err as Error).message);
    } finally {
      setBusy(null);
    }
  };

  const start = () =>
    act('start', async () => {
      setSessionState('starting');
      setSessionProblem(null);
      try {
        follow(await findOrStartSession(lab, server));
      } catch (err) {
        setSessionState('failed');
        throw err;
      }
    });

  const checkNow = () =>
    act('check', async () => {
      const id = sessionRef.current!;
      const st = await labApi<LabStatus>(server, 'POST', `/api/sessions/${encodeURIComponent(id)}/check?locale=${encodeURIComponent(locale)}`);
      if (id !== sessionRef.current) return;
      pushes.current++;
      setStatus(st);
      const n = st.tasks.filter((s) => s.status === 'passed').length;
      setAnnouncement(t.announceChecked(n, total));
    });

  const reset = () => {
    if (!window.confirm(t.resetConfirm())) return;
    void act('reset', async () => {
      // Every terminal of the lab follows through the bus (replace-session).
      follow(await resetSession(lab, sessionRef.current!, server));
    });
  };

  const showHint = (task: LabTaskInfo) => {
    if (info?.graded && !window.confirm(t.hintConfirm())) return;
    void act(`hint:${task.id}`, async () => {
      const id = sessionRef.current!;
      const r = await labApi<{ task: string; hints: string[] }>(server, 'POST', `/api/sessions/${encodeURIComponent(id)}/hint`, {
        task: task.id,
        locale,
      });
      if (id !== sessionRef.current) return;
      setStatus((s) => (s ? { ...s, hints: { ...s.hints, [task.id]: r.hints } } : s));
      void refresh();
    });
  };

  const answer = (e: FormEvent, task: LabTaskInfo) => {
    e.preventDefault();
    const value = (drafts[task.id] ?? '').trim();
    if (!value) return;
    void act(`answer:${task.id}`, async () => {
      const id = sessionRef.current!;
      const st = await labApi<TaskStatus>(server, 'POST', `/api/sessions/${encodeURIComponent(id)}/answer`, { task: task.id, answer: value });
      if (id !== sessionRef.current) return;
      pushes.current++;
      setStatus((s) => (s ? { ...s, tasks: s.tasks.map((x) => (x.id === st.id ? st : x)) } : s));
      // Later tasks may have been waiting for this one.
      void refresh();
    });
  };

  // ---- view -----------------------------------------------------------------

  const titleId = `lab-${lab}-title`;
  const percent = total ? Math.round((100 * passed) / total) : 0;
  const showStart = sessionState === 'gone' || sessionState === 'failed';

  return (
    <section
      className={clsx(styles.panel, finished && styles.panelFinished)}
      data-lab={lab}
      data-session-state={sessionState}
      data-finished={finished ? 'true' : undefined}
      aria-labelledby={titleId}
    >
      <header className={styles.header}>
        <div className={styles.titleRow}>
          <h2 className={styles.title} id={titleId}>
            {info?.title ?? lab}
          </h2>
          {info?.graded && <span className={styles.gradedBadge}>{t.graded()}</span>}
        </div>
        <div className={styles.progressRow}>
          <div
            className={styles.progress}
            role="progressbar"
            aria-valuemin={0}
            aria-valuemax={total}
            aria-valuenow={passed}
            aria-valuetext={t.progress(passed, total)}
            aria-label={t.progressLabel()}
          >
            <div className={styles.bar} style={{ width: `${percent}%` }} />
          </div>
          <span className={styles.count}>{t.progress(passed, total)}</span>
        </div>
        <div className={styles.actions}>
          {showStart ? (
            <button type="button" className="button button--sm button--primary" onClick={() => void start()} disabled={busy !== null}>
              {busy === 'start' ? t.starting() : t.start()}
            </button>
          ) : (
            <>
              <button
                type="button"
                className="button button--sm button--primary"
                onClick={() => void checkNow()}
                disabled={!ready || busy !== null}
                title={t.checkNowTitle()}
              >
                {busy === 'check' ? t.checking() : t.checkNow()}
              </button>
              <button
                type="button"
                className={clsx('button button--sm button--outline button--secondary', styles.resetButton)}
                onClick={reset}
                disabled={!ready || busy !== null}
                title={t.resetTitle()}
              >
                {busy === 'reset' ? t.resetting() : t.reset()}
              </button>
            </>
          )}
          {sessionState === 'starting' && (
            <span className={styles.starting}>
              <span className={styles.spinner} aria-hidden="true" />
              {sessionProblem ?? t.sessionStarting()}
            </span>
          )}
        </div>
      </header>

      <div className={styles.srOnly} role="status" aria-live="polite" aria-atomic="true">
        {announcement}
      </div>

      {sessionState === 'gone' && <p className={styles.notice}>{t.sessionGone()}</p>}
      {sessionState === 'failed' && sessionProblem && (
        <p className={styles.problem} role="alert">
          {sessionProblem}
        </p>
      )}
      {notice && (
        <p className={styles.notice} role="alert">
          {notice}
        </p>
      )}
      {(problem ?? infoProblem) && (
        <p className={styles.problem} role="alert">
          {problem ?? infoProblem}
        </p>
      )}

      {finished && (
        <div className={styles.finished} data-lab-finished="">
          <span className={styles.finishedIcon} aria-hidden="true">
            ★
          </span>
          <div>
            <strong>{t.finished()}</strong>
            {grade && (
              <div className={styles.gradeLine}>
                {[
                  t.gradeTasks(grade.tasksPassed, grade.tasksTotal),
                  t.gradeHints(grade.hintsUsed),
                  ...(info?.graded ? [t.gradeScore(grade.score)] : []),
                  ...(grade.secondsTaken !== undefined ? [t.gradeTime(duration(grade.secondsTaken))] : []),
                ].join(' · ')}
              </div>
            )}
            <div className={styles.finishedNext}>{t.finishedNext()}</div>
          </div>
        </div>
      )}

      {!info && !infoProblem && <p className={styles.muted}>{t.loading()}</p>}

      <ol className={clsx(styles.tasks, !ready && styles.tasksIdle)} aria-label={t.tasksLabel()}>
        {tasks.map((task, index) => (
          <TaskRow
            key={task.id}
            index={index}
            task={task}
            st={byId.get(task.id)}
            hints={status?.hints[task.id] ?? []}
            locale={locale}
            graded={info?.graded ?? false}
            ready={ready}
            busy={busy}
            draft={drafts[task.id]}
            onDraft={(v) => setDrafts((d) => ({ ...d, [task.id]: v }))}
            onAnswer={(e) => answer(e, task)}
            onHint={() => showHint(task)}
          />
        ))}
      </ol>
    </section>
  );
}

interface TaskRowProps {
  index: number;
  task: LabTaskInfo;
  st: TaskStatus | undefined;
  hints: string[];
  locale: string;
  graded: boolean;
  ready: boolean;
  busy: Busy;
  draft: string | undefined;
  onDraft: (value: string) => void;
  onAnswer: (e: FormEvent) => void;
  onHint: () => void;
}

function TaskRow({ index, task, st, hints, locale, graded, ready, busy, draft, onDraft, onAnswer, onHint }: TaskRowProps): ReactNode {
  const value = st?.status ?? 'pending';
  const blocked = value !== 'passed' && (st?.blocked ?? false);
  const open = value !== 'passed';
  const answerId = `lab-answer-${task.id}`;
  const stateText = blocked ? t.statusBlocked() : value === 'passed' ? t.statusPassed() : value === 'failed' ? t.statusFailed() : t.statusPending();
  return (
    <li
      className={clsx(styles.task, styles[value], blocked && styles.blocked)}
      data-task-id={task.id}
      data-status={value}
      data-blocked={blocked ? 'true' : undefined}
    >
      <span className={styles.icon} aria-hidden="true">
        {value === 'passed' ? '✓' : value === 'failed' ? '✗' : blocked ? '' : index + 1}
      </span>
      <div className={styles.body}>
        <div className={styles.taskTitle}>
          {task.title}
          <span className={styles.srOnly}> ({stateText})</span>
        </div>
        {task.details && <div className={styles.details}>{task.details}</div>}
        {blocked ? (
          <div className={styles.reason}>{t.blocked()}</div>
        ) : (
          open && st?.reason && <div className={styles.reason}>{reasonText(st.reason, locale)}</div>
        )}
        {open && !blocked && st?.hint && (
          <div className={styles.liveHint}>
            <span className={styles.liveHintLabel}>{t.liveHint()}</span> {reasonText(st.hint, locale)}
          </div>
        )}
        {task.question &&
          (open ? (
            <form className={styles.answer} onSubmit={onAnswer}>
              <label htmlFor={answerId} className={styles.question}>
                {task.question}
              </label>
              <div className={styles.answerRow}>
                <input
                  id={answerId}
                  type="text"
                  value={draft ?? st?.answer ?? ''}
                  onChange={(e) => onDraft(e.target.value)}
                  disabled={!ready || blocked}
                  placeholder={t.answerLabel()}
                  spellCheck={false}
                  autoComplete="off"
                  maxLength={200}
                  aria-invalid={value === 'failed' && st?.answer !== undefined ? true : undefined}
                />
                <button
                  type="submit"
                  className="button button--sm button--primary"
                  disabled={!ready || blocked || busy !== null || !(draft ?? st?.answer ?? '').trim()}
                >
                  {busy === `answer:${task.id}` ? t.answerSubmitting() : t.answerSubmit()}
                </button>
              </div>
            </form>
          ) : (
            st?.answer && <div className={styles.details}>{t.answerAccepted(st.answer)}</div>
          ))}
        {hints.length > 0 && (
          <ol className={styles.hints} aria-label={t.hintsLabel(task.title)}>
            {hints.map((h, i) => (
              <li key={i}>{h}</li>
            ))}
          </ol>
        )}
        {open && task.hintCount > hints.length && (
          <button type="button" className={styles.hintButton} onClick={onHint} disabled={!ready || busy !== null}>
            <span aria-hidden="true">💡 </span>
            {t.showHint(hints.length + 1, task.hintCount)}
            {graded && <span className={styles.hintCost}> {t.hintCost()}</span>}
          </button>
        )}
      </div>
    </li>
  );
}
