// The submit page: POST the batch, then go to its live page.
// With API tokens on (--api-tokens), the server marks the form (data-api-tokens="on") and the page
// asks for a token: it is kept in sessionStorage (this tab only, gone when the tab closes) and
// sent as `Authorization: Bearer <token>`. A 401 shows the server's message and asks again.
const form = document.getElementById('submit-form');
const errorBox = document.getElementById('error');
const tokenRow = document.getElementById('token-row');
const tokenInput = document.getElementById('token');
const TOKEN_KEY = 'feedpipe.apiToken';

function askForToken() {
  tokenRow.hidden = false;
  tokenInput.required = true;
}

if (form.dataset.apiTokens === 'on') askForToken();
if (sessionStorage.getItem(TOKEN_KEY)) {
  tokenRow.hidden = false;  // shown, so that it can be seen and changed, but not required
  tokenInput.value = sessionStorage.getItem(TOKEN_KEY);
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  errorBox.textContent = '';
  const feeds = document.getElementById('feeds').value
    .split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
  const token = tokenInput.value.trim();
  const headers = { 'Content-Type': 'application/json' };
  if (token) {
    headers.Authorization = `Bearer ${token}`;
    sessionStorage.setItem(TOKEN_KEY, token);
  }
  try {
    const res = await fetch('/v1/batches', {
      method: 'POST',
      headers,
      body: JSON.stringify({ feeds }),
    });
    const body = await res.json();
    if (res.status !== 202) {
      errorBox.textContent = body.error ? body.error.message : `HTTP ${res.status}`;
      if (res.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);  // a refused token is not kept
        askForToken();
        tokenInput.focus();
      }
      return;
    }
    // With signed stream tokens on, the page needs the batch's token to open its stream.
    const query = body.stream_token ? `?token=${encodeURIComponent(body.stream_token)}` : '';
    window.location.href = `/batches/${encodeURIComponent(body.batch_id)}${query}`;
  } catch (err) {
    errorBox.textContent = `Cannot reach the server: ${err}`;
  }
});

async function loadBatches() {
  const res = await fetch('/v1/batches?limit=20');
  if (!res.ok) return;
  const { batches } = await res.json();
  const rows = document.getElementById('batches');
  rows.replaceChildren(...batches.map((b) => {
    const tr = document.createElement('tr');
    const link = document.createElement('a');
    link.href = `/batches/${encodeURIComponent(b.batch_id)}`;
    link.textContent = b.batch_id;
    const cells = [link, b.created_at, b.status, `${b.done} / ${b.total}`, String(b.failed)];
    for (const value of cells) {
      const td = document.createElement('td');
      td.append(value);
      tr.append(td);
    }
    return tr;
  }));
}
loadBatches();
