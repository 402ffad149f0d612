/**
 * The lab-server's front door under hostile bytes: a fuzzer over raw TCP
 * sockets against `lab-server/main.ts` in its own process. Malformed request
 * lines, absolute- and authority-form targets, huge and broken headers, bad
 * cookies and percent-encodings, truncated and oversized WebSocket frames,
 * and random JSON against every route. Nothing may crash the process or
 * reach its last-resort handler; no input may start a sandbox; afterwards it
 * still answers /api/health, holds no sandbox and its memory is bounded.
 *
 * Cases come from fast-check: a fixed seed (the same cases every run) and a
 * random one printed for replay (VETHLAB_FUZZ_SEED=<seed> replays it).
 */
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LEARNER_COOKIE, StartSessionRequest } from '../../protocol/api';
import { LabCatalog } from '../../lab-server/labs/catalog';
import { connectDocker } from '../../lab-server/sandbox/docker';
import { spawnLabServer, type ServerProcess } from '../support/lab-server';

const FIXED_SEED = 11;
const FIXED_CASES = 10_000;
const RANDOM_CASES = 2_000;
const IN_FLIGHT = 16;
/** A case whose connection is still open after this is cut (a server that waits for more bytes is fine). */
const CASE_CAP_MS = 3_000;
/** The server's resident memory may grow by at most this over the whole run. */
const RSS_GROWTH_BOUND = 128 * 1024 ** 2;

const LABS = new Set(LabCatalog.load().all().map((l) => l.id));

let server: ServerProcess;
let cookie: string;

beforeAll(async () => {
  server = await spawnLabServer({ VETHLAB_MAX_SANDBOXES: '1' });
  // A real learner cookie, so cases reach the code behind it.
  const res = await fetch(`${server.url}/api/sessions/none`);
  const m = new RegExp(`${LEARNER_COOKIE}=([^;]+)`).exec(res.headers.get('set-cookie') ?? '');
  cookie = `${LEARNER_COOKIE}=${m![1]}`;
});

afterAll(async () => {
  await server?.dispose();
});

// ---- generators -------------------------------------------------------------

const CRLF = '\r\n';
const token = fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/);
const junk = fc.string({ unit: 'binary', maxLength: 200 });
const pct = fc.oneof(
  fc.constantFrom('%', '%%', '%0', '%zz', '%E0%A4%A', '%ff', '%00', '%C0%AF', '%2e%2e%2f', '%u0041', '%25'),
  fc.uint8Array({ minLength: 1, maxLength: 6 }).map((b) => [...b].map((x) => '%' + x.toString(16).padStart(2, '0')).join('')),
);
const apiPath = fc.oneof(
  fc.constantFrom(
    '/api/health',
    '/api/grades',
    '/api/grades?format=csv',
    '/api/grades?format=xml&lab=%',
    '/api/labs/network-stack',
    '/api/labs/network-stack?locale=xx',
    '/api/labs/network-stack/grade',
    '/api/labs/%ff/grade',
    '/api/sessions',
    '/api/sessions/AAAAAAAAAAAAAAAAAAAAAA',
    '/api/sessions/AAAAAAAAAAAAAAAAAAAAAA/lab',
    '/api/sessions/AAAAAAAAAAAAAAAAAAAAAA/check',
    '/api/sessions/AAAAAAAAAAAAAAAAAAAAAA/hint',
    '/api/sessions/AAAAAAAAAAAAAAAAAAAAAA/answer',
    '/api/sessions/AAAAAAAAAAAAAAAAAAAAAA/reset',
    '/api/instructor/sign-in',
    '/api/instructor/sign-out',
    '/api/instructor/status',
    '/api/me',
    '/instructor',
    '/api/terminal',
    '/api/rooms',
    '/api/rooms/join',
    '/api/rooms/mine',
    '/api/rooms/mine/takeover',
    '/api/rooms/ABC234',
    '/api/rooms/ABC234/broadcast',
    '/api/rooms/ABC234/grades?format=csv',
    '/api/rooms/ABC234/report',
    '/api/rooms/abc/reset',
    '/api/rooms/live',
    '/api/rooms/shadow',
    '/api/nowhere',
    '/',
    '/docs/network-stack',
  ),
  fc.tuple(fc.constantFrom('/api/', '/api/sessions/', '/api/labs/', '/api/rooms/', '/'), fc.array(fc.oneof(token, pct, fc.constantFrom('..', '.', '', '//')), { maxLength: 5 })).map(([p, segs]) => p + segs.join('/')),
  fc.tuple(fc.constantFrom('/api/labs/network-stack?', '/api/grades?', '/api/sessions?'), fc.array(fc.tuple(fc.oneof(token, pct), fc.oneof(token, pct)), { maxLength: 4 })).map(
    ([p, kv]) => p + kv.map(([k, v]) => `${k}=${v}`).join('&'),
  ),
);
const target = fc.oneof(
  { weight: 6, arbitrary: apiPath },
  // absolute-form and authority-form, and what `new URL` chokes on
  fc.constantFrom('//x:99999', '//x:99999/api/health', '//', '///', 'http://x:99999/api/health', 'http://evil.example/api/sessions', 'https://[::1/api', 'x:1', '127.0.0.1:3000', '[::1]:80', '*', 'http:', 'a b', '\\api\\health', '/api/health#frag', '/api/health?%'),
  fc.tuple(fc.constantFrom('http://', '//', 'ws://', ''), fc.string({ maxLength: 30 }), apiPath).map(([s, h, p]) => s + h + p),
  fc.string({ unit: 'binary-ascii', maxLength: 60 }),
);
const method = fc.oneof({ weight: 5, arbitrary: fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE') }, fc.stringMatching(/^[A-Za-z!#$%&'*+.^_`|~-]{1,12}$/), junk);
const version = fc.oneof({ weight: 5, arbitrary: fc.constant('HTTP/1.1') }, fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/1.1 extra', 'HTTP/9', ''), junk);
const cookieHeader = fc.oneof(
  fc.constant(() => cookie),
  fc.constantFrom('a=%', `${LEARNER_COOKIE}=%`, `${LEARNER_COOKIE}=%E0%A4%A`, `${LEARNER_COOKIE}=${'A'.repeat(32)}`, `${LEARNER_COOKIE}=`, '=;=;;', `${LEARNER_COOKIE}="x"`, 'vethlab_instructor=%ff', `vethlab_instructor=${'x'.repeat(40)}`).map((c) => () => c),
  fc.tuple(fc.constantFrom(LEARNER_COOKIE, 'vethlab_instructor', 'a'), fc.oneof(pct, junk, token)).map(([k, v]) => () => `${k}=${v}`),
);
const header = fc.oneof(
  fc.tuple(fc.constantFrom('Host', 'Origin', 'Content-Type', 'Content-Length', 'Transfer-Encoding', 'Authorization', 'Connection', 'Upgrade', 'X-Forwarded-Proto'), fc.oneof(token, junk, pct)).map(([k, v]) => () => `${k}: ${v}`),
  cookieHeader.map((c) => () => `Cookie: ${c()}`),
  fc.constantFrom('Authorization: Bearer', 'Authorization: Bearer %', 'Origin: null', 'Origin: http://[', 'Content-Length: -1', 'Content-Length: 1e9', 'Content-Length: 99999999999999999999', 'Transfer-Encoding: chunked, identity', 'Host:', 'Expect: 100-continue').map((h) => () => h),
  junk.map((j) => () => j), // no colon, control bytes, bare CR
  fc.integer({ min: 8_000, max: 80_000 }).map((n) => () => `X-Huge: ${'h'.repeat(n)}`),
);
const jsonBody = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.record({ lab: fc.oneof(token, fc.jsonValue()), task: fc.oneof(token, fc.jsonValue()), answer: fc.oneof(fc.string(), fc.jsonValue()), locale: fc.constantFrom('en', 'zh-Hans', 'xx'), token: fc.string() }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 100 }),
  fc.integer({ min: 17_000, max: 40_000 }).map((n) => JSON.stringify({ lab: 'x'.repeat(n) })),
);

/** No generated body may start a sandbox: a valid start of a real lab becomes an unknown one. */
function defused(body: string): string {
  try {
    const start = StartSessionRequest.safeParse(JSON.parse(body));
    if (start.success && LABS.has(start.data.lab)) return JSON.stringify({ lab: 'not-a-lab' });
  } catch {
    // not JSON: harmless
  }
  return body;
}

type Case = { kind: string; bytes: () => Buffer };

const malformedRequest: fc.Arbitrary<Case> = fc.tuple(method, target, version, fc.array(header, { maxLength: 6 }), fc.constantFrom(CRLF, '\n', '\r', '')).map(([m, t, v, hs, eol]) => ({
  kind: 'request-line',
  bytes: () => Buffer.from(`${m} ${t} ${v}${eol}${hs.map((h) => h() + eol).join('')}${eol}`, 'latin1'),
}));

const routeJson: fc.Arbitrary<Case> = fc
  .tuple(fc.constantFrom('GET', 'POST', 'DELETE', 'PUT'), apiPath, jsonBody, fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, fc.integer({ min: -50, max: 50 })), cookieHeader, fc.boolean())
  .map(([m, p, body, lenSkew, c, chunked]) => ({
    kind: 'route-json',
    bytes: () => {
      const b = Buffer.from(defused(body));
      const framing = chunked ? `Transfer-Encoding: chunked${CRLF}` : `Content-Length: ${Math.max(0, b.length + lenSkew)}${CRLF}`;
      const payload = chunked ? Buffer.concat([Buffer.from(`${b.length.toString(16)}${CRLF}`), b, Buffer.from(`${CRLF}0${CRLF}${CRLF}`)]) : b;
      const head = `${m} ${p} HTTP/1.1${CRLF}Host: 127.0.0.1:${server.port}${CRLF}Content-Type: application/json${CRLF}Cookie: ${c()}${CRLF}${framing}${CRLF}`;
      return Buffer.concat([Buffer.from(head, 'latin1'), payload]);
    },
  }));

/** A WebSocket frame as a client would (or should not) send it. */
function wsFrame(f: { fin: boolean; rsv: number; opcode: number; masked: boolean; payload: Buffer; declared?: bigint | undefined; cut?: number | undefined }): Buffer {
  const len = f.declared ?? BigInt(f.payload.length);
  const head: number[] = [(f.fin ? 0x80 : 0) | ((f.rsv & 7) << 4) | (f.opcode & 0xf)];
  const mask = f.masked ? 0x80 : 0;
  if (len < 126n) head.push(mask | Number(len));
  else if (len < 65536n) head.push(mask | 126, Number(len >> 8n) & 0xff, Number(len) & 0xff);
  else {
    head.push(mask | 127);
    for (let i = 7; i >= 0; i--) head.push(Number((len >> BigInt(i * 8)) & 0xffn));
  }
  const key = Buffer.from([1, 2, 3, 4]);
  const body = f.masked ? Buffer.from(f.payload.map((b, i) => b ^ key[i % 4]!)) : f.payload;
  const whole = Buffer.concat([Buffer.from(head), f.masked ? key : Buffer.alloc(0), body]);
  return f.cut !== undefined ? whole.subarray(0, Math.min(f.cut, whole.length)) : whole;
}

const wsPayload = fc.oneof(
  jsonBody.map((s) => Buffer.from(s)),
  fc.constantFrom(
    JSON.stringify({ type: 'hello', v: 1, sessionId: 'AAAAAAAAAAAAAAAAAAAAAA', terminalId: 'main', cols: 80, rows: 24 }),
    JSON.stringify({ type: 'input', data: 'ls\r' }),
    JSON.stringify({ type: 'ack', seq: 1e300 }),
    JSON.stringify({ type: 'resize', cols: 1e9, rows: -1 }),
  ).map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.constantFrom(Buffer.from([0xc3, 0x28]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0x03, 0xe8, 0xff])), // invalid UTF-8, a close with a bad reason
);
const wsFrameArb = fc
  .record({
    fin: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, fc.constant(false)),
    rsv: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.integer({ min: 1, max: 7 })),
    opcode: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(1, 2) }, fc.constantFrom(0, 8, 9, 10), fc.integer({ min: 3, max: 15 })),
    masked: fc.oneof({ weight: 6, arbitrary: fc.constant(true) }, fc.constant(false)),
    payload: wsPayload,
    declared: fc.option(fc.constantFrom(2n ** 63n - 1n, 2n ** 32n, 2_000_000n, 65_536n, 126n, 125n, 0n), { freq: 5 }),
    cut: fc.option(fc.integer({ min: 0, max: 20 }), { freq: 5 }),
  })
  .map((f) => ({ ...f, declared: f.declared ?? undefined, cut: f.cut ?? undefined }));

const upgradeHeaders = fc.record({
  key: fc.oneof({ weight: 5, arbitrary: fc.constant('dGhlIHNhbXBsZSBub25jZQ==') }, fc.constantFrom('', 'short', '%%%', 'dGhlIHNhbXBsZSBub25jZQ'), junk),
  version: fc.oneof({ weight: 5, arbitrary: fc.constant('13') }, fc.constantFrom('8', '', 'x', '13, 8')),
  path: fc.oneof({ weight: 4, arbitrary: fc.constant('/api/terminal') }, target),
  cookie: fc.option(cookieHeader, { freq: 5 }),
  origin: fc.option(fc.constantFrom('http://evil.example', 'null', '%', 'http://[', `http://127.0.0.1`), { freq: 3 }),
  extra: fc.array(header, { maxLength: 2 }),
});
const websocket: fc.Arbitrary<Case> = fc.tuple(upgradeHeaders, fc.array(wsFrameArb, { maxLength: 4 }), fc.boolean()).map(([h, frames, oversized]) => ({
  kind: 'websocket',
  bytes: () => {
    const head = [
      `GET ${h.path} HTTP/1.1`,
      `Host: 127.0.0.1:${server.port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${h.key}`,
      `Sec-WebSocket-Version: ${h.version}`,
      ...(h.cookie ? [`Cookie: ${h.cookie()}`] : []),
      ...(h.origin ? [`Origin: ${h.origin}`] : []),
      ...h.extra.map((x) => x()),
    ].join(CRLF);
    const big = oversized ? [wsFrame({ fin: true, rsv: 0, opcode: 1, masked: true, payload: Buffer.alloc(70_000, 0x41) })] : [];
    return Buffer.concat([Buffer.from(head + CRLF + CRLF, 'latin1'), ...frames.map(wsFrame), ...big]);
  },
}));

const anyCase: fc.Arbitrary<Case> = fc.oneof(malformedRequest, routeJson, websocket);

// ---- driver -----------------------------------------------------------------

interface Outcome {
  kind: string;
  status: number | undefined;
  /** The start of what was sent and of the answer, for the failure message. */
  head: string;
}

/** Sends one case on a fresh connection, half-closes, and reads until the server closes (or the cap). */
function send(c: Case): Promise<Outcome> {
  const bytes = c.bytes();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const sock = net.connect(server.port, '127.0.0.1');
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(cap);
      sock.destroy();
      const text = Buffer.concat(chunks).subarray(0, 4096).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ kind: c.kind, status: m ? Number(m[1]) : undefined, head: `${JSON.stringify(bytes.subarray(0, 300).toString('latin1'))}\n  -> ${text.slice(0, 300)}` });
    };
    const cap = setTimeout(finish, CASE_CAP_MS);
    sock.on('data', (b: Buffer) => {
      if (chunks.reduce((n, x) => n + x.length, 0) < 64 * 1024) chunks.push(b);
    });
    sock.on('error', finish);
    sock.on('close', finish);
    sock.on('connect', () => {
      sock.write(bytes);
      sock.end();
    });
  });
}

async function runAll(cases: Case[]): Promise<Outcome[]> {
  const out: Outcome[] = new Array(cases.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < cases.length) {
        const i = next++;
        out[i] = await send(cases[i]!);
      }
    }),
  );
  return out;
}

function alive(): boolean {
  return server.child.exitCode === null && server.child.signalCode === null;
}

/** The server's own last-resort handler logs "uncaught"; the guard must catch everything first. */
function uncaughtLines(): string[] {
  return server.output().split('\n').filter((l) => /uncaught|unhandled/i.test(l));
}

function checkOutcomes(outcomes: Outcome[], seed: number): void {
  const where = `(seed ${seed}; replay with VETHLAB_FUZZ_SEED=${seed})`;
  expect(alive(), `lab-server died ${where}:\n${server.output().slice(-3000)}`).toBe(true);
  expect(uncaughtLines(), `errors escaped the request guard ${where}`).toEqual([]);
  // 500 means a request reached code that threw; 2xx on POST /api/sessions would be a started sandbox.
  const internal = outcomes.filter((o) => o.status === 500);
  expect(internal.map((o) => o.head), `internal errors ${where}`).toEqual([]);
  const started = outcomes.filter((o) => o.status === 201);
  expect(started.map((o) => o.head), `a fuzz case started a session ${where}`).toEqual([]);
}

describe('raw-socket fuzz of the HTTP and WebSocket front door', () => {
  let rssBefore = 0;

  it('answers the requests that used to end the process with a 4xx and keeps serving', async () => {
    rssBefore = server.rss();
    const authority = await send({ kind: 'fixed', bytes: () => Buffer.from(`GET //x:99999 HTTP/1.1${CRLF}Host: x${CRLF}${CRLF}`) });
    expect(authority.status).toBe(400);
    const badCookie = await send({
      kind: 'fixed',
      bytes: () => Buffer.from(['GET /api/terminal HTTP/1.1', 'Host: x', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', 'Cookie: a=%', '', ''].join(CRLF)),
    });
    // The handshake completes and the socket is closed with "forbidden" (no learner), or refused with a 4xx.
    expect(badCookie.status === 101 || (badCookie.status! >= 400 && badCookie.status! < 500), badCookie.head).toBe(true);
    expect(alive()).toBe(true);
    expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
  });

  it(`survives ${FIXED_CASES} cases from the fixed seed ${FIXED_SEED}`, async () => {
    const cases = fc.sample(anyCase, { numRuns: FIXED_CASES, seed: FIXED_SEED });
    checkOutcomes(await runAll(cases), FIXED_SEED);
  });

  it(`survives ${RANDOM_CASES} cases from a random seed (printed)`, async () => {
    const seed = process.env.VETHLAB_FUZZ_SEED ? Number(process.env.VETHLAB_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
    console.log(`http-fuzz: random seed ${seed} (replay: VETHLAB_FUZZ_SEED=${seed} npx vitest run test/integration/http-fuzz.test.ts)`);
    const cases = fc.sample(anyCase, { numRuns: RANDOM_CASES, seed });
    checkOutcomes(await runAll(cases), seed);
  });

  it('still serves, holds no sandbox, and its memory stayed bounded', async () => {
    expect(alive()).toBe(true);
    const health = await fetch(`${server.url}/api/health`);
    expect(health.status).toBe(200);
    const containers = await connectDocker().listContainers({ all: true, filters: { label: [`vethlab.instance=${server.instance}`] } });
    expect(containers.map((c) => c.Names.join(','))).toEqual([]);
    const growth = server.rss() - rssBefore;
    console.log(`http-fuzz: server RSS ${(rssBefore / 1024 ** 2).toFixed(0)} -> ${((rssBefore + growth) / 1024 ** 2).toFixed(0)} MiB`);
    expect(growth, `RSS grew by ${(growth / 1024 ** 2).toFixed(1)} MiB`).toBeLessThan(RSS_GROWTH_BOUND);
  });
});
