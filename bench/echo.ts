/**
 * Keystroke-to-echo latency over the terminal WebSocket: on an attached
 * terminal at the prompt, type `echo `, then KEYS single characters, each
 * sent only once the previous one's echo came back; the time from sending an
 * input frame to receiving the output frame that holds its echo. The line is
 * cleared with Ctrl-U at the end.
 */
import { finish, sleep, startToPrompt, withServer, type Section, type SectionResult, type Variant } from './harness';
import { PROMPT } from '../test/support/terminal-client';
import { figure, summarize } from './stats';

const KEYS = 200;
const KEY_TIMEOUT_MS = 5000;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz';

export const echoIn = (v?: Variant): Section => ({
  name: `echo${v?.suffix ?? ''}`,
  title: `Keystroke -> echo over the WebSocket (n=${KEYS})${v ? `, ${v.title}` : ''}`,
  run: async () =>
    withServer({ ...(await v?.env()), VETHLAB_POOL_SIZE: '0' }, async (server): Promise<SectionResult> => {
      // Wide enough that the typed line never wraps: each echo is the bare character.
      const p = await startToPrompt(server, { term: { cols: 400, rows: 50 } });
      const { term } = p;
      try {
        await sleep(500); // let the start-of-session lab check finish
        term.type('echo ');
        await term.waitFor(() => term.tailText().endsWith(`${PROMPT}echo `) || undefined, KEY_TIMEOUT_MS, 'the echo of "echo "');

        const latencies: number[] = [];
        let otherFrames = 0;
        for (let i = 0; i < KEYS; i++) {
          const ch = ALPHABET[i % ALPHABET.length]!;
          const code = ch.charCodeAt(0);
          let echoedAt = 0;
          term.onOutput = (chunk, at) => {
            if (echoedAt) return;
            if (chunk.includes(code)) echoedAt = at;
            if (chunk.length !== 1) otherFrames++;
          };
          const t0 = performance.now();
          term.type(ch);
          await term.waitFor(() => echoedAt || undefined, KEY_TIMEOUT_MS, `the echo of key ${i} (${ch})`);
          latencies.push(echoedAt - t0);
        }
        term.onOutput = null;

        // Ctrl-U clears the typed line; Enter on the empty line then gives a fresh prompt.
        term.type('\x15');
        await sleep(100);
        const before = term.bytes;
        term.type('\r');
        await term.waitFor(() => (term.bytes > before && term.tailText().endsWith(PROMPT)) || undefined, KEY_TIMEOUT_MS, 'a fresh prompt after Ctrl-U');
        // Had the line not been cleared, bash would have run it and printed the letters on a line of their own.
        const lastCommand = term.tailText().split(PROMPT).slice(-2, -1)[0] ?? '';
        const lineCleared = !/\n\s*abcdefghij/.test(lastCommand);

        const s = summarize(latencies);
        return {
          figures: [
            figure('keystroke -> echo, p50', s.p50, 'ms'),
            figure('keystroke -> echo, p99', s.p99, 'ms', { op: '<', value: 10 }),
            figure('keystroke -> echo, max', s.max, 'ms'),
            figure('keystroke -> echo, mean', s.mean, 'ms'),
          ],
          samples: { latencyMs: latencies },
          details: { echoFramesNotOneByte: otherFrames, lineClearedByCtrlU: lineCleared },
        };
      } finally {
        await finish(p);
      }
    }),
});
export const echo = echoIn();
