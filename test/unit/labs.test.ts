/**
 * Lab definitions and the check runner's logic, without an engine: schema
 * errors name file and field; faults are drawn per learner from a seed;
 * check trees combine leaves; the runner never overlaps itself and
 * coalesces triggers. (The primitives themselves are tested against real
 * sandboxes in test/integration and test/content.)
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PriorityLimiter } from '../../lab-server/limiter';
import { CheckExecutor, LabRunner } from '../../lab-server/checks/lab-runner';
import { combine, flatten, hostScript, leafCommand, parseResults, sq, type Leaf, type LeafResult } from '../../lab-server/checks/compile';
import { LabCatalog, LabFileError, parseLab } from '../../lab-server/labs/catalog';
import { drawFaults } from '../../lab-server/labs/lab-service';
import type { Lab } from '../../lab-server/labs/schema';
import type { Sandbox, SandboxEngine } from '../../lab-server/sandbox/sandbox-engine';
import { Store } from '../../lab-server/store/store';

const minimal = (extra = '') => `
id: demo
title: Demo
tasks:
  - id: one
    title: One
    check: { kind: netns, name: red }
solution:
  - run: ip netns add red
${extra}`;

function problems(text: string, file = 'docs/01-demo.lab.yaml'): string[] {
  try {
    parseLab(file, text);
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(LabFileError);
    return (err as LabFileError).problems;
  }
}

describe('lab files', () => {
  it('load every lab of the course', () => {
    expect(() => LabCatalog.load()).not.toThrow();
  });

  it('name the file and field of each mistake', () => {
    expect(problems(minimal())).toEqual([]);
    expect(problems('id: demo\ntitle: [unclosed')[0]).toMatch(/YAML syntax error at line/);
    expect(problems(minimal().replace('kind: netns', 'kind: nope'))).toEqual(['tasks.0.check: not a valid check (use all/any/not or a kind such as netns, link, address, route, ping, http, shell)']);
    expect(problems(minimal().replace('name: red }', 'name: red, colour: blue }'))[0]).toMatch(/^tasks\.0\.check/);
    expect(problems(minimal().replace('title: One', 'title: One\n    needs: [zero]'))).toEqual(['tasks.0.needs.0: needs unknown task "zero"']);
    expect(problems(minimal().replace('  - run: ip netns add red', '  - host: elsewhere\n    run: x'))).toEqual(['solution.0.host: unknown host "elsewhere" (lab hosts: sandbox)']);
    expect(problems(minimal('fault_count: 2'))).toEqual(['fault_count: draws 2 faults but only 0 are defined']);
    expect(problems(minimal('colour: blue'))).toEqual(['(top level): unknown field(s) colour']);
    expect(problems(minimal(), 'docs/01-other.lab.yaml')).toEqual(['id: is "demo" but the file name says "other"']);
    expect(problems(minimal().replace('id: one', 'id: One'))[0]).toMatch(/^tasks\.0\.id: a task id/);
  });
});

describe('faults drawn per learner', () => {
  const lab = parseLab(
    'docs/01-demo.lab.yaml',
    minimal(`faults:
${['a', 'b', 'c', 'd', 'e'].map((f) => `  - { id: ${f}, title: ${f}, inject: [{ run: "true" }], repair: [{ run: "true" }] }`).join('\n')}
fault_count: 2`),
  );

  it('are stable for one learner and differ between learners', () => {
    expect(drawFaults(lab, 'alice')).toEqual(drawFaults(lab, 'alice'));
    expect(drawFaults(lab, 'alice')).toHaveLength(2);
    const draws = new Set(Array.from({ length: 40 }, (_, i) => drawFaults(lab, `learner-${i}`).join(',')));
    expect(draws.size).toBeGreaterThan(5);
    expect(drawFaults({ ...lab, fault_count: 0 }, 'alice')).toEqual([]);
  });
});

describe('check trees', () => {
  const leaves: Leaf[] = [];
  const tree = flatten({ all: [{ kind: 'netns', name: 'red' }, { any: [{ kind: 'ping', from: { host: 'host-b' }, to: '10.0.0.1', expect: 'reply' }, { not: { kind: 'netns', name: 'blue' } }] }] }, 'host-a', leaves);
  const r = (ok: boolean, key = 'x'): LeafResult => ({ ok, ...(ok ? {} : { reason: { key, args: [] } }), facts: {} });

  it('run each leaf on its host', () => {
    expect(leaves.map((l) => l.host)).toEqual(['host-a', 'host-b', 'host-a']);
  });

  it('combine all / any / not and explain with the first failing leaf', () => {
    expect(combine(tree, [r(true), r(true), r(true)]).ok).toBe(true);
    expect(combine(tree, [r(false, 'first'), r(true), r(true)])).toEqual({ ok: false, reason: { key: 'first', args: [] } });
    // any: the ping fails, but not(netns blue) holds since blue is missing.
    expect(combine(tree, [r(true), r(false, 'ping'), r(false)]).ok).toBe(true);
    expect(combine(tree, [r(true), r(false, 'ping'), r(true)])).toEqual({ ok: false, reason: { key: 'ping', args: [] } });
  });

  it('quote every argument for bash and parse results by leaf', () => {
    expect(sq("it's")).toBe(`'it'\\''s'`);
    expect(leafCommand({ kind: 'netns', name: "x';reboot;'" })).toBe(`vl_netns name='x'\\'';reboot;'\\'''`);
    const script = hostScript([{ id: 0, command: 'vl_netns name=a', timeoutSec: 3 }]);
    expect(script).toContain('timeout -s KILL 3 bash -c');
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    const out = `<<<leaf 0 1 ${b64('@netns-missing|a\n')}>>>\n<<<leaf 1 0 ${b64('@@counter 7\n')}>>>\n<<<leaf 2 137 >>>\n`;
    const parsed = parseResults(out, [0, 1, 2, 3].map((id) => ({ id, command: '', timeoutSec: 1 })), new Map());
    expect(parsed.get(0)).toEqual({ ok: false, reason: { key: 'netns-missing', args: ['a'] }, facts: {} });
    expect(parsed.get(1)).toEqual({ ok: true, facts: { counter: 7 } });
    expect(parsed.get(2)!.reason).toEqual({ key: 'check-timeout', args: [] });
    expect(parsed.get(3)!.reason).toEqual({ key: 'check-error', args: ['no result'] });
  });

  it('never takes a result line out of a job’s own output (a learner’s text cannot forge one)', () => {
    // The output of job 0 carries what a learner could put in an HTTP body or a hosts file.
    const forged = '<<<leaf 1 0>>>\n<<<leaf 1 0 >>>\n';
    const out = `<<<leaf 0 1 ${Buffer.from(forged).toString('base64')}>>>\n<<<leaf 1 1 >>>\n`;
    const parsed = parseResults(out, [0, 1].map((id) => ({ id, command: '', timeoutSec: 1 })), new Map());
    expect(parsed.get(0)!.ok).toBe(false);
    expect(parsed.get(1)!.ok).toBe(false);
    // The job's output is base64 on its result line: nothing it prints starts a line of the script's own.
    expect(hostScript([{ id: 0, command: 'true', timeoutSec: 1 }])).toMatch(/base64 -w0\)>>>"/);
  });
});

/** An executor whose evaluations the test releases by hand: the runner's scheduling, observed. */
class GatedExecutor extends CheckExecutor {
  calls = 0;
  active = 0;
  maxActive = 0;
  pass = false;
  private gates: (() => void)[] = [];
  constructor() {
    super(undefined as unknown as SandboxEngine);
  }
  interactive: boolean[] = [];
  override async evaluate(_hosts: Map<string, Sandbox>, jobs: { leaf: Leaf }[], interactive = true): Promise<LeafResult[]> {
    this.calls++;
    this.interactive.push(interactive);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    await new Promise<void>((resolve) => this.gates.push(resolve));
    this.active--;
    return jobs.map(() => ({ ok: this.pass, ...(this.pass ? {} : { reason: { key: 'x', args: [] } }), facts: {} }));
  }
  release(): void {
    this.gates.shift()?.();
  }
  get waiting(): number {
    return this.gates.length;
  }
}

describe('LabRunner scheduling', () => {
  const lab: Lab = parseLab('docs/01-demo.lab.yaml', minimal().replace('solution:', `  - id: two\n    title: Two\n    needs: [one]\n    check: { kind: netns, name: blue }\nsolution:`));
  const tick = () => new Promise((r) => setImmediate(r));

  it('never overlaps itself and coalesces triggers during a run into one more run', async () => {
    const store = new Store(':memory:');
    const exec = new GatedExecutor();
    const runner = new LabRunner(lab, 'alice', new Map(), store, exec, pino({ level: 'silent' }));
    const first = runner.check('prompt');
    await tick();
    void runner.check('prompt');
    void runner.check('timer');
    const last = runner.check('prompt');
    await tick();
    expect(exec.calls).toBe(1);
    exec.release();
    await first;
    await tick();
    expect(exec.calls).toBe(2); // exactly one follow-up for three triggers
    exec.pass = true;
    exec.release();
    await last;
    expect(exec.maxActive).toBe(1);
    expect(runner.status('en').tasks.map((t) => t.status)).toEqual(['passed', 'pending']);
    expect(store.tasks('alice', 'demo').find((t) => t.task === 'one')!.passedAt).toBeTypeOf('number');
    // "two" opens once "one" passed.
    const again = runner.check('manual');
    await tick();
    exec.release();
    await again;
    expect(runner.status('en').tasks.map((t) => t.status)).toEqual(['passed', 'passed']);
    expect(runner.finished).toBe(true);
    runner.close();
  });

  it('runs an answer through the same no-overlap scheduling, and counts a wrong answer once', async () => {
    const quiz = parseLab('docs/01-demo.lab.yaml', minimal().replace('solution:', `  - id: q\n    title: Q\n    question: Which?\n    check: { kind: shell, run: 'test "$ANSWER" = red' }\nsolution:`));
    const store = new Store(':memory:');
    const exec = new GatedExecutor();
    const runner = new LabRunner(quiz, 'carol', new Map(), store, exec, pino({ level: 'silent' }));
    const run = runner.check('prompt');
    await tick();
    const answered = runner.answer('q', 'blue');
    await tick();
    expect(exec.calls).toBe(1); // the answer waits for the running check
    exec.release();
    await run;
    await tick();
    expect(exec.calls).toBe(2);
    const during = runner.check('prompt'); // a prompt during the answer's run waits for it
    await tick();
    expect(exec.active).toBe(1);
    exec.release();
    expect((await answered)?.status).toBe('failed');
    await tick();
    exec.release();
    await during;
    expect(exec.maxActive).toBe(1);
    // One wrong answer, one attempt: the prompt run that re-checked it counted none.
    expect(store.tasks('carol', 'demo').find((t) => t.task === 'q')!.attempts).toBe(1);
    runner.close();
  });

  it('paces timer runs by how long runs take, and runs them as background work', async () => {
    const store = new Store(':memory:');
    const exec = new GatedExecutor();
    const runner = new LabRunner(lab, 'bob', new Map(), store, exec, pino({ level: 'silent' }));
    expect(runner.timerDue(5000)).toBe(true);
    const run = runner.check('timer');
    await tick();
    expect(runner.timerDue(5000)).toBe(false); // running
    await new Promise((r) => setTimeout(r, 60));
    exec.release();
    await run;
    expect(exec.interactive).toEqual([false]);
    const now = Date.now();
    expect(runner.timerDue(5000, now + 1000)).toBe(false);
    expect(runner.timerDue(5000, now + 5100)).toBe(true);
    // A run that took 60 ms does not stretch a 100 ms period; one four times the period would.
    expect(runner.timerDue(100, now + 1000)).toBe(true);
    expect(runner.timerDue(10, now + 200)).toBe(false);
    // The learner's own runs are interactive.
    const prompt = runner.check('prompt');
    await tick();
    exec.release();
    await prompt;
    expect(exec.interactive).toEqual([false, true]);
    runner.close();
  });
});

describe('PriorityLimiter', () => {
  it('never runs more than its slots at once, and starts waiting interactive runs before background ones', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 4 }), fc.array(fc.record({ interactive: fc.boolean(), ms: fc.integer({ min: 0, max: 3 }) }), { minLength: 1, maxLength: 30 }), async (slots, runs) => {
        const limiter = new PriorityLimiter(slots);
        let active = 0;
        let peak = 0;
        const started: boolean[] = [];
        await Promise.all(
          runs.map((r) =>
            limiter.run(r.interactive, async () => {
              active++;
              peak = Math.max(peak, active);
              started.push(r.interactive);
              await new Promise((done) => setTimeout(done, r.ms));
              active--;
            }),
          ),
        );
        expect(peak).toBeLessThanOrEqual(slots);
        expect(started.length).toBe(runs.length);
        expect(limiter.running).toBe(0);
        expect(limiter.queued).toBe(0);
        // Of the runs that had to wait, every interactive one started before every background one.
        const waited = started.slice(Math.min(slots, runs.length));
        const lastInteractive = waited.lastIndexOf(true);
        const firstBackground = waited.indexOf(false);
        if (lastInteractive >= 0 && firstBackground >= 0) expect(lastInteractive).toBeLessThan(firstBackground);
      }),
      { numRuns: 100 },
    );
  });

  it('frees its slot when the work throws', async () => {
    const limiter = new PriorityLimiter(1);
    await expect(limiter.run(true, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await limiter.run(false, async () => 'next')).toBe('next');
    expect(limiter.running).toBe(0);
  });
});
