/**
 * Runnable code blocks of a lesson: fenced blocks whose meta says `run`
 * (```bash run). `run expect-fail` marks a command the lesson shows failing;
 * `run=host-b` picks the host (terminal) in a multi-host lab. The page adds a
 * Run button to them; the code-block test runs them in a fresh sandbox.
 */
export interface RunnableBlock {
  /** 1-based line of the opening fence. */
  line: number;
  code: string;
  host: string | undefined;
  expectFail: boolean;
}

const FENCE = /^(\s*)(```+|~~~+)\s*([\w-]*)\s*(.*)$/;

export function runnableBlocks(mdx: string): RunnableBlock[] {
  const lines = mdx.split('\n');
  const blocks: RunnableBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const fence = open[2]!;
    const meta = open[4]!.trim().split(/\s+/);
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !lines[j]!.trim().startsWith(fence); j++) body.push(lines[j]!.slice(open[1]!.length));
    const run = meta.find((m) => m === 'run' || m.startsWith('run='));
    if (run) {
      blocks.push({
        line: i + 1,
        code: body.join('\n'),
        host: run.startsWith('run=') ? run.slice(4) : undefined,
        expectFail: meta.includes('expect-fail'),
      });
    }
    i = j;
  }
  return blocks;
}

/** The lab a lesson embeds (<Lab lab="..."> or <Terminal lab="...">). */
export function lessonLab(mdx: string): string | undefined {
  return /<(?:Lab|Terminal)\b[^>]*\blab="([a-z0-9-]+)"/.exec(mdx)?.[1];
}
