// What the pages keep of the past, in Debian's chromium driven by playwright-core against a
// real `gantry serve` that crates/gantry/tests/it/ui_history.rs started and filled: the
// attempts of a stage that failed, failed again on its retry and was restarted, and the triggers page's
// recent webhook deliveries, refused ones with why, and each trigger's latest deliveries (a
// push its branch filter let pass, a webhook delivery that started its pipeline). Exits non-zero on the first failed
// check, naming it. Screenshots go to $GANTRY_SCREENSHOTS.
//
// Environment: GANTRY_URL, GANTRY_ADMIN_TOKEN, GANTRY_EXECUTION (an execution of `flaky`
// whose stage `fetch` ran three attempts), GANTRY_SCREENSHOTS.

import { launch } from './chromium.mjs';
import { mkdirSync } from 'node:fs';

const url = process.env.GANTRY_URL;
const token = process.env.GANTRY_ADMIN_TOKEN;
const execution = process.env.GANTRY_EXECUTION;
const shots = process.env.GANTRY_SCREENSHOTS ?? 'target/browser-screenshots';
mkdirSync(shots, { recursive: true });

const TIMEOUT = 30_000;
let step = 'starting chromium';

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);

  step = 'signing in';
  await page.goto(`${url}/login`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${url}/pipelines`);

  step = "the execution page lists each attempt of the stage with its status and error";
  await page.goto(`${url}/executions/${encodeURIComponent(execution)}`);
  const attempts = page.locator('table.attempts').filter({ has: page.locator('caption', { hasText: 'Attempts' }) });
  await attempts.waitFor();
  const rows = attempts.locator('tbody tr');
  check(await rows.count() === 3, `${await rows.count()} attempt rows, not 3`);
  const first = await rows.nth(0).innerText();
  check(/failed/.test(first) && /3/.test(first), `the first attempt's row: ${first}`);
  check(/failed/.test(await rows.nth(1).innerText()), 'the retry is not shown failed');
  check(/succeeded/.test(await rows.nth(2).innerText()), 'the restart is not shown succeeded');
  check(await attempts.locator('th[scope="col"]').count() === 5, 'the attempts table has no column headers for screen readers');
  await page.screenshot({ path: `${shots}/20-execution-attempts.png`, fullPage: true });

  step = 'the triggers page shows the recent deliveries, refused ones with why';
  await page.goto(`${url}/triggers`);
  const deliveries = page.locator('#deliveries tbody tr[data-kind="webhook"]');
  await deliveries.first().waitFor();
  check(await deliveries.count() === 4, `${await deliveries.count()} deliveries shown, not 4`);
  const outcomes = await deliveries.evaluateAll((rows) => rows.map((r) => r.dataset.outcome));
  check(JSON.stringify(outcomes) === JSON.stringify(['started', 'ignored', 'unknown', 'unauthorized']),
    `outcomes newest first: ${outcomes}`);
  const unauthorized = await deliveries.nth(3).innerText();
  check(/refused: unauthorized/.test(unauthorized) && /secret/i.test(unauthorized),
    `the wrong secret's row says neither that it was refused nor why: ${unauthorized}`);
  const unknown = await deliveries.nth(2).innerText();
  check(/refused: unknown/.test(unknown) && /nobody/.test(unknown), `the unknown source's row: ${unknown}`);
  check(await deliveries.nth(0).getByRole('link', { name: 'from-bot' }).count() === 1,
    'the accepted delivery does not link the execution it started');

  step = "each trigger shows its latest deliveries, with the outcome in words";
  const triggerRow = (pipeline) => page.locator('table.list tbody tr').filter({ has: page.getByRole('link', { name: pipeline, exact: true }) }).first();
  const pushed = await triggerRow('site-main').locator('li.delivery').first();
  check(await pushed.getAttribute('data-outcome') === 'ignored', 'site-main shows no ignored push');
  const pushedText = await pushed.innerText();
  check(/ignored/.test(pushedText) && /refs\/heads\/feature/.test(pushedText) && /\^main\$/.test(pushedText),
    `the ignored push does not say why in words: ${pushedText}`);
  const bot = triggerRow('from-bot').locator('li.delivery').first();
  check(await bot.getAttribute('data-outcome') === 'started', 'from-bot shows no started delivery');
  check(/started/.test(await bot.innerText()), 'the started delivery does not say so in words');
  check(await bot.getByRole('link', { name: 'execution of from-bot' }).count() === 1,
    'the started delivery does not link its execution');
  const pushRow = await page.locator('#deliveries tbody tr[data-kind="git"]').first().innerText();
  check(/ignored/.test(pushRow) && /site-main/.test(pushRow), `the log's row of the push: ${pushRow}`);
  await page.screenshot({ path: `${shots}/21-triggers-deliveries.png`, fullPage: true });

  console.log('history: every history check passed');
} catch (error) {
  console.error(`history: FAILED at "${step}": ${error.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
