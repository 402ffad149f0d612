/**
 * `npm run lab -- <command>`: lab tools for authors and instructors.
 *   test [lab...]           content test: fresh -> all fail, solution -> all pass, faults caught
 *   grade <lab> [--session ID]
 *                           run the lab's checks now against live learner sandboxes
 *                           (of the server whose data folder is VETHLAB_DATA_DIR) and
 *                           print each learner's tasks and stored grade
 *   grade --room CODE [--csv | --json]
 *                           a workshop room's grades from the store: per learner and
 *                           task, passed at, attempts, hints and the evidence the
 *                           checker saw when it passed (as the dashboard exports them)
 *   validate                load every lab file and report mistakes
 *   sandbox [lab]           start an authoring sandbox (with the lab's setup) and print
 *                           how to get a shell in it: `docker exec -it NAME bash`
 *   clean                   remove every authoring sandbox
 */
import path from 'node:path';
import { pino } from 'pino';
import { reasonText } from '../protocol/reasons';
import { combine } from '../lab-server/checks/compile';
import { CheckExecutor, compileLab } from '../lab-server/checks/lab-runner';
import { loadConfig } from '../lab-server/config';
import { LabCatalog } from '../lab-server/labs/catalog';
import { contentTest } from '../lab-server/labs/content-test';
import { grade } from '../lab-server/labs/grading';
import { connectDocker, pingEngine } from '../lab-server/sandbox/docker';
import { sandboxImageTag } from '../lab-server/sandbox/image';
import { SandboxEngine, type Sandbox } from '../lab-server/sandbox/sandbox-engine';
import { Store } from '../lab-server/store/store';
import { createLabSandboxes } from '../lab-server/labs/steps';
import { RoomCode } from '../protocol/room';
import { Identity, loadOrCreateSecret } from '../lab-server/api/identity';
import { roomGrades } from '../lab-server/rooms/room-grades';
import { roomGradesCsv } from '../lab-server/rooms/room-report';
import { RoomStore, roomInfo } from '../lab-server/rooms/room-store';

const [command, ...args] = process.argv.slice(2);
const log = pino({ level: 'warn' });

async function engineFor(instance: string): Promise<SandboxEngine> {
  const docker = connectDocker();
  await pingEngine(docker);
  const config = loadConfig();
  return new SandboxEngine(docker, { image: sandboxImageTag(), instance, limits: config.limits, log });
}

async function test(ids: string[]): Promise<number> {
  const catalog = LabCatalog.load();
  const labs = ids.length ? ids.map((id) => catalog.get(id) ?? fail(`no lab "${id}"`)) : catalog.all();
  const engine = await engineFor(`labtest-${process.pid}`);
  let failed = 0;
  for (const lab of labs) {
    const started = Date.now();
    const report = await contentTest(engine, lab);
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`${report.ok ? '\u2714' : '\u2718'} ${lab.id} (${lab.tasks.length} tasks, ${lab.faults.length} faults, ${secs} s)`);
    for (const t of lab.tasks) console.log(`    task ${t.id.padEnd(22)} turns green at solution step ${report.stepOf[t.id] ?? 'never'}`);
    for (const n of report.shared) console.log(`    shared: ${n}`);
    for (const n of report.regressions) console.log(`    red again: ${n}`);
    if (report.combinations.length) console.log(`    fault combinations: ${report.combinations.map((c) => c.join('+')).join(', ')}`);
    for (const phase of report.phases) console.log(`    ${phase.phase.padEnd(34)} passed: ${phase.passed.join(', ') || '-'}`);
    for (const p of report.problems) console.log(`    problem: ${p}`);
    if (!report.ok) failed++;
  }
  console.log(failed ? `${failed} of ${labs.length} labs failed` : `all ${labs.length} labs pass`);
  return failed ? 1 : 0;
}

async function gradeNow(labId: string | undefined, sessionFilter: string | undefined): Promise<number> {
  if (!labId) fail('usage: npm run lab -- grade <lab> [--session ID]');
  const catalog = LabCatalog.load();
  const lab = catalog.get(labId) ?? fail(`no lab "${labId}"`);
  const config = loadConfig();
  const store = new Store(path.join(config.dataDir, 'vethlab.sqlite'));
  const engine = await engineFor(config.instance);
  const executor = new CheckExecutor(engine);
  const running = new Map((await engine.list()).map((s) => [s.containerId, s]));
  const sessions = store.liveSessions().filter((s) => s.lab === lab.id && (!sessionFilter || s.id === sessionFilter));
  if (!sessions.length) console.log(`No live session of lab ${lab.id} in ${config.dataDir}.`);
  const compiled = compileLab(lab);
  for (const s of sessions) {
    const hosts = new Map<string, Sandbox>();
    for (const h of store.hostsOf(s.id)) {
      const sb = running.get(h.containerId);
      if (sb) hosts.set(h.host, sb);
    }
    const answers = new Map(store.tasks(s.learner, lab.id).filter((t) => t.answer).map((t) => [t.task, t.answer!]));
    const jobs = compiled.flatMap((c) => c.leaves.map((leaf) => ({ leaf, timeoutSec: c.task.timeout, answer: answers.get(c.task.id) })));
    const results = await executor.evaluate(hosts, jobs);
    console.log(`session ${s.id} (learner ${s.learner.slice(0, 8)}…)`);
    let offset = 0;
    for (const c of compiled) {
      const verdict = combine(c.tree, results.slice(offset, offset + c.leaves.length));
      offset += c.leaves.length;
      console.log(`  ${verdict.ok ? '\u2714' : '\u2718'} ${c.task.id}${verdict.reason ? ` - ${reasonText(verdict.reason, 'en')}` : ''}`);
    }
    const progress = store.labProgress(s.learner, lab.id);
    if (progress) {
      const g = grade(lab, progress, store.tasks(s.learner, lab.id), { learnerId: s.learner });
      console.log(`  stored grade: ${g.tasksPassed}/${g.tasksTotal} tasks, ${g.hintsUsed} hints, score ${g.score}${g.secondsTaken ? `, ${g.secondsTaken} s` : ''}`);
    }
  }
  store.close();
  return 0;
}

/** A workshop room's grades, read from the store of the server whose data folder is VETHLAB_DATA_DIR. */
function gradeRoom(rawCode: string | undefined, format: 'text' | 'csv' | 'json'): number {
  const code = RoomCode.safeParse(rawCode ?? '');
  if (!code.success) fail('usage: npm run lab -- grade --room CODE [--csv | --json]');
  const config = loadConfig();
  const store = new Store(path.join(config.dataDir, 'vethlab.sqlite'));
  const rooms = new RoomStore(store);
  const row = rooms.room(code.data) ?? fail(`no room ${code.data} in ${config.dataDir}`);
  const identity = new Identity(loadOrCreateSecret(path.join(config.dataDir, 'server-secret')), '');
  const g = roomGrades({ store, rooms, catalog: LabCatalog.load(), pseudonym: (l) => identity.pseudonym(l) }, roomInfo(row, rooms.memberCount(row.code)));
  store.close();
  if (format === 'csv') {
    process.stdout.write(roomGradesCsv(g));
    return 0;
  }
  if (format === 'json') {
    console.log(JSON.stringify(g, null, 2));
    return 0;
  }
  console.log(`room ${g.room.code} "${g.room.name}" (${g.room.state}), ${g.members.length} of ${g.room.seats} seats`);
  for (const m of g.members) {
    console.log(`${m.learnerId} ${m.name}`);
    for (const lg of g.labGrades.filter((x) => x.learnerId === m.learnerId)) {
      console.log(`  ${lg.lab}: ${lg.tasksPassed}/${lg.tasksTotal} tasks, ${lg.hintsUsed} hints, score ${lg.score}`);
      for (const t of g.tasks.filter((x) => x.learnerId === m.learnerId && x.lab === lg.lab)) {
        console.log(`    ${t.passedAt ? '\u2714' : '\u2718'} ${t.task.padEnd(22)} ${t.passedAt ?? 'not passed'}  attempts ${t.attempts}, hints ${t.hints}`);
        for (const e of t.evidence ?? []) console.log(`        ${e.check}${Object.keys(e.facts).length ? ' ' + JSON.stringify(e.facts) : ''}`);
      }
    }
  }
  return 0;
}

/** A sandbox for writing lessons: real output to copy into the prose. */
async function authoringSandbox(labId: string | undefined): Promise<number> {
  const lab = labId ? (LabCatalog.load().get(labId) ?? fail(`no lab "${labId}"`)) : { id: '', hosts: ['sandbox'], setup: [] };
  const engine = await engineFor('author');
  const hosts = await createLabSandboxes(engine, lab, { sessionId: `author${Date.now().toString(36)}`, learner: 'author', ttlMs: 4 * 3_600_000 });
  for (const s of hosts.values()) console.log(`${s.host}: docker exec -it ${s.name} bash`);
  console.log('Remove with: npm run lab -- clean');
  return 0;
}

function fail(message: string): never {
  console.error(`vethlab lab: ${message}`);
  process.exit(2);
}

async function main(): Promise<number> {
  switch (command) {
    case 'test':
      return test(args);
    case 'grade': {
      const r = args.indexOf('--room');
      if (r >= 0) return gradeRoom(args[r + 1], args.includes('--csv') ? 'csv' : args.includes('--json') ? 'json' : 'text');
      const i = args.indexOf('--session');
      return gradeNow(args.find((a, j) => !a.startsWith('--') && j !== i + 1), i >= 0 ? args[i + 1] : undefined);
    }
    case 'sandbox':
      return authoringSandbox(args[0]);
    case 'clean': {
      const engine = await engineFor('author');
      const all = await engine.list();
      await Promise.all(all.map((s) => engine.remove(s)));
      console.log(`removed ${all.length} authoring sandbox(es)`);
      return 0;
    }
    case 'validate':
      console.log(`${LabCatalog.load().all().length} labs load without errors`);
      return 0;
    default:
      fail('commands: test [lab...], grade <lab> [--session ID], grade --room CODE [--csv | --json], validate');
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => fail((err as Error).message),
);
