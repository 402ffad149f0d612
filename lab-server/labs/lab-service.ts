/**
 * LabService runs labs inside sessions: prepares a new session's sandboxes
 * (setup steps and the faults drawn for this learner), keeps one LabRunner
 * per session, runs its checks after every command a learner finishes (the
 * shell's prompt mark) and on a slow timer, and pushes task status to every
 * terminal of the session.
 */
import { createHash } from 'node:crypto';
import type { LabInfo, LabStatus } from '../../protocol/lab';
import type { ServerMessage } from '../../protocol/terminal';
import { CheckExecutor, LabRunner } from '../checks/lab-runner';
import type { Logger } from '../log';
import type { SandboxEngine } from '../sandbox/sandbox-engine';
import type { Session, SessionManager } from '../sessions/session-manager';
import type { Store } from '../store/store';
import type { TerminalRegistry } from '../terminal/terminal-registry';
import type { LabCatalog } from './catalog';
import { localize, type Lab, type Step } from './schema';

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

export class StepError extends Error {}

export class LabService {
  private readonly runners = new Map<string, LabRunner>();
  private readonly executor: CheckExecutor;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly catalog: LabCatalog,
    private readonly engine: SandboxEngine,
    private readonly sessions: SessionManager,
    private readonly registry: TerminalRegistry,
    private readonly store: Store,
    private readonly log: Logger,
  ) {
    this.executor = new CheckExecutor(engine);
    sessions.on('ready', (s) => this.attach(s));
    sessions.on('ended', (id) => {
      this.runners.get(id)?.close();
      this.runners.delete(id);
    });
    registry.on('prompt', (id) => void this.runners.get(id)?.check('prompt'));
    registry.on('attached', (id) => this.push(id));
  }

  /** Checks every few seconds too, for state changed without a prompt (a container that died). */
  startTimer(intervalMs = 5000): void {
    this.timer = setInterval(() => {
      for (const [id, runner] of this.runners) if (this.registry.hasAttached(id)) void runner.check('timer');
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    for (const r of this.runners.values()) r.close();
    this.runners.clear();
  }

  /** Runs steps in a session's sandboxes, failing with the step's own error output. */
  async runSteps(session: Session, steps: Step[], what: string): Promise<void> {
    const defaultHost = [...session.hosts.keys()][0]!;
    for (const step of steps) {
      const sandbox = session.hosts.get(step.host ?? defaultHost);
      if (!sandbox) throw new StepError(`${what}: no host ${step.host}`);
      const r = await this.engine.exec(sandbox.containerId, ['bash', '-ec', step.run], { timeoutMs: 120_000 });
      if (r.exitCode !== 0) throw new StepError(`${what} failed (exit ${r.exitCode}): ${step.run.trim().split('\n')[0]}\n${(r.stderr || r.stdout).trim().slice(-500)}`);
    }
  }

  /** Prepares fresh sandboxes for the lab: setup, then this learner's faults. */
  async prepare(session: Session): Promise<void> {
    const lab = this.catalog.get(session.lab);
    if (!lab) return;
    const faults = drawFaults(lab, session.learner);
    await this.runSteps(session, lab.setup, `lab ${lab.id} setup`);
    for (const id of faults) await this.runSteps(session, lab.faults.find((f) => f.id === id)!.inject, `lab ${lab.id} fault ${id}`);
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
  }
}
