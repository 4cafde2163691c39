// @ts-check
// The operator console in a real browser (Debian's Chromium driven by
// Playwright) against the real host with demo data and simulated stations.
// One signed-in page walks through the console like an operator; every step
// fails on any uncaught page error or console error, and saves a screenshot.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';

import { chromium } from 'playwright-core';

import { DEMO_ADMIN, REPO_ROOT, startStack, waitFor } from './harness.mjs';

/** Map tiles are the one thing the console may fetch from the internet; here they are unreachable. */
const TILE_HOST = 'https://tile.openstreetmap.org/';
const UI_TIMEOUT = 20_000;

/** @type {Awaited<ReturnType<typeof startStack>>} */
let stack;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {import('playwright-core').Page} */
let page;
/** @type {string[]} */
const problems = [];
let shot = 0;
/** The bearer token of the page's latest API call. */
let lastBearer = '';

async function screenshot(/** @type {string} */ name) {
  const dir = join(stack.outDir, 'screenshots');
  mkdirSync(dir, { recursive: true });
  shot += 1;
  const path = join(dir, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
}

/** Each step ends with no page errors and no console errors (failed tile loads aside). */
function noProblems() {
  const seen = problems.splice(0);
  assert.deepEqual(seen, [], `the page reported errors:\n${seen.join('\n')}`);
}

async function nav(/** @type {string} */ label) {
  await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: label, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: label }).waitFor({ timeout: UI_TIMEOUT });
}

describe('operator console', { timeout: 600_000 }, () => {
  before(async () => {
    stack = await startStack();
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-dev-shm-usage'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: 'UTC' });
    await context.route(`${TILE_HOST}**`, (route) => route.abort('internetdisconnected'));
    page = await context.newPage();
    page.setDefaultTimeout(UI_TIMEOUT);
    page.on('request', (r) => {
      const auth = r.headers().authorization;
      if (auth?.startsWith('Bearer ')) lastBearer = auth.slice(7);
    });
    page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.location().url.startsWith(TILE_HOST)) {
        problems.push(`console: ${m.text()} (${m.location().url})`);
      }
    });
  });

  // A step that failed with a dialog open must not take the next steps down with it.
  afterEach(async () => {
    if (page && (await page.locator('dialog[open]').count()) > 0) await page.keyboard.press('Escape');
  });

  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test('a wrong password shows the API error', async () => {
    const refused = await stack.api.call('POST', '/api/admin/login', null, { ...DEMO_ADMIN, password: 'not the password' });
    assert.equal(refused.status, 401);
    await page.goto(`${stack.base}/console/`);
    await page.getByLabel('Email').fill(DEMO_ADMIN.email);
    await page.getByLabel('Password').fill('still not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), new RegExp(refused.body.error.message));
    await screenshot('signin-wrong-password');
    // A wrong password is the API refusing: a 401 in the network panel, not an error of the page.
    const unexpected = problems.splice(0).filter((p) => !/401 \(Unauthorized\)/.test(p));
    assert.deepEqual(unexpected, []);
  });

  test("sign in; the dashboard shows the demo's station count", async () => {
    const stations = await stack.api.allStations();
    assert.equal(stations.length, 7, 'the demo has seven stations');
    await page.getByLabel('Password').fill(DEMO_ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('.dashboard[data-ready="yes"]').waitFor();
    const total = page.locator('[data-kpi="stations-total"] .kpi-value');
    assert.equal(await total.innerText(), String(stations.length));
    await waitFor('all stations online on the dashboard', async () =>
      (await page.locator('[data-kpi="stations-online"] .kpi-value').innerText()) === String(stations.length),
    );
    // Time to interactive: page load until the sign-in form works, plus the
    // moment the API accepted the password until the dashboard shows its
    // figures. The typing in between is the operator's, and the password
    // check (Argon2, slow by design and unoptimised in a debug build) the
    // server's; it is printed on its own.
    const timing = await page.evaluate(() => {
      const at = (/** @type {string} */ name) => performance.getEntriesByName(name)[0]?.startTime ?? NaN;
      return { submitted: at('signin-submitted'), signedIn: at('signed-in'), ready: at('dashboard-ready') };
    });
    // The first page load showed the form before the wrong-password step; measure a fresh one.
    const fresh = await browser.newPage();
    await fresh.goto(`${stack.base}/console/`);
    await fresh.getByLabel('Email').waitFor();
    const formReady = await fresh.evaluate(() => performance.getEntriesByName('signin-ready')[0]?.startTime ?? NaN);
    await fresh.close();
    const passwordCheck = timing.signedIn - timing.submitted;
    const signedInToDashboard = timing.ready - timing.signedIn;
    const interactive = formReady + signedInToDashboard;
    console.log(
      `console: dashboard time to interactive ${interactive.toFixed(0)} ms ` +
        `(load to sign-in form ${formReady.toFixed(0)} ms + signed in to dashboard figures ${signedInToDashboard.toFixed(0)} ms; ` +
        `goal < 1000 ms); the API's password check took ${passwordCheck.toFixed(0)} ms`,
    );
    writeFileSync(
      join(stack.outDir, 'dashboard-tti.json'),
      JSON.stringify({ formReady, signedInToDashboard, interactive, passwordCheck }),
    );
    assert.ok(Number.isFinite(interactive), 'the console marks sign-in and dashboard readiness');
    await screenshot('dashboard');
    noProblems();
  });

  test('stations: live link status, free slots, and positions without map tiles', async () => {
    const stations = await stack.api.allStations();
    await nav('Stations');
    const rows = page.locator('tbody tr[data-row]');
    await waitFor('every station listed', async () => (await rows.count()) === stations.length);
    for (const s of stations) {
      const row = page.locator(`tr[data-row="${s.serial_number}"]`);
      assert.equal(await row.locator('[data-station-status]').getAttribute('data-station-status'), 'online');
      assert.equal(await row.locator('td[data-label="Free slots"]').innerText(), String(s.empty_slots));
    }
    // Tiles are blocked here: the map gives way to a plot of the positions.
    await page.locator('[data-map="plot"] [data-testid="position-plot"]').waitFor();
    assert.equal(await page.locator('[data-testid="position-plot"] circle').count(), stations.length);
    // Sorting by free slots, descending: the column reads high to low.
    const header = page.getByRole('button', { name: /Free slots/ });
    await header.click();
    await header.click();
    const free = (await page.locator('td[data-label="Free slots"]').allInnerTexts()).map(Number);
    assert.deepEqual(free, [...free].sort((a, b) => b - a));
    await screenshot('stations');
    noProblems();
  });

  test('eject from a station and see the slot change', async () => {
    const sn = 'KTM-THAMEL-01';
    const before = await stack.api.json('GET', `/api/stations/${sn}`);
    const slot = before.slots.find((/** @type {any} */ s) => s.status === 'occupied');
    assert.ok(slot, 'the station has a bank to eject');
    await page.getByRole('link', { name: new RegExp(sn) }).first().click();
    await page.getByRole('heading', { level: 1, name: before.name }).waitFor();
    const status = page.locator(`tr[data-row="${slot.slot_index}"] [data-slot-status]`);
    assert.equal(await status.getAttribute('data-slot-status'), 'occupied');
    await page.getByRole('button', { name: `Eject slot ${slot.slot_index}` }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText(slot.power_bank_serial).waitFor();
    await screenshot('eject-confirmation');
    await dialog.getByRole('button', { name: 'Eject', exact: true }).click();
    await page.getByText(`Power bank ${slot.power_bank_serial} ejected`).waitFor();
    // The page shows the slot empty (from the live feed, no reload).
    await waitFor('the slot to show empty', async () => (await status.getAttribute('data-slot-status')) === 'empty');
    const after = await stack.api.json('GET', `/api/stations/${sn}`);
    assert.equal(after.slots.find((/** @type {any} */ s) => s.slot_index === slot.slot_index).status, 'empty');
    await screenshot('station-after-eject');
    noProblems();
  });

  test('approve a pending KYC and see it leave the queue', async () => {
    const customer = await stack.api.registerCustomer('+9779841500001');
    const id = await stack.api.submitKyc(customer);
    await nav('KYC queue');
    const card = page.locator(`[data-kyc="${id}"]`);
    await card.waitFor();
    await card.getByText('27-01-75-12345').waitFor();
    // Both document images are shown (fetched with the operator's token).
    const images = card.locator('img');
    await waitFor('both document images', async () => (await images.count()) === 2);
    for (const img of await images.all()) {
      await waitFor('an image to load', () => img.evaluate((el) => /** @type {HTMLImageElement} */ (el).naturalWidth === 240));
    }
    await screenshot('kyc-queue');
    await card.getByRole('button', { name: 'Approve' }).click();
    await card.waitFor({ state: 'detached' });
    await page.getByText(`Submission #${id} approved.`).waitFor();
    const approved = await stack.api.json('GET', '/api/admin/kyc?status=approved', stack.admin);
    assert.ok(approved.results.some((/** @type {any} */ k) => k.id === id), 'approved in the API');
    const pending = await stack.api.json('GET', '/api/admin/kyc?status=pending', stack.admin);
    assert.ok(!pending.results.some((/** @type {any} */ k) => k.id === id), 'gone from the queue');
    await screenshot('kyc-after-approval');
    noProblems();
  });

  test('refunds and coupons', async () => {
    await nav('Refunds');
    await page.getByRole('table').waitFor();
    await screenshot('refunds');
    await nav('Coupons');
    await page.getByRole('button', { name: 'New coupon…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Code', { exact: true }).fill('E2E10');
    await dialog.getByLabel('Name', { exact: true }).fill('Browser test');
    await dialog.getByLabel('Percent', { exact: true }).fill('10');
    await dialog.getByLabel('At most (NPR, optional)').fill('25.50');
    await dialog.getByLabel('Valid until (Nepal time)').fill('2030-01-01T00:00');
    await dialog.getByRole('button', { name: 'Create' }).click();
    const row = page.locator('tr[data-row="E2E10"]');
    await row.waitFor();
    assert.match(await row.innerText(), /10 % \(at most NPR 25\.50\)/);
    const coupon = await stack.api.json('GET', '/api/admin/coupons/E2E10', stack.admin);
    assert.equal(coupon.percentage_bp, 1000);
    assert.equal(coupon.max_discount_paisa, 2550);
    await screenshot('coupons');
    noProblems();
  });

  test('reload plugins and see the new loaded_at', async () => {
    await nav('Plugins');
    const loadedAt = page.locator('tr[data-row="pricing-standard"] [data-loaded-at]');
    await loadedAt.waitFor();
    const before = /** @type {string} */ (await loadedAt.getAttribute('data-loaded-at'));
    assert.ok(before, 'the plugin has a load time');
    // loaded_at has whole seconds: let the clock pass the current one.
    await waitFor('a new second', async () => Date.now() >= Date.parse(before) + 1100);
    const manifest = readFileSync(stack.plugins, 'utf8');
    assert.match(manifest, /overdue_paisa_per_hour = 500/);
    writeFileSync(stack.plugins, manifest.replace('overdue_paisa_per_hour = 500', 'overdue_paisa_per_hour = 600'));
    await page.getByRole('button', { name: 'Reload plugins.toml' }).click();
    await page.locator('[data-reload-report]').getByText(/pricing-standard/).waitFor();
    await waitFor('a later loaded_at', async () => ((await loadedAt.getAttribute('data-loaded-at')) ?? '') > before);
    await screenshot('plugins-after-reload');
    noProblems();
  });

  test('users: search, detail, and the owner adjusts a wallet with a reason seen on the audit page', async () => {
    const phone = '+9779841500002';
    const customer = await stack.api.registerCustomer(phone);
    const me = await stack.api.json('GET', '/api/auth/me', customer);
    const userId = /** @type {number} */ (me.id ?? me.user?.id);
    assert.ok(Number.isInteger(userId), 'the customer has an id');
    const before = await stack.api.json('GET', `/api/admin/users/${userId}`, stack.admin);
    await nav('Users');
    await page.getByLabel('Search').fill('9841500002');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    const row = page.locator(`tr[data-row="${userId}"]`);
    await row.waitFor();
    await waitFor('only the match listed', async () => (await page.locator('tbody tr[data-row]').count()) === 1);
    await screenshot('users-search');
    await row.getByRole('link').click();
    await page.locator(`[data-wallet-balance="${before.wallet_balance_paisa}"]`).waitFor();
    await page.getByRole('heading', { name: 'Internal notes' }).waitFor();
    await screenshot('user-detail');
    // A note, then a credit of NPR 150.50 typed as rupees and paisa.
    await page.getByLabel('New note').fill('Called about a stuck bank');
    await page.getByRole('button', { name: 'Add note' }).click();
    await page.getByText('Called about a stuck bank').waitFor();
    await page.getByRole('button', { name: 'Adjust wallet…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Amount (NPR)').fill('150.50');
    // Without a reason the form does not go (the API would answer 400 reason_required).
    await dialog.getByRole('button', { name: 'Credit' }).click();
    assert.equal(await dialog.isVisible(), true);
    await dialog.getByLabel('Reason (kept in the audit log)').fill('Goodwill: bank stuck at KTM-THAMEL-01');
    await screenshot('user-adjust-wallet');
    await dialog.getByRole('button', { name: 'Credit' }).click();
    const expected = before.wallet_balance_paisa + 15050;
    await page.locator(`[data-wallet-balance="${expected}"]`).waitFor();
    await page.getByText(/balance now NPR/).waitFor();
    const after = await stack.api.json('GET', `/api/admin/users/${userId}`, stack.admin);
    assert.equal(after.wallet_balance_paisa, expected);
    await screenshot('user-after-adjustment');

    await nav('Audit log');
    const first = page.locator('tbody tr[data-row]').first();
    await first.waitFor();
    assert.match(await first.locator('td[data-label="Action"]').innerText(), /user\.wallet_adjust/);
    assert.equal(await first.locator('td[data-label="Target"]').innerText(), `user ${userId}`);
    assert.match(await first.locator('td[data-label="Reason"]').innerText(), /Goodwill: bank stuck/);
    assert.match(await first.locator('td[data-label="Operator"]').innerText(), new RegExp(DEMO_ADMIN.email));
    await screenshot('audit-log-newest');
    // Filters go to the API: by action, only wallet adjustments.
    await page.getByLabel('Action').fill('user.note');
    await page.getByRole('button', { name: 'Filter' }).click();
    await waitFor('the filtered list', async () =>
      (await page.locator('td[data-label="Action"]').allInnerTexts()).every((a) => a.includes('user.note')),
    );
    await page.getByRole('button', { name: 'Verify chain' }).click();
    await page.locator('[data-verified="ok"]').waitFor();
    await screenshot('audit-log');
    noProblems();
  });

  test('operators: the owner creates one and changes its role', async () => {
    await nav('Operators');
    await page.locator('tbody tr[data-row]').first().waitFor();
    await page.getByRole('button', { name: 'New operator…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Email').fill('finance@powerbank.local');
    await dialog.getByLabel('Password (12 characters or more)').fill('finance-password-1');
    await dialog.getByLabel('Role').selectOption('finance');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await page.getByText('finance@powerbank.local created as finance.').waitFor();
    const row = page.locator('tbody tr', { hasText: 'finance@powerbank.local' });
    await row.locator('[data-role="finance"]').waitFor();
    await row.getByRole('button', { name: 'Change role…' }).click();
    await dialog.getByLabel(/New role/).selectOption('field_tech');
    await dialog.getByLabel('Reason (kept in the audit log)').fill('Moved to the field team');
    await dialog.getByRole('button', { name: 'Change role' }).click();
    await row.locator('[data-role="field_tech"]').waitFor();
    await screenshot('operators');
    noProblems();
  });

  test('plugin releases: a bad build is rejected and its reason shown', async () => {
    await nav('Plugin releases');
    await page.locator('[data-serving]').waitFor();
    await page.getByRole('button', { name: 'Upload release…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Component (.wasm)').setInputFiles({
      name: 'broken.wasm',
      mimeType: 'application/wasm',
      buffer: Buffer.from('this is not a component'),
    });
    await dialog.getByRole('button', { name: 'Upload and check' }).click();
    await page.getByText(/The build was rejected and recorded/).waitFor();
    await page.locator('[data-rejected-reason]').first().waitFor();
    await screenshot('plugin-releases-rejected');
    // The refusal is the API's answer (422), not an error of the page.
    const unexpected = problems.splice(0).filter((p) => !/422 \(Unprocessable (Content|Entity)\)/.test(p));
    assert.deepEqual(unexpected, []);

    // A good build of pricing-standard is staged, promoted, and the file serves again after a rollback.
    await page.getByLabel(/^Plugin/).selectOption('pricing-standard');
    await page.getByRole('button', { name: 'Upload release…' }).click();
    await dialog.getByLabel('Component (.wasm)').setInputFiles(join(REPO_ROOT, 'plugins/dist/pricing_standard.wasm'));
    await dialog.getByLabel(/^Config/).fill('overdue_paisa_per_hour = 500\noverdue_grace_minutes = 0');
    await dialog.getByRole('button', { name: 'Upload and check' }).click();
    await page.getByText(/checked and staged/).waitFor();
    const staged = page.locator('tbody tr', { has: page.locator('.badge', { hasText: 'staged' }) }).first();
    await staged.getByRole('button', { name: 'Promote' }).click();
    await page.locator('[data-serving="release"]').waitFor();
    await screenshot('plugin-releases-promoted');
    await page.getByRole('button', { name: 'Serve the plugins.toml file' }).click();
    await page.locator('[data-serving="file"]').waitFor();
    noProblems();
  });

  test('content: support thread reply and close, pages, FAQ, achievements', async () => {
    const customer = await stack.api.registerCustomer('+9779841500003');
    const thread = await stack.api.json('POST', '/api/content/contact', customer, {
      subject: 'Bank not charging',
      message: 'The bank I rented shows 5% after an hour.',
    });
    await nav('Content');
    await page.getByRole('button', { name: 'Bank not charging' }).click();
    const section = page.locator(`[data-thread="${thread.id}"]`);
    await section.getByText('shows 5% after an hour').waitFor();
    await section.getByLabel('Reply').fill('Please return it at any station; we waive the fee.');
    await section.getByRole('button', { name: 'Send reply' }).click();
    await page.getByText('Reply sent; the rider is notified.').waitFor();
    await screenshot('content-support');
    await section.getByRole('button', { name: 'Close thread' }).click();
    await section.getByText(/^Closed /).waitFor();
    const closed = await stack.api.json('GET', `/api/admin/support/threads/${thread.id}`, stack.admin);
    assert.equal(closed.status, 'closed');

    await page.getByRole('tab', { name: 'Pages' }).click();
    await page.getByRole('button', { name: 'New page…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Slug (lower-case words joined by -)').fill('e2e-help');
    await dialog.getByLabel('Title (en)').fill('Help');
    await dialog.getByLabel('Text (en, Markdown)').fill('# Help\n\nCall us.');
    await dialog.getByRole('button', { name: 'Publish' }).click();
    await page.getByText('e2e-help version 1 published (en).').waitFor();
    await page.getByRole('heading', { name: /Versions of/ }).waitFor();
    await screenshot('content-pages');

    await page.getByRole('tab', { name: 'FAQ' }).click();
    await page.getByRole('table').waitFor();
    await screenshot('content-faq');
    await page.getByRole('tab', { name: 'Achievements' }).click();
    await page.getByRole('table').waitFor();
    await screenshot('content-achievements');
    noProblems();
  });

  test('a support operator has no balance-adjust button and the API refuses it', async () => {
    const support = { email: 'support@powerbank.local', password: 'support-password-1' };
    await stack.api.json('POST', '/api/admin/operators', stack.admin, { ...support, role: 'support' });
    const search = await stack.api.json('GET', '/api/admin/users?q=9841500002', stack.admin);
    const userId = search.results[0].id;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Email').fill(support.email);
    await page.getByLabel('Password').fill(support.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // Signed in on the page the owner left (Content): a support operator may see it too.
    await page.getByRole('heading', { level: 1, name: 'Content' }).waitFor();
    const navigation = page.getByRole('navigation', { name: 'Pages' });
    // The API's list of this role's routes decides the navigation.
    await navigation.getByRole('link', { name: 'Users', exact: true }).waitFor();
    assert.equal(await navigation.getByRole('link', { name: 'Audit log' }).count(), 0);
    assert.equal(await navigation.getByRole('link', { name: 'Operators' }).count(), 0);
    await nav('Users');
    await page.locator(`tr[data-row="${userId}"]`).getByRole('link').click();
    await page.getByRole('heading', { name: 'Internal notes' }).waitFor();
    await page.getByRole('button', { name: 'Suspend…' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Adjust wallet…' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Adjust points…' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Ban…' }).count(), 0);
    await screenshot('support-user-detail');
    // And the API refuses the adjustment with this very session.
    const refused = await stack.api.call('POST', `/api/admin/users/${userId}/wallet-adjustments`, lastBearer, {
      amount: 100,
      reason: 'trying',
      idempotency_key: 'support-tries-1',
    });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'role_not_allowed');
    const after = await stack.api.json('GET', `/api/admin/users/${userId}`, stack.admin);
    assert.equal(after.wallet_balance_paisa, 15050, 'nothing moved');
    noProblems();
  });

  test('phone-sized screen, keyboard only', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    // From the top of the page, the first Tab reaches the skip link; Enter moves focus to the content.
    await page.evaluate(() => {
      document.body.tabIndex = -1;
      document.body.focus();
      document.body.removeAttribute('tabindex');
    });
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');
    // The navigation folds behind the menu button; open it and go by keyboard.
    const menu = page.getByRole('button', { name: 'Menu' });
    await menu.focus();
    await page.keyboard.press('Enter');
    const dashboard = page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Dashboard' });
    await dashboard.focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
    await page.locator('.dashboard[data-ready="yes"]').waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
    await screenshot('phone-dashboard');
    await page.setViewportSize({ width: 1280, height: 900 });
    noProblems();
  });

  test('sign out ends the session', async () => {
    const token = lastBearer;
    assert.equal((await stack.api.call('GET', '/api/auth/me', token)).status, 200);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    // The server ended the session too: the token the page used is refused.
    await waitFor('the old token refused', async () => (await stack.api.call('GET', '/api/auth/me', token)).status === 401);
    await screenshot('signed-out');
    noProblems();
  });

  test('the host stops at once on SIGTERM even with a console listening', async () => {
    await page.getByLabel('Email').fill(DEMO_ADMIN.email);
    await page.getByLabel('Password').fill(DEMO_ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('.dashboard[data-ready="yes"]').waitFor();
    // Graceful shutdown waits for open responses; the live feed must end by itself.
    const started = Date.now();
    const code = await Promise.race([stack.terminateHost(), new Promise((r) => setTimeout(() => r('still running'), 20_000))]);
    assert.equal(code, 0, `the host ${code === 'still running' ? 'did not stop within 20 s' : `exited with ${code}`}`);
    console.log(`console: host stopped ${Date.now() - started} ms after SIGTERM with a console open`);
    // The console notices and keeps trying to reconnect; that is no page error.
    problems.splice(0);
  });
});
