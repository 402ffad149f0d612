/**
 * `npm run bench`: the figures behind vethlab's targets, measured on this
 * machine against the real engine, server and WebSocket. Prints a table and
 * writes bench/results/latest.json. Figures, not pass/fail: a timed
 * assertion in a test is flaky on a shared machine.
 *
 *   ready-cold   POST /api/sessions -> prompt, pool empty          (n=5)
 *   ready-warm   POST /api/sessions -> prompt, from the warm pool  (n=5, target p50 < 150 ms)
 *   echo         keystroke -> its echo over the WebSocket          (n=300, target p99 < 10 ms)
 *   throughput   100 MB of output through the terminal path        (target >= 20 MB/s, bounded memory)
 *   green        command -> task green on the page                 (n=5, target < 1 s)
 *   memory       resident memory of an idle sandbox                (n=3)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { LabCatalog, parseLab } from '../lab-server/labs/catalog';
import { TERMINAL_PROTOCOL_VERSION, TERMINAL_WS_PATH } from '../protocol/terminal';
import { Learner, plain, type TerminalConnection } from '../test/support/terminal-client';
import { startTestServer, type TestServer } from '../test/support/lab-server';

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const results: Record<string, Record<string, number | string>> = {};
const show = (name: string, figures: Record<string, number | string>, target = '') => {
  results[name] = figures;
  const text = Object.entries(figures)
    .map(([k, v]) => `${k} ${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(1)) : v}`)
    .join('   ');
  console.log(`${name.padEnd(12)} ${text}${target ? `   (target: ${target})` : ''}`);
};

async function toPrompt(server: TestServer, learner: Learner): Promise<{ ms: number; term: TerminalConnection; sessionId: string }> {
  const t0 = performance.now();
  const { sessionId } = await learner.startSession();
  const term = await learner.openTerminal(sessionId);
  await term.waitFor(() => /root@sandbox:~# $/.test(plain(term.output.slice(-300))) || undefined, 60_000, 'prompt');
  return { ms: performance.now() - t0, term, sessionId };
}

async function ready(pool: boolean): Promise<void> {
  const server = await startTestServer({ VETHLAB_POOL_SIZE: pool ? '1' : '0' });
  try {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      if (pool) while (server.pool.size < 1) await sleep(100);
      const learner = new Learner(server.url);
      const r = await toPrompt(server, learner);
      times.push(r.ms);
      r.term.close();
      await learner.endSession(r.sessionId);
    }
    show(pool ? 'ready-warm' : 'ready-cold', { 'p50 ms': pct(times, 50), 'p95 ms': pct(times, 95), 'max ms': Math.max(...times) }, pool ? 'p50 < 150 ms' : '');
  } finally {
    await server.close();
  }
}

async function echoAndThroughput(): Promise<void> {
  const server = await startTestServer();
  try {
    const learner = new Learner(server.url);
    const { term, sessionId } = await toPrompt(server, learner);
    // Keystroke echo: one key at a time, the next once the previous came back.
    const lat: number[] = [];
    for (let i = 0; i < 300; i++) {
      const before = term.bytes;
      const t0 = performance.now();
      term.type('x');
      await term.waitFor(() => term.bytes > before || undefined, 5000, 'echo');
      lat.push(performance.now() - t0);
    }
    term.type('\x15'); // Ctrl-U: clear the line
    show('echo', { 'p50 ms': pct(lat, 50), 'p99 ms': pct(lat, 99), 'max ms': Math.max(...lat) }, 'p99 < 10 ms');
    term.close();
    await term.waitForClose();

    // Throughput with a lean client that acks what it receives, as a fast page does.
    const total = 100 * 1024 * 1024;
    const ws = new WebSocket(server.url.replace(/^http/, 'ws') + TERMINAL_WS_PATH, { headers: { cookie: learner.cookie! } });
    await new Promise((r) => ws.once('open', r));
    let received = 0;
    let seq = 0;
    let lastAck = 0;
    let started = 0;
    let peakRss = process.memoryUsage().rss;
    const rss0 = peakRss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
    const done = new Promise<number>((resolve) => {
      let tail = '';
      ws.on('message', (data, isBinary) => {
        if (!isBinary) {
          const msg = JSON.parse(data.toString()) as { type: string; from?: number };
          if (msg.type === 'ready') {
            seq = msg.from!;
            lastAck = seq;
            ws.send(JSON.stringify({ type: 'input', data: `head -c ${total} /dev/zero | tr '\\0' 'x'; echo; echo "through""put-done"\r` }));
            started = performance.now();
          }
          return;
        }
        const buf = data as Buffer;
        received += buf.length;
        seq += buf.length;
        if (seq - lastAck >= 256 * 1024) {
          ws.send(JSON.stringify({ type: 'ack', seq }));
          lastAck = seq;
        }
        tail = (tail + buf.toString('latin1')).slice(-64);
        if (tail.includes('throughput-done')) resolve(performance.now() - started);
      });
    });
    ws.send(JSON.stringify({ type: 'hello', v: TERMINAL_PROTOCOL_VERSION, sessionId, terminalId: 'main', cols: 200, rows: 50, lastSeq: term.seq }));
    const ms = await Promise.race([done, sleep(180_000).then(() => NaN)]);
    clearInterval(sampler);
    ws.close();
    show('throughput', { 'MB/s': received / 1e6 / (ms / 1000), 'MB': received / 1e6, 'server rss start MiB': rss0 / 1024 ** 2, 'peak MiB': peakRss / 1024 ** 2 }, '>= 20 MB/s, bounded memory');
  } finally {
    await server.close();
  }
}

async function green(): Promise<void> {
  const probe = parseLab(
    'bench.lab.yaml',
    `id: bench
title: Bench
tasks:
  - { id: t1, title: T1, check: { kind: netns, name: n1 } }
  - { id: t2, title: T2, check: { kind: netns, name: n2 } }
  - { id: t3, title: T3, check: { kind: netns, name: n3 } }
  - { id: t4, title: T4, check: { kind: netns, name: n4 } }
  - { id: t5, title: T5, check: { kind: netns, name: n5 } }
solution: [ { run: "true" } ]`,
  );
  const server = await startTestServer({}, { catalog: LabCatalog.of([probe]) });
  try {
    const learner = new Learner(server.url);
    const { sessionId } = await learner.startSession('bench');
    const term = await learner.openTerminal(sessionId);
    await term.waitFor(() => /root@sandbox:~# $/.test(plain(term.output.slice(-300))) || undefined, 60_000, 'prompt');
    await sleep(1000);
    const times: number[] = [];
    for (let i = 1; i <= 5; i++) {
      const t0 = performance.now();
      term.type(`ip netns add n${i}\r`);
      await term.waitFor(
        () => term.messages.some((m) => m.type === 'tasks' && m.tasks.find((t) => t.id === `t${i}`)?.status === 'passed') || undefined,
        20_000,
        `t${i} green`,
      );
      times.push(performance.now() - t0);
      await sleep(500);
    }
    show('green', { 'p50 ms': pct(times, 50), 'max ms': Math.max(...times) }, '< 1000 ms');
  } finally {
    await server.close();
  }
}

async function memory(): Promise<void> {
  const server = await startTestServer();
  try {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { sessionId } = await new Learner(server.url).startSession();
      ids.push(server.sessions.find(sessionId)!.hosts.get('sandbox')!.containerId);
    }
    await sleep(5000);
    const mib: number[] = [];
    for (const id of ids) {
      const s = (await server.engine.docker.getContainer(id).stats({ stream: false })) as { memory_stats: { usage: number; stats: { cache?: number; total_inactive_file?: number } } };
      mib.push((s.memory_stats.usage - (s.memory_stats.stats.total_inactive_file ?? s.memory_stats.stats.cache ?? 0)) / 1024 ** 2);
    }
    show('memory', { 'idle sandbox MiB (mean)': mib.reduce((a, b) => a + b, 0) / mib.length, 'max MiB': Math.max(...mib) });
  } finally {
    await server.close();
  }
}

const all: Record<string, () => Promise<void>> = {
  'ready-cold': () => ready(false),
  'ready-warm': () => ready(true),
  echo: echoAndThroughput,
  green,
  memory,
};
const chosen = process.argv.slice(2).filter((a) => a in all);
console.log(`vethlab benchmarks on ${os.cpus().length} cores, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, ${os.cpus()[0]?.model ?? ''}`);
for (const name of chosen.length ? chosen : Object.keys(all)) await all[name]!();
mkdirSync(path.join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(path.join(import.meta.dirname, 'results/latest.json'), JSON.stringify({ at: new Date().toISOString(), results }, null, 2));
