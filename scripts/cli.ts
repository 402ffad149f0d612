/**
 * vethlab's command line, behind the npm scripts (via scripts/bootstrap.mjs):
 *   start  set up, then serve the course (lab-server on :3000)
 *   test   set up, type-check, run every test
 *   dev    set up, then the site with hot reload next to the lab-server
 *   bench  set up, then print the benchmark figures
 *   lab    set up, then lab tools (scripts/lab.ts: test, grade, validate)
 *   load   set up, then the load driver (bench/load.ts: N learners at once)
 *   setup  only set up
 *   node-prepare  a Swarm node's sandbox engine (README, "More than one machine")
 *   swarm-init    node-prepare, then a swarm on this machine as its manager
 * Setup is idempotent and quick the second time: engine, images, site.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ensureEngine } from './setup/engine';
import { ensureImages } from './setup/images';
import { aptInstall, SetupError } from './setup/run';
import { ensureSite } from './setup/site';

const ROOT = path.resolve(import.meta.dirname, '..');
const [mode = 'start', ...rest] = process.argv.slice(2);

async function setup(opts: { site: boolean; browser: boolean }): Promise<void> {
  console.log('vethlab setup');
  const docker = await ensureEngine();
  await ensureImages(docker);
  if (opts.browser) await aptInstall(['chromium', 'fonts-liberation', 'fonts-wqy-microhei'], 'the browser tests');
  if (opts.site) await ensureSite();
}

/** Children still running: a SIGTERM sent to this process alone is passed on to them. */
const children = new Set<ChildProcess>();

function spawnChild(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(cmd, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env } });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function exitWith(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}

/** A TypeScript entry point run by node with the tsx loader. */
const runTs = (file: string, ...args: string[]): ChildProcess => spawnChild(process.execPath, ['--import', 'tsx', path.join(ROOT, file), ...args]);

async function main(): Promise<number> {
  // Ctrl-C goes to the whole process group: children stop themselves and we
  // wait for them. SIGTERM (a service manager, kill) comes to us alone: pass it on.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {
    if (!children.size) process.exit(143); // still setting up: nothing to stop cleanly
    for (const child of children) child.kill('SIGTERM');
  });
  switch (mode) {
    case 'setup':
      await setup({ site: true, browser: rest.includes('--browser') });
      return 0;
    case 'start': {
      await setup({ site: true, browser: false });
      return exitWith(runTs('lab-server/main.ts'));
    }
    case 'test': {
      await setup({ site: true, browser: true });
      for (const project of ['tsconfig.json', 'protocol/tsconfig.json']) {
        const code = await exitWith(spawnChild('npx', ['tsc', '--noEmit', '-p', project]));
        if (code !== 0) {
          console.error(`vethlab: type errors (tsc -p ${project}); tests not run.`);
          return code;
        }
      }
      const report = path.join(ROOT, '.vethlab/test-report.json');
      const code = await exitWith(spawnChild('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...rest]));
      // One plain closing line, whatever reads the log: "N passed, N failed".
      try {
        const r = JSON.parse(readFileSync(report, 'utf8')) as { numPassedTests: number; numFailedTests: number; numPendingTests: number };
        console.log(`\n${r.numPassedTests} passed, ${r.numFailedTests} failed${r.numPendingTests ? `, ${r.numPendingTests} skipped` : ''}`);
      } catch {
        // vitest did not get as far as writing its report; its own output says why
      }
      return code;
    }
    case 'dev': {
      await setup({ site: false, browser: false });
      const server = spawnChild(process.execPath, ['--import', 'tsx', '--watch', path.join(ROOT, 'lab-server/main.ts')], {
        VETHLAB_ALLOWED_ORIGINS: 'http://localhost:3001',
      });
      const site = spawnChild('npx', ['docusaurus', 'start', '--port', '3001', '--no-open', ...rest]);
      console.log('\n  Authoring mode: edit docs/ and src/ and the page at http://localhost:3001 reloads.\n');
      const code = await Promise.race([exitWith(server), exitWith(site)]);
      server.kill('SIGINT');
      site.kill('SIGINT');
      return code;
    }
    case 'bench': {
      await setup({ site: false, browser: false });
      return exitWith(runTs('bench/run.ts', ...rest));
    }
    case 'node-prepare': {
      const { prepareNode, joinInstructions } = await import('./setup/swarm-node');
      await prepareNode({ print: rest.includes('--print') });
      if (!rest.includes('--print')) console.log('\n' + joinInstructions(undefined, undefined));
      return 0;
    }
    case 'swarm-init': {
      const { initManager } = await import('./setup/swarm-node');
      await initManager(rest[0]);
      return 0;
    }
    case 'load': {
      await setup({ site: false, browser: false });
      return exitWith(runTs('bench/load.ts', ...rest));
    }
    case 'lab': {
      await setup({ site: false, browser: false });
      return exitWith(runTs('scripts/lab.ts', ...rest));
    }
    default:
      console.error(`vethlab: unknown command "${mode}" (start, test, dev, bench, load, lab, setup)`);
      return 2;
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`\nvethlab: ${err instanceof SetupError ? err.message : (err as Error).stack}\n`);
    process.exit(1);
  },
);
