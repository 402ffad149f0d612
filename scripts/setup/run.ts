/** Small helpers the setup steps share: run a command, install Debian packages, report a step. */
import { spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

export class SetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SetupError';
  }
}

export function done(what: string): void {
  console.log(`  \u2714 ${what}`);
}

export function step(what: string): void {
  console.log(`  \u2026 ${what}`);
}

export function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Runs a command; rejects with its last output lines if it fails. */
export function run(cmd: string, args: string[], opts: SpawnOptions & { onLine?: (line: string) => void } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: opts.onLine ? ['ignore', 'pipe', 'pipe'] : 'inherit', ...opts });
    const tail: string[] = [];
    const onData = (b: Buffer) => {
      for (const line of b.toString('utf8').split('\n')) {
        if (!line) continue;
        tail.push(line);
        if (tail.length > 20) tail.shift();
        opts.onLine?.(line);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('error', (err) => reject(new SetupError(`${cmd}: ${err.message}`)));
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new SetupError(`\`${cmd} ${args.join(' ')}\` failed (exit ${code})${tail.length ? ':\n    ' + tail.join('\n    ') : ''}`)),
    );
  });
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export function isDebianLike(): boolean {
  return existsSync('/etc/debian_version') && which('apt-get');
}

/** Installs Debian packages that are missing (needs root on Debian/Ubuntu). */
export async function aptInstall(packages: string[], why: string): Promise<void> {
  const missing = packages.filter((p) => spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' }).stdout !== 'install ok installed');
  if (missing.length === 0) return;
  if (!isRoot() || !isDebianLike()) {
    throw new SetupError(`${why} needs the Debian packages ${missing.join(', ')}. Install them (e.g. \`sudo apt-get install ${missing.join(' ')}\`) and run again.`);
  }
  step(`installing ${missing.join(', ')} from Debian (${why})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const lists = existsSync('/var/lib/apt/lists') ? readdirSync('/var/lib/apt/lists').filter((f) => f.endsWith('_Packages')) : [];
  if (lists.length === 0) await run('apt-get', ['update', '-qq'], { env, onLine: () => {} });
  try {
    await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env, onLine: () => {} });
  } catch {
    // Stale package lists are the usual cause: refresh once and retry.
    await run('apt-get', ['update', '-qq'], { env, onLine: () => {} });
    await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env, onLine: () => {} });
  }
  done(`installed ${missing.join(', ')}`);
}
