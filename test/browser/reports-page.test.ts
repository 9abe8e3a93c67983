// The report page in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core):
// it loads, signs in with a token, shows the fleet chart with the seeded numbers and a device's
// timeline; screenshots are kept under test/out/ (git-ignored). Skips only when Chromium is
// missing outside CI; in CI (CI=true) a missing Chromium fails the test.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ADMIN_TOKEN, startApiAcs } from '../support/api-client';
import type { TestAcs } from '../support/acs';
import { A, finalizeHistory, seedHistory } from '../support/report-history';

const CHROMIUM = '/usr/bin/chromium';
const OUT = path.resolve(__dirname, '..', '..', '..', 'test', 'out');

describe('report page in headless Chromium', function () {
  this.timeout(90_000);
  let acs: TestAcs;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  const problems: string[] = [];

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing in CI (.ci/run installs the chromium package)`);
      console.log(`      (skipped: ${CHROMIUM} is not installed; apt-get install -y chromium)`);
      this.skip();
    }
    ({ acs } = await startApiAcs());
    await seedHistory(acs);
    await finalizeHistory(acs);
    profile = mkdtempSync(path.join(os.tmpdir(), 'acs-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1280, height: 900 },
      timezoneId: 'Europe/Berlin',
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
    mkdirSync(OUT, { recursive: true });
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    if (profile) rmSync(profile, { recursive: true, force: true });
    await acs?.stop();
  });

  const text = async (selector: string) => (await page.locator(selector).first().textContent())?.trim();

  it('loads, explains sign-in, and refuses a wrong token', async () => {
    const base = `http://127.0.0.1:${acs.apiPort}/reports#tz=Europe/Berlin&from=2024-03-29&to=2024-04-01`;
    await page.goto(base);
    await page.locator('#login').waitFor({ state: 'visible' });
    await page.fill('#token', 'not-a-real-token-123');
    await page.click('#login-form button[type=submit]');
    await page.locator('#login-error').waitFor({ state: 'visible' });
    assert.match((await text('#login-error')) ?? '', /refused|failed/i);
    problems.length = 0; // the 401 of the wrong token is expected
  });

  it('shows the fleet dashboard with the seeded numbers', async () => {
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#login-form button[type=submit]');
    await page.locator('#chart-fleet-sessions canvas').waitFor({ state: 'visible' });
    await page.waitForFunction("!document.getElementById('status').classList.contains('busy')");
    // Berlin days 03-29 … 04-01: 1 + 6 + 3 + 0 sessions; disconnects 0 + 2 (B's uptime) + 2 (A) + 0.
    assert.equal(await text('[data-card="sessions"] b'), '10');
    assert.equal(await text('[data-card="disconnects"] b'), '4');
    assert.equal(await page.getAttribute('#chart-fleet-sessions', 'data-points'), '4');
    const rows = await page.locator('#table-fleet-daily tbody tr').allTextContents();
    assert.equal(rows.length, 4);
    assert.match(rows[2], /^2024-03-31 \(23 h\)3/); // the DST day, 3 sessions
    const top = await page.locator('#table-top tbody tr').allTextContents();
    assert.equal(top.length, 2);
    assert.match((await text('#status')) ?? '', /Fleet report for 2024-03-29 to 2024-04-01 \(Europe\/Berlin\)/);
    await page.screenshot({ path: path.join(OUT, 'reports-fleet.png'), fullPage: true });
    assert.ok(statSync(path.join(OUT, 'reports-fleet.png')).size > 10_000);
  });

  it('finds a device and shows its timeline and days', async () => {
    await page.click('#tab-device');
    await page.fill('#q', A);
    await page.click('#search button[type=submit]');
    await page.locator('#chart-timeline canvas').waitFor({ state: 'visible' });
    await page.waitForFunction("!document.getElementById('status').classList.contains('busy')");
    assert.equal(await text('#device-title'), A);
    assert.equal(await text('#device-cards [data-card="sessions"] b'), '6');
    assert.equal(await text('#device-cards [data-card="gaps"] b'), '1');
    assert.equal(await text('#device-cards [data-card="reboots"] b'), '2');
    const sessions = await page.locator('#table-timeline tbody tr').allTextContents();
    assert.equal(sessions.length, 7);
    assert.match(sessions[0], /still connected/); // newest first: the open session
    assert.equal(await page.locator('#table-device-daily tbody tr').count(), 4);
    await page.screenshot({ path: path.join(OUT, 'reports-device.png'), fullPage: true });
    assert.ok(statSync(path.join(OUT, 'reports-device.png')).size > 10_000);
  });

  it('an empty range is explained, and nothing failed on the way (CSP, scripts, requests)', async () => {
    await page.fill('#from', '2023-01-01');
    await page.fill('#to', '2023-01-03');
    await page.click('#range button[type=submit]');
    await page.locator('#device-empty').waitFor({ state: 'visible' });
    assert.match((await text('#device-empty')) ?? '', /no session between/);
    await page.click('#tab-fleet');
    await page.locator('#fleet-empty').waitFor({ state: 'visible' });
    assert.match((await text('#fleet-empty')) ?? '', /No sessions in this range/);
    assert.deepEqual(problems, []);
  });
});
