/**
 * A room's grades from the store alone (the server's rooms API and
 * `npm run lab -- grade --room CODE` share it): per learner and task of the
 * room's lessons, passed at, attempts, hints, the evidence at pass time;
 * each lab's grade; the command lines when the room recorded them.
 */
import type { Grade } from '../../protocol/lab';
import type { EvidenceItem, RoomGrades, RoomInfo, TaskGrade } from '../../protocol/room';
import { grade } from '../labs/grading';
import type { LabCatalog } from '../labs/catalog';
import type { Store } from '../store/store';
import type { RoomStore } from './room-store';

export type RoomGradesWithLabs = RoomGrades & { labGrades: Grade[] };

export function roomGrades(
  deps: { store: Store; rooms: RoomStore; catalog: LabCatalog; pseudonym: (learner: string) => string },
  room: RoomInfo,
): RoomGradesWithLabs {
  const tasks: TaskGrade[] = [];
  const labGrades: Grade[] = [];
  const commands: NonNullable<RoomGrades['commands']> = {};
  const members = deps.rooms.members(room.code);
  for (const m of members) {
    const learnerId = deps.pseudonym(m.learner);
    for (const lab of room.lessons) {
      const def = deps.catalog.get(lab);
      const progress = deps.store.labProgress(m.learner, lab);
      if (!def || !progress) continue;
      const saved = deps.store.tasks(m.learner, lab);
      labGrades.push(grade(def, progress, saved, { learnerId, name: m.name }));
      const byTask = new Map(saved.map((t) => [t.task, t]));
      const evidence = deps.rooms.evidence(m.learner, lab);
      for (const t of def.tasks) {
        const row = byTask.get(t.id);
        tasks.push({
          learnerId,
          name: m.name,
          lab,
          task: t.id,
          ...(row?.passedAt ? { passedAt: new Date(row.passedAt).toISOString() } : {}),
          attempts: row?.attempts ?? 0,
          hints: row?.hintsUsed ?? 0,
          ...(row?.passedAt && evidence.has(t.id) ? { evidence: evidence.get(t.id) as EvidenceItem[] } : {}),
        });
      }
    }
    if (room.recordCommands) {
      commands[learnerId] = deps.rooms.commands(m.learner, m.joinedAt).map((c) => ({ at: new Date(c.at).toISOString(), lab: c.lab, line: c.line }));
    }
  }
  return {
    room,
    members: members.map((m) => ({ learnerId: deps.pseudonym(m.learner), name: m.name, joinedAt: new Date(m.joinedAt).toISOString() })),
    tasks,
    labGrades,
    ...(room.recordCommands ? { commands } : {}),
  };
}
