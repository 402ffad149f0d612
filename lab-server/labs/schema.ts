/**
 * The lab file format (docs/NN-lesson.lab.yaml, next to its lesson),
 * validated at load. Checks are typed network assertions first; `shell` is
 * the escape hatch. Text shown to learners is localised: a plain string, or
 * { en, zh-Hans }.
 */
import { z } from 'zod';

export const LOCALES = ['en', 'zh-Hans'] as const;
export type Locale = (typeof LOCALES)[number];

export const Text = z.union([z.string().min(1), z.object({ en: z.string().min(1), 'zh-Hans': z.string().min(1).optional() }).strict()]);
export type Text = z.infer<typeof Text>;

export function localize(text: Text, locale: string): string {
  if (typeof text === 'string') return text;
  return (locale === 'zh-Hans' ? text['zh-Hans'] : undefined) ?? text.en;
}

const Name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'a name of letters, digits, _ . -');
const Host = z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, 'a host name: lowercase letters, digits, -');
const Cidr = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'an IPv4 address with prefix, like 10.0.0.1/24');
const Ip = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}$/, 'an IPv4 address');

/**
 * Where a check looks from: the sandbox host itself (default), a network
 * namespace made with `ip netns add`, or an inner Docker container.
 */
export const Place = z
  .object({
    host: Host.optional(),
    netns: Name.optional(),
    container: Name.optional(),
  })
  .strict()
  .refine((p) => !(p.netns && p.container), 'give netns or container, not both');
export type Place = z.infer<typeof Place>;

const at = { at: Place.optional() };

export const Primitive = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('netns'), name: Name, lo_up: z.boolean().optional(), host: Host.optional() }).strict(),
  z
    .object({
      kind: z.literal('link'),
      ...at,
      name: Name,
      type: z.enum(['veth', 'bridge', 'vxlan', 'dummy']).optional(),
      state: z.enum(['up', 'down']).optional(),
      /** The namespace holding the other end of a veth ("" = the host itself). */
      peer_netns: z.string().optional(),
      /** The peer's interface name in that namespace. */
      peer_name: Name.optional(),
      master: Name.optional(),
    })
    .strict(),
  z.object({ kind: z.literal('address'), ...at, dev: Name, cidr: Cidr }).strict(),
  z.object({ kind: z.literal('route'), ...at, dst: z.string().min(1), via: Ip.optional(), dev: Name.optional() }).strict(),
  z.object({ kind: z.literal('sysctl'), ...at, key: z.string().regex(/^net\.[a-z0-9_.]+$/, 'a net.* sysctl'), value: z.string() }).strict(),
  z
    .object({
      kind: z.literal('iptables'),
      ...at,
      table: z.enum(['filter', 'nat', 'mangle', 'raw']).default('filter'),
      chain: z.string().min(1),
      /** Words the rule (as `iptables-save` prints it, comments left out) must contain, in order. */
      rule: z.string().min(1).optional(),
      policy: z.enum(['ACCEPT', 'DROP']).optional(),
      /** The rule's DNAT destination must be an address of this container (read from its own namespace). */
      to_container: Name.optional(),
      /**
       * Evidence that the rule works: the checker sends its own probe (a ping,
       * or a TCP connection when `port` is given) and the rule's packet counter,
       * read by the checker right before and after, must move.
       */
      carries: z.object({ from: Place.optional(), to: Ip, port: z.number().int().min(1).max(65535).optional() }).strict().optional(),
    })
    .strict()
    .refine((c) => c.rule || c.policy, 'give rule or policy')
    .refine((c) => c.rule || !(c.carries || c.to_container), 'carries and to_container need a rule'),
  z.object({ kind: z.literal('ping'), from: Place.optional(), to: z.string().min(1), expect: z.enum(['reply', 'no-reply']).default('reply') }).strict(),
  z.object({ kind: z.literal('tcp'), from: Place.optional(), to: z.string().min(1), port: z.number().int().min(1).max(65535), expect: z.enum(['open', 'closed']).default('open') }).strict(),
  z
    .object({
      kind: z.literal('http'),
      from: Place.optional(),
      url: z.string().regex(/^http:\/\/[^\s'"]+$/, 'an http:// URL'),
      body: z.string().optional(),
      expect: z.enum(['ok', 'fail']).default('ok'),
    })
    .strict(),
  z.object({ kind: z.literal('resolve'), container: Name, host: Host.optional(), name: Name, expect: z.enum(['resolves', 'fails']).default('resolves') }).strict(),
  z
    .object({
      kind: z.literal('container'),
      host: Host.optional(),
      name: Name,
      running: z.boolean().default(true),
      network_mode: z.string().optional(),
      networks: z.array(Name).optional(),
      not_networks: z.array(Name).optional(),
      links_to: Name.optional(),
      published_ports: z.enum(['none', 'some']).optional(),
      image: z.string().optional(),
    })
    .strict(),
  z.object({ kind: z.literal('network'), host: Host.optional(), name: Name, subnet: Cidr.optional(), gateway: Ip.optional() }).strict(),
  z
    .object({
      kind: z.literal('listening'),
      ...at,
      port: z.number().int().min(1).max(65535),
      process: z.string().optional(),
    })
    .strict(),
  /** The escape hatch: a bash snippet run by the checker; exit 0 passes, its last output line is the reason. */
  z.object({ kind: z.literal('shell'), host: Host.optional(), run: z.string().min(1), reason: Text.optional() }).strict(),
]);
export type Primitive = z.infer<typeof Primitive>;

export type Check = Primitive | { all: Check[] } | { any: Check[] } | { not: Check; reason?: Text | undefined };
export const Check: z.ZodType<Check> = z.lazy(() =>
  z.union([z.object({ all: z.array(Check).min(1) }).strict(), z.object({ any: z.array(Check).min(1) }).strict(), z.object({ not: Check, reason: Text.optional() }).strict(), Primitive]),
);

const Step = z.object({ host: Host.optional(), run: z.string().min(1) }).strict();
export type Step = z.infer<typeof Step>;

export const Task = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,40}$/, 'a task id: lowercase letters, digits, -'),
    title: Text,
    /** Optional longer instructions (the lesson prose does most of the teaching). */
    details: Text.optional(),
    needs: z.array(z.string()).default([]),
    check: Check,
    /** A failing hint check's reason is shown as a live hint. */
    hint_check: Check.optional(),
    hints: z.array(Text).default([]),
    /** An answer task: the learner types an answer; the check sees it as $ANSWER. */
    question: Text.optional(),
    /** Seconds the check may take before it is killed and reported. */
    timeout: z.number().min(1).max(60).default(10),
  })
  .strict();
export type Task = z.infer<typeof Task>;

export const Fault = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,40}$/),
    title: Text,
    inject: z.array(Step).min(1),
    /** How the fault is repaired (the content test applies it after the solution). */
    repair: z.array(Step).min(1),
  })
  .strict();
export type Fault = z.infer<typeof Fault>;

export const Lab = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/),
    title: Text,
    /** One sandbox ("sandbox"), or several joined by a lab-private link. */
    hosts: z.array(Host).min(1).max(4).default(['sandbox']),
    setup: z.array(Step).default([]),
    tasks: z.array(Task).min(1),
    /** Commands that complete every task, in order (answers given as answers). */
    solution: z
      .array(
        Step.extend({
          /** An answer: a fixed `value`, or `run` a command whose output is the answer (for answers that differ per sandbox). */
          answer: z
            .object({ task: z.string(), value: z.string().optional(), run: z.string().optional() })
            .strict()
            .refine((a) => (a.value === undefined) !== (a.run === undefined), 'give value or run')
            .optional(),
        }).partial({ run: true }),
      )
      .min(1),
    faults: z.array(Fault).default([]),
    /** How many faults a learner's seed draws (0 = none). */
    fault_count: z.number().int().min(0).default(0),
    graded: z.boolean().default(false),
  })
  .strict()
  .superRefine((lab, ctx) => {
    const ids = new Set<string>();
    lab.tasks.forEach((t, i) => {
      if (ids.has(t.id)) ctx.addIssue({ code: 'custom', path: ['tasks', i, 'id'], message: `duplicate task id "${t.id}"` });
      ids.add(t.id);
    });
    lab.tasks.forEach((t, i) =>
      t.needs.forEach((n, j) => {
        if (!ids.has(n)) ctx.addIssue({ code: 'custom', path: ['tasks', i, 'needs', j], message: `needs unknown task "${n}"` });
      }),
    );
    const hosts = new Set(lab.hosts);
    const checkHost = (h: string | undefined, path: (string | number)[]) => {
      if (h && !hosts.has(h)) ctx.addIssue({ code: 'custom', path, message: `unknown host "${h}" (lab hosts: ${lab.hosts.join(', ')})` });
    };
    lab.setup.forEach((s, i) => checkHost(s.host, ['setup', i, 'host']));
    lab.solution.forEach((s, i) => {
      checkHost(s.host, ['solution', i, 'host']);
      if (!s.run && !s.answer) ctx.addIssue({ code: 'custom', path: ['solution', i], message: 'a step needs run or answer' });
      if (s.answer && !ids.has(s.answer.task)) ctx.addIssue({ code: 'custom', path: ['solution', i, 'answer', 'task'], message: `unknown task "${s.answer.task}"` });
    });
    if (lab.fault_count > lab.faults.length) ctx.addIssue({ code: 'custom', path: ['fault_count'], message: `draws ${lab.fault_count} faults but only ${lab.faults.length} are defined` });
  });
export type Lab = z.infer<typeof Lab>;
