/**
 * Who may do what: learner cookies are issued (signed) by the server and an
 * invented one gets a new identity; cookies are Secure behind https; the
 * instructor signs in on a page (never a token in a URL) or sends a bearer
 * header; grade exports carry a pseudonym and a name, never a credential.
 * No sandbox is started here.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INSTRUCTOR_SIGN_IN_PAGE, LEARNER_COOKIE } from '../../protocol/api';
import { spawnLabServer, startTestServer, type TestServer } from '../support/lab-server';
import { Learner } from '../support/terminal-client';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.close();
});

function setCookie(res: Response, name: string): string | undefined {
  return res.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));
}

describe('learner identity', () => {
  it('issues a cookie, keeps it, and gives an invented one a new identity', async () => {
    const learner = new Learner(server.url);
    await learner.request('GET', '/api/sessions/none');
    const issued = learner.cookie!;
    expect(issued).toMatch(new RegExp(`^${LEARNER_COOKIE}=[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{32}$`));
    // The issued cookie is kept: no new one on the next request.
    const again = await fetch(`${server.url}/api/sessions/none`, { headers: { cookie: issued } });
    expect(setCookie(again, LEARNER_COOKIE)).toBeUndefined();

    const id = issued.split('=')[1]!.split('.')[0]!;
    for (const invented of ['A'.repeat(32), `${id}.${'A'.repeat(32)}`, id, `${id}.`, '%']) {
      const res = await fetch(`${server.url}/api/sessions/none`, { headers: { cookie: `${LEARNER_COOKIE}=${invented}` } });
      const fresh = setCookie(res, LEARNER_COOKIE);
      expect(fresh, invented).toMatch(/HttpOnly/);
      expect(fresh).not.toContain(id);
    }
  });

  it('refuses a terminal to an invented cookie', async () => {
    const forger = new Learner(server.url);
    // The right shape for a cookie (the old server took any such string), but not one this server issued.
    forger.cookie = `${LEARNER_COOKIE}=${'B'.repeat(32)}`;
    const t = await forger.openTerminal('AAAAAAAAAAAAAAAAAAAAAA');
    expect(await t.waitForMessage('error')).toMatchObject({ code: 'forbidden', fatal: true });
    expect(await t.waitForClose()).toBe(4403);
  });

  it('marks cookies Secure when the public URL is https', async () => {
    const tls = await startTestServer({ VETHLAB_PUBLIC_URL: 'https://lab.example.org' });
    try {
      const res = await fetch(`${tls.url}/api/sessions/none`);
      expect(setCookie(res, LEARNER_COOKIE)).toMatch(/; Secure/);
    } finally {
      await tls.close();
    }
    expect(setCookie(await fetch(`${server.url}/api/sessions/none`), LEARNER_COOKIE)).not.toMatch(/Secure/);
  });
});

describe('instructor access', () => {
  it('signs in on a page with the token and exports grades with the cookie, never a token in a URL', async () => {
    const page = await fetch(`${server.url}${INSTRUCTOR_SIGN_IN_PAGE}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<form method="post" action="\/api\/instructor\/sign-in">/);

    const wrong = await fetch(`${server.url}/api/instructor/sign-in`, { method: 'POST', body: new URLSearchParams({ token: 'not-the-token' }), redirect: 'manual' });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ code: 'instructor-only' });
    expect(setCookie(wrong, 'vethlab_instructor')).toBeUndefined();

    const ok = await fetch(`${server.url}/api/instructor/sign-in`, { method: 'POST', body: new URLSearchParams({ token: server.instructorToken }), redirect: 'manual' });
    expect(ok.status).toBe(303);
    const cookie = setCookie(ok, 'vethlab_instructor')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toContain(server.instructorToken);
    const jar = cookie.split(';')[0]!;
    expect((await fetch(`${server.url}/api/grades`, { headers: { cookie: jar } })).status).toBe(200);
    expect(await (await fetch(`${server.url}/api/instructor/status`, { headers: { cookie: jar } })).json()).toEqual({ signedIn: true, role: 'instructor' });

    // No token in URLs; a forged or tampered cookie is nobody.
    expect((await fetch(`${server.url}/api/grades?token=${server.instructorToken}`)).status).toBe(401);
    expect((await fetch(`${server.url}/api/grades`, { headers: { cookie: `vethlab_instructor=${'9'.repeat(13)}.${'A'.repeat(32)}` } })).status).toBe(401);
    expect((await fetch(`${server.url}/api/grades`, { headers: { cookie: jar.replace(/\.(.)/, (_, c: string) => '.' + (c === 'A' ? 'B' : 'A')) } })).status).toBe(401);
    // Scripts: the bearer header.
    expect((await fetch(`${server.url}/api/grades`, { headers: { authorization: `Bearer ${server.instructorToken}` } })).status).toBe(200);
    expect((await fetch(`${server.url}/api/grades`, { headers: { authorization: `Bearer ${server.instructorToken}x` } })).status).toBe(401);

    const out = await fetch(`${server.url}/api/instructor/sign-out`, { method: 'POST', headers: { cookie: jar }, redirect: 'manual' });
    expect(out.status).toBe(303);
    expect(setCookie(out, 'vethlab_instructor')).toMatch(/Max-Age=0/);
  });

  it('exports a pseudonym and the learner’s name, never their cookie', async () => {
    const learner = new Learner(server.url);
    expect((await learner.request('PUT', '/api/me', { name: 'Ada L.' })).status).toBe(200);
    const [id, mac] = learner.cookie!.split('=')[1]!.split('.');
    server.store.startLab(id!, 'network-stack', []);
    const res = await fetch(`${server.url}/api/grades?lab=network-stack&format=csv`, { headers: { authorization: `Bearer ${server.instructorToken}` } });
    const csv = await res.text();
    expect(csv.split('\n')[0]).toMatch(/^learnerId,name,lab,/);
    expect(csv).toMatch(/^L-[A-Za-z0-9_-]{12},Ada L\.,network-stack,0,/m);
    expect(csv).not.toContain(id);
    expect(csv).not.toContain(mac);
    // The same learner has the same pseudonym in every export.
    const json = (await (await fetch(`${server.url}/api/grades?lab=network-stack`, { headers: { authorization: `Bearer ${server.instructorToken}` } })).json()) as { learnerId: string; name?: string }[];
    expect(csv).toContain(json.find((g) => g.name === 'Ada L.')!.learnerId);
  });

  it('makes an address that keeps guessing the token wait', async () => {
    const own = await startTestServer();
    try {
      const signIn = (token: string) => fetch(`${own.url}/api/instructor/sign-in`, { method: 'POST', body: new URLSearchParams({ token }), redirect: 'manual' });
      for (let i = 0; i < 5; i++) expect((await signIn(`guess-${i}`)).status).toBe(401);
      for (let i = 0; i < 5; i++) expect((await fetch(`${own.url}/api/grades`, { headers: { authorization: `Bearer guess-${i}` } })).status).toBe(401);
      // Ten wrong guesses: now even the right token waits, and says how long.
      const refused = await signIn(own.instructorToken);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await refused.json()).toMatchObject({ code: 'rate-limited' });
      expect((await fetch(`${own.url}/api/grades`, { headers: { authorization: `Bearer ${own.instructorToken}` } })).status).toBe(429);
    } finally {
      await own.close();
    }
  });

  it('prints where to sign in at start, not the token', async () => {
    const proc = await spawnLabServer();
    try {
      const token = readFileSync(path.join(proc.dataDir, 'instructor-token'), 'utf8').trim();
      expect(proc.output()).toContain(`${proc.url}${INSTRUCTOR_SIGN_IN_PAGE}`);
      expect(proc.output()).not.toContain(token);
    } finally {
      await proc.dispose();
    }
  });
});
