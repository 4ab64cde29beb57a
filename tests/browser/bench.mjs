// The browser half of scripts/bench-ui: the first contentful paint of a
// 100-stage execution page, and how long after a step printed a line
// (`t=EPOCH_MILLIS`) the line is in the page. Prints Markdown rows.
//
// Environment: GANTRY_URL, GANTRY_COOKIE (gantry_session=…), GANTRY_WIDE (the
// 100-stage execution), GANTRY_SMALL (a 1-stage one, the reference), LOADS
// (loads of each, 20 by default); the pipeline `ticker` prints t=… lines.

import { launch } from './chromium.mjs';

const url = process.env.GANTRY_URL;
const [name, value] = process.env.GANTRY_COOKIE.split('=');
// Loads of each execution page: enough for a p95 and a maximum worth reading.
const ROUNDS = Number(process.env.LOADS ?? 20);

const quantile = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.addCookies([{ name, value, url }]);

  // One load of an execution page: its first contentful paint, and what
  // came before it (the server's first byte, the whole document, its size).
  async function load(execution, stages) {
    const page = await context.newPage();
    await page.goto(`${url}/executions/${execution}`, { waitUntil: 'load' });
    const timing = await page.evaluate(() => new Promise((resolve) => {
      new PerformanceObserver((list) => {
        const entry = list.getEntriesByName('first-contentful-paint')[0];
        if (!entry) return;
        const [nav] = performance.getEntriesByType('navigation');
        resolve({ fcp: entry.startTime, firstByte: nav.responseStart, document: nav.responseEnd, bytes: nav.encodedBodySize });
      }).observe({ type: 'paint', buffered: true });
    }));
    const nodes = await page.locator('a.node').count();
    if (nodes !== stages) throw new Error(`the execution ${execution} shows ${nodes} stages, not ${stages}`);
    await page.close();
    return timing;
  }
  // The two pages load in turns, so the machine's noise falls on both alike.
  const wide = [];
  const small = [];
  for (let i = 0; i < ROUNDS; i++) {
    wide.push(await load(process.env.GANTRY_WIDE, Number(process.env.GANTRY_WIDE_STAGES ?? 100)));
    if (process.env.GANTRY_SMALL) small.push(await load(process.env.GANTRY_SMALL, 1));
  }

  const page = await context.newPage();
  page.on('crash', () => console.error('the ticker page crashed'));
  page.on('pageerror', (e) => console.error('page error', e));
  // The ticker starts from the page (as a person would), waits 2 s, then prints.
  await page.goto(`${url}/pipelines/ticker`);
  const ticker = await page.evaluate(async () => {
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const response = await fetch('/api/v1/pipelines/ticker/executions', {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': csrf }, body: '{}',
    });
    return (await response.json()).id;
  });
  await page.goto(`${url}/executions/${ticker}`);
  const delays = await page.evaluate(() => new Promise((resolve) => {
    const opened = Date.now();
    const seen = [];
    new MutationObserver((changes) => {
      const now = Date.now();
      for (const change of changes) for (const node of change.addedNodes) {
        const match = /t=(\d+)/.exec(node.textContent ?? '');
        if (match && Number(match[1]) > opened) seen.push(now - Number(match[1]));
      }
    }).observe(document.getElementById('log'), { childList: true });
    const state = document.getElementById('log-state');
    const check = setInterval(() => {
      if (state.textContent.includes('ended')) { clearInterval(check); resolve(seen); }
    }, 100);
  }));
  if (delays.length < 10) throw new Error(`only ${delays.length} live lines seen`);

  const paintRow = (label, loads) => {
    const xs = loads.map((l) => l.fcp);
    console.log(`| ${label} | ${quantile(xs, 0.5).toFixed(0)} ms | ${quantile(xs, 0.95).toFixed(0)} ms | ${Math.max(...xs).toFixed(0)} ms | ${xs.length} |`);
  };
  console.log('| first contentful paint | p50 | p95 | max | loads |');
  console.log('|---|---|---|---|---|');
  paintRow('100-stage execution page', wide);
  if (small.length) paintRow('1-stage execution page (reference)', small);
  // What the browser took once the server had answered: the page's own cost.
  const afterFirstByte = (loads) => loads.map((l) => ({ fcp: l.fcp - l.firstByte }));
  paintRow('100-stage page, after its first byte', afterFirstByte(wide));
  if (small.length) paintRow('1-stage page, after its first byte', afterFirstByte(small));
  console.log();
  console.log('| browser measure | p50 | max | samples |');
  console.log('|---|---|---|---|');
  console.log(`| a step's line → visible in the page | ${quantile(delays, 0.5).toFixed(0)} ms | ${Math.max(...delays).toFixed(0)} ms | ${delays.length} |`);
  const row = (label, loads, read) => {
    const xs = loads.map(read);
    console.log(`| ${label} | ${quantile(xs, 0.5).toFixed(0)} ms | ${Math.max(...xs).toFixed(0)} ms | ${xs.length} |`);
  };
  row('100-stage page: server\'s first byte', wide, (l) => l.firstByte);
  row('100-stage page: whole document received', wide, (l) => l.document);
  console.log(`\nEach load of the 100-stage page (first byte / document / first contentful paint, ms): ${wide.map((l) => `${l.firstByte.toFixed(0)}/${l.document.toFixed(0)}/${l.fcp.toFixed(0)}`).join(', ')}; document ${wide[0].bytes} bytes compressed.`);
} finally {
  await browser.close();
}
