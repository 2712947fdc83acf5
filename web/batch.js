// One batch, live: the snapshot draws a row per feed, then the event stream (SSE) updates rows
// and progress as each feed finishes. EventSource reconnects by itself with Last-Event-ID.
const batchId = decodeURIComponent(window.location.pathname.split('/').pop());
// The stream token (servers started with --stream-token-secret), passed on from the page's URL.
const streamToken = new URLSearchParams(window.location.search).get('token');
document.getElementById('batch-id').textContent = batchId;
const rows = new Map();

function setText(row, field, value) {
  row.querySelector(`.${field}`).textContent = value === null || value === undefined ? '' : String(value);
}

function renderJob(job) {
  let row = rows.get(job.position);
  if (!row) {
    row = document.createElement('tr');
    row.dataset.testid = 'job';
    row.setAttribute('data-testid', 'job');
    for (const field of ['position', 'url', 'status', 'http_status', 'items_new', 'items_total', 'duration_ms', 'error']) {
      const td = document.createElement('td');
      td.className = field;
      row.append(td);
    }
    rows.set(job.position, row);
    document.getElementById('jobs').append(row);
  }
  row.dataset.status = job.status;
  for (const field of ['position', 'url', 'status', 'http_status', 'items_new', 'items_total', 'duration_ms', 'error']) {
    if (field in job) setText(row, field, job[field]);
  }
}

function renderProgress(progress, status) {
  document.getElementById('progress').textContent = `${progress.done} / ${progress.total}`;
  document.getElementById('failed').textContent = String(progress.failed);
  document.getElementById('bar').style.width = progress.total ? `${(100 * progress.done) / progress.total}%` : '0';
  if (status) document.getElementById('batch-status').textContent = status;
}

async function main() {
  const res = await fetch(`/v1/batches/${encodeURIComponent(batchId)}`);
  if (!res.ok) {
    document.getElementById('error').textContent = res.status === 404 ? 'No such batch.' : `HTTP ${res.status}`;
    return;
  }
  const snapshot = await res.json();
  snapshot.jobs.forEach(renderJob);
  renderProgress(snapshot, snapshot.status);
  if (snapshot.status === 'completed') return;

  watch();
}

// The event stream. EventSource reconnects by itself after a dropped connection, but an answer
// other than a stream (a proxy's 502 while the broadcaster restarts, a 503) closes it for good:
// then ask the stream URL what it answers, and reopen from the last event seen unless the
// refusal is final (401/403 without a good token, 404).
let lastEventId = null;
let retryDelayMs = 1000;
function streamUrl() {
  const params = new URLSearchParams();
  if (streamToken) params.set('token', streamToken);
  if (lastEventId !== null) params.set('last_event_id', lastEventId);
  const query = params.toString();
  return `/v1/batches/${encodeURIComponent(batchId)}/events${query ? `?${query}` : ''}`;
}

async function refusalStatus() {
  const abort = new AbortController();
  try {
    const res = await fetch(streamUrl(), { headers: { Accept: 'text/event-stream' }, signal: abort.signal });
    return res.status;
  } catch {
    return 0;  // unreachable: worth another try
  } finally {
    abort.abort();
  }
}

function watch() {
  const events = new EventSource(streamUrl());
  events.addEventListener('error', async () => {
    if (events.readyState !== EventSource.CLOSED) return;  // reconnecting by itself
    const status = await refusalStatus();
    if ([401, 403, 404].includes(status)) {
      document.getElementById('error').textContent = streamToken
        ? 'Live updates were refused; reload the page to try again.'
        : 'Live updates were refused: open this page from the link given when the batch was submitted.';
      return;
    }
    document.getElementById('error').textContent = 'Live updates interrupted; reconnecting…';
    setTimeout(watch, retryDelayMs);
    retryDelayMs = Math.min(retryDelayMs * 2, 30000);
  });
  events.addEventListener('open', () => {
    retryDelayMs = 1000;
    document.getElementById('error').textContent = '';
  });
  const onJob = (event) => {
    lastEventId = event.lastEventId || lastEventId;
    const data = JSON.parse(event.data);
    renderJob(data);
    renderProgress(data.progress, 'running');
  };
  events.addEventListener('job.completed', onJob);
  events.addEventListener('job.failed', onJob);
  events.addEventListener('batch.completed', (event) => {
    const data = JSON.parse(event.data);
    renderProgress(data.progress, data.status);
    events.close();
  });
}
main();
