/** The grades CSV: names a learner chose cannot break the file or run as formulas in a spreadsheet. */
import { describe, expect, it } from 'vitest';
import { gradesCsv } from '../../lab-server/labs/grading';

const row = (name: string) => ({ learnerId: 'L-abc', name, lab: 'probe', tasksPassed: 1, tasksTotal: 2, hintsUsed: 0, score: 50, startedAt: '2026-01-01T00:00:00.000Z' });

describe('grades CSV', () => {
  it('neutralises formulas and quotes separators', () => {
    const lines = gradesCsv([row('=HYPERLINK("http://x","y")'), row('+1'), row('-2'), row('@SUM(A1)'), row('Ada, "the first"\nline')]).split('\n');
    expect(lines[1]).toBe(`L-abc,"'=HYPERLINK(""http://x"",""y"")",probe,1,2,0,50,2026-01-01T00:00:00.000Z,,`);
    expect(lines[2]).toMatch(/^L-abc,'\+1,/);
    expect(lines[3]).toMatch(/^L-abc,'-2,/);
    expect(lines[4]).toMatch(/^L-abc,'@SUM\(A1\),/);
    expect(lines[5]).toBe('L-abc,"Ada, ""the first""');
  });
});
