/**
 * Setup step: the built course site. Rebuilt only when its sources (docs,
 * translations, components, protocol, config, dependencies) changed since
 * the last build.
 */
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hashFiles } from '../../lab-server/sandbox/image';
import { done, run, step } from './run';

const ROOT = path.resolve(import.meta.dirname, '../..');
const INPUTS = ['docs', 'i18n', 'src', 'static', 'protocol', 'labs', 'docusaurus.config.ts', 'sidebars.ts', 'package-lock.json'];

function files(p: string): string[] {
  if (!existsSync(p)) return [];
  if (!statSync(p).isDirectory()) return [p];
  return readdirSync(p)
    .sort()
    .flatMap((n) => files(path.join(p, n)));
}

export function siteHash(): string {
  return hashFiles(ROOT, INPUTS.flatMap((i) => files(path.join(ROOT, i))));
}

export async function ensureSite(siteDir = path.join(ROOT, 'build')): Promise<void> {
  const stampFile = path.join(siteDir, '.vethlab-site-hash');
  const hash = siteHash();
  if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === hash) {
    done('course site is up to date');
    return;
  }
  step('building the course site (en + zh-Hans; a few minutes the first time)');
  const started = Date.now();
  await run('npx', ['docusaurus', 'build', '--out-dir', siteDir], { cwd: ROOT });
  writeFileSync(stampFile, hash);
  done(`course site built in ${Math.round((Date.now() - started) / 1000)} s`);
}
