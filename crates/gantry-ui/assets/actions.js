// Buttons that act: every <form data-api="METHOD /api/v1/..."> is sent to the
// API with fetch, as JSON, with the session's CSRF token; a form may ask for
// a confirmation first (data-confirm, on the form or the button pressed).
// Answers and refusals are announced in the #toast live region.

const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? '';

export async function callApi(method, url, body) {
  const response = await fetch(url, {
    method,
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(answer.error ?? `the server answered ${response.status}`);
  }
  return answer;
}

export function toast(text, isError = false) {
  const region = document.getElementById('toast');
  if (!region) return;
  region.textContent = text;
  region.className = isError ? 'shown error' : 'shown';
  region.setAttribute('role', isError ? 'alert' : 'status');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { region.className = ''; }, isError ? 10000 : 4000);
}

function confirmed(text) {
  const dialog = document.getElementById('confirm');
  if (!dialog || !dialog.showModal) return Promise.resolve(window.confirm(text));
  dialog.querySelector('#confirm-text').textContent = text;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

// `a.b` names put the value at body.a.b.
function put(body, name, value) {
  const path = name.split('.');
  let at = body;
  for (const key of path.slice(0, -1)) at = at[key] ??= {};
  at[path[path.length - 1]] = value;
}

function bodyOf(form, submitter) {
  const body = {};
  if (form.dataset.forStage) body.stage = form.dataset.forStage;
  for (const field of form.elements) {
    if (!field.name || field.disabled || field.type === 'submit' || field.type === 'button') continue;
    if (field.value === '' && field.hasAttribute('data-omit-empty')) continue;
    put(body, field.name, field.type === 'number' ? Number(field.value) : field.value);
  }
  if (submitter?.name) put(body, submitter.name, submitter.value);
  if (form.hasAttribute('data-parameters')) body.parameters ??= {};
  return body;
}

document.addEventListener('submit', async (event) => {
  const form = event.target.closest('form[data-api]');
  if (!form) return;
  event.preventDefault();
  const submitter = event.submitter;
  const question = submitter?.dataset.confirm ?? form.dataset.confirm;
  if (question && !(await confirmed(question))) return;
  const [method, url] = form.dataset.api.split(' ');
  const buttons = [...form.querySelectorAll('button')];
  buttons.forEach((b) => { b.disabled = true; });
  form.setAttribute('aria-busy', 'true');
  try {
    const answer = await callApi(method, url, bodyOf(form, submitter));
    toast(form.dataset.done ?? 'Done.');
    if (form.dataset.then === 'show-token' && answer.token) {
      document.getElementById('token-value').textContent = answer.token;
      document.getElementById('token-secret').hidden = false;
    } else if (form.dataset.then === 'open-execution' && answer.id) {
      location.assign(`/executions/${encodeURIComponent(answer.id)}`);
    } else if (document.querySelector('[data-live]')) {
      document.dispatchEvent(new CustomEvent('gantry:changed'));
    } else {
      location.reload();
    }
  } catch (error) {
    toast(error.message, true);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    form.removeAttribute('aria-busy');
  }
});

// A region with data-refresh-url is the server's rendering of something that
// changes by itself (a cluster's instances and traffic): fetched again every
// two seconds while the page is visible and nothing in it has focus, and at
// once after an action.
const refreshed = document.querySelector('[data-refresh-url]');
if (refreshed) {
  const refresh = async () => {
    const response = await fetch(refreshed.dataset.refreshUrl, { credentials: 'same-origin' }).catch(() => null);
    if (!response?.ok) return;
    const html = await response.text();
    const focused = refreshed.contains(document.activeElement) ? document.activeElement.id : null;
    refreshed.innerHTML = html;
    if (focused) document.getElementById(focused)?.focus();
  };
  document.addEventListener('gantry:changed', refresh);
  setInterval(() => {
    const busy = refreshed.contains(document.activeElement) || document.querySelector('dialog[open]');
    if (document.visibilityState === 'visible' && !busy) refresh();
  }, 2000);
}
