/**
 * Content test of every lab in docs/ (lab-server/labs/content-test.ts), per
 * task: fresh it fails; the solution step by step turns it green at its step
 * and it stays green; every hint check fails fresh and passes solved; every
 * question fails with a wrong answer; each fault and the fault combinations
 * a learner draws are detected and repaired. Steps that turn several tasks
 * green at once must be explained below.
 */
import { describe, expect, it } from 'vitest';
import { LabCatalog } from '../../lab-server/labs/catalog';
import { combinations, contentTest, faultCombinations } from '../../lab-server/labs/content-test';
import { testEngine } from '../support/lab-server';

const catalog = LabCatalog.load();
const engine = testEngine();

/** Steps that satisfy several tasks together, and why that is right. */
const SHARED: Record<string, Record<string, string>> = {
  'veth-pair': { 'step 2: addresses, ping': 'a pair with both ends up and addressed answers at once: ping is the learner testing the addresses' },
  link: { 'step 1: link-ng2, reverse-fails': '--link writes only ng2\'s hosts file, so the reverse fails the moment ng2 exists: the task is seeing it' },
  'user-networks': { 'step 1: two-containers, docker0-isolated': 'containers on my-network are isolated from docker0 from the start: the task is checking it' },
  snat: {
    'step 0: snat-rule, path-out':
      'with no fault the missing MASQUERADE is the only broken hop; every learner draws two faults, which path-out (and the check\'s own ping of snat-rule) also need: the fault combinations test that',
  },
};

/** Tasks a later solution step turns red for a while (a pass is kept, so no learner loses it), and why. */
const REGRESSIONS: Record<string, Record<string, string>> = {
  'across-hosts': { 'task routes: step 5': 'host-a routes through vxlan0 before host-b has one: the overlay works once both ends exist (step 6)' },
};

describe('lab content', () => {
  it('finds the course labs', () => {
    expect(catalog.all().length).toBeGreaterThan(0);
  });

  it('draws every combination when few and a stable seeded sample when many', () => {
    expect(combinations(['a', 'b', 'c', 'd'], 2)).toHaveLength(6);
    const many = { faults: 'abcdefgh'.split('').map((id) => ({ id })), fault_count: 3 } as never;
    const a = faultCombinations(many, 'seed-1');
    expect(a).toHaveLength(3);
    expect(faultCombinations(many, 'seed-1')).toEqual(a);
    expect(new Set(a.map((c) => c.join()))).toHaveProperty('size', 3);
    expect(faultCombinations({ faults: 'abcd'.split('').map((id) => ({ id })), fault_count: 2 } as never, 'x')).toHaveLength(6);
  });

  for (const lab of catalog.all()) {
    it(`${lab.id}: per task, fails before its step and passes after; hints, wrong answers and faults judged`, async () => {
      const report = await contentTest(engine, lab);
      const detail = JSON.stringify({ stepOf: report.stepOf, shared: report.shared, combinations: report.combinations, phases: report.phases }, null, 2);
      expect(report.problems, detail).toEqual([]);
      expect(report.phases.find((p) => p.phase === 'fresh')!.passed).toEqual([]);
      // Every task has a step of the solution that turns it green.
      expect(Object.keys(report.stepOf).sort(), detail).toEqual(lab.tasks.map((t) => t.id).sort());
      expect(report.shared.sort(), detail).toEqual(Object.keys(SHARED[lab.id] ?? {}).sort());
      expect(report.regressions.sort(), detail).toEqual(Object.keys(REGRESSIONS[lab.id] ?? {}).sort());
    }, 900_000);
  }
});
