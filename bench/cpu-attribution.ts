/**
 * Where the machine's CPU goes during a load run, by component: the
 * lab-server, the sandbox engine (its dockerd, containerd and shims), each
 * sandbox's inner engine (dockerd, containerd and their shims), the checkers,
 * the learners' own containers, and the rest of what runs in the sandboxes
 * (shells and the commands typed in them, lab setup). Cgroup totals
 * (cpuacct, which keep what exited processes used) for containers; process
 * times for the long-lived daemons. Sampled while the run goes, so sandboxes
 * removed before the end still count up to their last sample.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { SANDBOX_ENGINE } from '../lab-server/sandbox/docker';
import { LABEL } from '../lab-server/sandbox/sandbox-engine';

const TICKS = 100; // USER_HZ
const CPUACCT = '/sys/fs/cgroup/cpuacct/vethlab';
const ENGINE_DAEMONS = new Set(['dockerd', 'containerd']);

const read = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

/** utime + stime of a process, seconds. */
function processSeconds(pid: string): number {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return 0;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

function machineBusySeconds(): number {
  const fields = (read('/proc/stat') ?? '').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  return (fields.reduce((a, b) => a + b, 0) - fields[3]! - fields[4]!) / TICKS;
}

export type Component = 'pool refill (sandboxes booted for the next learners)' | 'lab-server' | 'sandbox engine (dockerd, containerd, shims)' | 'inner engines (dockerd, containerd)' | 'checkers' | "learners' containers" | 'shells, typed commands, lab setup' | 'rest of the machine';

export class CpuAttribution {
  /** Highest cumulative seconds seen per key (a cgroup or a process): a key that vanishes keeps its last value. */
  private readonly seen = new Map<string, { component: Component | 'sandbox-total'; seconds: number }>();
  private readonly start: Map<string, number>;
  private readonly machine0 = machineBusySeconds();
  private readonly server0 = process.cpuUsage();

  private constructor(
    private readonly docker: Docker,
    private readonly roles: Map<string, string>,
    private readonly instance: string,
  ) {
    this.start = this.snapshot();
  }

  /**
   * Starts counting now, for one server's containers (its instance label;
   * other servers' and test runs' count as the rest of the machine).
   * Containers already running count only from here.
   */
  static async begin(docker: Docker, instance: string): Promise<CpuAttribution> {
    const roles = new Map<string, string>();
    for (const c of await docker.listContainers({ all: true, filters: { label: [LABEL.role] } })) {
      roles.set(c.Id, c.Labels[LABEL.instance] === instance ? c.Labels[LABEL.role]! : 'other');
    }
    return new CpuAttribution(docker, roles, instance);
  }

  private roleOf(id: string): void {
    void this.docker
      .getContainer(id)
      .inspect()
      .then((info) => {
        const l = info.Config.Labels;
        // A pool sandbox first seen during the run was booted to refill the pool, not for a learner of this run.
        const role = l[LABEL.instance] !== this.instance ? 'other' : l[LABEL.role] === 'sandbox' && l[LABEL.pool] === '1' ? 'refill' : (l[LABEL.role] ?? 'other');
        this.roles.set(id, role);
      })
      .catch(() => {});
  }

  private note(key: string, component: Component | 'sandbox-total', seconds: number, into: Map<string, number>): void {
    into.set(key, seconds);
    const prev = this.seen.get(key);
    if (!prev || seconds > prev.seconds) this.seen.set(key, { component, seconds });
  }

  private snapshot(): Map<string, number> {
    const now = new Map<string, number>();
    // Containers of the sandbox engine: /vethlab/<id>, inner containers at /vethlab/<id>/docker/<id>.
    if (existsSync(CPUACCT)) {
      for (const id of readdirSync(CPUACCT).filter((d) => /^[0-9a-f]{64}$/.test(d))) {
        const role = this.roles.get(id);
        if (!role) {
          // Seen for the first time: counted from its creation on the next sample.
          this.roleOf(id);
          continue;
        }
        if (role === 'other') continue;
        const total = Number(read(path.join(CPUACCT, id, 'cpuacct.usage')) ?? 0) / 1e9;
        if (role === 'refill') this.note(`cg:${id}`, 'pool refill (sandboxes booted for the next learners)', total, now);
        else if (role === 'checker') this.note(`cg:${id}`, 'checkers', total, now);
        else {
          this.note(`cg:${id}`, 'sandbox-total', total, now);
          const inner = path.join(CPUACCT, id, 'docker');
          for (const c of existsSync(inner) ? readdirSync(inner).filter((d) => /^[0-9a-f]{64}$/.test(d)) : []) {
            this.note(`cg:${id}/${c}`, "learners' containers", Number(read(path.join(inner, c, 'cpuacct.usage')) ?? 0) / 1e9, now);
          }
        }
      }
    }
    // Daemons, by process: the sandbox engine's (not in a container's cgroup) and each sandbox's own.
    const enginePid = (read(SANDBOX_ENGINE.pidfile) ?? '').trim();
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      const comm = (read(`/proc/${pid}/comm`) ?? '').trim();
      const isDaemon = ENGINE_DAEMONS.has(comm) || comm.startsWith('containerd-shim');
      if (!isDaemon) continue;
      const cgroup = read(`/proc/${pid}/cgroup`) ?? '';
      const sandboxId = /:cpuacct[^:]*:\/vethlab\/([0-9a-f]{64})/.exec(cgroup)?.[1];
      if (sandboxId) {
        if (this.roles.get(sandboxId) !== 'sandbox') continue; // a refill's daemons count in its cgroup total
        // Shims of the learner's containers count with the inner engine; the containers themselves are above.
        if (!/\/docker\/[0-9a-f]{64}/.test(cgroup.split('\n').find((l) => l.includes('cpuacct')) ?? '')) this.note(`p:${pid}`, 'inner engines (dockerd, containerd)', processSeconds(pid), now);
      } else {
        const cmdline = (read(`/proc/${pid}/cmdline`) ?? '').replace(/\0/g, ' ');
        const ours = pid === enginePid || cmdline.includes(SANDBOX_ENGINE.execRoot) || cmdline.includes(SANDBOX_ENGINE.dataRoot);
        if (ours) this.note(`p:${pid}`, 'sandbox engine (dockerd, containerd, shims)', processSeconds(pid), now);
      }
    }
    return now;
  }

  sample(): void {
    this.snapshot();
  }

  /** CPU seconds per component since construction. */
  report(): Record<Component, number> {
    this.snapshot();
    const out: Record<string, number> = {};
    const add = (c: string, s: number) => (out[c] = (out[c] ?? 0) + s);
    for (const [key, { component, seconds }] of this.seen) add(component, seconds - (this.start.get(key) ?? 0));
    const server = process.cpuUsage(this.server0);
    out['lab-server'] = (server.user + server.system) / 1e6;
    // A sandbox's own cgroup holds its inner engine, shells and typed commands, and its containers below.
    const inSandboxes = (out['sandbox-total'] ?? 0) - (out["learners' containers"] ?? 0) - (out['inner engines (dockerd, containerd)'] ?? 0);
    delete out['sandbox-total'];
    out['shells, typed commands, lab setup'] = Math.max(0, inSandboxes);
    const known = Object.values(out).reduce((a, b) => a + b, 0);
    out['rest of the machine'] = Math.max(0, machineBusySeconds() - this.machine0 - known);
    return out as Record<Component, number>;
  }
}
