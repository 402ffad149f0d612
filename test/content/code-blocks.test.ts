/**
 * Every runnable code block of every lesson, run in order in a fresh
 * sandbox of the lesson's lab (after the lab's setup): a block must succeed,
 * unless the lesson marks it `expect-fail`, then it must fail. The
 * Simplified Chinese lesson must show the same commands as the English one.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LabCatalog } from '../../lab-server/labs/catalog';
import { lessonLab, runnableBlocks } from '../../lab-server/labs/code-blocks';
import { sandboxImageTag } from '../../lab-server/sandbox/image';
import { SandboxEngine, type Sandbox } from '../../lab-server/sandbox/sandbox-engine';
import { ROOT, testInstance } from '../support/lab-server';

const DOCS = path.join(ROOT, 'docs');
const ZH = path.join(ROOT, 'i18n/zh-Hans/docusaurus-plugin-content-docs/current');
const lessons = readdirSync(DOCS).filter((f) => /\.mdx?$/.test(f)).sort();
const catalog = LabCatalog.load();
const engine = new SandboxEngine(new Docker(), {
  image: sandboxImageTag(),
  instance: testInstance(),
  limits: { memoryBytes: 512 * 1024 ** 2, pids: 512, cpus: 1 },
  log: pino({ level: 'warn' }),
});

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
      const sessionId = `cb${randomBytes(8).toString('hex')}`;
      const hosts = new Map<string, Sandbox>();
      try {
        for (const host of hostNames) {
          hosts.set(host, await engine.create({ sessionId, host, lab: labId ?? '', learner: 'code-blocks', pool: false, expiresAt: new Date(Date.now() + 3_600_000) }));
        }
        await engine.linkSandboxes([...hosts.values()]);
        for (const step of lab?.setup ?? []) {
          const r = await engine.exec(hosts.get(step.host ?? hostNames[0]!)!.containerId, ['bash', '-ec', step.run], { timeoutMs: 120_000 });
          expect(r.exitCode, `lab setup: ${r.stderr}`).toBe(0);
        }
        for (const block of blocks) {
          const sandbox = hosts.get(block.host ?? hostNames[0]!);
          expect(sandbox, `${file}:${block.line}: unknown host ${block.host}`).toBeDefined();
          const r = await engine.exec(sandbox!.containerId, ['bash', '-e', '-o', 'pipefail', '-c', `cd /root\n${block.code}`], { timeoutMs: 90_000 });
          const where = `${file}:${block.line}\n${block.code}\n--- exit ${r.exitCode}\n${r.stdout.slice(-800)}${r.stderr.slice(-800)}`;
          if (block.expectFail) expect(r.exitCode, where).not.toBe(0);
          else expect(r.exitCode, where).toBe(0);
          expect(r.timedOut, where).toBe(false);
        }
      } finally {
        await Promise.all([...hosts.values()].map((s) => engine.remove(s)));
      }
    }, 600_000);
  }
});
