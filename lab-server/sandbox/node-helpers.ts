/**
 * The machine-side steps of a sandbox on another machine's engine (a Swarm
 * node), done by short-lived helper containers of the project's image on that
 * engine, since the lab-server has no shell there: hand a sandbox its cgroups
 * (what cgroup-delegation.ts does on this machine), join two sandboxes with a
 * veth pair (what `ip` does here), and probe the engine's defaults. Each
 * helper runs as the machine's root with only the one capability its step
 * needs, no network, a read-only root, and is removed when done.
 */
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';

export interface HelperResult {
  exitCode: number;
  output: string;
}

/** Runs one helper container to its end on the engine and removes it. */
export async function runHelper(
  docker: Docker,
  image: string,
  script: string,
  args: string[],
  host: { caps?: string[]; binds?: string[]; machineNamespaces?: boolean; name?: string } = {},
): Promise<HelperResult> {
  const machine = host.machineNamespaces ?? true;
  const container = await docker.createContainer({
    ...(host.name ? { name: host.name } : {}),
    Image: image,
    Entrypoint: ['bash', '-c', script, 'vethlab-helper', ...args],
    Labels: { 'vethlab.role': 'helper' },
    HostConfig: {
      ...(machine ? { UsernsMode: 'host', PidMode: 'host', CgroupnsMode: 'host' } : {}),
      NetworkMode: 'none',
      CapDrop: ['ALL'],
      CapAdd: host.caps ?? [],
      ReadonlyRootfs: true,
      Binds: host.binds ?? [],
      Memory: 64 * 1024 ** 2,
      PidsLimit: 64,
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m' } },
    } as Docker.HostConfig,
  });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const raw = (await container.logs({ stdout: true, stderr: true })) as unknown as Buffer;
    const text = new PassThrough();
    const chunks: Buffer[] = [];
    text.on('data', (b: Buffer) => chunks.push(b));
    // Logs of a non-TTY container come multiplexed.
    docker.modem.demuxStream(bufferStream(raw), text, text);
    await new Promise((r) => setImmediate(r));
    return { exitCode: StatusCode, output: Buffer.concat(chunks).toString('utf8') };
  } finally {
    await container.remove({ force: true }).catch(() => {});
  }
}

function bufferStream(buf: Buffer): NodeJS.ReadableStream {
  const s = new PassThrough();
  s.end(buf);
  return s;
}

/**
 * cgroup-delegation.ts as a shell script for the node: the sandbox's
 * directory in each hierarchy (found as the one whose cgroup.procs lists its
 * init) and its tasks/cgroup.procs/cgroup.clone_children go to the sandbox's
 * root; never a limit file. A v2 machine: cgroup.procs, subtree_control, threads.
 */
const DELEGATE_SCRIPT = String.raw`set -eu
pid=$1
root=/vethlab/cgroup
uid=$(awk '$1 == 0 { print $2 }' "/proc/$pid/uid_map")
gid=$(awk '$1 == 0 { print $2 }' "/proc/$pid/gid_map")
[ -n "$uid" ] && [ -n "$gid" ] || { echo "process $pid has no root in its user namespace" >&2; exit 3; }
[ "$uid" != 0 ] || exit 0
handed=0
hand() {
  dir=$1; shift
  case "$dir" in *..*) echo "unexpected cgroup path $dir" >&2; exit 4 ;; esac
  [ -d "$dir" ] && [ ! -L "$dir" ] || return 0
  grep -qx "$pid" "$dir/cgroup.procs" || return 0
  chown "$uid:$gid" "$dir"
  for f in "$@"; do if [ -e "$dir/$f" ]; then chown "$uid:$gid" "$dir/$f"; fi; done
  echo "$dir"
  handed=$((handed + 1))
}
if grep -q " $root cgroup2 " /proc/self/mounts; then
  hand "$root$(awk -F: '$1 == "0" { print $3 }' "/proc/$pid/cgroup")" cgroup.procs cgroup.subtree_control cgroup.threads
else
  paths=$(awk -F: '$2 != "" { print $3 }' "/proc/$pid/cgroup" | sort -u)
  for h in $(awk -v r="$root/" '$3 == "cgroup" && index($2, r) == 1 { print $2 }' /proc/self/mounts); do
    for p in $paths; do hand "$h$p" tasks cgroup.procs cgroup.clone_children; done
  done
fi
[ "$handed" -gt 0 ] || { echo "no cgroup of process $pid was found to delegate" >&2; exit 5; }
`;

/** Hands the sandbox whose init is `pid` (a PID of the node) its cgroups, on the node. Returns the directories handed over. */
export async function delegateCgroupsOnNode(docker: Docker, image: string, pid: number): Promise<string[]> {
  const r = await runHelper(docker, image, DELEGATE_SCRIPT, [String(pid)], { caps: ['CHOWN'], binds: ['/sys/fs/cgroup:/vethlab/cgroup:rw'] });
  if (r.exitCode !== 0) throw new Error(`handing the sandbox its cgroups on its node failed: ${r.output.trim()}`);
  return r.output.trim().split('\n').filter(Boolean);
}

/** link0 between two sandboxes of one node, by their PIDs there: a veth pair created straight into their network namespaces. */
export async function linkOnNode(docker: Docker, image: string, pids: [number, number]): Promise<void> {
  const script = 'exec ip link add link0 netns "$1" type veth peer name link0 netns "$2"';
  const r = await runHelper(docker, image, script, pids.map(String), { caps: ['NET_ADMIN'] });
  if (r.exitCode !== 0) throw new Error(`could not create the private link on the node: ${r.output.trim()}`);
}
