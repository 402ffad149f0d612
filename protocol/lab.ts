/**
 * Lab shapes shared by the page (<Lab> panel) and the lab-server: what a
 * learner may see of a lab (never its checks or solution), live task
 * status, and the reasons a check gives, as keys the page words in its own
 * language (protocol/reasons.ts). No DOM or Node types.
 */
import { z } from 'zod';

export const TaskStatusValue = z.enum(['pending', 'passed', 'failed']);
export type TaskStatusValue = z.infer<typeof TaskStatusValue>;

/** Why a check failed: a reason key with arguments, or text already in the learner's language. */
export const Reason = z.union([
  z.object({ key: z.string(), args: z.array(z.string()) }),
  /** Text from the lab itself, with its translations. */
  z.object({ text: z.string(), i18n: z.record(z.string(), z.string()).optional() }),
]);
export type Reason = z.infer<typeof Reason>;

export const TaskStatus = z.object({
  id: z.string(),
  status: TaskStatusValue,
  /** Set when the task's prerequisites are not passed yet. */
  blocked: z.boolean(),
  reason: Reason.optional(),
  /** A live hint from the task's hint check. */
  hint: Reason.optional(),
  passedAt: z.string().optional(),
  attempts: z.number().int(),
  hintsUsed: z.number().int(),
  answer: z.string().optional(),
});
export type TaskStatus = z.infer<typeof TaskStatus>;

export const LabStatus = z.object({
  lab: z.string(),
  tasks: z.array(TaskStatus),
  startedAt: z.string(),
  finishedAt: z.string().optional(),
  /** Hints revealed so far, per task, in the requested language. */
  hints: z.record(z.string(), z.array(z.string())),
  /** Faults drawn for this learner (graded labs don't say which). */
  faults: z.number().int(),
});
export type LabStatus = z.infer<typeof LabStatus>;

export const LabTaskInfo = z.object({
  id: z.string(),
  title: z.string(),
  details: z.string().optional(),
  question: z.string().optional(),
  hintCount: z.number().int(),
  needs: z.array(z.string()),
});
export type LabTaskInfo = z.infer<typeof LabTaskInfo>;

export const LabInfo = z.object({
  id: z.string(),
  title: z.string(),
  hosts: z.array(z.string()),
  graded: z.boolean(),
  tasks: z.array(LabTaskInfo),
});
export type LabInfo = z.infer<typeof LabInfo>;

export const HintRequest = z.object({ task: z.string().min(1).max(64), locale: z.string().max(16).optional() }).strict();
export const AnswerRequest = z.object({ task: z.string().min(1).max(64), answer: z.string().min(1).max(200) }).strict();

export const Grade = z.object({
  /** A pseudonym, stable per learner; never their cookie (which would let its reader act as them). */
  learnerId: z.string(),
  /** The name the learner gave, if any. */
  name: z.string().optional(),
  lab: z.string(),
  tasksPassed: z.number().int(),
  tasksTotal: z.number().int(),
  hintsUsed: z.number().int(),
  /** 0-100: tasks passed, less a hint penalty in graded labs. */
  score: z.number(),
  startedAt: z.string(),
  finishedAt: z.string().optional(),
  secondsTaken: z.number().optional(),
});
export type Grade = z.infer<typeof Grade>;
