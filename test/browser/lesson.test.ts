/**
 * The course in a real browser (headless Debian Chromium via playwright-core)
 * against the real lab-server serving the built site: a learner opens
 * lesson 1, the terminal connects to their sandbox, they type a command and
 * read its output in the rendered terminal. Also takes the README screenshot.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lessonLab } from '../../lab-server/labs/code-blocks';
import { ROOT, startTestServer, type TestServer } from '../support/lab-server';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  server = await startTestServer({ VETHLAB_POOL_SIZE: '1', VETHLAB_STARTS_PER_LEARNER: '40' });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function typeInTerminal(page: Page, text: string): Promise<void> {
  await page.locator('[data-terminal] .xterm').first().click();
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

const screenText = (page: Page) => page.locator('[data-terminal] .xterm-rows').first().innerText();

describe('lesson 1 in the browser', () => {
  it('opens a live terminal in the learner’s sandbox and runs a command', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${server.url}/docs/network-stack`);
    await page.locator('[data-terminal][data-state="connected"]').waitFor({ timeout: 60_000 });
    await expect.poll(() => screenText(page), { timeout: 20_000 }).toMatch(/root@sandbox:~#/);
    await typeInTerminal(page, 'ip -br link');
    await expect.poll(() => screenText(page), { timeout: 20_000 }).toMatch(/eth0@if\d+\s+UP|docker0\s+/);
    await typeInTerminal(page, 'echo 你好，容器');
    await expect.poll(() => screenText(page), { timeout: 20_000 }).toMatch(/^你好，容器$/m);
    await page.screenshot({ path: path.join(ROOT, 'assets/screenshot-lesson.png') });

    // A reload reattaches to the same shell and replays the recent screen.
    await page.reload();
    await page.locator('[data-terminal][data-state="connected"]').waitFor({ timeout: 60_000 });
    await expect.poll(() => screenText(page), { timeout: 20_000 }).toMatch(/你好，容器/);
    await page.close();
  });

  it('runs a code block into the terminal and the task turns green by itself', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${server.url}/docs/network-stack`);
    await page.locator('[data-terminal][data-state="connected"]').waitFor({ timeout: 60_000 });
    const task = page.locator('[data-lab="network-stack"] [data-task-id="own-netns"]');
    await task.waitFor({ timeout: 30_000 });
    expect(await task.getAttribute('data-status')).not.toBe('passed');
    await page.locator('button[data-run-command^="ip netns add lab1"]').click();
    await page.locator('button[data-run-command^="ip netns exec lab1 ip link set lo up"]').click();
    await page.locator('[data-task-id="own-netns"][data-status="passed"]').waitFor({ timeout: 30_000 });
    // The panel's count agrees with the list (a fresh learner: this is the one task passed).
    await expect.poll(() => page.locator('[data-lab="network-stack"] [role="progressbar"]').getAttribute('aria-valuenow'), { timeout: 10_000 }).toBe('1');
    // The learner saw the commands typed into their own terminal.
    expect(await screenText(page)).toContain('ip netns exec lab1 ip link set lo up');
    await page.screenshot({ path: path.join(ROOT, 'assets/screenshot-lab.png') });
    await page.close();
  });

  // One lesson after another, each starting its lab (containers, faults) in a
  // sandbox: minutes on a busy 2-core machine, so the time limit is a hang guard.
  for (const [language, locale] of [
    ['English', ''],
    ['Chinese', '/zh-Hans'],
  ] as const) {
    it(`opens every lesson in ${language} with its lab panel and terminal(s)`, { timeout: 480_000 }, async () => {
      const lessons = readdirSync(path.join(ROOT, 'docs'))
        .filter((f) => f.endsWith('.mdx'))
        .sort()
        .map((f) => {
          const mdx = readFileSync(path.join(ROOT, 'docs', f), 'utf8');
          return { id: /^id: (\S+)/m.exec(mdx)![1]!, lab: lessonLab(mdx)!, terminals: (mdx.match(/<Terminal\b/g) ?? []).length };
        });
      expect(lessons.length).toBe(9);
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      for (const lesson of lessons) {
        await page.goto(`${server.url}${locale}/docs/${lesson.id}`);
        await page.locator(`[data-lab="${lesson.lab}"] [data-task-id]`).first().waitFor({ timeout: 60_000 });
        await expect
          .poll(() => page.locator('[data-terminal][data-state="connected"]').count(), { timeout: 90_000, message: `${locale || '/'} ${lesson.id}: terminals connected` })
          .toBe(lesson.terminals);
        // The other language is one click away.
        expect(await page.locator(`a[href$="/docs/${lesson.id}"][lang], .dropdown__menu a[href*="/docs/${lesson.id}"]`).count()).toBeGreaterThan(0);
      }
      await page.close();
    });
  }

  it('searches the course offline', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${server.url}/`);
    await page.locator('input.navbar__search-input').fill('veth');
    await page.locator('.aa-suggestion, [class*="suggestion"]').first().waitFor({ timeout: 20_000 });
    expect(await page.locator('.aa-suggestion, [class*="suggestion"]').count()).toBeGreaterThan(0);
    await page.close();
  });

  it('serves the lesson in Chinese with its terminal', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${server.url}/zh-Hans/docs/network-stack`);
    expect(await page.locator('h1').first().innerText()).toContain('网络栈');
    await page.locator('[data-terminal][data-state="connected"]').waitFor({ timeout: 60_000 });
    await page.close();
  });
});
