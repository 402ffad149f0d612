/**
 * Content test of every lab in docs/ (see lab-server/labs/content-test.ts):
 * fresh sandbox -> every check fails; reference solution -> every check
 * passes; each fault is detected and its repair works.
 */
import { describe, expect, it } from 'vitest';
import { LabCatalog } from '../../lab-server/labs/catalog';
import { contentTest } from '../../lab-server/labs/content-test';
import { testEngine } from '../support/lab-server';

const catalog = LabCatalog.load();
const engine = testEngine();

describe('lab content', () => {
  it('finds the course labs', () => {
    expect(catalog.all().length).toBeGreaterThan(0);
  });

  for (const lab of catalog.all()) {
    it(`${lab.id}: checks fail fresh, pass after the solution, catch every fault`, async () => {
      const report = await contentTest(engine, lab);
      expect(report.problems, JSON.stringify(report.phases, null, 2)).toEqual([]);
      expect(report.phases[0]!.passed).toEqual([]);
      expect(report.phases[1]!.failed).toEqual([]);
    }, 600_000);
  }
});
