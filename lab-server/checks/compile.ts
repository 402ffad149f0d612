/**
 * Turns a lab's check trees into leaves (primitives) and each leaf into one
 * call of the checker's bash library (images/sandbox/check-lib.sh). Leaves
 * are evaluated on the checker of their host; the tree is combined here.
 */
import type { Reason } from '../../protocol/lab';
import type { Check, Place, Primitive, Text } from '../labs/schema';

/** A lab's own text as a reason, carrying its translations. */
export function textReason(text: Text): Reason {
  return typeof text === 'string' ? { text } : { text: text.en, i18n: { ...text } };
}

export interface Leaf {
  host: string;
  primitive: Primitive;
}

export type Tree = { leaf: number } | { all: Tree[] } | { any: Tree[] } | { not: Tree; reason?: Text | undefined };

export interface LeafResult {
  ok: boolean;
  reason?: Reason;
  /** Facts the leaf reported, e.g. an iptables rule's packet counter. */
  facts: Record<string, number>;
}

/** Flattens a check into leaves (appended to `leaves`) and a tree of their indices. */
export function flatten(check: Check, defaultHost: string, leaves: Leaf[]): Tree {
  if ('all' in check) return { all: check.all.map((c) => flatten(c, defaultHost, leaves)) };
  if ('any' in check) return { any: check.any.map((c) => flatten(c, defaultHost, leaves)) };
  if ('not' in check) return { not: flatten(check.not, defaultHost, leaves), reason: check.reason };
  const p = check;
  const host = ('host' in p && p.host) || ('at' in p && p.at?.host) || ('from' in p && p.from?.host) || defaultHost;
  leaves.push({ host, primitive: p });
  return { leaf: leaves.length - 1 };
}

/** Combines leaf results through the tree; the first failing leaf's reason explains a failure. */
export function combine(tree: Tree, results: LeafResult[]): { ok: boolean; reason?: Reason } {
  if ('leaf' in tree) {
    const r = results[tree.leaf];
    return r ? { ok: r.ok, ...(r.reason ? { reason: r.reason } : {}) } : { ok: false, reason: { key: 'check-error', args: ['not run'] } };
  }
  if ('all' in tree) {
    for (const t of tree.all) {
      const r = combine(t, results);
      if (!r.ok) return r;
    }
    return { ok: true };
  }
  if ('any' in tree) {
    let first: { ok: boolean; reason?: Reason } | undefined;
    for (const t of tree.any) {
      const r = combine(t, results);
      if (r.ok) return r;
      first ??= r;
    }
    return first ?? { ok: false };
  }
  const inner = combine(tree.not, results);
  if (!inner.ok) return { ok: true };
  return { ok: false, reason: tree.reason ? textReason(tree.reason) : { key: 'not-expected', args: [] } };
}

/** Single-quotes a value for bash. */
export function sq(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

function placeArgs(prefix: 'at' | 'from', place: Place | undefined): string[] {
  if (!place) return [];
  const out: string[] = [];
  if (place.netns) out.push(`${prefix}_netns=${sq(place.netns)}`);
  if (place.container) out.push(`${prefix}_container=${sq(place.container)}`);
  return out;
}

/** The bash command that evaluates one leaf in the checker. */
export function leafCommand(p: Primitive): string {
  const kv = (k: string, v: string | number | boolean | undefined) => (v === undefined ? [] : [`${k}=${sq(String(v))}`]);
  switch (p.kind) {
    case 'netns':
      return ['vl_netns', ...kv('name', p.name), ...kv('lo_up', p.lo_up)].join(' ');
    case 'link':
      return ['vl_link', ...placeArgs('at', p.at), ...kv('name', p.name), ...kv('type', p.type), ...kv('state', p.state), ...kv('peer_netns', p.peer_netns), ...kv('peer_name', p.peer_name), ...kv('master', p.master)].join(' ');
    case 'address':
      return ['vl_address', ...placeArgs('at', p.at), ...kv('dev', p.dev), ...kv('cidr', p.cidr)].join(' ');
    case 'route':
      return ['vl_route', ...placeArgs('at', p.at), ...kv('dst', p.dst), ...kv('via', p.via), ...kv('dev', p.dev)].join(' ');
    case 'sysctl':
      return ['vl_sysctl', ...placeArgs('at', p.at), ...kv('key', p.key), ...kv('value', p.value)].join(' ');
    case 'iptables':
      return [
        'vl_iptables',
        ...placeArgs('at', p.at),
        ...kv('table', p.table),
        ...kv('chain', p.chain),
        ...kv('rule', p.rule),
        ...kv('policy', p.policy),
        ...kv('to_container', p.to_container),
        ...(p.carries ? [...kv('carries_netns', p.carries.from?.netns), ...kv('carries_container', p.carries.from?.container), ...kv('carries_to', p.carries.to), ...kv('carries_port', p.carries.port)] : []),
      ].join(' ');
    case 'ping':
      return ['vl_ping', ...placeArgs('from', p.from), ...kv('to', p.to), ...kv('expect', p.expect)].join(' ');
    case 'tcp':
      return ['vl_tcp', ...placeArgs('from', p.from), ...kv('to', p.to), ...kv('port', p.port), ...kv('expect', p.expect)].join(' ');
    case 'http':
      return ['vl_http', ...placeArgs('from', p.from), ...kv('url', p.url), ...kv('body', p.body), ...kv('expect', p.expect)].join(' ');
    case 'resolve':
      return ['vl_resolve', ...kv('container', p.container), ...kv('name', p.name), ...kv('expect', p.expect)].join(' ');
    case 'container':
      return [
        'vl_container',
        ...kv('name', p.name),
        ...kv('running', p.running),
        ...kv('network_mode', p.network_mode),
        ...kv('networks', p.networks?.join(' ')),
        ...kv('not_networks', p.not_networks?.join(' ')),
        ...kv('links_to', p.links_to),
        ...kv('published_ports', p.published_ports),
        ...kv('image', p.image),
      ].join(' ');
    case 'network':
      return ['vl_network', ...kv('name', p.name), ...kv('subnet', p.subnet), ...kv('gateway', p.gateway)].join(' ');
    case 'listening':
      return ['vl_listening', ...placeArgs('at', p.at), ...kv('port', p.port), ...kv('process', p.process)].join(' ');
    case 'shell':
      // A shell of its own (an `exit` ends the check only), with the primitives and guarded tools at hand.
      return `bash -c ${sq(`source /opt/vethlab/check-lib.sh\n${p.run}`)}`;
  }
}

export interface LeafJob {
  id: number;
  command: string;
  timeoutSec: number;
  answer?: string | undefined;
}

/**
 * One script that runs every job in parallel, each under its own time limit
 * (in the sandbox's user and network namespaces, entered by the executor), and prints per job one line
 * "<<<leaf ID RC BASE64>>>", BASE64 being the job's last output lines: text
 * a learner controls (an HTTP body, a hosts file) can never forge another
 * job's result line. Runs in the checker, whose files the learner cannot reach.
 */
export function hostScript(jobs: LeafJob[]): string {
  const lines = ['source /opt/vethlab/check-lib.sh || exit 1', 'd=$(mktemp -d)'];
  for (const j of jobs) {
    const env = j.answer !== undefined ? `ANSWER=${sq(j.answer)} ` : '';
    const body = `source /opt/vethlab/check-lib.sh; ${j.command}`;
    lines.push(`( ${env}timeout -s KILL ${j.timeoutSec} bash -c ${sq(body)} >"$d/${j.id}" 2>&1; echo $? >"$d/${j.id}.rc" ) &`);
  }
  lines.push('wait');
  for (const j of jobs) lines.push(`echo "<<<leaf ${j.id} $(cat "$d/${j.id}.rc") $(tail -n 5 "$d/${j.id}" | base64 -w0)>>>"`);
  lines.push('rm -rf "$d"');
  return lines.join('\n');
}

/** Parses hostScript output into results by job id. */
export function parseResults(output: string, jobs: LeafJob[], shellReasons: Map<number, Text | undefined>): Map<number, LeafResult> {
  const results = new Map<number, LeafResult>();
  const ids = new Set(jobs.map((j) => j.id));
  for (const m of output.matchAll(/^<<<leaf (\d+) (\d+) ([A-Za-z0-9+/=]*)>>>$/gm)) {
    const id = Number(m[1]);
    const rc = Number(m[2]);
    // One line per job: a second line for the same id is not the script's.
    if (!ids.has(id) || results.has(id)) continue;
    const body = Buffer.from(m[3] ?? '', 'base64').toString('utf8').split('\n').filter(Boolean);
    const facts: Record<string, number> = {};
    let reason: Reason | undefined;
    for (const line of body) {
      const fact = /^@@(\w+) (-?\d+)$/.exec(line);
      if (fact) facts[fact[1]!] = Number(fact[2]);
      else if (line.startsWith('@')) {
        const [key, ...args] = line.slice(1).split('|');
        reason = { key: key!, args };
      }
    }
    if (rc === 137) reason = { key: 'check-timeout', args: [] };
    else if (rc !== 0 && !reason) {
      const custom = shellReasons.get(id);
      const last = body.filter((l) => !l.startsWith('@')).at(-1);
      reason = custom ? textReason(custom) : last ? { text: last.slice(0, 200) } : { key: 'not-expected', args: [] };
    }
    results.set(id, { ok: rc === 0, ...(rc !== 0 && reason ? { reason } : {}), facts });
  }
  for (const j of jobs) if (!results.has(j.id)) results.set(j.id, { ok: false, reason: { key: 'check-error', args: ['no result'] }, facts: {} });
  return results;
}
