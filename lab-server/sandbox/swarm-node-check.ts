/**
 * Checks a Swarm node's engine before it takes sandboxes. A Swarm 20.10
 * service cannot ask for a seccomp profile, a private cgroup namespace or no
 * network, so the node engine's own defaults must give them; a node that
 * lacks any (or the sandbox image, or user namespaces) is refused, with what
 * to run on it. Settings come from `docker info` where the engine reports
 * them, and from a probe container that starts with the engine's defaults
 * (as a service task does) and reports what it got.
 */
import type Docker from 'dockerode';
import { runHelper } from './node-helpers';

export interface NodeCheck {
  ok: boolean;
  /** What the node lacks, each a sentence a person can act on. */
  problems: string[];
}

/**
 * The remapped root of a node engine started with --userns-remap=default
 * (Docker's dockremap user, 100000:65536 on a fresh machine): it owns each
 * sandbox's disk, which the service spec names before Swarm picks a node.
 */
export const REMAPPED_ROOT = 100000;

const FIX = 'run `npm run node:prepare` on it (README, "More than one machine")';

/**
 * The probe: started with nothing but the engine's defaults. Prints its
 * seccomp mode, whether its cgroup paths are its own (a private cgroup
 * namespace shows "/"), and its network interfaces besides lo.
 */
const PROBE = String.raw`echo "seccomp $(awk '/^Seccomp:/ { print $2 }' /proc/self/status)"
echo "cgroup $(awk -F: '{ print $3 }' /proc/self/cgroup | sort -u | tr '\n' ' ')"
echo "links $(ls /sys/class/net | grep -vx lo | tr '\n' ' ')"
`;

export async function checkNode(docker: Docker, image: string, nodeName: string): Promise<NodeCheck> {
  const problems: string[] = [];
  const lacks = (what: string) => problems.push(`node ${nodeName} lacks ${what}: ${FIX}`);
  let info: { SecurityOptions?: string[]; DockerRootDir?: string };
  try {
    info = (await docker.info()) as typeof info;
  } catch (err) {
    return { ok: false, problems: [`node ${nodeName}'s engine does not answer (${(err as Error).message}): check its endpoint (node label vethlab-engine, TLS certificates) and that its engine runs`] };
  }
  const security = info.SecurityOptions ?? [];
  if (!security.some((o) => o.includes('name=userns'))) lacks('userns-remap (a learner there would be root on the machine)');
  // --userns-remap=default keeps its store under <data root>/<uid>.<gid>; the sandbox's disk belongs to that uid.
  const remapped = /\/(\d+)\.(\d+)$/.exec(info.DockerRootDir ?? '');
  if (remapped && Number(remapped[1]) !== REMAPPED_ROOT) {
    problems.push(`node ${nodeName} remaps root to uid ${remapped[1]}, the other nodes to ${REMAPPED_ROOT}: give its dockremap user the range ${REMAPPED_ROOT}:65536 in /etc/subuid and /etc/subgid`);
  }
  const seccomp = security.find((o) => o.includes('name=seccomp'));
  const profile = /profile=([^,]+)/.exec(seccomp ?? '')?.[1];
  if (!seccomp || !profile || profile === 'default' || profile === 'unconfined') lacks(`the project's seccomp profile as its default (it has ${profile ?? 'none'}; inner docker run fails under Docker's default)`);
  const networks = await docker.listNetworks({ filters: { name: ['bridge'] } }).catch(() => []);
  if (networks.some((n) => n.Name === 'bridge')) lacks('bridge: none (its containers would get a network of the machine)');
  if (!(await docker.getImage(image).inspect().then(() => true, () => false))) {
    problems.push(`node ${nodeName} lacks the sandbox image ${image}: run \`npm run setup\` on it, or load it there (docker save ${image} | docker -H <node> load)`);
    return { ok: false, problems };
  }
  try {
    const probe = await runHelper(docker, image, PROBE, [], { machineNamespaces: false });
    const field = (k: string) => new RegExp(`^${k} (.*)$`, 'm').exec(probe.output)?.[1]?.trim() ?? '';
    if (field('seccomp') !== '2') lacks('a seccomp profile on its containers');
    if (field('cgroup') !== '/') lacks('default-cgroupns-mode: private');
    if (field('links') !== '') lacks(`bridge: none (a container got ${field('links')})`);
  } catch (err) {
    problems.push(`node ${nodeName} could not start a probe container: ${(err as Error).message}`);
  }
  return { ok: problems.length === 0, problems };
}
