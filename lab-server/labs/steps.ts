/**
 * Lab steps (setup, faults, repairs, solutions) run in a lab's sandboxes,
 * and a lab's sandboxes made outside a learner session (content tests,
 * authoring, code-block tests).
 */
import type { Sandbox, SandboxDriver } from '../sandbox/sandbox-driver';
import type { Step } from './schema';

export class StepError extends Error {
  override name = 'StepError';
}

/** Runs steps in order on their hosts (default: the first); fails with the step's own error output. */
export async function runSteps(engine: SandboxDriver, hosts: Map<string, Sandbox>, steps: { host?: string | undefined; run?: string | undefined }[], what: string): Promise<void> {
  const first = [...hosts.keys()][0]!;
  for (const step of steps) {
    if (!step.run) continue;
    const sandbox = hosts.get(step.host ?? first);
    if (!sandbox) throw new StepError(`${what}: no host ${step.host}`);
    const r = await engine.exec(sandbox.containerId, ['bash', '-ec', step.run], { timeoutMs: 120_000 });
    if (r.exitCode !== 0) throw new StepError(`${what} failed (exit ${r.exitCode}): ${step.run.trim().split('\n')[0]}\n${(r.stderr || r.stdout).trim().slice(-500)}`);
  }
}

/** Sandboxes for a lab's hosts, joined by their private link, with the lab's setup run. */
export async function createLabSandboxes(
  engine: SandboxDriver,
  lab: { id: string; hosts: string[]; setup: Step[] },
  who: { sessionId: string; learner: string; ttlMs?: number },
): Promise<Map<string, Sandbox>> {
  const hosts = new Map<string, Sandbox>();
  try {
    for (const host of lab.hosts) {
      hosts.set(host, await engine.create({ sessionId: who.sessionId, host, lab: lab.id, learner: who.learner, pool: false, expiresAt: new Date(Date.now() + (who.ttlMs ?? 3_600_000)), besides: hosts.values().next().value }));
    }
    await engine.linkSandboxes([...hosts.values()]);
    await runSteps(engine, hosts, lab.setup, `lab ${lab.id} setup`);
    return hosts;
  } catch (err) {
    await removeAll(engine, hosts);
    throw err;
  }
}

export async function removeAll(engine: SandboxDriver, hosts: Map<string, Sandbox>): Promise<void> {
  await Promise.all([...hosts.values()].map((s) => engine.remove(s)));
}
