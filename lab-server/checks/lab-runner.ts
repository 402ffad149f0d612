/**
 * LabRunner evaluates one learner's lab in one session: which tasks are
 * open, their checks (run in each host's checker, all leaves of a host in
 * one exec), hint checks, answers and evidence counters. Runs never overlap:
 * a trigger during a run schedules exactly one more. Every pass is written
 * to the store at once; every change is announced.
 */
import { EventEmitter } from 'node:events';
import { PriorityLimiter } from '../limiter';
import type { LabStatus, Reason, TaskStatus } from '../../protocol/lab';
import type { Lab, Task, Text } from '../labs/schema';
import { localize } from '../labs/schema';
import type { Logger } from '../log';
import type { ExecResult, Sandbox, SandboxDriver } from '../sandbox/sandbox-driver';
import type { Store } from '../store/store';
import { combine, flatten, hostScript, leafCommand, parseResults, type Leaf, type LeafJob, type LeafResult, type Tree } from './compile';

interface CompiledTask {
  task: Task;
  leaves: Leaf[];
  tree: Tree;
  hintTree?: Tree;
}

interface LiveTask {
  status: 'pending' | 'passed' | 'failed';
  reason?: Reason;
  hint?: Reason;
}

export type Trigger = 'prompt' | 'timer' | 'manual' | 'start';

export interface LabRunnerEvents {
  changed: [];
}

/** One line naming what a leaf asserted (its kind and target), for grade evidence; a shell check by its reason. */
export function describeLeaf(leaf: Leaf): string {
  const p = leaf.primitive as { kind: string; run?: string; reason?: unknown } & Record<string, unknown>;
  const { kind, run: _run, reason, ...fields } = p;
  const text = kind === 'shell' && reason ? localize(reason as Text, 'en') : '';
  return `${leaf.host}: ${kind}${Object.keys(fields).length ? ' ' + JSON.stringify(fields) : ''}${text ? ` (${text})` : ''}`.slice(0, 300);
}

/** Compiles a lab's checks once: leaves per task, with hint checks. */
export function compileLab(lab: Lab): CompiledTask[] {
  const defaultHost = lab.hosts[0]!;
  return lab.tasks.map((task) => {
    const leaves: Leaf[] = [];
    const tree = flatten(task.check, defaultHost, leaves);
    const hintTree = task.hint_check ? flatten(task.hint_check, defaultHost, leaves) : undefined;
    return { task, leaves, tree, ...(hintTree ? { hintTree } : {}) };
  });
}

/** Runs checker scripts: one exec per host in that host's checker, at most `limiter.slots` at once on the machine. */
export class CheckExecutor {
  constructor(
    private readonly engine: SandboxDriver,
    readonly limiter = new PriorityLimiter(Infinity),
  ) {}

  /** Runs a command in the sandbox's checker as checks run (SandboxEngine.execInChecker), recreating a checker that is gone, within the limiter. */
  async exec(sandbox: Sandbox, cmd: string[], timeoutMs: number, interactive = true): Promise<ExecResult> {
    return this.limiter.run(interactive, async () => {
      await this.engine.ensureChecker(sandbox);
      return this.engine.execInChecker(sandbox, cmd, { timeoutMs });
    });
  }

  async run(sandbox: Sandbox, script: string, timeoutMs: number, interactive = true): Promise<string> {
    return (await this.exec(sandbox, ['bash', '-c', script], timeoutMs, interactive)).stdout;
  }

  /** Evaluates leaves (each with its task's limit and answer) on their hosts; background runs yield to interactive ones. */
  async evaluate(
    hosts: Map<string, Sandbox>,
    jobs: { leaf: Leaf; timeoutSec: number; answer?: string | undefined }[],
    interactive = true,
  ): Promise<LeafResult[]> {
    const byHost = new Map<string, { job: LeafJob; leaf: Leaf }[]>();
    jobs.forEach((j, id) => {
      const list = byHost.get(j.leaf.host) ?? [];
      list.push({ job: { id, command: leafCommand(j.leaf.primitive), timeoutSec: j.timeoutSec, answer: j.answer }, leaf: j.leaf });
      byHost.set(j.leaf.host, list);
    });
    const results: LeafResult[] = [];
    await Promise.all(
      [...byHost].map(async ([host, list]) => {
        const sandbox = hosts.get(host);
        const shellReasons = new Map(list.map(({ job, leaf }) => [job.id, leaf.primitive.kind === 'shell' ? leaf.primitive.reason : undefined]));
        let parsed: Map<number, LeafResult>;
        if (!sandbox) {
          parsed = new Map(list.map(({ job }) => [job.id, { ok: false, reason: { key: 'sandbox-gone', args: [] }, facts: {} }]));
        } else {
          const limit = Math.max(...list.map(({ job }) => job.timeoutSec)) * 1000 + 5000;
          try {
            const out = await this.run(sandbox, hostScript(list.map((l) => l.job)), limit, interactive);
            parsed = parseResults(out, list.map((l) => l.job), shellReasons);
          } catch (err) {
            const reason: Reason = { key: 'check-error', args: [(err as Error).message.slice(0, 120)] };
            parsed = new Map(list.map(({ job }) => [job.id, { ok: false, reason, facts: {} }]));
          }
        }
        for (const [id, r] of parsed) results[id] = r;
      }),
    );
    return results;
  }
}

export class LabRunner extends EventEmitter<LabRunnerEvents> {
  readonly compiled: CompiledTask[];
  private readonly live = new Map<string, LiveTask>();
  private running: Promise<void> | null = null;
  private again: Trigger | null = null;
  private closed = false;
  /** Bumped by reset: a run that started before it must not write its results. */
  private epoch = 0;
  /** When the last run ended and how long it took: the timer paces itself by them. */
  private lastEndedAt = 0;
  private lastRunMs = 0;

  constructor(
    readonly lab: Lab,
    readonly learner: string,
    private hosts: Map<string, Sandbox>,
    private readonly store: Store,
    private readonly executor: CheckExecutor,
    private readonly log: Logger,
  ) {
    super();
    this.compiled = compileLab(lab);
    const saved = new Map(store.tasks(learner, lab.id).map((t) => [t.task, t]));
    for (const c of this.compiled) this.live.set(c.task.id, { status: saved.get(c.task.id)?.passedAt ? 'passed' : 'pending' });
  }

  /** The session got new sandboxes (a restarted lab): checks run there from now on. */
  rehost(hosts: Map<string, Sandbox>): void {
    this.hosts = hosts;
  }

  private passed(id: string): boolean {
    return this.live.get(id)?.status === 'passed';
  }

  private isOpen(c: CompiledTask): boolean {
    return !this.passed(c.task.id) && c.task.needs.every((n) => this.passed(n));
  }

  get finished(): boolean {
    return this.compiled.every((c) => this.passed(c.task.id));
  }

  /**
   * Is a timer run due? At least `baseMs` after the last run ended, and longer
   * when runs get slow (a busy machine): the timer then backs off instead of
   * adding to the load. Prompt and manual runs are never paced.
   */
  timerDue(baseMs: number, now = Date.now()): boolean {
    return !this.running && now - this.lastEndedAt >= Math.max(baseMs, 4 * this.lastRunMs);
  }

  /** Runs the open tasks' checks now, or once more after the current run. */
  check(trigger: Trigger): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.running) {
      // A timer run never replaces a learner's: at most one more run, of the most urgent kind.
      if (trigger !== 'timer' || !this.again) this.again = this.again === 'manual' || trigger === 'manual' ? 'manual' : trigger;
      return this.running.then(() => this.running ?? undefined);
    }
    return this.start(trigger);
  }

  /** Starts a run now (none is running): the one place runs begin, so none overlap. */
  private start(trigger: Trigger, only?: { task: string; answer: string }): Promise<void> {
    const started = Date.now();
    this.running = this.evaluate(trigger, only)
      .catch((err: unknown) => this.log.error({ err, lab: this.lab.id }, 'check run failed'))
      .finally(() => {
        this.lastEndedAt = Date.now();
        this.lastRunMs = this.lastEndedAt - started;
        this.running = null;
        const next = this.again;
        this.again = null;
        if (next && !this.closed) void this.check(next);
      });
    return this.running;
  }

  private async evaluate(trigger: Trigger, only?: { task: string; answer: string }): Promise<void> {
    const epoch = this.epoch;
    const saved = new Map(this.store.tasks(this.learner, this.lab.id).map((t) => [t.task, t]));
    const open = this.compiled.filter((c) => (only ? c.task.id === only.task : this.isOpen(c)));
    const jobs: { leaf: Leaf; timeoutSec: number; answer?: string | undefined }[] = [];
    const offsets = new Map<string, number>();
    const skipped = new Set<string>();
    for (const c of open) {
      const answer = only?.task === c.task.id ? only.answer : (saved.get(c.task.id)?.answer ?? undefined);
      if (c.task.question && !answer) {
        skipped.add(c.task.id);
        continue;
      }
      offsets.set(c.task.id, jobs.length);
      for (const leaf of c.leaves) jobs.push({ leaf, timeoutSec: c.task.timeout, answer });
    }
    const results = jobs.length ? await this.executor.evaluate(this.hosts, jobs, trigger !== 'timer') : [];
    if (this.closed) return;
    if (epoch !== this.epoch) {
      this.again ??= trigger;
      return;
    }
    let changed = false;
    for (const c of open) {
      const id = c.task.id;
      const before = this.live.get(id)!;
      let next: LiveTask;
      let mine: LeafResult[] = [];
      if (skipped.has(id)) next = { status: 'pending', reason: { key: 'answer-missing', args: [] } };
      else {
        const base = offsets.get(id)!;
        mine = c.leaves.map((_, i) => results[base + i]!);
        const verdict = combine(c.tree, mine);
        const hint = c.hintTree ? combine(c.hintTree, mine) : undefined;
        next = verdict.ok
          ? { status: 'passed' }
          : { status: 'failed', ...(verdict.reason ? { reason: verdict.reason } : {}), ...(hint && !hint.ok && hint.reason ? { hint: hint.reason } : {}) };
      }
      if (next.status === 'passed' && before.status !== 'passed') {
        this.store.passTask(this.learner, this.lab.id, id);
        // The evidence for the grade: each assertion of the task that held, and the facts the checker read for it.
        const evidence = c.leaves.map((leaf, i) => ({ check: describeLeaf(leaf), facts: mine[i]?.facts ?? {} }));
        this.store.saveEvidence(this.learner, this.lab.id, id, evidence);
        this.log.info({ lab: this.lab.id, task: id, trigger }, 'task passed');
      } else if (next.status === 'failed' && (only || ((trigger === 'prompt' || trigger === 'manual') && !c.task.question))) {
        // A question's attempt is an answer given: re-checking a saved answer after a command is none.
        this.store.countAttempt(this.learner, this.lab.id, id);
      }
      if (JSON.stringify(next) !== JSON.stringify(before)) changed = true;
      this.live.set(id, next);
    }
    if (this.finished) this.store.finishLab(this.learner, this.lab.id);
    if (changed || trigger === 'manual') this.emit('changed');
  }

  /** The learner answers a question task; checked against live state. */
  async answer(taskId: string, answer: string): Promise<TaskStatus | undefined> {
    const c = this.compiled.find((x) => x.task.id === taskId);
    if (!c?.task.question) return undefined;
    this.store.saveAnswer(this.learner, this.lab.id, taskId, answer);
    if (this.passed(taskId)) return this.status('en').tasks.find((t) => t.id === taskId);
    // Through the same no-overlap scheduling as every other run: wait for the
    // current run (and any it schedules), then start in the same tick.
    while (this.running) await this.running;
    if (this.closed) return undefined;
    await this.start('manual', { task: taskId, answer });
    const st = this.status('en').tasks.find((t) => t.id === taskId)!;
    if (st.status === 'failed' && st.reason && 'key' in st.reason && st.reason.key === 'not-expected') {
      this.live.set(taskId, { status: 'failed', reason: { key: 'answer-wrong', args: [] } });
      this.emit('changed');
    }
    return this.status('en').tasks.find((t) => t.id === taskId);
  }

  /** Reveals the task's next hint; returns the hints revealed so far. */
  revealHint(taskId: string, locale: string): string[] | undefined {
    const c = this.compiled.find((x) => x.task.id === taskId);
    if (!c) return undefined;
    const n = c.task.hints.length ? this.store.useHint(this.learner, this.lab.id, taskId, c.task.hints.length) : 0;
    this.emit('changed');
    return c.task.hints.slice(0, n).map((h) => localize(h, locale));
  }

  /** Starts over in fresh sandboxes: every task pending again. */
  reset(hosts: Map<string, Sandbox>): void {
    this.store.resetLab(this.learner, this.lab.id);
    this.epoch++;
    for (const c of this.compiled) this.live.set(c.task.id, { status: 'pending' });
    this.rehost(hosts);
    this.emit('changed');
  }

  status(locale: string): LabStatus {
    const saved = new Map(this.store.tasks(this.learner, this.lab.id).map((t) => [t.task, t]));
    const progress = this.store.labProgress(this.learner, this.lab.id);
    const hints: Record<string, string[]> = {};
    const tasks: TaskStatus[] = this.compiled.map((c) => {
      const live = this.live.get(c.task.id)!;
      const row = saved.get(c.task.id);
      const used = row?.hintsUsed ?? 0;
      if (used) hints[c.task.id] = c.task.hints.slice(0, used).map((h) => localize(h, locale));
      const blocked = !this.passed(c.task.id) && !c.task.needs.every((n) => this.passed(n));
      return {
        id: c.task.id,
        status: live.status,
        blocked,
        ...(live.reason && live.status !== 'passed' ? { reason: live.reason } : {}),
        ...(live.hint && live.status !== 'passed' ? { hint: live.hint } : {}),
        ...(row?.passedAt ? { passedAt: new Date(row.passedAt).toISOString() } : {}),
        attempts: row?.attempts ?? 0,
        hintsUsed: used,
        ...(row?.answer ? { answer: row.answer } : {}),
      };
    });
    return {
      lab: this.lab.id,
      tasks,
      startedAt: new Date(progress?.startedAt ?? Date.now()).toISOString(),
      ...(progress?.finishedAt ? { finishedAt: new Date(progress.finishedAt).toISOString() } : {}),
      hints,
      faults: progress?.faults.length ?? 0,
    };
  }

  close(): void {
    this.closed = true;
    this.removeAllListeners();
  }
}
