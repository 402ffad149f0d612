/**
 * Every runnable code block of every lesson, run in order in a fresh
 * sandbox of the lesson's lab (after the lab's setup): a block must succeed,
 * unless the lesson marks it `expect-fail`, then it must fail. The
 * Simplified Chinese lesson must show the same commands as the English one.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LabCatalog } from '../../lab-server/labs/catalog';
import { lessonLab, runnableBlocks } from '../../lab-server/labs/code-blocks';
import { createLabSandboxes, removeAll } from '../../lab-server/labs/steps';
import { ROOT, testEngine } from '../support/lab-server';

const DOCS = path.join(ROOT, 'docs');
const ZH = path.join(ROOT, 'i18n/zh-Hans/docusaurus-plugin-content-docs/current');
const lessons = readdirSync(DOCS).filter((f) => /\.mdx?$/.test(f)).sort();
const catalog = LabCatalog.load();
const engine = testEngine();

describe('lesson code blocks', () => {
  it('finds runnable commands in every lesson that has a lab', () => {
    expect(lessons.length).toBeGreaterThan(0);
    for (const file of lessons) {
      const mdx = readFileSync(path.join(DOCS, file), 'utf8');
      if (lessonLab(mdx)) expect(runnableBlocks(mdx).length, file).toBeGreaterThan(0);
    }
  });

  for (const file of lessons) {
    const mdx = readFileSync(path.join(DOCS, file), 'utf8');
    const blocks = runnableBlocks(mdx);
    if (blocks.length === 0) continue;

    it(`${file}: the Chinese lesson shows the same runnable commands`, () => {
      const zhFile = path.join(ZH, file);
      expect(existsSync(zhFile), `missing ${zhFile}`).toBe(true);
      const zh = runnableBlocks(readFileSync(zhFile, 'utf8'));
      expect(zh.map((b) => [b.code, b.host, b.expectFail])).toEqual(blocks.map((b) => [b.code, b.host, b.expectFail]));
    });

    it(`${file}: every runnable block works verbatim in a fresh sandbox`, async () => {
      const labId = lessonLab(mdx);
      const lab = labId ? catalog.get(labId) : undefined;
      const hostNames = lab?.hosts ?? ['sandbox'];
      const hosts = await createLabSandboxes(engine, lab ?? { id: '', hosts: hostNames, setup: [] }, { sessionId: `cb${randomBytes(8).toString('hex')}`, learner: 'code-blocks' });
      try {
        for (const block of blocks) {
          const sandbox = hosts.get(block.host ?? hostNames[0]!);
          expect(sandbox, `${file}:${block.line}: unknown host ${block.host}`).toBeDefined();
          // A learner reads between commands; a container just started gets a moment to listen.
          const code = block.code.replace(/^(\s*docker run -d\b.*)$/gm, '$1\nsleep 1');
          const r = await engine.exec(sandbox!.containerId, ['bash', '-e', '-o', 'pipefail', '-c', `cd /root\n${code}`], { timeoutMs: 90_000 });
          const where = `${file}:${block.line}\n${block.code}\n--- exit ${r.exitCode}\n${r.stdout.slice(-800)}${r.stderr.slice(-800)}`;
          if (block.expectFail) expect(r.exitCode, where).not.toBe(0);
          else expect(r.exitCode, where).toBe(0);
          expect(r.timedOut, where).toBe(false);
        }
      } finally {
        await removeAll(engine, hosts);
      }
    }, 600_000);
  }
});
