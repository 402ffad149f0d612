/**
 * A room's grades as files: CSV (one line per learner and task, formulas
 * defused) and a printable HTML report (no script; every learner-chosen text
 * escaped), in English or Chinese.
 */
import type { Grade } from '../../protocol/lab';
import type { RoomGrades } from '../../protocol/room';
import { csvCell } from '../labs/grading';

type Grades = RoomGrades & { labGrades: Grade[] };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function evidenceText(e: RoomGrades['tasks'][number]['evidence']): string {
  return (e ?? []).map((x) => `${x.check}${Object.keys(x.facts).length ? ' ' + Object.entries(x.facts).map(([k, v]) => `${k}=${v}`).join(' ') : ''}`).join('; ');
}

export function roomGradesCsv(g: Grades): string {
  const cols = ['learnerId', 'name', 'lab', 'task', 'passedAt', 'attempts', 'hints', 'evidence'];
  const lines = g.tasks.map((t) => [t.learnerId, t.name, t.lab, t.task, t.passedAt, t.attempts, t.hints, evidenceText(t.evidence)].map(csvCell).join(','));
  return [cols.join(','), ...lines].join('\n') + '\n';
}

const WORDS = {
  en: { title: 'Grades', learner: 'Learner', members: 'Learners', joined: 'Joined', lab: 'Lab', score: 'Score', passed: 'Tasks passed', hints: 'Hints', task: 'Task', passedAt: 'Passed at', attempts: 'Attempts', evidence: 'Evidence (what the checker saw when it passed)', commands: 'Command lines (recorded; learners were told)', notPassed: 'not passed', print: 'Print this page from the browser (Ctrl-P).' },
  'zh-Hans': { title: '成绩', learner: '学员', members: '学员名单', joined: '加入时间', lab: '实验', score: '得分', passed: '通过的任务', hints: '提示', task: '任务', passedAt: '通过时间', attempts: '尝试次数', evidence: '证据（通过时检查器看到的事实）', commands: '命令记录（已告知学员）', notPassed: '未通过', print: '可在浏览器中打印本页（Ctrl-P）。' },
} as const;

export function gradesReportHtml(g: Grades, locale: 'en' | 'zh-Hans'): string {
  const w = WORDS[locale];
  const e = escapeHtml;
  const summary = g.labGrades
    .map((x) => `<tr><td>${e(x.name ?? '')} <small>${e(x.learnerId)}</small></td><td>${e(x.lab)}</td><td data-score>${x.score}</td><td>${x.tasksPassed}/${x.tasksTotal}</td><td>${x.hintsUsed}</td></tr>`)
    .join('');
  const rows = g.tasks
    .map(
      (t) =>
        `<tr><td>${e(t.name)} <small>${e(t.learnerId)}</small></td><td>${e(t.lab)}/${e(t.task)}</td><td>${t.passedAt ? e(t.passedAt.replace('T', ' ').slice(0, 19)) : `<em>${w.notPassed}</em>`}</td><td>${t.attempts}</td><td>${t.hints}</td><td><small>${e(evidenceText(t.evidence))}</small></td></tr>`,
    )
    .join('');
  const commands = g.commands
    ? `<h2>${w.commands}</h2>` +
      Object.entries(g.commands)
        .map(([who, lines]) => `<h3>${e(who)}</h3><pre>${lines.map((l) => `${e(l.at.slice(11, 19))} ${e(l.lab)}$ ${e(l.line)}`).join('\n')}</pre>`)
        .join('')
    : '';
  return `<!doctype html><html lang="${locale}"><head><meta charset="utf-8"><title>${e(g.room.name)}: ${w.title}</title>
<style>body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1c1e21}h1{font-size:1.5rem}table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#2e8555;color:#fff}small{color:#555}pre{background:#f4f4f4;padding:.5rem;white-space:pre-wrap}@media print{.noprint{display:none}th{background:#ddd;color:#000}}</style></head>
<body><h1>${e(g.room.name)} (${e(g.room.code)}): ${w.title}</h1><p class="noprint">${w.print}</p>
<h2>${w.members}</h2><table><thead><tr><th>${w.learner}</th><th>${w.joined}</th></tr></thead><tbody>${g.members.map((m) => `<tr><td>${e(m.name)} <small>${e(m.learnerId)}</small></td><td>${e(m.joinedAt.replace('T', ' ').slice(0, 19))}</td></tr>`).join('')}</tbody></table>
<table><thead><tr><th>${w.learner}</th><th>${w.lab}</th><th>${w.score}</th><th>${w.passed}</th><th>${w.hints}</th></tr></thead><tbody>${summary}</tbody></table>
<h2>${w.evidence}</h2>
<table><thead><tr><th>${w.learner}</th><th>${w.task}</th><th>${w.passedAt}</th><th>${w.attempts}</th><th>${w.hints}</th><th>${w.evidence}</th></tr></thead><tbody>${rows}</tbody></table>
${commands}</body></html>`;
}
