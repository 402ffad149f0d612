/**
 * Load driver: N learners at once over the real HTTP API and WebSocket, as
 * the page does. Each starts lesson 1's lab, waits for its prompt, types the
 * lab's reference solution command by command at a human pace (about 12
 * keys a second, a short pause between commands) and waits for every task
 * to turn green. Prints, per N: sessions finished, time to prompt (p50/p95),
 * command-to-green latency (p95), keystroke echo under load (p50/p99), peak
 * memory of the lab-server and of the engine, CPU. Bounded: every learner
 * gives up after 6 minutes.
 *
 *   npm run load -- 10 25 50
 *   npm run load -- 25 --warm      (a pool of N booted before the learners arrive)
 *   npm run load -- 10 --swarm     (the same, on a three-node swarm made on this
 *                                   machine, test/support/swarm.ts: the mechanics of
 *                                   placement, not the capacity of three machines)
 *   npm run load -- 25 50 --room   (a workshop: the instructor creates a room of N seats,
 *                                   which sizes the warm pool; the dashboard is open while
 *                                   N learners join by code and work. Adds the dashboard's
 *                                   update latency and what the dashboard costs the server)
 */
import { readFileSync, readdirSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LabCatalog } from '../lab-server/labs/catalog';
import type { TaskStatus } from '../protocol/lab';
import { Learner, plain, type TerminalConnection } from '../test/support/terminal-client';
import { startTestServer } from '../test/support/lab-server';
import { Staff, type DashboardClient } from '../test/support/room-client';
import type { RoomInfo } from '../protocol/room';
import { CpuAttribution } from './cpu-attribution';
import { sweep } from './harness';
import { TestSwarm } from '../test/support/swarm';

const KEY_MS = 80;
/** The OSC the sandbox's bashrc prints when a command finishes (terminal-slot.ts). */
const PROMPT_MARK = '\x1b]6973;vethlab;prompt\x07';
const WARM = process.argv.includes('--warm');
const SWARM = process.argv.includes('--swarm');
let swarm: TestSwarm | undefined;
const ROOM = process.argv.includes('--room');
const PAUSE_MS = 1500;
const LEARNER_LIMIT_MS = 6 * 60_000;

const pct = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resident memory (MiB) of processes whose command name matches. */
function rssOf(names: string[]): number {
  let kb = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (!names.includes(comm)) continue;
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      // gone
    }
  }
  return kb / 1024;
}

interface LearnerResult {
  finished: boolean;
  promptMs?: number;
  greenMs: number[];
  /** From the prompt coming back (the command done) to green: the checking alone, without the command's own run time. */
  greenAfterPromptMs: number[];
  echoMs: number[];
  /** Terminal sockets dropped and reopened. */
  reconnects: number;
  error?: string;
  screenTail?: string;
  /** Tasks still open when the learner gave up, each with the check's last reason. */
  openTasks?: string[];
}

/** Types a command at a human pace; `beforeEnter` runs just before Enter (a pass that landed while typing belongs to the previous command). */
async function typeCommand(term: TerminalConnection, command: string, echoMs: number[], beforeEnter: () => void = () => {}): Promise<number> {
  for (const ch of command) {
    const before = term.bytes;
    const t0 = performance.now();
    term.type(ch);
    // The echo of a key is the next output; measure it, but keep typing at a human pace.
    const echoed = term.waitFor(() => term.bytes > before || undefined, 5000, 'echo').then(
      () => echoMs.push(performance.now() - t0),
      () => {},
    );
    await Promise.race([echoed, sleep(KEY_MS)]);
    await sleep(Math.max(0, KEY_MS - (performance.now() - t0)));
  }
  beforeEnter();
  const sent = performance.now();
  term.type('\r');
  return sent;
}

/** --room: when each learner's page was told a task passed ("name/task" -> performance.now()). */
const learnerSawPass = new Map<string, number>();

function watchPasses(term: TerminalConnection, name: string): void {
  term.ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    const at = performance.now();
    const msg = JSON.parse(data.toString()) as { type: string; tasks?: TaskStatus[] };
    if (msg.type !== 'tasks') return;
    for (const t of msg.tasks ?? []) if (t.status === 'passed' && !learnerSawPass.has(`${name}/${t.id}`)) learnerSawPass.set(`${name}/${t.id}`, at);
  });
}

async function oneLearner(baseUrl: string, labId: string, commands: string[], taskIds: string[], room?: { code: string; name: string }): Promise<LearnerResult> {
  const result: LearnerResult = { finished: false, greenMs: [], greenAfterPromptMs: [], echoMs: [], reconnects: 0 };
  const deadline = Date.now() + LEARNER_LIMIT_MS;
  const learner = new Learner(baseUrl);
  let term: TerminalConnection | undefined;
  try {
    const t0 = performance.now();
    if (room) {
      const joined = await learner.request('POST', '/api/rooms/join', room);
      if (joined.status !== 200) throw new Error(`join: ${joined.status} ${JSON.stringify(joined.json)}`);
    }
    let session;
    for (;;) {
      const r = await learner.request('POST', '/api/sessions', { lab: labId });
      if (r.status === 201) {
        session = r.json as { sessionId: string };
        break;
      }
      if ((r.status === 503 && (r.json as { code: string }).code === 'full') || Date.now() > deadline) {
        if (Date.now() > deadline) throw new Error('queued until the deadline');
        await sleep(2000);
        continue;
      }
      throw new Error(`start: ${r.status} ${JSON.stringify(r.json)}`);
    }
    const sessionId = session.sessionId;
    term = await learner.openTerminal(sessionId);
    if (room) watchPasses(term, room.name);
    // A dropped socket is reopened where its output stopped, as the page does
    // (the server's heartbeat drops one that does not answer in time).
    const reopen = async () => {
      result.reconnects++;
      term = await learner.openTerminal(sessionId, { lastSeq: term!.seq });
      if (room) watchPasses(term, room.name);
      await term.waitForReady(60_000);
    };
    const waitOn = async <T>(predicate: () => T | undefined | false, ms: number, what: string): Promise<T> => {
      const until = Date.now() + ms;
      for (;;) {
        try {
          return await term!.waitFor(predicate, Math.max(1, until - Date.now()), what);
        } catch (err) {
          if (term!.closeCode === undefined || Date.now() >= until) throw err;
          await reopen();
        }
      }
    };
    await waitOn(() => /root@sandbox:~# $/.test(plain(term!.output.slice(-200))) || undefined, 120_000, 'prompt');
    result.promptMs = performance.now() - t0;
    const passed = () => {
      const m = [...term!.messages].reverse().find((x) => x.type === 'tasks');
      return new Set(m && m.type === 'tasks' ? m.tasks.filter((t: TaskStatus) => t.status === 'passed').map((t) => t.id) : []);
    };
    for (const command of commands) {
      if (term.closeCode !== undefined) await reopen();
      let before = passed();
      let from = term.output.length;
      const reconnectsBefore = result.reconnects;
      let sent = await typeCommand(term, command, result.echoMs, () => {
        before = passed();
        from = term!.output.length;
      });
      if (term.closeCode !== undefined) {
        // Dropped while typing: clear the half-typed line and type it again.
        await reopen();
        term.type('\x15');
        from = term.output.length;
        sent = await typeCommand(term, command, []);
      }
      // The shell's prompt mark after Enter: the command is done.
      let promptAt: number | undefined;
      const prompted = term.waitFor(() => term!.output.indexOf(PROMPT_MARK, from) >= 0 || undefined, 60_000, 'prompt mark').then(
        () => (promptAt = performance.now()),
        () => {},
      );
      // A command that completes a task: time until the page is told it passed.
      const newly = await waitOn(() => (passed().size > before.size ? passed().size : undefined), 20_000, 'green').then(
        () => performance.now(),
        () => undefined,
      );
      // Timings across a reconnect measure the reconnect: left out.
      if (newly !== undefined && result.reconnects === reconnectsBefore) {
        result.greenMs.push(newly - sent);
        await Promise.race([prompted, sleep(2000)]);
        // Green before the prompt came back (a timer run mid-command) took no checking time after it.
        result.greenAfterPromptMs.push(promptAt === undefined ? newly - sent : Math.max(0, newly - promptAt));
      }
      await sleep(PAUSE_MS);
      if (Date.now() > deadline) throw new Error('ran out of time');
    }
    await waitOn(() => taskIds.every((t) => passed().has(t)) || undefined, Math.max(1000, deadline - Date.now()), 'all tasks');
    result.finished = true;
    await learner.endSession(session.sessionId);
  } catch (err) {
    result.error = (err as Error).message.split('\n')[0];
    // What the learner's screen ended with tells why (a failed command, a stuck check).
    if (term) result.screenTail = plain(term.output.slice(-600)).trim().split('\n').slice(-6).join(' | ');
    // Which checks held the learner, and why (a check that timed out under load reads "check-timeout").
    const last = term && [...term.messages].reverse().find((x) => x.type === 'tasks');
    if (last && last.type === 'tasks') {
      const reason = (t: TaskStatus) => (t.reason ? ('key' in t.reason ? t.reason.key : t.reason.text.slice(0, 40)) : t.blocked ? 'blocked' : 'no result yet');
      result.openTasks = last.tasks.filter((t) => t.status !== 'passed').map((t) => `${t.id}: ${reason(t)}`);
    }
  } finally {
    term?.close();
  }
  return result;
}

/** Occurrences of each value, most frequent first. */
function count(values: string[]): [string, number][] {
  const m = new Map<string, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return [...m].sort((a, b) => b[1] - a[1]);
}

async function run(n: number, labId: string) {
  const lab = LabCatalog.load().get(labId)!;
  // One solution step may hold several commands joined by &&; type each step as one line.
  const commands = lab.solution.filter((s) => s.run).map((s) => s.run!.trim().replace(/\s*\n\s*/g, '; '));
  // --warm: the instructor starts the server ahead with a pool for the whole room, as the README advises.
  // --room: the room's seats size the pool (before its start), not the server's setting.
  const poolSize = ROOM ? 0 : WARM ? n : 2;
  const server = await startTestServer({ ...(swarm ? { VETHLAB_SWARM: swarm.managerEndpoint } : {}), VETHLAB_POOL_SIZE: String(poolSize), VETHLAB_MAX_SANDBOXES: String(n + Math.max(poolSize, 2)), VETHLAB_STARTS_PER_LEARNER: '5', VETHLAB_STARTS_PER_ADDRESS: String(5 * n), VETHLAB_MIN_FREE_MEMORY: '256m' });
  learnerSawPass.clear();
  const dashboardSawPass = new Map<string, number>();
  let dashboard: DashboardClient | undefined;
  let dashboardBytes = 0;
  let room: RoomInfo | undefined;
  if (ROOM) {
    const instructor = await Staff.signIn(server.url, server.instructorToken);
    room = await instructor.createRoom({ name: `load ${n}`, lessons: [labId], startsAt: new Date().toISOString(), endsAt: new Date(Date.now() + 3_600_000).toISOString(), seats: n });
    dashboard = await instructor.openDashboard(room.code);
    dashboard.ws.on('message', (data) => (dashboardBytes += (data as Buffer).length));
    dashboard.onRow = (row, at) => {
      for (const [key, cell] of Object.entries(row.cells)) {
        const k = `${row.name}/${key.split('/')[1]}`;
        if (cell.status === 'passed' && !dashboardSawPass.has(k)) dashboardSawPass.set(k, at);
      }
    };
  }
  if (WARM) {
    const t = performance.now();
    while (server.pool.size < n) await sleep(500);
    console.log(`pool of ${n} ready after ${((performance.now() - t) / 1000).toFixed(0)} s`);
  }
  let peakServer = 0;
  let peakEngine = 0;
  const cpu0 = process.cpuUsage();
  const load: number[] = [];
  // By component only on one engine (cgroups under /vethlab); under --swarm, where the sandboxes went instead.
  const attribution = swarm ? undefined : await CpuAttribution.begin(server.engine.docker, server.engine.ownLabel.split('=')[1]!);
  const placement = new Map<string, number>();
  const onReady = (session: { hosts: Map<string, { node?: string | undefined }> }) => {
    for (const h of session.hosts.values()) {
      const name = swarm?.nodes.find((x) => x.id === h.node)?.name ?? h.node ?? '?';
      placement.set(name, (placement.get(name) ?? 0) + 1);
    }
  };
  if (swarm) server.sessions.on('ready', onReady);
  const sampler = setInterval(() => {
    peakServer = Math.max(peakServer, process.memoryUsage().rss / 1024 ** 2);
    peakEngine = Math.max(peakEngine, rssOf(['dockerd', 'containerd']));
    load.push(os.loadavg()[0]!);
    attribution?.sample();
  }, 500);
  const t0 = Date.now();
  try {
    // Learners arrive over 10 s, as a room does when told to start.
    const results = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        await sleep((i * 10_000) / n);
        return oneLearner(server.url, labId, commands, lab.tasks.map((t) => t.id), room ? { code: room.code, name: `learner-${i}` } : undefined);
      }),
    );
    const wall = (Date.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuBy: Record<string, number> = attribution?.report() ?? {};
    const all = (k: 'greenMs' | 'echoMs' | 'greenAfterPromptMs') => results.flatMap((r) => r[k]);
    const prompts = results.flatMap((r) => (r.promptMs !== undefined ? [r.promptMs] : []));
    // Dashboard latency: from the learner's page being told a task passed to the dashboard's row saying so.
    const dashLag = [...learnerSawPass].flatMap(([k, at]) => (dashboardSawPass.has(k) ? [dashboardSawPass.get(k)! - at] : []));
    dashboard?.close();
    return {
      room: ROOM
        ? {
            passesSeen: learnerSawPass.size,
            onDashboard: dashLag.length,
            lagP50: pct(dashLag, 50),
            lagP95: pct(dashLag, 95),
            lagMax: Math.max(...dashLag),
            ...server.rooms.stats,
            dashboardMessages: dashboard?.messages.length ?? 0,
            dashboardKiB: dashboardBytes / 1024,
          }
        : undefined,
      n,
      finished: results.filter((r) => r.finished).length,
      promptP50: pct(prompts, 50),
      promptP95: pct(prompts, 95),
      greenP50: pct(all('greenMs'), 50),
      greenP95: pct(all('greenMs'), 95),
      greenAfterPromptP50: pct(all('greenAfterPromptMs'), 50),
      greenAfterPromptP95: pct(all('greenAfterPromptMs'), 95),
      cpuSecondsBy: cpuBy,
      echoP50: pct(all('echoMs'), 50),
      echoP99: pct(all('echoMs'), 99),
      peakServerMiB: peakServer,
      peakEngineMiB: peakEngine,
      serverCpuPct: ((cpu.user + cpu.system) / 1e6 / wall) * 100,
      peakLoad1: Math.max(...load),
      wallSec: wall,
      reconnects: results.reduce((a, r) => a + r.reconnects, 0),
      placement: Object.fromEntries([...placement].sort()),
      errors: [...new Set(results.flatMap((r) => (r.error ? [r.error] : [])))],
      screens: results.flatMap((r) => (r.screenTail ? [r.screenTail] : [])),
      openTasks: count(results.flatMap((r) => r.openTasks ?? [])),
    };
  } finally {
    clearInterval(sampler);
    await server.close();
    const left = swarm ? (await Promise.all(swarm.nodes.map((x) => sweep(x.docker, server.engine.ownLabel).catch(() => 0)))).reduce((a, b) => a + b, 0) : await sweep(server.engine.docker, server.engine.ownLabel);
    if (left) console.error(`load: removed ${left} container(s) the server left behind`);
  }
}

const sizes = process.argv.slice(2).map(Number).filter((x) => x > 0);
const rows = [];
if (SWARM) {
  const t = performance.now();
  swarm = await TestSwarm.start();
  console.log(`swarm of ${swarm.nodes.length} node engines on this machine ready after ${((performance.now() - t) / 1000).toFixed(0)} s`);
}
try {
for (const n of sizes.length ? sizes : [10]) {
  console.log(`\n== ${n} learners at once${WARM ? ', pool warmed ahead' : ''}${SWARM ? ', on a three-node swarm' : ''}${ROOM ? ', in one workshop room with the dashboard open' : ''} ==`);
  const r = await run(n, 'network-stack');
  if (r.room) {
    const q = r.room;
    console.log(`room               dashboard open throughout; ${q.onDashboard}/${q.passesSeen} task passes seen on it`);
    console.log(`dashboard latency  p50 ${q.lagP50.toFixed(1)} ms   p95 ${q.lagP95.toFixed(1)} ms   max ${q.lagMax.toFixed(1)} ms   (after the learner's own page was told)`);
    console.log(`dashboard cost     ${q.rowsComputed} rows computed in ${q.rowMs.toFixed(0)} ms of server time (${(q.rowMs / Math.max(1, q.rowsComputed)).toFixed(2)} ms each), ${q.rowsSent} sent, ${q.dashboardMessages} messages / ${q.dashboardKiB.toFixed(0)} KiB to the page`);
  }
  rows.push(r);
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');
  console.log(`finished ${r.finished}/${r.n} in ${r.wallSec.toFixed(0)} s   (terminal sockets dropped and reopened: ${r.reconnects})`);
  console.log(`time to prompt     p50 ${f(r.promptP50)} ms   p95 ${f(r.promptP95)} ms`);
  console.log(`command -> green   p50 ${f(r.greenP50)} ms   p95 ${f(r.greenP95)} ms   (from the prompt's return: p50 ${f(r.greenAfterPromptP50)} ms   p95 ${f(r.greenAfterPromptP95)} ms)`);
  console.log(`keystroke echo     p50 ${r.echoP50.toFixed(1)} ms   p99 ${r.echoP99.toFixed(1)} ms`);
  console.log(`peak memory        lab-server ${f(r.peakServerMiB)} MiB   dockerd+containerd ${f(r.peakEngineMiB)} MiB`);
  console.log(`cpu                lab-server ${r.serverCpuPct.toFixed(0)}% of one core   peak load(1m) ${r.peakLoad1.toFixed(1)} on ${os.cpus().length} cores`);
  const totalCpu = Object.values(r.cpuSecondsBy).reduce((a, b) => a + b, 0);
  if (!SWARM) console.log(`cpu by component   (${totalCpu.toFixed(0)} CPU seconds in ${r.wallSec.toFixed(0)} s; the lab-server's share includes this driver's ${r.n} clients)`);
  for (const [component, seconds] of Object.entries(r.cpuSecondsBy).sort((a, b) => b[1] - a[1])) {
    console.log(`  ${component.padEnd(44)} ${seconds.toFixed(1).padStart(7)} s  ${((100 * seconds) / Math.max(totalCpu, 1e-9)).toFixed(0).padStart(3)}%`);
  }
  if (SWARM) console.log(`sandboxes by node  ${Object.entries(r.placement).map(([k, v]) => `${k} ${v}`).join('   ')}   (learners' sandboxes, by the node Swarm chose)`);
  if (r.errors.length) console.log(`errors: ${r.errors.join(' | ')}`);
  for (const screen of r.screens.slice(0, 3)) console.log(`  a stuck learner's screen ended: ${screen}`);
  for (const [task, k] of r.openTasks) console.log(`  left open at the deadline, ${k} learner(s): ${task}`);
}
} finally {
  await swarm?.dispose();
}
mkdirSync(path.join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(path.join(import.meta.dirname, 'results/load.json'), JSON.stringify({ at: new Date().toISOString(), machine: `${os.cpus().length} cores, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB`, rows }, null, 2));
