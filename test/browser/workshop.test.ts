/**
 * A whole workshop in a real browser against the real server and engine: the
 * instructor signs in and creates a room on the dashboard, five learners join
 * by code in separate browser contexts and work on lesson 4, the dashboard
 * shows their cells and a stuck flag, the instructor shadows a terminal and
 * sees its live output, takes it over once the learner allows it,
 * broadcasts, pushes a hint, resets one learner, and
 * downloads grades whose numbers match the learners' own pages. Takes the
 * README's dashboard screenshots.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startTestServer, type TestServer } from '../support/lab-server';
import { Staff } from '../support/room-client';
import { Learner } from '../support/terminal-client';

// As lesson.test.ts (importing it would run its tests here too).
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'];

let server: TestServer;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  // No pool of its own: the room sizes the warm pool from its seats.
  server = await startTestServer({ VETHLAB_POOL_SIZE: '0', VETHLAB_STARTS_PER_LEARNER: '40' });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await server?.close();
});

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1500, height: 950 }, acceptDownloads: true });
  contexts.push(context);
  return context.newPage();
}

const LAB = 'link';
const NAMES = ['Ada', 'Bo', 'Chen', 'Dee', '<b>Eve</b>'];
const typeLine = (page: Page, text: string) => page.evaluate((t) => window.__vethlabTerminals!.main!.send(t + '\r'), text);
const taskStatus = (page: Page, task: string) => page.locator(`[data-lab="${LAB}"] [data-task-id="${task}"]`).getAttribute('data-status');
const row = (dash: Page, name: string) => dash.locator(`tr[data-name="${name.replace(/"/g, '\\"')}"]`);
const cellOf = (dash: Page, name: string, task: string) => row(dash, name).locator(`[data-cell="${LAB}/${task}"]`);

describe('a workshop in the browser', () => {
  it('runs a room from creation to grades', { timeout: 900_000 }, async () => {
    // The instructor signs in on the sign-in page (no token in any URL) and creates a room.
    const dash = await newPage();
    await dash.goto(`${server.url}/instructor`);
    await dash.locator('input[name="token"]').fill(server.instructorToken);
    await dash.locator('button', { hasText: 'Sign in' }).click();
    await dash.locator('a[href="/dashboard"]').first().waitFor();
    await dash.goto(`${server.url}/dashboard`);
    await dash.locator('[data-create-room]').waitFor({ timeout: 30_000 });
    await dash.locator('[data-create-room] input[name="name"]').fill('Lesson 4 workshop');
    await dash.locator(`[data-create-room] input[name="lesson"][value="${LAB}"]`).check();
    await dash.locator('[data-create-room] input[name="seats"]').fill('5');
    await dash.locator('[data-create-room] input[name="stuckAttempts"]').fill('2');
    await dash.locator('[data-create-room] button[type="submit"]').click();
    const code = (await dash.locator('[data-room-code]').innerText({ timeout: 30_000 })).trim();
    expect(code).toMatch(/^[A-Z2-9]{6}$/);
    expect(await dash.locator('[data-join-link]').innerText()).toContain(`/workshop?code=${code}`);

    // Five learners join by code, each in a browser context of their own, and open lesson 4.
    const learners: Page[] = [];
    for (const name of NAMES) {
      const page = await newPage();
      await page.goto(`${server.url}/workshop?code=${code}`);
      await page.locator('[data-join-form] input[name="name"]').fill(name);
      await page.locator('[data-join-form] button[type="submit"]').click();
      await page.locator(`[data-room="${code}"]`).waitFor({ timeout: 30_000 });
      await page.locator(`[data-lesson-link="${LAB}"]`).click();
      learners.push(page);
    }
    // A sixth is refused: the room is full.
    const late = await newPage();
    await late.goto(`${server.url}/workshop?code=${code}`);
    await late.locator('[data-join-form] input[name="name"]').fill('Late');
    await late.locator('[data-join-form] button[type="submit"]').click();
    expect(await late.locator('[data-join-error]').innerText({ timeout: 30_000 })).toMatch(/seats/);

    for (const page of learners) await page.locator('[data-terminal][data-state="connected"]').waitFor({ timeout: 180_000 });
    const [ada, bo, chen, dee, eve] = learners as [Page, Page, Page, Page, Page];
    for (const page of learners) await expect.poll(() => page.locator('[data-terminal] .xterm-rows').innerText(), { timeout: 60_000 }).toMatch(/root@sandbox:~#/);

    // Work: Ada does two tasks, Bo and Dee one, Chen keeps failing, Eve has not begun.
    await typeLine(ada, 'docker run -d --name ng1 nginx');
    await typeLine(bo, 'docker run -d --name ng1 nginx');
    await typeLine(dee, 'docker run -d --name ng1 nginx');
    for (const page of [ada, bo, dee]) await page.locator(`[data-lab="${LAB}"] [data-task-id="run-ng1"][data-status="passed"]`).waitFor({ timeout: 120_000 });
    await typeLine(ada, 'docker run -d --name ng2 --link ng1 nginx');
    await ada.locator(`[data-lab="${LAB}"] [data-task-id="link-ng2"][data-status="passed"]`).waitFor({ timeout: 120_000 });
    for (let i = 0; i < 6 && !(await row(dash, 'Chen').getAttribute('data-flags'))?.includes('many-attempts'); i++) {
      const before = Number(await cellOf(dash, 'Chen', 'run-ng1').getAttribute('data-attempts'));
      await typeLine(chen, 'docker run -d --name ng1 busybox true');
      await expect.poll(async () => Number(await cellOf(dash, 'Chen', 'run-ng1').getAttribute('data-attempts')), { timeout: 60_000 }).toBeGreaterThan(before);
    }

    // The dashboard shows the right cells and the stuck flag, pushed as it happened.
    await expect.poll(() => cellOf(dash, 'Ada', 'link-ng2').getAttribute('data-status'), { timeout: 60_000 }).toBe('passed');
    for (const name of ['Ada', 'Bo', 'Dee']) await expect.poll(() => cellOf(dash, name, 'run-ng1').getAttribute('data-status'), { timeout: 60_000 }).toBe('passed');
    for (const name of ['Chen', '<b>Eve</b>']) expect(await cellOf(dash, name, 'run-ng1').getAttribute('data-status')).not.toBe('passed');
    await expect.poll(() => row(dash, 'Chen').getAttribute('data-flags'), { timeout: 60_000 }).toContain('many-attempts');
    expect(await dash.locator(`[data-aggregate="${LAB}/run-ng1"]`).getAttribute('data-passed')).toBe('3');
    // A name is shown as text, never as markup.
    expect(await row(dash, '<b>Eve</b>').locator('[data-learner-name]').innerText()).toBe('<b>Eve</b>');
    await dash.screenshot({ path: path.join(ROOT, 'assets/screenshot-dashboard.png'), fullPage: true });

    // The instructor shadows Ada's terminal and sees its live output; Ada sees she is watched.
    await row(dash, 'Ada').locator('[data-action="shadow"]').click();
    await dash.locator('[data-shadow-state="live"]').waitFor({ timeout: 30_000 });
    await ada.locator('[data-room-watched]').waitFor({ timeout: 30_000 });
    await typeLine(ada, 'echo shadow-$((6*7))');
    await expect.poll(() => dash.locator('[data-shadow-screen] .xterm-rows').innerText(), { timeout: 30_000 }).toContain('shadow-42');
    await dash.locator('[data-shadow]').scrollIntoViewIfNeeded();
    await dash.screenshot({ path: path.join(ROOT, 'assets/screenshot-shadow.png') });
    await ada.screenshot({ path: path.join(ROOT, 'assets/screenshot-watched.png') });

    // Take-over: asked on the dashboard, allowed by Ada on her page; what the instructor types is marked in her terminal.
    await dash.locator('[data-action="takeover"]').click();
    await ada.locator('[data-room-takeover="requested"] button').first().click();
    await dash.locator('[data-control="granted"]').waitFor({ timeout: 30_000 });
    await dash.locator('[data-shadow-screen] .xterm').click();
    await dash.keyboard.type('echo helped-$((20+3))');
    await dash.keyboard.press('Enter');
    const adaScreen = () => ada.locator('[data-terminal] .xterm-rows').innerText();
    await expect.poll(adaScreen, { timeout: 30_000 }).toMatch(/^helped-23$/m);
    expect(await adaScreen()).toContain('[instructor typing]');
    await ada.locator('[data-room-takeover="granted"] button').click();
    await dash.locator('[data-control="none"]').waitFor({ timeout: 30_000 });

    // Broadcast: every learner's page shows it.
    await dash.locator('input[name="broadcast"]').fill('Ten minutes left for task 2');
    await dash.locator('[data-action="broadcast"]').click();
    for (const page of learners) await expect.poll(() => page.locator('[data-room-broadcast]').innerText(), { timeout: 30_000 }).toContain('Ten minutes left for task 2');

    // A hint pushed to the stuck learner shows on their page and counts on their cell.
    await row(dash, 'Chen').locator('[data-action="hint"]').click();
    await chen.locator('[data-room-hint="run-ng1"]').waitFor({ timeout: 30_000 });
    await expect.poll(() => cellOf(dash, 'Chen', 'run-ng1').getAttribute('data-hints'), { timeout: 30_000 }).toBe('1');

    // Reset Bo: the dashboard cell goes back, Bo's page follows to a fresh sandbox.
    await row(dash, 'Bo').locator('[data-action="reset"]').click();
    await expect.poll(() => cellOf(dash, 'Bo', 'run-ng1').getAttribute('data-status'), { timeout: 120_000 }).not.toBe('passed');
    await expect.poll(() => taskStatus(bo, 'run-ng1'), { timeout: 120_000 }).not.toBe('passed');
    await bo.locator('[data-terminal][data-state="connected"]').waitFor({ timeout: 120_000 });

    // The audit log has the shadow, take-over, broadcast, hint and reset (newest first).
    await expect.poll(() => dash.locator('[data-audit]').innerText(), { timeout: 30_000 }).toMatch(/reset[\s\S]*hint[\s\S]*broadcast[\s\S]*takeover[\s\S]*shadow/);

    // Grades: the CSV's numbers match each learner's own page. A check run may count an attempt at any
    // moment, so the learners' own numbers are read just before and just after the download, until they agree.
    const ownOf = (page: Page) =>
      page.evaluate(async (lab) => {
        const sessionId = localStorage.getItem(`vethlab.session.${lab}`);
        const r = await fetch(`/api/sessions/${sessionId}/lab`);
        return ((await r.json()) as { tasks: { id: string; attempts: number; hintsUsed: number }[] }).tasks;
      }, LAB);
    let csv: string[] = [];
    let owns: Awaited<ReturnType<typeof ownOf>>[] = [];
    for (let i = 0; i < 10; i++) {
      const before = await Promise.all(learners.map(ownOf));
      const [download] = await Promise.all([dash.waitForEvent('download'), dash.locator('[data-grades="csv"]').click()]);
      csv = readFileSync((await download.path())!, 'utf8').trim().split('\n');
      owns = await Promise.all(learners.map(ownOf));
      if (JSON.stringify(before) === JSON.stringify(owns)) break;
    }
    expect(csv[0]).toBe('learnerId,name,lab,task,passedAt,attempts,hints,evidence');
    const lines = csv.slice(1).map((l) => l.split(','));
    for (const [i, page] of learners.entries()) {
      const name = NAMES[i]!;
      const mine = lines.filter((l) => l[1] === name);
      expect(mine.length, name).toBe(4);
      for (const l of mine) {
        const status = await taskStatus(page, l[3]!);
        expect({ name, task: l[3], passed: Boolean(l[4]) }).toEqual({ name, task: l[3], passed: status === 'passed' });
      }
      // Hints and attempts as the learner's own lab status (what their page reads) says.
      const own = owns[i]!;
      for (const t of own) {
        const l = mine.find((x) => x[3] === t.id)!;
        expect({ name, task: t.id, attempts: Number(l[5]), hints: Number(l[6]) }).toEqual({ name, task: t.id, attempts: t.attempts, hints: t.hintsUsed });
      }
    }
    // Evidence: what the checker saw when Ada's link task passed.
    expect(lines.find((l) => l[1] === 'Ada' && l[3] === 'link-ng2')!.slice(7).join(',')).toMatch(/container/);

    // The printable report, and the dashboard in Chinese.
    const report = await newPage();
    await report.context().addCookies(await dash.context().cookies());
    await report.goto(`${server.url}/api/rooms/${code}/report`);
    expect(await report.locator('body').innerText()).toContain('<b>Eve</b>');
    await dash.goto(`${server.url}/zh-Hans/dashboard?room=${code}`);
    await expect.poll(() => dash.locator('main').innerText(), { timeout: 30_000 }).toContain('审计日志');
    await row(dash, 'Ada').waitFor({ timeout: 30_000 });
    await dash.screenshot({ path: path.join(ROOT, 'assets/screenshot-dashboard-zh.png'), fullPage: true });
  });

  it('shows a room of 50 on one screen, pushed as they join', { timeout: 300_000 }, async () => {
    const instructor = await Staff.signIn(server.url, server.instructorToken);
    const room = await instructor.createRoom({ name: 'Fifty', lessons: [LAB], startsAt: new Date().toISOString(), endsAt: new Date(Date.now() + 3_600_000).toISOString(), seats: 50, stuckAttempts: 3 });
    const dash = await newPage();
    await dash.setViewportSize({ width: 1920, height: 1080 });
    await dash.context().addCookies([{ name: 'vethlab_instructor', value: instructor.cookie.split('=')[1]!, url: server.url }]);
    await dash.goto(`${server.url}/dashboard?room=${room.code}`);
    await dash.locator('[data-grid]').waitFor({ timeout: 30_000 });
    // Joining starts no sandbox: fifty learners join over HTTP while the dashboard is open.
    await Promise.all(Array.from({ length: 50 }, (_, i) => new Learner(server.url).request('POST', '/api/rooms/join', { code: room.code, name: `Learner ${String(i + 1).padStart(2, '0')}` })));
    await expect.poll(() => dash.locator('tr[data-learner]').count(), { timeout: 60_000 }).toBe(50);
    await dash.locator('[data-grid][data-compact]').waitFor();
    // The whole grid (50 rows and the per-task line) fits a 1920 x 1080 screen.
    const box = (await dash.locator('[data-grid]').boundingBox())!;
    expect(box.width).toBeLessThanOrEqual(1920);
    expect(box.height).toBeLessThanOrEqual(1080);
    await dash.locator('[data-grid]').scrollIntoViewIfNeeded();
    await dash.screenshot({ path: path.join(ROOT, 'assets/screenshot-dashboard-50.png') });
    await instructor.request('POST', `/api/rooms/${room.code}/end`);
  });
});

