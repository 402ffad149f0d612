/**
 * LabService runs labs inside sessions: prepares a new session's sandboxes
 * (setup steps and the faults drawn for this learner), keeps one LabRunner
 * per session, runs its checks after every command a learner finishes (the
 * shell's prompt mark) and on a slow timer, and pushes task status to every
 * terminal of the session.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import type { LabInfo, LabStatus } from '../../protocol/lab';
import type { ServerMessage } from '../../protocol/terminal';
import { PriorityLimiter } from '../limiter';
import { CheckExecutor, LabRunner } from '../checks/lab-runner';
import type { Logger } from '../log';
import type { SandboxDriver } from '../sandbox/sandbox-driver';
import type { Session, SessionManager } from '../sessions/session-manager';
import type { Store } from '../store/store';
import type { TerminalRegistry } from '../terminal/terminal-registry';
import type { LabCatalog } from './catalog';
import { localize, type Lab } from './schema';
import { runSteps } from './steps';

/** The faults a learner's seed draws from a lab: stable per learner, different between learners. */
export function drawFaults(lab: Lab, learner: string): string[] {
  if (lab.fault_count === 0) return [];
  const score = (id: string) => createHash('sha256').update(`${learner}\0${lab.id}\0${id}`).digest().readUInt32BE(0);
  return [...lab.faults]
    .sort((a, b) => score(a.id) - score(b.id))
    .slice(0, lab.fault_count)
    .map((f) => f.id);
}

export function labInfo(lab: Lab, locale: string): LabInfo {
  return {
    id: lab.id,
    title: localize(lab.title, locale),
    hosts: lab.hosts,
    graded: lab.graded,
    tasks: lab.tasks.map((t) => ({
      id: t.id,
      title: localize(t.title, locale),
      ...(t.details ? { details: localize(t.details, locale) } : {}),
      ...(t.question ? { question: localize(t.question, locale) } : {}),
      hintCount: t.hints.length,
      needs: t.needs,
    })),
  };
}

/** A second look this long after a command's own check, while tasks are open. */
const SETTLE_MS = 2000;

export class LabService {
  private readonly runners = new Map<string, LabRunner>();
  private readonly executor: CheckExecutor;
  private timer: NodeJS.Timeout | null = null;
  /** Told after every task status push (workshop dashboards). */
  private readonly statusListeners = new Set<(sessionId: string) => void>();
  /** May this learner's sandbox get the lab's randomized faults? (A workshop can turn them off.) Default: yes. */
  faultsAllowed: (learner: string, lab: string) => boolean = () => true;

  constructor(
    readonly catalog: LabCatalog,
    private readonly engine: SandboxDriver,
    private readonly sessions: SessionManager,
    private readonly registry: TerminalRegistry,
    private readonly store: Store,
    private readonly log: Logger,
  ) {
    // Two check runs per core at once: enough to overlap their waits, not enough to starve the shells.
    this.executor = new CheckExecutor(engine, new PriorityLimiter(2 * os.cpus().length));
    sessions.on('ready', (s) => this.attach(s));
    sessions.on('ended', (id) => {
      this.runners.get(id)?.close();
      this.runners.delete(id);
      this.enginesDown.delete(id);
    });
    registry.on('prompt', (id) => {
      const runner = this.runners.get(id);
      if (!runner) return;
      // What a command starts may need a moment (a container's server coming up):
      // one more look shortly after, instead of waiting for the timer.
      void runner.check('prompt').then(() => {
        if (!runner.finished) setTimeout(() => void runner.check('timer'), SETTLE_MS).unref();
      });
    });
    registry.on('attached', (id) => this.push(id));
  }

  /**
   * Checks every few seconds too, for state changed without a prompt (a
   * container that died), and probes the inner engines. Each session's timer
   * runs back off when its runs get slow, and wait behind learners' own.
   * Every finished command already checks at once (the prompt mark): at 25
   * learners, timer runs at 5 s were most of the checkers' CPU, which the
   * prompt-triggered runs then queued behind.
   */
  startTimer(intervalMs = 10_000): void {
    this.timer = setInterval(() => {
      for (const [id, runner] of this.runners) {
        if (!this.registry.hasAttached(id) || !runner.timerDue(intervalMs)) continue;
        void runner.check('timer').then(() => this.probeEngines(id));
      }
    }, Math.min(1000, intervalMs));
    this.timer.unref();
  }

  /** Hosts whose inner Docker engine did not answer the last probe, per session. */
  private readonly enginesDown = new Map<string, Set<string>>();

  /** Is each host's inner dockerd answering? Tells the page when that changes. */
  async probeEngines(sessionId: string): Promise<void> {
    const session = this.sessions.find(sessionId);
    if (!session || session.state !== 'ready') return;
    const down = this.enginesDown.get(sessionId) ?? new Set<string>();
    this.enginesDown.set(sessionId, down);
    for (const [host, sandbox] of session.hosts) {
      let ok = false;
      try {
        const probe = 'source /opt/vethlab/check-lib.sh && docker version --format "{{.Server.Version}}"';
        const r = await this.executor.exec(sandbox, ['bash', '-c', probe], 4000, false);
        ok = r.exitCode === 0;
      } catch {
        ok = false;
      }
      if (!ok && !down.has(host)) {
        down.add(host);
        this.registry.broadcast(sessionId, {
          type: 'notice',
          code: 'engine-down',
          host,
          message: `The Docker engine of ${host} is not running (was dockerd stopped?). Reset the lab to get a fresh sandbox; your passed tasks stay passed.`,
        });
      } else if (ok && down.delete(host)) {
        this.registry.broadcast(sessionId, { type: 'notice', code: 'engine-up', host, message: `The Docker engine of ${host} answers again.` });
      }
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    for (const r of this.runners.values()) r.close();
    this.runners.clear();
  }

  /** Prepares fresh sandboxes for the lab: setup, then this learner's faults. */
  async prepare(session: Session): Promise<void> {
    const lab = this.catalog.get(session.lab);
    if (!lab) return;
    const faults = this.faultsAllowed(session.learner, lab.id) ? drawFaults(lab, session.learner) : [];
    await runSteps(this.engine, session.hosts, lab.setup, `lab ${lab.id} setup`);
    for (const id of faults) await runSteps(this.engine, session.hosts, lab.faults.find((f) => f.id === id)!.inject, `lab ${lab.id} fault ${id}`);
    this.store.startLab(session.learner, lab.id, faults);
  }

  private attach(session: Session): void {
    const lab = this.catalog.get(session.lab);
    if (!lab || this.runners.has(session.id)) return;
    const runner = new LabRunner(lab, session.learner, session.hosts, this.store, this.executor, this.log);
    runner.on('changed', () => this.push(session.id));
    this.runners.set(session.id, runner);
    void runner.check('start');
  }

  runner(sessionId: string): LabRunner | undefined {
    return this.runners.get(sessionId);
  }

  status(sessionId: string, locale: string): LabStatus | undefined {
    return this.runners.get(sessionId)?.status(locale);
  }

  private push(sessionId: string): void {
    const runner = this.runners.get(sessionId);
    if (!runner) return;
    const status = runner.status('en');
    const msg: ServerMessage = { type: 'tasks', lab: runner.lab.id, tasks: status.tasks, finished: runner.finished };
    this.registry.broadcast(sessionId, msg);
    for (const listener of this.statusListeners) listener(sessionId);
  }

  /** Calls back whenever a session's task status changes; returns the unsubscribe. */
  onStatus(listener: (sessionId: string) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }
}
