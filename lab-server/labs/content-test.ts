/**
 * The content test of a lab, on real sandboxes, per task:
 * - fresh, every task's check fails and every hint check fails (it has
 *   something to say);
 * - the reference solution, step by step: the step after which each task
 *   first passes is its step (it failed before it); a step that turns
 *   several tasks green at once (`shared`) and a later step that turns a
 *   passed task red again (`regressions`) are reported, for the lab's author
 *   to fix or explain;
 * - after the solution every task passes, every hint check passes, and every
 *   question task fails with a wrong answer;
 * - faults: each alone, and in the combinations a learner draws (all of them
 *   when there are few, a seeded sample otherwise): with the faults in place
 *   after the solution some task fails, it still fails while any of them is
 *   left, and the repairs make every task pass.
 * Evidence checks (`carries`) send their own probe, so they are judged here
 * like any other. Used by `npm test` and `npm run lab -- test`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { CheckExecutor, compileLab } from '../checks/lab-runner';
import { combine } from '../checks/compile';
import type { Sandbox, SandboxDriver } from '../sandbox/sandbox-driver';
import type { Lab } from './schema';
import { createLabSandboxes, removeAll, runSteps } from './steps';
import { reasonText } from '../../protocol/reasons';

export interface ContentTestReport {
  lab: string;
  ok: boolean;
  problems: string[];
  /** Per phase, the task ids that passed and the reasons of those that failed. */
  phases: { phase: string; passed: string[]; failed: { task: string; reason: string }[] }[];
  /** Per task, the solution step (0-based) after which it first passed. */
  stepOf: Record<string, number>;
  /** Steps that turned several tasks green at once: "step N: a, b". */
  shared: string[];
  /** Tasks that a later solution step turned red again: "task t: step N" (the runner keeps a pass, so a learner never loses it). */
  regressions: string[];
  /** The fault combinations tried (each a list of fault ids). */
  combinations: string[][];
}

interface Verdict {
  task: string;
  ok: boolean;
  reason: string;
  hintOk?: boolean;
}

/** A wrong answer for any question: no lab's answer looks like it. */
export const WRONG_ANSWER = 'certainly-not-the-answer';

/** How many fault combinations a lab tries when there are more than ALL_COMBINATIONS_UP_TO. */
export const SAMPLED_COMBINATIONS = 3;
export const ALL_COMBINATIONS_UP_TO = 6;

export function combinations<T>(items: T[], k: number): T[][] {
  if (k === 0) return [[]];
  if (items.length < k) return [];
  const [first, ...rest] = items as [T, ...T[]];
  return [...combinations(rest, k - 1).map((c) => [first, ...c]), ...combinations(rest, k)];
}

/** The fault sets to try: all combinations of fault_count when few, else a sample seeded by `seed` (stable per seed). */
export function faultCombinations(lab: Pick<Lab, 'faults' | 'fault_count'>, seed: string): string[][] {
  if (lab.fault_count < 2) return [];
  const all = combinations(
    lab.faults.map((f) => f.id),
    lab.fault_count,
  );
  if (all.length <= ALL_COMBINATIONS_UP_TO) return all;
  const score = (c: string[]) => createHash('sha256').update(`${seed}\0${c.join(',')}`).digest().readUInt32BE(0);
  return [...all].sort((a, b) => score(a) - score(b)).slice(0, SAMPLED_COMBINATIONS);
}

async function withSandboxes<T>(engine: SandboxDriver, lab: Lab, fn: (hosts: Map<string, Sandbox>) => Promise<T>): Promise<T> {
  const hosts = await createLabSandboxes(engine, lab, { sessionId: `ct${randomBytes(8).toString('hex')}`, learner: 'content-test' });
  try {
    return await fn(hosts);
  } finally {
    await removeAll(engine, hosts);
  }
}

/** Evaluates every task of the lab (prerequisites or not) and its hint check. */
async function evaluateAll(executor: CheckExecutor, lab: Lab, hosts: Map<string, Sandbox>, answers: Map<string, string>): Promise<Verdict[]> {
  const compiled = compileLab(lab);
  const jobs = compiled.flatMap((c) => c.leaves.map((leaf) => ({ leaf, timeoutSec: c.task.timeout, answer: answers.get(c.task.id) })));
  const results = await executor.evaluate(hosts, jobs);
  let offset = 0;
  return compiled.map((c) => {
    const mine = results.slice(offset, offset + c.leaves.length);
    offset += c.leaves.length;
    const verdict = combine(c.tree, mine);
    const hint = c.hintTree ? combine(c.hintTree, mine) : undefined;
    return { task: c.task.id, ok: verdict.ok, reason: verdict.reason ? reasonText(verdict.reason, 'en') : '', ...(hint ? { hintOk: hint.ok } : {}) };
  });
}

export async function contentTest(engine: SandboxDriver, lab: Lab, opts: { seed?: string } = {}): Promise<ContentTestReport> {
  const executor = new CheckExecutor(engine);
  const seed = opts.seed ?? process.env.VETHLAB_FAULT_SEED ?? lab.id;
  const report: ContentTestReport = { lab: lab.id, ok: true, problems: [], phases: [], stepOf: {}, shared: [], regressions: [], combinations: faultCombinations(lab, seed) };
  const record = (phase: string, results: Verdict[]) =>
    report.phases.push({ phase, passed: results.filter((r) => r.ok).map((r) => r.task), failed: results.filter((r) => !r.ok).map((r) => ({ task: r.task, reason: r.reason })) });
  const problem = (p: string) => {
    report.ok = false;
    report.problems.push(p);
  };

  /** Runs solution step i; a step's answer (a value, or what its command prints) is known from then on. */
  const solve = async (hosts: Map<string, Sandbox>, answers: Map<string, string>, i: number) => {
    const step = lab.solution[i]!;
    await runSteps(engine, hosts, [step], `solution step ${i}`);
    if (step.answer?.value !== undefined) answers.set(step.answer.task, step.answer.value);
    if (step.answer?.run) {
      const first = [...hosts.values()][0]!;
      const r = await engine.exec((hosts.get(step.host ?? '') ?? first).containerId, ['bash', '-c', step.answer.run]);
      answers.set(step.answer.task, r.stdout.trim());
    }
  };
  const solveAll = async (hosts: Map<string, Sandbox>, answers: Map<string, string>) => {
    for (let i = 0; i < lab.solution.length; i++) await solve(hosts, answers, i);
  };

  const mainRun = () => withSandboxes(engine, lab, async (hosts) => {
    const answers = new Map<string, string>();
    const fresh = await evaluateAll(executor, lab, hosts, answers);
    record('fresh', fresh);
    for (const r of fresh) {
      if (r.ok) problem(`task ${r.task}: its check passes on a fresh sandbox (it cannot fail)`);
      if (r.hintOk === true) problem(`task ${r.task}: its hint check passes on a fresh sandbox (it never shows its hint)`);
    }
    let last = fresh;
    for (let i = 0; i < lab.solution.length; i++) {
      await solve(hosts, answers, i);
      const now = await evaluateAll(executor, lab, hosts, answers);
      record(`after step ${i}`, now);
      const turned: string[] = [];
      for (const r of now) {
        const before = last.find((x) => x.task === r.task)!;
        if (r.ok && report.stepOf[r.task] === undefined) {
          report.stepOf[r.task] = i;
          turned.push(r.task);
        } else if (!r.ok && before.ok) report.regressions.push(`task ${r.task}: step ${i}`);
      }
      if (turned.length > 1) report.shared.push(`step ${i}: ${turned.join(', ')}`);
      last = now;
    }
    for (const r of last) {
      if (!r.ok) problem(`task ${r.task}: fails after the reference solution: ${r.reason}`);
      if (r.hintOk === false) problem(`task ${r.task}: its hint check still fails after the reference solution (a misleading hint)`);
    }
    // Every question, given a wrong answer in the solved sandbox, fails.
    const questions = lab.tasks.filter((t) => t.question).map((t) => t.id);
    if (questions.length) {
      const wrong = new Map([...answers, ...questions.map((q) => [q, WRONG_ANSWER] as const)]);
      const judged = await evaluateAll(executor, lab, hosts, wrong);
      record('wrong answers', judged);
      for (const q of questions) if (judged.find((r) => r.task === q)?.ok) problem(`task ${q}: passes with the wrong answer "${WRONG_ANSWER}"`);
    }
  });

  // Each fault alone (unless every combination is tried, which leaves each fault alone at its end), then the combinations.
  const everyCombination = lab.fault_count >= 2 && combinations(lab.faults, lab.fault_count).length <= ALL_COMBINATIONS_UP_TO;
  const sets = everyCombination ? [] : lab.faults.map((f) => [f.id]);
  const faultRun = (set: string[]) => {
    const faults = set.map((id) => lab.faults.find((f) => f.id === id)!);
    const name = set.join('+');
    return withSandboxes(engine, lab, async (hosts) => {
      const answers = new Map<string, string>();
      for (const f of faults) await runSteps(engine, hosts, f.inject, `fault ${f.id}`);
      await solveAll(hosts, answers);
      let now = await evaluateAll(executor, lab, hosts, answers);
      record(`faults ${name}`, now);
      if (now.every((r) => r.ok)) problem(`faults ${name}: not detected (every check passes with them in place)`);
      for (const [i, f] of faults.entries()) {
        await runSteps(engine, hosts, f.repair, `repair ${f.id}`);
        now = await evaluateAll(executor, lab, hosts, answers);
        const left = set.slice(i + 1);
        record(`faults ${name}, ${f.id} repaired`, now);
        if (left.length && now.every((r) => r.ok)) problem(`faults ${name}: with ${f.id} repaired, ${left.join('+')} left in place is not detected`);
        if (!left.length) for (const r of now) if (!r.ok) problem(`faults ${name}: task ${r.task} still fails after the repairs: ${r.reason}`);
      }
    });
  };
  // Two sandbox sets at a time: most of a run is waiting (boots, pings, timeouts).
  const units = [mainRun, ...[...sets, ...report.combinations].map((set) => () => faultRun(set))];
  let next = 0;
  await Promise.all([0, 1].map(async () => {
    while (next < units.length) await units[next++]!();
  }));
  return report;
}
