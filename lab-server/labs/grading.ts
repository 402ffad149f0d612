/** Grades from stored progress: tasks passed, hints used, time taken. */
import type { Grade } from '../../protocol/lab';
import type { LabProgressRow, TaskProgressRow } from '../store/store';
import type { Lab } from './schema';

/** Points a revealed hint costs in a graded lab (of 100). */
export const HINT_PENALTY = 5;

/** `who` names the learner as exports may: a pseudonym and the name they gave. */
export function grade(lab: Lab, progress: LabProgressRow, tasks: TaskProgressRow[], who: { learnerId: string; name?: string | undefined }): Grade {
  const known = new Set(lab.tasks.map((t) => t.id));
  const mine = tasks.filter((t) => known.has(t.task));
  const tasksPassed = mine.filter((t) => t.passedAt).length;
  const hintsUsed = mine.reduce((n, t) => n + t.hintsUsed, 0);
  const base = (100 * tasksPassed) / lab.tasks.length;
  const score = Math.max(0, Math.round((base - (lab.graded ? HINT_PENALTY * hintsUsed : 0)) * 10) / 10);
  return {
    learnerId: who.learnerId,
    ...(who.name ? { name: who.name } : {}),
    lab: lab.id,
    tasksPassed,
    tasksTotal: lab.tasks.length,
    hintsUsed,
    score,
    startedAt: new Date(progress.startedAt).toISOString(),
    ...(progress.finishedAt
      ? { finishedAt: new Date(progress.finishedAt).toISOString(), secondsTaken: Math.round((progress.finishedAt - progress.startedAt) / 1000) }
      : {}),
  };
}

/** One CSV cell. A learner's name is theirs to choose: one starting like a formula must not run in the instructor's spreadsheet. */
export function csvCell(v: unknown): string {
  let s = v === undefined ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function gradesCsv(grades: Grade[]): string {
  const cols = ['learnerId', 'name', 'lab', 'tasksPassed', 'tasksTotal', 'hintsUsed', 'score', 'startedAt', 'finishedAt', 'secondsTaken'] as const;
  const cell = csvCell;
  return [cols.join(','), ...grades.map((g) => cols.map((c) => cell(g[c])).join(','))].join('\n') + '\n';
}
