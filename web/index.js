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

// Recent batches, live. The list is read now and every LIST_REFRESH_MS; the batches on it that
// have not completed are watched on ONE stream (GET /v1/events), each from the seq the list gave
// (its last_seq), so nothing is replayed. The stream is reopened only when a batch to watch is
// not on it (a batch submitted elsewhere); it is closed once all of its batches have completed.
// Where streams are refused (stream tokens on: the list carries none), the list refresh alone
// keeps the rows current.
const LIST_REFRESH_MS = 5000;
const rowsById = new Map();
const lastSeq = new Map();  // batch id -> the newest seq shown
let stream = null;          // { source, batchIds }
let streamsRefused = false;
const streamRetry = streamBackoff();
window.home = { opens: 0, events: 0, watching: [] };  // for tests and the curious

function cell(text) {
  const td = document.createElement('td');
  td.append(text);
  return td;
}

function renderBatch(b) {
  let row = rowsById.get(b.batch_id);
  if (!row) {
    row = document.createElement('tr');
    row.setAttribute('data-testid', 'batch');
    row.dataset.batchId = b.batch_id;
    const link = document.createElement('a');
    link.href = `/batches/${encodeURIComponent(b.batch_id)}`;
    link.textContent = b.batch_id;
    row.append(cell(link), cell(b.created_at), cell(''), cell(''), cell(''));
    row.cells[0].className = 'batch-id';
    row.cells[1].className = 'created';
    row.cells[2].className = 'status';
    row.cells[3].className = 'progress';
    row.cells[4].className = 'failed';
    rowsById.set(b.batch_id, row);
  }
  row.dataset.status = b.status;
  row.cells[2].textContent = b.status;
  row.cells[3].textContent = `${b.done} / ${b.total}`;
  row.cells[4].textContent = String(b.failed);
  return row;
}

// A stream event moves a row forward; an older one (a list read before it) never moves it back.
function applyEvent(event) {
  window.home.events++;
  const data = JSON.parse(event.data);
  const row = rowsById.get(data.batch_id);
  if (!row || data.seq <= (lastSeq.get(data.batch_id) ?? 0)) return;
  lastSeq.set(data.batch_id, data.seq);
  const status = event.type === 'batch.completed' ? data.status : 'running';
  renderBatch({ batch_id: data.batch_id, status, ...data.progress });
  if (event.type === 'batch.completed' && stream
      && stream.batchIds.every((id) => rowsById.get(id)?.dataset.status === 'completed')) {
    closeStream();  // the server ends it too; EventSource would otherwise reconnect
  }
}

function closeStream() {
  if (stream) stream.source.close();
  stream = null;
  window.home.watching = [];
}

function openStream(batchIds) {
  closeStream();
  const params = new URLSearchParams();
  for (const id of batchIds) params.append('batch', id);
  // Every batch resumes after the seq shown: the stream's id is their seqs joined by '.'.
  params.set('last_event_id', batchIds.map((id) => lastSeq.get(id) ?? 0).join('.'));
  const source = new EventSource(`/v1/events?${params}`);
  stream = { source, batchIds };
  window.home.opens++;
  window.home.watching = [...batchIds];
  for (const type of ['job.completed', 'job.failed', 'batch.completed']) {
    source.addEventListener(type, applyEvent);
  }
  source.addEventListener('open', () => { streamRetry.reset(); });
  source.addEventListener('error', async () => {
    if (source.readyState !== EventSource.CLOSED || stream?.source !== source) return;
    // Closed for good (a 4xx/5xx instead of a stream): is it final, or worth another try?
    const status = await streamRefusalStatus(source.url);
    if (stream?.source !== source) return;
    closeStream();
    if ([401, 403].includes(status)) {
      streamsRefused = true;  // stream tokens: the list refresh keeps the rows current
      return;
    }
    setTimeout(loadBatches, streamRetry.next());  // 404 (a batch gone) or a gateway: read the list again
  });
}

async function loadBatches() {
  let batches;
  try {
    const res = await fetch('/v1/batches?limit=20');
    if (!res.ok) return;
    ({ batches } = await res.json());
  } catch {
    return;  // the next refresh tries again
  }
  const body = document.getElementById('batches');
  body.replaceChildren(...batches.map((b) => {
    // The list may be older than events already shown: keep the newer of the two.
    if (b.last_seq >= (lastSeq.get(b.batch_id) ?? 0)) {
      lastSeq.set(b.batch_id, b.last_seq);
      return renderBatch(b);
    }
    return rowsById.get(b.batch_id);
  }));
  const listed = new Set(batches.map((b) => b.batch_id));
  for (const id of [...rowsById.keys()]) if (!listed.has(id)) rowsById.delete(id);

  const toWatch = batches.filter((b) => rowsById.get(b.batch_id).dataset.status !== 'completed')
    .map((b) => b.batch_id);
  if (streamsRefused || toWatch.length === 0) return;
  if (!stream || toWatch.some((id) => !stream.batchIds.includes(id))) openStream(toWatch);
}

loadBatches();
setInterval(loadBatches, LIST_REFRESH_MS);
