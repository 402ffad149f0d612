/**
 * Command -> task green: in a probe lab of five tasks (each "a network
 * namespace nK exists"), type the command that passes the next task and time
 * until the page is told it passed (a `tasks` message on the WebSocket).
 */
import { LabCatalog, parseLab } from '../lab-server/labs/catalog';
import { finish, sleep, startToPrompt, withServer, type Section, type SectionResult } from './harness';
import { figure, summarize } from './stats';

const TASKS = 5;

const PROBE_LAB = `id: bench
title: Bench
tasks:
${Array.from({ length: TASKS }, (_, i) => `  - { id: t${i + 1}, title: T${i + 1}, check: { kind: netns, name: n${i + 1} } }`).join('\n')}
solution: [ { run: "true" } ]`;

export const green: Section = {
  name: 'green',
  title: `Command -> task green on the page (n=${TASKS})`,
  run: () =>
    withServer(
      { VETHLAB_POOL_SIZE: '0' },
      async (server): Promise<SectionResult> => {
        const p = await startToPrompt(server, { lab: 'bench' });
        const { term } = p;
        try {
          await sleep(1000); // the start-of-session check
          const times: number[] = [];
          for (let i = 1; i <= TASKS; i++) {
            const t0 = performance.now();
            term.type(`ip netns add n${i}\r`);
            await term.waitFor(
              () => term.messages.some((m) => m.type === 'tasks' && m.tasks.find((t) => t.id === `t${i}`)?.status === 'passed') || undefined,
              20_000,
              `task t${i} green`,
            );
            times.push(performance.now() - t0);
            await sleep(500);
          }
          const s = summarize(times);
          return {
            figures: [figure('command -> task green, p50', s.p50, 'ms', { op: '<', value: 1000 }), figure('command -> task green, max', s.max, 'ms')],
            samples: { greenMs: times },
          };
        } finally {
          await finish(p);
        }
      },
      { catalog: LabCatalog.of([parseLab('bench.lab.yaml', PROBE_LAB)]) },
    ),
};
