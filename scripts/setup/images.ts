/**
 * Setup step: the sandbox image, built offline from Debian's packages (there
 * is no image registry): debootstrap a bookworm root file system with the
 * tools the lessons use (cached by the package list's hash), build the inner
 * nginx and busybox images from it, add vethlab's entrypoint and import the
 * result as vethlab/sandbox:<recipe hash>. A second run finds the tag and
 * does nothing.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, copyFileSync, chmodSync, writeFileSync } from 'node:fs';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import cliProgress from 'cli-progress';
import type Docker from 'dockerode';
import pino from 'pino';
import { IMAGE_REPO, RECIPE_DIR, recipeHash, rootfsHash, sandboxImageTag } from '../../lab-server/sandbox/image';
import { engineCliEnv } from '../../lab-server/sandbox/docker';
import { SandboxEngine } from '../../lab-server/sandbox/sandbox-engine';
import { aptInstall, done, run, SetupError, step } from './run';

const CACHE_DIR = process.env.VETHLAB_CACHE_DIR ?? '/var/cache/vethlab';
const SUITE = 'bookworm';

/** The Debian mirror apt already uses (so a local mirror or proxy keeps working). */
function debianMirror(): string {
  if (process.env.VETHLAB_DEBIAN_MIRROR) return process.env.VETHLAB_DEBIAN_MIRROR;
  const sources = ['/etc/apt/sources.list', ...listDir('/etc/apt/sources.list.d').map((f) => `/etc/apt/sources.list.d/${f}`)];
  for (const file of sources) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    const m = /^(?:deb\s+(?:\[[^\]]*\]\s+)?|URIs:\s*)(\S+\/debian)\/?\s*$/m.exec(text) ?? /(?:^deb\s+(?:\[[^\]]*\]\s+)?|URIs:\s*)(\S+\/debian)\b/m.exec(text);
    if (m?.[1]) return m[1];
  }
  return 'http://deb.debian.org/debian';
}

function listDir(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}

function packages(): string[] {
  return readFileSync(path.join(RECIPE_DIR, 'sandbox/packages.txt'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

/** debootstrap with a progress bar fed by its "I: Unpacking x" lines. */
async function debootstrap(target: string): Promise<void> {
  await aptInstall(['debootstrap', 'debian-archive-keyring'], 'building the sandbox image');
  rmSync(target, { recursive: true, force: true });
  const mirror = debianMirror();
  step(`debootstrap ${SUITE} from ${mirror} (about a minute, once)`);
  const interactive = process.stdout.isTTY;
  const bar = new cliProgress.SingleBar(
    { format: '    {bar} {percentage}% | {stage}', hideCursor: true, clearOnComplete: true, noTTYOutput: false },
    cliProgress.Presets.shades_classic,
  );
  // Each package is retrieved, validated, extracted or unpacked, and configured.
  let total = 400;
  let value = 0;
  let retrieved = 0;
  if (interactive) bar.start(total, 0, { stage: 'resolving packages' });
  let lastPrinted = 0;
  await run('debootstrap', ['--variant=minbase', `--include=${packages().join(',')}`, SUITE, target, mirror], {
    onLine: (line) => {
      const m = /^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) (\S+)/.exec(line);
      if (!m) return;
      if (m[1] === 'Retrieving') retrieved++;
      value++;
      if (m[1] !== 'Retrieving' && m[1] !== 'Validating') total = Math.max(total, retrieved * 4);
      if (interactive) {
        bar.setTotal(Math.max(total, value + 1));
        bar.update(value, { stage: `${m[1]} ${m[2]}` });
      } else if (Date.now() - lastPrinted > 5000) {
        lastPrinted = Date.now();
        console.log(`    debootstrap: ${Math.min(99, Math.round((100 * value) / Math.max(total, value + 1)))}% (${m[1]} ${m[2]})`);
      }
    },
  });
  if (interactive) bar.stop();
}

async function rootfs(): Promise<string> {
  const dir = path.join(CACHE_DIR, `rootfs-${rootfsHash()}`);
  if (existsSync(path.join(dir, '.vethlab-complete'))) {
    done(`sandbox root file system cached (${dir})`);
    return dir;
  }
  mkdirSync(CACHE_DIR, { recursive: true });
  const tmp = `${dir}.tmp`;
  const started = Date.now();
  await debootstrap(tmp);
  writeFileSync(path.join(tmp, '.vethlab-complete'), new Date().toISOString());
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  // Root file systems of older package lists are 600 MB each and never used again.
  for (const old of listDir(CACHE_DIR).filter((n) => n.startsWith('rootfs-') && path.join(CACHE_DIR, n) !== dir)) {
    rmSync(path.join(CACHE_DIR, old), { recursive: true, force: true });
  }
  done(`sandbox root file system built in ${Math.round((Date.now() - started) / 1000)} s`);
  return dir;
}

/**
 * vethlab's own files, written into the cached root file system (docker
 * import refuses duplicate tar paths, so no separate overlay layer). Paths
 * vethlab owns are cleared first so a file dropped from the recipe goes too.
 */
async function applyOverlay(root: string): Promise<void> {
  for (const owned of ['opt/vethlab', 'etc/vethlab', 'usr/local/sbin/vethlab-entrypoint', 'usr/local/sbin/vethlab-upstream', 'usr/local/sbin/vethlab-shell']) {
    rmSync(path.join(root, owned), { recursive: true, force: true });
  }
  const put = (from: string, to: string, mode = 0o644) => {
    const dest = path.join(root, to);
    mkdirSync(path.dirname(dest), { recursive: true });
    copyFileSync(path.join(RECIPE_DIR, from), dest);
    chmodSync(dest, mode);
  };
  put('sandbox/entrypoint.sh', 'usr/local/sbin/vethlab-entrypoint', 0o755);
  put('sandbox/upstream.sh', 'usr/local/sbin/vethlab-upstream', 0o755);
  put('sandbox/vethlab-shell', 'usr/local/sbin/vethlab-shell', 0o755);
  put('sandbox/upstream-web.conf', 'etc/vethlab/upstream-web.conf');
  put('sandbox/containerd.toml', 'etc/vethlab/containerd.toml');
  put('sandbox/bashrc', 'root/.bashrc');
  put('sandbox/motd', 'etc/motd');
  put('sandbox/check-lib.sh', 'opt/vethlab/check-lib.sh');
  put('sandbox/check-guard.sh', 'opt/vethlab/check-guard.sh');
  // The checker's own tools, first on its PATH (the sandbox never runs them).
  put('sandbox/vl-in-root', 'opt/vethlab/bin/vl-in-root', 0o755);
  put('sandbox/checker-docker', 'opt/vethlab/bin/docker', 0o755);
  put('sandbox/checker-nsenter', 'opt/vethlab/bin/nsenter', 0o755);
  put('sandbox/vl-rules', 'opt/vethlab/bin/vl-rules', 0o755);
  step('building the inner images (nginx, busybox)');
  await run('bash', [path.join(RECIPE_DIR, 'inner/build.sh'), root, path.join(root, 'opt/vethlab/images')], { onLine: () => {} });
}

async function importImage(root: string, tag: string): Promise<void> {
  const changes = ['ENTRYPOINT ["/usr/local/sbin/vethlab-entrypoint"]', 'ENV LANG=C.UTF-8', `LABEL vethlab.recipe=${recipeHash()}`];
  const script = 'set -o pipefail; tar --numeric-owner -C "$1" --exclude=./.vethlab-complete -c . | docker import "${@:3}" - "$2"';
  await run('bash', ['-c', script, 'import', root, tag, ...changes.flatMap((c) => ['-c', c])], { onLine: () => {}, env: engineCliEnv() });
}

/** Where the seeded inner image store goes in the image; the entrypoint unpacks it. */
const STORE_IN_IMAGE = '/opt/vethlab/images/store.tar';

/**
 * Boots one sandbox of the base image (which imports the inner images the
 * slow way), copies its inner engine's image store out and commits it into
 * the final image. Every later sandbox unpacks that store into its disk
 * instead of running \`docker import\`: seconds of CPU less per boot, which is
 * what a room of learners arriving at once queues for.
 */
async function seedInnerStore(docker: Docker, base: string, tag: string, cacheDir: string): Promise<void> {
  const engine = new SandboxEngine(docker, {
    image: base,
    instance: 'setup',
    limits: { memoryBytes: 512 * 1024 ** 2, pids: 512, cpus: 2, diskBytes: 256 * 1024 ** 2 },
    log: pino({ level: 'silent' }),
  });
  const sandbox = await engine.create({ sessionId: `seed${Date.now().toString(36)}`, host: 'sandbox', lab: '', learner: 'setup', pool: false, expiresAt: new Date(Date.now() + 600_000) });
  const store = path.join(cacheDir, `inner-store-${sandbox.name}.tar`);
  let container: Docker.Container | undefined;
  try {
    // A stopped inner engine leaves a consistent store; only the image parts travel.
    // (Its pid file goes when it has exited; the process stays a zombie under sleep.)
    const stop = await engine.exec(sandbox.containerId, ['bash', '-c', 'pkill -x dockerd; while [ -e /var/run/docker.pid ]; do sleep 0.1; done'], { timeoutMs: 30_000 });
    if (stop.exitCode !== 0) throw new SetupError(`could not stop the seeding sandbox's inner engine: ${stop.stderr.trim()}`);
    await run('bash', ['-c', 'set -o pipefail; docker exec "$1" tar --xattrs --xattrs-include="*" --numeric-owner -C /var/lib/docker -cf - image overlay2 > "$2"', 'seed', sandbox.name, store], { onLine: () => {}, env: engineCliEnv() });
    container = await docker.createContainer({ Image: base, Entrypoint: ['true'] });
    await run('docker', ['cp', store, `${container.id}:${STORE_IN_IMAGE}`], { onLine: () => {}, env: engineCliEnv() });
    // commit keeps the base image's config; only the entrypoint of this throwaway container is put back.
    await run('docker', ['commit', '--change', 'ENTRYPOINT ["/usr/local/sbin/vethlab-entrypoint"]', '--change', 'CMD []', container.id, tag], { onLine: () => {}, env: engineCliEnv() });
  } finally {
    await engine.remove(sandbox);
    if (container) await container.remove({ force: true }).catch(() => {});
    rmSync(store, { force: true });
  }
}

export async function ensureImages(docker: Docker): Promise<string> {
  const tag = sandboxImageTag();
  try {
    await docker.getImage(tag).inspect();
    done(`sandbox image ${tag} cached`);
    return tag;
  } catch {
    // not built yet
  }
  const started = Date.now();
  const root = await rootfs();
  await applyOverlay(root);
  const base = `${tag}-base`;
  step(`importing ${base}`);
  await importImage(root, base);
  step('seeding the inner image store (one sandbox boots and imports nginx and busybox)');
  await seedInnerStore(docker, base, tag, path.dirname(root));
  await docker.getImage(base).remove().catch(() => {});
  await docker.getImage(tag).tag({ repo: IMAGE_REPO, tag: 'latest' });
  // Older recipes' images only take disk space (those still in use stay). Only
  // those a day old: another checkout on this machine may be using a newer one.
  const old = await docker.listImages({ filters: { reference: [`${IMAGE_REPO}:*`] } });
  for (const img of old) {
    if (img.RepoTags?.some((t) => t === tag) || Date.now() / 1000 - img.Created < 24 * 3600) continue;
    await docker.getImage(img.Id).remove().catch(() => {});
  }
  done(`sandbox image ${tag} built in ${Math.round((Date.now() - started) / 1000)} s`);
  return tag;
}
