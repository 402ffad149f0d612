/**
 * The live lab panel: progress, the task list with each task's status and
 * reason, live hints, revealed hints, answer fields, "check now", reset and
 * the finished state. Status arrives over the terminal's socket (lab bus),
 * with a slow poll as a fallback.
 */
import React, { useCallback, useEffect, useMemo, useState, type FormEvent, type ReactNode } from 'react';
import clsx from 'clsx';
import useDocusaurusContext from '@docusaurus/useDocusaurusContext';
import Translate, { translate } from '@docusaurus/Translate';
import type { Grade, LabInfo, LabStatus, TaskStatus } from '../../../protocol/lab';
import { reasonText } from '../../../protocol/reasons';
import { currentSession, emitLab, onLab } from '../lab-bus';
import { useLabServer } from '../lab-server';
import type { LabProps } from './index';
import styles from './styles.module.css';

const POLL_MS = 10_000;

export default function LabPanel({ lab }: LabProps): ReactNode {
  const { i18n } = useDocusaurusContext();
  const locale = i18n.currentLocale;
  const { call: api } = useLabServer();
  const [info, setInfo] = useState<LabInfo | null>(null);
  const [status, setStatus] = useState<LabStatus | null>(null);
  const [sessionId, setSessionId] = useState<string | undefined>(() => currentSession(lab));
  const [busy, setBusy] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [grade, setGrade] = useState<Grade | null>(null);
  const [answers, setAnswers] = useState<Record<string, string>>({});


  useEffect(() => {
    api<LabInfo>('GET', `/api/labs/${lab}?locale=${locale}`).then(setInfo, (e: Error) => setProblem(e.message));
  }, [api, lab, locale]);

  useEffect(
    () =>
      onLab(lab, (e) => {
        if (e.kind === 'session' || e.kind === 'replace-session') setSessionId(e.sessionId);
        else if (e.kind === 'tasks') setStatus((s) => (s ? { ...s, tasks: e.tasks } : s));
        else if (e.kind === 'notice') setNotice(e.code === 'engine-down' ? e.message : null);
      }),
    [lab],
  );

  const refresh = useCallback(async () => {
    if (!sessionId) return;
    try {
      setStatus(await api<LabStatus>('GET', `/api/sessions/${sessionId}/lab?locale=${locale}`));
      setProblem(null);
    } catch (e) {
      setProblem((e as Error).message);
    }
  }, [api, sessionId, locale]);

  useEffect(() => {
    void refresh();
    const timer = setInterval(() => void refresh(), POLL_MS);
    return () => clearInterval(timer);
  }, [refresh]);

  const total = info?.tasks.length ?? 0;
  const byId = useMemo(() => new Map((status?.tasks ?? []).map((t) => [t.id, t])), [status]);
  // Array.from, not a spread: the site build does not downlevel iterator spreads (it counted 0).
  const passed = Array.from(byId.values()).filter((t) => t.status === 'passed').length;
  const finished = total > 0 && passed === total;

  useEffect(() => {
    if (finished) api<Grade>('GET', `/api/labs/${lab}/grade`).then(setGrade, () => setGrade(null));
  }, [finished, api, lab]);

  const act = async (what: string, fn: () => Promise<void>) => {
    setBusy(what);
    try {
      await fn();
      setProblem(null);
    } catch (e) {
      setProblem((e as Error).message);
    } finally {
      setBusy(null);
    }
  };

  const checkNow = () => act('check', async () => setStatus(await api<LabStatus>('POST', `/api/sessions/${sessionId}/check?locale=${locale}`)));
  const reset = () => {
    const sure = window.confirm(translate({ id: 'lab.reset.confirm', message: 'Start this lab over in a fresh sandbox? Your tasks go back to pending.' }));
    if (!sure) return;
    void act('reset', async () => {
      const fresh = await api<{ sessionId: string }>('POST', `/api/sessions/${sessionId}/reset`);
      setNotice(null);
      setGrade(null);
      emitLab(lab, { kind: 'replace-session', sessionId: fresh.sessionId });
    });
  };
  const hint = (task: string) =>
    act(`hint-${task}`, async () => {
      const r = await api<{ hints: string[] }>('POST', `/api/sessions/${sessionId}/hint`, { task, locale });
      setStatus((s) => (s ? { ...s, hints: { ...s.hints, [task]: r.hints } } : s));
    });
  const answer = (e: FormEvent, task: string) => {
    e.preventDefault();
    const value = (answers[task] ?? '').trim();
    if (!value) return;
    void act(`answer-${task}`, async () => {
      const t = await api<TaskStatus>('POST', `/api/sessions/${sessionId}/answer`, { task, answer: value });
      setStatus((s) => (s ? { ...s, tasks: s.tasks.map((x) => (x.id === t.id ? t : x)) } : s));
    });
  };

  return (
    <section className={styles.panel} data-lab={lab} aria-label={info?.title ?? lab}>
      <header className={styles.header}>
        <div className={styles.titleRow}>
          <h2 className={styles.title}>{info?.title ?? lab}</h2>
          <span className={styles.count}>
            {passed}/{total}
          </span>
        </div>
        <div
          className={styles.progress}
          role="progressbar"
          aria-valuemin={0}
          aria-valuemax={total}
          aria-valuenow={passed}
          aria-label={translate({ id: 'lab.progress', message: 'Tasks passed' })}
        >
          <div className={styles.bar} style={{ width: total ? `${(100 * passed) / total}%` : '0%' }} />
        </div>
        <div className={styles.actions}>
          <button type="button" className="button button--sm button--primary" onClick={checkNow} disabled={!sessionId || busy !== null}>
            {busy === 'check' ? <Translate id="lab.checking">Checking…</Translate> : <Translate id="lab.checkNow">Check now</Translate>}
          </button>
          <button type="button" className="button button--sm button--secondary" onClick={reset} disabled={!sessionId || busy !== null}>
            {busy === 'reset' ? <Translate id="lab.resetting">Starting over…</Translate> : <Translate id="lab.reset">Reset lab</Translate>}
          </button>
          {info?.graded && (
            <span className={styles.graded}>
              <Translate id="lab.graded">Graded: each hint costs 5 points</Translate>
            </span>
          )}
        </div>
      </header>

      {!sessionId && (
        <p className={styles.muted}>
          <Translate id="lab.waiting">Your sandbox is starting; the tasks appear when it is ready.</Translate>
        </p>
      )}
      {notice && (
        <p className={styles.notice} role="alert">
          {notice}{' '}
          <button type="button" className="button button--sm button--danger" onClick={reset} disabled={busy !== null}>
            <Translate id="lab.reset">Reset lab</Translate>
          </button>
        </p>
      )}
      {problem && (
        <p className={styles.problem} role="alert">
          {problem}
        </p>
      )}

      <ol className={styles.tasks} aria-live="polite">
        {info?.tasks.map((task) => {
          const st = byId.get(task.id);
          const value = st?.status ?? 'pending';
          const hints = status?.hints[task.id] ?? [];
          return (
            <li key={task.id} className={clsx(styles.task, styles[value], st?.blocked && styles.blocked)} data-task-id={task.id} data-status={value}>
              <span className={styles.icon} aria-hidden="true">
                {value === 'passed' ? '✓' : value === 'failed' ? '✗' : '○'}
              </span>
              <div className={styles.body}>
                <div className={styles.taskTitle}>
                  {task.title}
                  <span className={styles.srOnly}>
                    {' '}
                    ({value === 'passed' ? translate({ id: 'lab.status.passed', message: 'done' }) : translate({ id: 'lab.status.open', message: 'not done yet' })})
                  </span>
                </div>
                {task.details && <div className={styles.details}>{task.details}</div>}
                {st?.blocked ? (
                  <div className={styles.reason}>
                    <Translate id="lab.blocked">Finish the earlier task first.</Translate>
                  </div>
                ) : (
                  value !== 'passed' &&
                  st?.reason && <div className={styles.reason}>{reasonText(st.reason, locale)}</div>
                )}
                {value !== 'passed' && st?.hint && !st.blocked && (
                  <div className={styles.liveHint}>
                    <Translate id="lab.liveHint">Hint:</Translate> {reasonText(st.hint, locale)}
                  </div>
                )}
                {task.question && value !== 'passed' && (
                  <form className={styles.answer} onSubmit={(e) => answer(e, task.id)}>
                    <label>
                      <span className={styles.question}>{task.question}</span>
                      <input
                        type="text"
                        value={answers[task.id] ?? st?.answer ?? ''}
                        onChange={(e) => setAnswers((a) => ({ ...a, [task.id]: e.target.value }))}
                        disabled={!sessionId}
                        spellCheck={false}
                        autoComplete="off"
                      />
                    </label>
                    <button type="submit" className="button button--sm button--primary" disabled={!sessionId || busy !== null}>
                      <Translate id="lab.answer">Answer</Translate>
                    </button>
                  </form>
                )}
                {hints.length > 0 && (
                  <ol className={styles.hints}>
                    {hints.map((h, i) => (
                      <li key={i}>{h}</li>
                    ))}
                  </ol>
                )}
                {value !== 'passed' && task.hintCount > hints.length && (
                  <button type="button" className={clsx('button button--sm button--link', styles.hintButton)} onClick={() => void hint(task.id)} disabled={!sessionId || busy !== null}>
                    {translate(
                      { id: 'lab.showHint', message: 'Show a hint ({n} of {total})' },
                      { n: String(hints.length + 1), total: String(task.hintCount) },
                    )}
                  </button>
                )}
              </div>
            </li>
          );
        })}
      </ol>

      {finished && (
        <div className={styles.finished} role="status">
          <strong>
            <Translate id="lab.finished">Lab complete: every task is green.</Translate>
          </strong>
          {grade && (
            <span>
              {' '}
              {translate(
                { id: 'lab.grade', message: 'Score {score}, {hints} hints used{time}.' },
                {
                  score: String(grade.score),
                  hints: String(grade.hintsUsed),
                  time: grade.secondsTaken !== undefined ? translate({ id: 'lab.grade.time', message: ', {m} min' }, { m: String(Math.max(1, Math.round(grade.secondsTaken / 60))) }) : '',
                },
              )}
            </span>
          )}
        </div>
      )}
    </section>
  );
}
