// An execution page, live: the execution's server-sent events turn its graph
// nodes' statuses as they change, bring the server's rendering of the
// changing part (#live) when a stage or the execution changes, and append
// log lines as they are written (ANSI colours, follow, search, stage filter).

import { ansiToNodes } from './ansi.js';

const root = document.querySelector('[data-execution]');
const id = root.dataset.execution;
const live = document.getElementById('live');
const log = document.getElementById('log');
const state = document.getElementById('log-state');
const follow = document.getElementById('log-follow');
const search = document.getElementById('log-search');
const stageFilter = document.getElementById('log-stage');
const matches = document.getElementById('log-matches');
root.setAttribute('data-live', '');

const SYMBOLS = { pending: '○', running: '▶', waiting: '‖', succeeded: '✓', failed: '✗', canceled: '⊘', skipped: '↷' };

// The server's rendering of #live, fetched at most every 150 ms; focus stays
// on the control that had it.
let refreshTimer = null;
function refresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    const response = await fetch(`/executions/${encodeURIComponent(id)}/live`, { credentials: 'same-origin' });
    if (!response.ok) return;
    const html = await response.text();
    const focused = document.activeElement && live.contains(document.activeElement) ? document.activeElement.id : null;
    live.innerHTML = html;
    if (focused) document.getElementById(focused)?.focus();
  }, 150);
}
document.addEventListener('gantry:changed', refresh);

function showStage(stageId, status) {
  for (const node of live.querySelectorAll('a.node[data-stage]')) {
    if (node.dataset.stage !== stageId) continue;
    node.dataset.status = status;
    const word = node.querySelector('.node-status');
    if (word) word.textContent = `${SYMBOLS[status] ?? ''} ${status}`;
    const label = node.querySelector('.node-label')?.textContent ?? stageId;
    node.setAttribute('aria-label', `${label}: ${status}`);
  }
}

// Log lines are gathered and appended once per frame.
let pending = [];
// Set by the stream's `end`.
let ended = false;
function queueLine(line) {
  pending.push(line);
  if (pending.length === 1) requestAnimationFrame(flush);
}
function lineVisible(element) {
  const query = search.value.trim().toLowerCase();
  const stage = stageFilter.value;
  return (!stage || element.dataset.stage === stage) && (!query || element.textContent.toLowerCase().includes(query));
}
function flush() {
  const fragment = document.createDocumentFragment();
  for (const line of pending) {
    const row = document.createElement('div');
    row.className = `line ${line.stream}`;
    row.dataset.stage = line.stageId;
    row.dataset.seq = line.seq;
    const tag = document.createElement('span');
    tag.className = 'line-stage';
    tag.textContent = line.stageId;
    row.append(tag, ...ansiToNodes(line.line));
    row.hidden = !lineVisible(row);
    fragment.append(row);
  }
  pending = [];
  log.append(fragment);
  // Lines of the backlog may be appended after the end arrived: the state says so still.
  state.textContent = ended ? `${log.childElementCount} lines; the execution has ended` : `${log.childElementCount} lines`;
  if (follow.checked) log.scrollTop = log.scrollHeight;
}
function filterLines() {
  let shown = 0;
  for (const row of log.children) { row.hidden = !lineVisible(row); if (!row.hidden) shown++; }
  matches.textContent = search.value || stageFilter.value ? `${shown} matching lines` : '';
}
search.addEventListener('input', filterLines);
stageFilter.addEventListener('change', filterLines);
log.addEventListener('scroll', () => {
  // Scrolling up stops following; back at the bottom, it follows again.
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 4;
  if (follow.checked !== atBottom && document.activeElement !== follow) follow.checked = atBottom;
});

let first = true;
const source = new EventSource(`/api/v1/executions/${encodeURIComponent(id)}/events`);
source.addEventListener('open', () => { state.textContent = `${log.childElementCount} lines, live`; });
source.addEventListener('execution', (event) => {
  // The first is the execution as it was when the stream opened: the page has it.
  if (first) { first = false; return; }
  const execution = JSON.parse(event.data);
  for (const stage of execution.stages ?? []) showStage(stage.id, stage.status);
  refresh();
});
source.addEventListener('stage', (event) => {
  const change = JSON.parse(event.data);
  showStage(change.stageId, change.status);
  refresh();
});
source.addEventListener('log', (event) => queueLine(JSON.parse(event.data)));
source.addEventListener('end', () => {
  ended = true;
  source.close();
  refresh();
  state.textContent = `${log.childElementCount} lines; the execution has ended`;
});
source.addEventListener('error', () => {
  if (source.readyState === EventSource.CLOSED) state.textContent = 'The live log stopped: reload the page';
});
