/**
 * The sandbox image's identity: a hash of its recipe (everything under
 * images/). Setup builds `vethlab/sandbox:<hash>`; the server runs exactly that
 * tag, so a changed recipe can never run a stale image.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export const IMAGE_REPO = 'vethlab/sandbox';
export const RECIPE_DIR = path.resolve(import.meta.dirname, '../../images');

function filesUnder(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = path.join(dir, name);
      return statSync(p).isDirectory() ? filesUnder(p) : [p];
    });
}

/** Hash of the given files (relative names and contents). */
export function hashFiles(root: string, files: string[]): string {
  const h = createHash('sha256');
  for (const f of files) {
    h.update(path.relative(root, f)).update('\0').update(readFileSync(f)).update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

/** Hash of the Debian package list alone: the expensive debootstrap step is cached by it. */
export function rootfsHash(recipeDir = RECIPE_DIR): string {
  return hashFiles(recipeDir, [path.join(recipeDir, 'sandbox/packages.txt')]);
}

export function recipeHash(recipeDir = RECIPE_DIR): string {
  return hashFiles(recipeDir, filesUnder(recipeDir));
}

export function sandboxImageTag(recipeDir = RECIPE_DIR): string {
  return `${IMAGE_REPO}:${recipeHash(recipeDir)}`;
}
