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
import type { Lab, Step } from './schema';
import { reasonText } from '../../protocol/reasons';

export interface ContentTestReport {
  lab: string;
  ok: boolean;
  problems: string[];
  /** Per phase, the task ids that passed. */
  phases: { phase: string; passed: string[]; failed: { task: string; reason: string }[] }[];
}

async function withSandboxes<T>(engine: SandboxEngine, lab: Lab, fn: (hosts: Map<string, Sandbox>) => Promise<T>): Promise<T> {
  const sessionId = `ct${randomBytes(8).toString('hex')}`;
  const hosts = new Map<string, Sandbox>();
  try {
    for (const host of lab.hosts) {
      hosts.set(host, await engine.create({ sessionId, host, lab: lab.id, learner: 'content-test', pool: false, expiresAt: new Date(Date.now() + 3_600_000) }));
    }
    await engine.linkSandboxes([...hosts.values()]);
    return await fn(hosts);
  } finally {
    await Promise.all([...hosts.values()].map((s) => engine.remove(s)));
  }
}

async function run(engine: SandboxEngine, hosts: Map<string, Sandbox>, steps: Step[], what: string): Promise<void> {
  const first = [...hosts.keys()][0]!;
  for (const step of steps) {
    if (!step.run) continue;
    const sandbox = hosts.get(step.host ?? first)!;
    const r = await engine.exec(sandbox.containerId, ['bash', '-ec', step.run], { timeoutMs: 120_000 });
    if (r.exitCode !== 0) throw new Error(`${what} step failed (exit ${r.exitCode}): ${step.run.trim().split('\n')[0]}\n${(r.stderr || r.stdout).trim().slice(-400)}`);
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
  const answers = new Map(lab.solution.filter((s) => s.answer).map((s) => [s.answer!.task, s.answer!.value]));
  const record = (phase: string, results: { task: string; ok: boolean; reason: string }[]) =>
    report.phases.push({ phase, passed: results.filter((r) => r.ok).map((r) => r.task), failed: results.filter((r) => !r.ok).map((r) => ({ task: r.task, reason: r.reason })) });
  const problem = (p: string) => {
    report.ok = false;
    report.problems.push(p);
  };

  await withSandboxes(engine, lab, async (hosts) => {
    await run(engine, hosts, lab.setup, 'setup');
    const fresh = await evaluateAll(executor, lab, hosts, answers);
    record('fresh', fresh);
    for (const r of fresh) if (r.ok) problem(`task ${r.task}: its check passes on a fresh sandbox (it cannot fail)`);
    await run(engine, hosts, lab.solution as Step[], 'solution');
    const solved = await evaluateAll(executor, lab, hosts, answers);
    record('solved', solved);
    for (const r of solved) if (!r.ok) problem(`task ${r.task}: fails after the reference solution: ${r.reason}`);
  });

  for (const fault of lab.faults) {
    await withSandboxes(engine, lab, async (hosts) => {
      await run(engine, hosts, lab.setup, 'setup');
      await run(engine, hosts, fault.inject, `fault ${fault.id}`);
      await run(engine, hosts, lab.solution as Step[], 'solution');
      const broken = await evaluateAll(executor, lab, hosts, answers);
      record(`fault ${fault.id}`, broken);
      if (broken.every((r) => r.ok)) problem(`fault ${fault.id}: not detected (every check passes with the fault in place)`);
      await run(engine, hosts, fault.repair, `repair ${fault.id}`);
      const repaired = await evaluateAll(executor, lab, hosts, answers);
      record(`repaired ${fault.id}`, repaired);
      for (const r of repaired) if (!r.ok) problem(`fault ${fault.id}: task ${r.task} still fails after the repair: ${r.reason}`);
    });
  }
  return report;
}
