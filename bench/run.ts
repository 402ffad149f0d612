/**
 * `npm run bench [names...]`: the figures behind vethlab's targets, measured
 * on this machine against the real Docker engine, a real in-process
 * lab-server (test-* instance, own temporary store) and the real HTTP API and
 * WebSocket. Figures, not pass/fail: targets are printed next to them for
 * comparison. Prints a table and writes bench/results/latest.json.
 *
 *   ready-cold   POST /api/sessions -> prompt, pool empty; SandboxEngine.create alone  (n=5)
 *   ready-warm   POST /api/sessions -> prompt, from the warm pool                     (n=5, target p50 < 150 ms)
 *   echo         keystroke -> its echo over the WebSocket                              (n=200, target p99 < 10 ms)
 *   throughput   100 MB of output through the terminal path, lab-server memory         (target >= 20 MB/s)
 *   memory       memory of an idle sandbox                                             (n=3)
 *   *-exec       echo and throughput with terminal bytes through `docker exec` instead of dtach's socket
 *   *-no-userns  ready-cold, ready-warm and memory again on an engine without user
 *                namespaces (bench/rootful-engine.ts): the cost of containment, side by side
 *   green        command -> task green on the page                                     (n=5, target < 1 s)
 *
 * Every section closes its server (which removes its sandboxes) and sweeps
 * anything left with its instance label, also on error and on Ctrl-C. The
 * machine's CPU use during each section is printed with it: on a shared
 * machine, other work moves every figure.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { engineCliEnv } from '../lab-server/sandbox/docker';
import path from 'node:path';
import { echo, echoIn } from './echo';
import { green } from './green';
import { closeAll, leftovers, type Section, type SectionResult } from './harness';
import { memory, memoryIn } from './memory';
import { readyCold, readyColdIn, readyWarm, readyWarmIn } from './ready';
import { rootfulEnv } from './rootful-engine';
import { formatNumber, formatTarget, renderTable } from './stats';
import { throughput, throughputIn } from './throughput';

/** The same sandboxes without user namespaces: what containment costs, measured in the same run. */
const noUserns = { suffix: '-no-userns', title: 'WITHOUT user namespaces (the engine before containment, for comparison)', env: rootfulEnv };

/** Terminal bytes through `docker exec` (the path for remote engines) instead of dtach's socket. */
const viaExec = { suffix: '-exec', title: 'through docker exec (the path before, and for remote engines)', env: async () => ({ VETHLAB_TERMINAL_PATH: 'exec' }) };

const SECTIONS: Section[] = [
  readyCold,
  readyColdIn(noUserns),
  readyWarm,
  readyWarmIn(noUserns),
  echo,
  echoIn(viaExec),
  throughput,
  throughputIn(viaExec),
  memory,
  memoryIn(noUserns),
  green,
];

interface Outcome {
  name: string;
  title: string;
  seconds: number;
  /** How busy the whole machine was during the section (every process, all cores), and its load average after. */
  machineCpuBusyPct: number;
  loadAverage1m: number;
  result?: SectionResult;
  error?: string;
}

/** Busy and total CPU time of the machine so far (/proc/stat). */
function cpuTimes(): { busy: number; total: number } {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    return { busy: total - fields[3]! - fields[4]!, total };
  } catch {
    return { busy: NaN, total: NaN };
  }
}

function machine(): Record<string, string | number> {
  let dockerVersion = '?';
  try {
    dockerVersion = execFileSync('docker', ['version', '--format', '{{.Server.Version}}'], { encoding: 'utf8', timeout: 10_000, env: engineCliEnv() }).trim();
  } catch {
    // reported as ?
  }
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '?',
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    loadAverage1m: Math.round(os.loadavg()[0]! * 100) / 100,
    node: process.version,
    docker: dockerVersion,
  };
}

function table(outcomes: Outcome[]): string {
  const rows: string[][] = [];
  for (const o of outcomes) {
    if (o.error) {
      rows.push([o.name, `ERROR: ${o.error.split('\n')[0]!.slice(0, 120)}`, '', '', '']);
      continue;
    }
    for (const f of o.result!.figures) {
      const mark = f.meetsTarget === undefined ? '' : f.meetsTarget ? ' (met)' : ' (missed)';
      rows.push([o.name, f.metric, formatNumber(f.value), f.unit, f.target ? formatTarget(f.target, f.unit) + mark : '']);
    }
    rows.push([o.name, `(machine CPU busy during section, all processes)`, formatNumber(o.machineCpuBusyPct), '%', '']);
  }
  return renderTable(['section', 'metric', 'value', 'unit', 'target'], rows, [false, false, true, false, false]);
}

async function main(): Promise<number> {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const unknown = args.filter((a) => !SECTIONS.some((s) => s.name === a));
  if (unknown.length) {
    console.error(`bench: unknown benchmark(s) ${unknown.join(', ')}; choose from ${SECTIONS.map((s) => s.name).join(', ')}`);
    return 2;
  }
  const chosen = args.length ? SECTIONS.filter((s) => args.includes(s.name)) : SECTIONS;
  const host = machine();
  console.log(`vethlab benchmarks: ${host.cpus} cores (${host.cpuModel}), ${host.memoryGiB} GiB, node ${host.node}, Docker ${host.docker}, load average ${host.loadAverage1m}`);

  const outcomes: Outcome[] = [];
  for (const section of chosen) {
    console.log(`\n== ${section.name}: ${section.title}`);
    const t0 = performance.now();
    const cpu0 = cpuTimes();
    const outcome: Outcome = { name: section.name, title: section.title, seconds: 0, machineCpuBusyPct: NaN, loadAverage1m: NaN };
    try {
      outcome.result = await section.run();
      for (const f of outcome.result.figures) {
        console.log(`   ${f.metric.padEnd(56)} ${formatNumber(f.value).padStart(8)} ${f.unit}${f.target ? `   (target ${formatTarget(f.target, f.unit)})` : ''}`);
      }
      for (const n of outcome.result.notes ?? []) console.log(`   note: ${n}`);
    } catch (err) {
      outcome.error = (err as Error).stack ?? String(err);
      console.error(`   failed: ${(err as Error).message}`);
    }
    outcome.seconds = (performance.now() - t0) / 1000;
    const cpu1 = cpuTimes();
    outcome.machineCpuBusyPct = ((cpu1.busy - cpu0.busy) / (cpu1.total - cpu0.total)) * 100;
    outcome.loadAverage1m = os.loadavg()[0]!;
    console.log(`   (${outcome.seconds.toFixed(0)} s; machine CPU busy ${formatNumber(outcome.machineCpuBusyPct)}% of ${os.cpus().length} cores; load average ${outcome.loadAverage1m.toFixed(2)})`);
    outcomes.push(outcome);
  }

  const left = await leftovers();
  console.log(`\n${table(outcomes)}\n`);
  console.log(
    `Sandbox containers left behind by the benchmarks: ${left.ours}` +
      (left.anyVethlabSession ? `   (containers with a vethlab.session label on the engine, from any server: ${left.anyVethlabSession})` : ''),
  );

  const dir = path.join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'latest.json');
  const json = JSON.stringify(
    { at: new Date().toISOString(), machine: host, sections: outcomes, leftoverContainers: left.ours },
    (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v),
    2,
  );
  writeFileSync(file, json + '\n');
  console.log(`Results: ${path.relative(process.cwd(), file)}`);
  return outcomes.some((o) => o.error) || left.ours ? 1 : 0;
}

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    console.error(`\nbench: ${sig}; closing lab-servers and removing their sandboxes…`);
    void closeAll().finally(() => process.exit(130));
  });
}

process.exitCode = await main();
// Nothing should keep the process alive, but a stuck socket must not hang `npm run bench`.
setTimeout(() => process.exit(), 5000).unref();
