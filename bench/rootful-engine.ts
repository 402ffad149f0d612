/**
 * The "before" of user-namespaced sandboxes, for side-by-side figures in one
 * run: a dockerd of the benchmark's own without --userns-remap (otherwise the
 * sandbox engine's flags), holding the same sandbox image, used through the
 * server's loud opt-out. Started and loaded on first use; only benchmarks
 * ever point a server at it.
 */
import { spawn } from 'node:child_process';
import { connectDocker, engineCliEnv, NO_USERNS_OPT_OUT } from '../lab-server/sandbox/docker';
import { sandboxImageTag } from '../lab-server/sandbox/image';
import { sandboxEngineArgs, startEngine, waitForEngine } from '../scripts/setup/engine';

const PATHS = {
  dataRoot: '/var/lib/vethlab-bench-rootful',
  execRoot: '/run/vethlab-bench-rootful',
  socket: '/run/vethlab-bench-rootful/docker.sock',
  pidfile: '/run/vethlab-bench-rootful/dockerd.pid',
};
const LOG = '/var/log/vethlab-bench-rootful.log';
export const ROOTFUL_ENDPOINT = `unix://${PATHS.socket}`;

let ready: Promise<Record<string, string>> | undefined;

/** The server environment that runs sandboxes without user namespaces (after starting that engine and loading the image). */
export function rootfulEnv(): Promise<Record<string, string>> {
  ready ??= (async () => {
    let docker = connectDocker(ROOTFUL_ENDPOINT);
    if (!(await waitForEngine(docker, 500))) docker = await startEngine(PATHS, sandboxEngineArgs(PATHS, { userns: false }), LOG);
    const tag = sandboxImageTag();
    const present = await docker.getImage(tag).inspect().then(() => true, () => false);
    if (!present) {
      console.log(`   (loading ${tag} into the benchmark's engine without user namespaces: docker save | docker load)`);
      await new Promise<void>((resolve, reject) => {
        const p = spawn('bash', ['-c', 'set -o pipefail; docker save "$1" | docker -H "$2" load -q', 'load', tag, ROOTFUL_ENDPOINT], { stdio: 'inherit', env: engineCliEnv() });
        p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`docker save | docker load failed (exit ${code})`))));
      });
    }
    return { VETHLAB_ENGINE: ROOTFUL_ENDPOINT, [NO_USERNS_OPT_OUT.name]: NO_USERNS_OPT_OUT.value };
  })();
  return ready;
}
