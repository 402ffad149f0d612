/**
 * The labs of the course: every docs/**\/*.lab.yaml, parsed and validated at
 * start. A mistake stops the load with the file, the field and what is
 * wrong ("docs/03-docker0.lab.yaml: tasks.1.check.kind: ...").
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { Lab } from './schema';

export const DOCS_DIR = path.resolve(import.meta.dirname, '../../docs');

export class LabFileError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.join('\n  ')}`);
    this.name = 'LabFileError';
  }
}

function labFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) return labFiles(p);
      return name.endsWith('.lab.yaml') ? [p] : [];
    });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length ? issue.path.join('.') : '(top level)';
  if (issue.code === 'invalid_union' && 'errors' in issue) {
    // A check that matches no primitive: name what its `kind` should be.
    return `${where}: not a valid check (use all/any/not or a kind such as netns, link, address, route, ping, http, shell)`;
  }
  if (issue.code === 'unrecognized_keys') return `${where}: unknown field(s) ${issue.keys.join(', ')}`;
  return `${where}: ${issue.message}`;
}

/** Parses and validates one lab file's text; throws LabFileError naming what is wrong. */
export function parseLab(file: string, text: string): Lab {
  let raw: unknown;
  try {
    raw = parse(text, { prettyErrors: true });
  } catch (err) {
    const e = err as YAMLParseError;
    throw new LabFileError(file, [`YAML syntax error at line ${e.linePos?.[0]?.line ?? '?'}: ${e.message.split('\n')[0]}`]);
  }
  const parsed = Lab.safeParse(raw);
  if (!parsed.success) throw new LabFileError(file, parsed.error.issues.map(describeIssue));
  const expected = path.basename(file).replace(/^\d+-/, '').replace(/\.lab\.yaml$/, '');
  if (parsed.data.id !== expected) throw new LabFileError(file, [`id: is "${parsed.data.id}" but the file name says "${expected}"`]);
  return parsed.data;
}

export class LabCatalog {
  private constructor(private readonly labs: Map<string, Lab>) {}

  static load(dir = DOCS_DIR): LabCatalog {
    const labs = new Map<string, Lab>();
    const errors: LabFileError[] = [];
    for (const file of labFiles(dir)) {
      const rel = path.relative(path.resolve(dir, '..'), file);
      try {
        const lab = parseLab(rel, readFileSync(file, 'utf8'));
        if (labs.has(lab.id)) throw new LabFileError(rel, [`id: "${lab.id}" is already used by another lab`]);
        labs.set(lab.id, lab);
      } catch (err) {
        if (err instanceof LabFileError) errors.push(err);
        else throw err;
      }
    }
    if (errors.length) throw new Error(`Lab definitions have errors:\n${errors.map((e) => `  ${e.message}`).join('\n')}`);
    return new LabCatalog(labs);
  }

  static of(labs: Lab[]): LabCatalog {
    return new LabCatalog(new Map(labs.map((l) => [l.id, l])));
  }

  get(id: string): Lab | undefined {
    return this.labs.get(id);
  }

  all(): Lab[] {
    return [...this.labs.values()];
  }
}
