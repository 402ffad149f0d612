/**
 * Hands a user-namespaced sandbox its own cgroups, so that its inner engine
 * can make child cgroups for the learner's containers: the sandbox's
 * directory in each hierarchy, and the files that say which processes are in
 * it, are given to the sandbox's root (uid 100000 or so on the machine).
 * Never the limit files (memory.limit_in_bytes, pids.max...): those stay the
 * machine's, so a learner cannot raise its own limits. Runs on the engine's
 * machine, as root (the lab-server beside a local engine).
 */
import { chown, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

/** Per cgroup version: the files besides the directory that a delegated subtree needs. */
const DELEGATED_FILES = {
  v1: ['tasks', 'cgroup.procs', 'cgroup.clone_children'],
  v2: ['cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads'],
} as const;

/** The machine ids that a process's root maps to, from its uid_map and gid_map ("0 100000 65536"). */
async function rootIds(pid: number): Promise<{ uid: number; gid: number }> {
  const first = async (file: string) => {
    const line = (await readFile(`/proc/${pid}/${file}`, 'utf8')).split('\n').find((l) => /^\s*0\s/.test(l));
    const host = line ? Number(line.trim().split(/\s+/)[1]) : NaN;
    if (!Number.isInteger(host)) throw new Error(`process ${pid} has no root in its ${file}`);
    return host;
  };
  return { uid: await first('uid_map'), gid: await first('gid_map') };
}

interface CgroupMount {
  dir: string;
  version: 1 | 2;
  /** v1: the controllers (or name=...) the hierarchy carries. */
  controllers: string[];
}

async function cgroupMounts(): Promise<CgroupMount[]> {
  const mounts: CgroupMount[] = [];
  for (const line of (await readFile('/proc/self/mounts', 'utf8')).split('\n')) {
    const [, dir, type, opts] = line.split(' ');
    if (!dir || !dir.startsWith('/sys/fs/cgroup')) continue;
    if (type === 'cgroup2') mounts.push({ dir, version: 2, controllers: [] });
    else if (type === 'cgroup') {
      const controllers = (opts ?? '').split(',').filter((o) => !['rw', 'ro', 'nosuid', 'nodev', 'noexec', 'relatime', 'clone_children', 'cpuset_v2_mode'].includes(o) && !o.startsWith('release_agent'));
      mounts.push({ dir, version: 1, controllers });
    }
  }
  return mounts;
}

/** Gives the sandbox whose init is `pid` (a machine PID) its cgroup directories. Returns the directories handed over. */
export async function delegateCgroups(pid: number): Promise<string[]> {
  const { uid, gid } = await rootIds(pid);
  // Not user-namespaced (the operator's explicit opt-out): root owns them already.
  if (uid === 0) return [];
  const mounts = await cgroupMounts();
  const v1 = mounts.filter((m) => m.version === 1);
  const handed: string[] = [];
  const hand = async (dir: string, files: readonly string[]) => {
    // The path comes from the kernel's /proc/<pid>/cgroup; it must stay under its hierarchy.
    if (path.normalize(dir) !== dir || dir.includes('/../')) throw new Error(`unexpected cgroup path ${dir}`);
    if (!(await stat(dir)).isDirectory()) throw new Error(`${dir} is not a cgroup directory`);
    await chown(dir, uid, gid);
    for (const f of files) await chown(path.join(dir, f), uid, gid).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    handed.push(dir);
  };
  for (const line of (await readFile(`/proc/${pid}/cgroup`, 'utf8')).split('\n')) {
    const m = /^(\d+):([^:]*):(\/.*)$/.exec(line);
    if (!m) continue;
    const [, , list, cgPath] = m;
    if (list === '') {
      // The unified hierarchy: the sandbox's own on a cgroup v2 machine; on a hybrid one the inner engine uses v1.
      const unified = mounts.find((x) => x.version === 2);
      if (unified && v1.length === 0) await hand(path.join(unified.dir, cgPath!), DELEGATED_FILES.v2);
      continue;
    }
    const wanted = list!.split(',').sort().join(',');
    const mount = v1.find((x) => [...x.controllers].sort().join(',') === wanted);
    if (!mount) continue;
    await hand(path.join(mount.dir, cgPath!), DELEGATED_FILES.v1);
  }
  if (handed.length === 0) throw new Error(`no cgroup of process ${pid} was found to delegate`);
  return handed;
}
