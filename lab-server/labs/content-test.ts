/**
 * The content test of a lab, on real sandboxes: on a fresh sandbox every
 * task's check fails; after the reference solution every check passes; for
 * each fault variant, the fault makes some check fail even after the
 * solution, and its repair makes them all pass. A check that cannot fail
 * fails this test. Used by `npm test` and `npm run lab -- test`.
 */
import { randomBytes } from 'node:crypto';
import { CheckExecutor, compileLab } from '../checks/lab-runner';
import { combine } from '../checks/compile';
import type { Sandbox, SandboxEngine } from '../sandbox/sandbox-engine';
import type { Lab } from './schema';
import { createLabSandboxes, removeAll, runSteps } from './steps';
import { reasonText } from '../../protocol/reasons';

export interface ContentTestReport {
  lab: string;
  ok: boolean;
  problems: string[];
  /** Per phase, the task ids that passed. */
  phases: { phase: string; passed: string[]; failed: { task: string; reason: string }[] }[];
}

async function withSandboxes<T>(engine: SandboxEngine, lab: Lab, fn: (hosts: Map<string, Sandbox>) => Promise<T>): Promise<T> {
  const hosts = await createLabSandboxes(engine, lab, { sessionId: `ct${randomBytes(8).toString('hex')}`, learner: 'content-test' });
  try {
    return await fn(hosts);
  } finally {
    await removeAll(engine, hosts);
  }
}

/** Evaluates every task of the lab, prerequisites or not. */
async function evaluateAll(executor: CheckExecutor, lab: Lab, hosts: Map<string, Sandbox>, answers: Map<string, string>) {
  const compiled = compileLab(lab);
  const jobs = compiled.flatMap((c) => c.leaves.map((leaf) => ({ leaf, timeoutSec: c.task.timeout, answer: answers.get(c.task.id) })));
  const results = await executor.evaluate(hosts, jobs);
  let offset = 0;
  return compiled.map((c) => {
    const mine = results.slice(offset, offset + c.leaves.length);
    offset += c.leaves.length;
    // Evidence checks (counter_grew) need traffic during the task: a content
    // run judges the rule's presence, which is what the solution creates.
    const verdict = combine(c.tree, mine);
    return { task: c.task.id, ok: verdict.ok, reason: verdict.reason ? reasonText(verdict.reason, 'en') : '' };
  });
}

export async function contentTest(engine: SandboxEngine, lab: Lab): Promise<ContentTestReport> {
  const executor = new CheckExecutor(engine);
  const report: ContentTestReport = { lab: lab.id, ok: true, problems: [], phases: [] };
  // Answers fixed in the lab; answers computed in the sandbox (`answer.run`) are added after the solution.
  const answers = new Map(lab.solution.flatMap((s) => (s.answer?.value !== undefined ? [[s.answer.task, s.answer.value] as const] : [])));
  const computeAnswers = async (hosts: Map<string, Sandbox>) => {
    const first = [...hosts.values()][0]!;
    for (const step of lab.solution) {
      if (!step.answer?.run) continue;
      const r = await engine.exec((hosts.get(step.host ?? '') ?? first).containerId, ['bash', '-c', step.answer.run]);
      answers.set(step.answer.task, r.stdout.trim());
    }
  };
  const record = (phase: string, results: { task: string; ok: boolean; reason: string }[]) =>
    report.phases.push({ phase, passed: results.filter((r) => r.ok).map((r) => r.task), failed: results.filter((r) => !r.ok).map((r) => ({ task: r.task, reason: r.reason })) });
  const problem = (p: string) => {
    report.ok = false;
    report.problems.push(p);
  };

  await withSandboxes(engine, lab, async (hosts) => {
    const fresh = await evaluateAll(executor, lab, hosts, answers);
    record('fresh', fresh);
    for (const r of fresh) if (r.ok) problem(`task ${r.task}: its check passes on a fresh sandbox (it cannot fail)`);
    await runSteps(engine, hosts, lab.solution, 'solution');
    await computeAnswers(hosts);
    const solved = await evaluateAll(executor, lab, hosts, answers);
    record('solved', solved);
    for (const r of solved) if (!r.ok) problem(`task ${r.task}: fails after the reference solution: ${r.reason}`);
  });

  for (const fault of lab.faults) {
    await withSandboxes(engine, lab, async (hosts) => {
      await runSteps(engine, hosts, fault.inject, `fault ${fault.id}`);
      await runSteps(engine, hosts, lab.solution, 'solution');
      await computeAnswers(hosts);
      const broken = await evaluateAll(executor, lab, hosts, answers);
      record(`fault ${fault.id}`, broken);
      if (broken.every((r) => r.ok)) problem(`fault ${fault.id}: not detected (every check passes with the fault in place)`);
      await runSteps(engine, hosts, fault.repair, `repair ${fault.id}`);
      const repaired = await evaluateAll(executor, lab, hosts, answers);
      record(`repaired ${fault.id}`, repaired);
      for (const r of repaired) if (!r.ok) problem(`fault ${fault.id}: task ${r.task} still fails after the repair: ${r.reason}`);
    });
  }
  return report;
}
