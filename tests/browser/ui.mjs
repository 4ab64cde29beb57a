// The web UI in a real browser: Debian's chromium driven by playwright-core
// against a real `gantry serve` that crates/gantry/tests/it/ui_browser.rs
// started and filled. Each check throws on failure; the process exits
// non-zero on the first one, naming it. Screenshots of every page go to
// $GANTRY_SCREENSHOTS.
//
// Environment: GANTRY_URL, GANTRY_ADMIN_TOKEN, GANTRY_VIEWER_TOKEN,
// GANTRY_SCREENSHOTS, GANTRY_CLUSTER (a cluster with two server groups,
// or empty to leave the clusters checks out) and GANTRY_CANARY_EXECUTION (an
// execution of a canary deploy with an analysis, or empty).

import { launch } from './chromium.mjs';
import { mkdirSync } from 'node:fs';

const url = process.env.GANTRY_URL;
const adminToken = process.env.GANTRY_ADMIN_TOKEN;
const viewerToken = process.env.GANTRY_VIEWER_TOKEN;
const shots = process.env.GANTRY_SCREENSHOTS ?? 'target/browser-screenshots';
const cluster = process.env.GANTRY_CLUSTER ?? '';
const canaryExecution = process.env.GANTRY_CANARY_EXECUTION ?? '';
mkdirSync(shots, { recursive: true });

const TIMEOUT = 30_000;
let step = 'starting chromium';

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function shot(page, name) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

async function signIn(context, token) {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  await page.goto(`${url}/pipelines`);
  check(new URL(page.url()).pathname === '/login', `an anonymous visit to /pipelines went to ${page.url()}, not /login`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${url}/pipelines`);
  return page;
}

const browser = await launch();
try {
  const admin = await browser.newContext({ viewport: { width: 1400, height: 900 } });

  step = 'a wrong token is refused at sign-in';
  {
    const page = await admin.newPage();
    await page.goto(`${url}/login`);
    await shot(page, '01-login');
    await page.getByLabel('API token').fill('gantry_not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'not valid' }).waitFor({ timeout: TIMEOUT });
    const cookies = await admin.cookies();
    check(cookies.length === 0, `a refused sign-in set cookies: ${JSON.stringify(cookies)}`);
    await page.close();
  }

  step = 'signing in sets an HttpOnly, SameSite=Strict session cookie without the token';
  const page = await signIn(admin, adminToken);
  {
    const [cookie] = await admin.cookies();
    check(cookie && cookie.name === 'gantry_session', 'no session cookie after signing in');
    check(cookie.httpOnly && cookie.sameSite === 'Strict', `cookie flags: ${JSON.stringify(cookie)}`);
    check(!cookie.value.includes(adminToken.slice(7)), 'the cookie holds the token');
    check(await page.evaluate(() => document.cookie) === '', 'a script can read the session cookie');
  }

  step = 'the pipelines page lists the pipeline';
  await page.getByRole('link', { name: 'release' }).waitFor();
  await shot(page, '02-pipelines');

  step = 'the pipelines list filters on the server';
  await page.getByRole('searchbox', { name: 'Name' }).fill('night');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(`${url}/pipelines?q=night`);
  const listed = await page.locator('tbody th a').allInnerTexts();
  check(listed.length === 1 && listed[0] === 'nightly', `filtering on "night" listed ${listed}`);
  await page.goto(`${url}/pipelines`);

  step = 'the run form enforces required parameters';
  await page.getByRole('link', { name: 'release' }).click();
  await page.waitForURL(`${url}/pipelines/release`);
  check(await page.getByLabel(/^password/).getAttribute('type') === 'password', 'the secret parameter is not masked');
  check(await page.getByLabel(/^env/).evaluate((s) => s.tagName) === 'SELECT', 'options are not a choice');
  await page.getByRole('button', { name: 'Run release' }).click();
  check(await page.getByLabel(/^version/).evaluate((i) => !i.validity.valid), 'an empty required parameter was accepted');
  check(new URL(page.url()).pathname === '/pipelines/release', 'the form went on without its required parameter');
  await shot(page, '03-run-form');

  step = 'running with parameters opens the new execution';
  await page.getByLabel(/^version/).fill('2.0');
  await page.getByLabel(/^env/).selectOption('production');
  await page.getByLabel(/^password/).fill('hunter2');
  await page.getByRole('button', { name: 'Run release' }).click();
  await page.waitForURL(/\/executions\/[^/]+$/);
  const executionUrl = page.url();
  const executionId = decodeURIComponent(executionUrl.split('/').pop());
  await page.evaluate(() => { window.sameDocument = true; });

  step = 'log lines arrive live, in colour';
  await page.locator('#log .line', { hasText: 'building 2.0 step 1' }).waitFor();
  const colour = await page.locator('#log .line', { hasText: 'building 2.0 step 1' }).locator('span.ansi-fg-2').count();
  check(colour === 1, 'the ANSI green of the build line is not shown as colour');
  check(await page.locator('#log').innerText().then((t) => !t.includes('hunter2')), 'the secret parameter shows in the log');

  step = 'the graph turns green live';
  const running = await page.locator('a.node[data-stage="build"]').getAttribute('data-status');
  check(running === 'running' || running === 'pending', `build was ${running} when the page opened, before its 3 s were up`);
  await shot(page, '04-execution-running');
  await page.locator('a.node[data-stage="build"][data-status="succeeded"]').waitFor();
  await page.locator('a.node[data-stage="test"][data-status="succeeded"]').waitFor();
  await page.locator('a.node[data-stage="lint"] .node-status', { hasText: 'succeeded' }).waitFor();
  check(await page.evaluate(() => window.sameDocument === true), 'the page reloaded instead of updating live');

  step = 'a judgment shows its instructions and is approved with an option';
  await page.locator('.judgment .instructions', { hasText: 'Check the staging dashboards first.' }).waitFor();
  await shot(page, '05-execution-judgment');
  await page.getByLabel('Option').selectOption('ship');
  await page.getByRole('button', { name: 'Approve' }).click();
  await page.locator('a.node[data-stage="done"][data-status="succeeded"]').waitFor();
  await page.locator('#exec-status', { hasText: 'succeeded' }).waitFor();
  await page.locator('#log .line', { hasText: 'shipped' }).waitFor();
  check(await page.evaluate(() => window.sameDocument === true), 'the page reloaded instead of updating live');
  const execution = await page.evaluate(async (id) => (await fetch(`/api/v1/executions/${id}`)).json(), executionId);
  const approve = execution.stages.find((s) => s.id === 'approve');
  check(approve.outputs.judgment === 'ship', `the judgment's option was ${JSON.stringify(approve.outputs)}`);
  check(execution.parameters.env === 'production' && execution.parameters.version === '2.0', `parameters: ${JSON.stringify(execution.parameters)}`);

  step = 'log search and stage filter';
  await page.getByLabel('Search').fill('shipped');
  check(await page.locator('#log .line:visible').count() === 1, 'searching "shipped" did not leave one line');
  await page.getByLabel('Search').fill('');
  await page.locator('#log-stage').selectOption('build');
  check(await page.locator('#log .line:visible').count() === 3, 'the stage filter did not leave the three build lines');
  await page.locator('#log-stage').selectOption('');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download' }).click()]);
  check(download.suggestedFilename().endsWith('.log'), `downloaded ${download.suggestedFilename()}`);
  await shot(page, '06-execution-succeeded');

  step = 'the stage actions: restart a stage, then re-run';
  await page.locator('#stage-4-restart').click();
  await page.locator('#confirm-ok').click();
  await page.locator('#exec-status', { hasText: /running|succeeded/ }).waitFor();
  await page.locator('#exec-status', { hasText: 'succeeded' }).waitFor();

  step = 'the executions list filters on the server';
  await page.goto(`${url}/executions?status=succeeded&pipeline=release`);
  check(await page.locator('tbody tr').count() >= 1, 'no succeeded execution listed');
  await page.goto(`${url}/executions?status=failed`);
  check(await page.locator('tbody tr').count() === 0, 'a failed filter listed executions');
  await page.goto(`${url}/executions`);
  await shot(page, '07-executions');

  step = 'a change without the CSRF token is refused';
  {
    const answers = await page.evaluate(async () => {
      const post = (headers) => fetch('/api/v1/pipelines/release/executions', {
        method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"parameters":{"version":"x"}}',
      }).then(async (r) => [r.status, (await r.json()).error]);
      return [await post({}), await post({ 'x-csrf-token': 'forged' })];
    });
    check(answers[0][0] === 403 && answers[0][1].includes('CSRF'), `without the token: ${answers[0]}`);
    check(answers[1][0] === 403 && answers[1][1].includes('CSRF'), `with a wrong token: ${answers[1]}`);
  }

  if (canaryExecution) {
    step = 'a canary deploy shows its analysis as charts, with the verdict and scores';
    await page.goto(`${url}/executions/${canaryExecution}`);
    // The event stream's end brings the server's rendering once more: wait for it.
    await page.locator('#log-state', { hasText: 'has ended' }).waitFor();
    await page.waitForLoadState('networkidle');
    const figure = page.locator('figure.canary').first();
    await figure.waitFor();
    check(await figure.locator('svg.chart[role="img"]').count() === 2, 'the analysis has not its latency and error-rate charts');
    for (const who of ['baseline', 'canary']) {
      const d = await figure.locator(`svg.chart path.series.${who}`).first().getAttribute('d');
      check(/^M\d/.test(d ?? ''), `the ${who}'s latency line is not drawn: ${d}`);
    }
    const execution = await page.evaluate(async (id) => (await fetch(`/api/v1/executions/${id}`)).json(), canaryExecution);
    const [analysis] = execution.stages.find((s) => s.id === 'deploy').outputs.analysis;
    const caption = await figure.locator('figcaption').innerText();
    check(caption.includes(analysis.verdict) && caption.includes(`score ${Math.round(analysis.score)}`),
      `the caption "${caption}" does not say the verdict ${analysis.verdict} and score ${analysis.score}`);
    check(await figure.locator('table.metrics tbody tr').count() === analysis.metrics.length, 'the metrics are not all listed');
    await figure.screenshot({ path: `${shots}/15-canary-analysis.png` });
  }

  if (cluster) {
    step = 'the clusters page shows the server groups';
    await page.goto(`${url}/applications`);
    await shot(page, '08-applications');
    await page.goto(`${url}/applications?q=no-such-cluster`);
    await page.locator('main p', { hasText: 'No cluster matches' }).waitFor();
    await page.goto(`${url}/applications?q=${cluster.slice(0, 4).toUpperCase()}`);
    await page.getByRole('link', { name: cluster, exact: true }).click();
    await page.waitForURL(`${url}/clusters/${cluster}`);
    await page.locator('.sg').first().waitFor();
    const groups = await page.locator('.sg').count();
    check(groups >= 2, `the cluster shows ${groups} server groups`);
    await shot(page, '09-cluster');

    step = 'resize a server group behind a confirmation';
    const newest = page.locator('.sg').first();
    const name = await newest.getAttribute('data-group');
    await newest.getByLabel('Instances').fill('2');
    await newest.getByRole('button', { name: 'Resize' }).click();
    await page.locator('#confirm-ok').click();
    await page.locator(`.sg[data-group="${name}"] .instances-count`, { hasText: '2 instances' }).waitFor();

    step = 'roll the cluster back behind a confirmation';
    await page.getByRole('button', { name: 'Roll back' }).click();
    await page.locator('#confirm-ok').click();
    await page.locator(`.sg[data-group="${name}"] .enabled`, { hasText: 'disabled' }).waitFor({ timeout: 60_000 });
    await shot(page, '10-cluster-rolled-back');
  }

  step = 'triggers, repositories and tokens';
  await page.goto(`${url}/triggers`);
  await page.locator('td', { hasText: 'cron' }).first().waitFor();
  await shot(page, '12-triggers');
  await page.goto(`${url}/repositories`);
  await page.locator('code', { hasText: `${url}/git/shop.git` }).waitFor();
  await page.locator('th', { hasText: 'shop-apt' }).waitFor();
  await shot(page, '13-repositories');
  await page.goto(`${url}/tokens`);
  await page.getByLabel('Name').fill('deployer');
  await page.getByLabel('Role').selectOption('operator');
  await page.getByRole('button', { name: 'Create token' }).click();
  await page.locator('#token-value', { hasText: /^gantry_/ }).waitFor();
  await shot(page, '14-tokens');

  step = 'signing out ends the session';
  await page.goto(`${url}/pipelines`);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${url}/login`);
  await page.goto(`${url}/pipelines`);
  check(new URL(page.url()).pathname === '/login', 'after signing out, /pipelines did not go to /login');

  step = 'a viewer finds no action buttons, and the API refuses it';
  const viewer = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const viewerPage = await signIn(viewer, viewerToken);
  await viewerPage.goto(`${url}/pipelines/release`);
  check(await viewerPage.getByRole('button', { name: /Run/ }).count() === 0, 'a viewer sees the Run button');
  await viewerPage.goto(executionUrl);
  await viewerPage.locator('#live').waitFor();
  const buttons = await viewerPage.locator('main button').allInnerTexts();
  check(buttons.length === 0, `a viewer sees buttons: ${buttons}`);
  await shot(viewerPage, '11-viewer-execution');
  if (cluster) {
    await viewerPage.goto(`${url}/clusters/${cluster}`);
    const clusterButtons = await viewerPage.locator('main button').allInnerTexts();
    check(clusterButtons.length === 0, `a viewer sees buttons on the cluster: ${clusterButtons}`);
  }
  await viewerPage.goto(`${url}/tokens`);
  const tokenButtons = await viewerPage.locator('main button').allInnerTexts();
  check(tokenButtons.length === 0, `a viewer sees buttons on the tokens page: ${tokenButtons}`);
  const refused = await viewerPage.evaluate(async (id) => {
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const r = await fetch(`/api/v1/executions/${id}/rerun`, { method: 'POST', headers: { 'x-csrf-token': csrf } });
    return [r.status, (await r.json()).error];
  }, executionId);
  check(refused[0] === 403 && refused[1].includes('operator'), `a viewer's re-run: ${refused}`);

  console.log('ui: every browser check passed');
} catch (error) {
  console.error(`ui: FAILED at "${step}": ${error.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
