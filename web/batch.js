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

// The feed cell: its title (once fetched) linked to the feed's page, and its URL. Titles come
// from strangers: set as text, never as HTML.
function renderFeed(row, job) {
  const td = row.querySelector('.url');
  if (job.title !== undefined && job.title !== null) row.dataset.title = job.title;
  const title = row.dataset.title || '';
  td.replaceChildren();
  if (job.feed_id !== undefined && job.feed_id !== null) row.dataset.feedId = job.feed_id;
  if (row.dataset.feedId) {
    const a = document.createElement('a');
    a.href = `/feeds/${encodeURIComponent(row.dataset.feedId)}`;
    a.dataset.testid = 'feed-link';
    a.textContent = title || job.url || row.dataset.url;
    td.append(a);
  }
  if (job.url) row.dataset.url = job.url;
  if (title || !row.dataset.feedId) {
    const url = document.createElement('div');
    url.className = 'hint';
    url.textContent = row.dataset.url || '';
    td.append(url);
  }
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
  for (const field of ['position', 'status', 'http_status', 'items_new', 'items_total', 'duration_ms', 'error']) {
    if (field in job) setText(row, field, job[field]);
  }
  renderFeed(row, job);
  if (failedFirst) placeRow(row);
}

// "Failed first": failed rows on top, each group in position order; off again, position order.
let failedFirst = false;
function rank(row) {
  return (failedFirst && row.dataset.status === 'failed' ? 0 : 1) * 1e9 + Number(row.querySelector('.position').textContent);
}
function placeRow(row) {
  const body = document.getElementById('jobs');
  const r = rank(row);
  for (const other of body.children) {
    if (other !== row && rank(other) > r) {
      if (row.nextSibling !== other) body.insertBefore(row, other);
      return;
    }
  }
  if (body.lastChild !== row) body.append(row);
}
function sortRows() {
  const sorted = [...rows.values()].sort((a, b) => rank(a) - rank(b));
  document.getElementById('jobs').append(...sorted);
}
document.getElementById('failed-first').addEventListener('click', (event) => {
  failedFirst = !failedFirst;
  event.currentTarget.setAttribute('aria-pressed', String(failedFirst));
  sortRows();
});

// Titles are known once feeds are fetched; events carry the outcome, so the snapshot is read
// once more when the batch completes.
async function refreshTitles() {
  const res = await fetch(`/v1/batches/${encodeURIComponent(batchId)}`);
  if (res.ok) (await res.json()).jobs.forEach(renderJob);
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

// The event stream. When it is closed for good (stream.js), ask the stream URL what it answers,
// and reopen from the last event seen unless the refusal is final (401/403 without a good token,
// 404).
let lastEventId = null;
const streamRetry = streamBackoff();
function streamUrl() {
  const params = new URLSearchParams();
  if (streamToken) params.set('token', streamToken);
  if (lastEventId !== null) params.set('last_event_id', lastEventId);
  const query = params.toString();
  return `/v1/batches/${encodeURIComponent(batchId)}/events${query ? `?${query}` : ''}`;
}

function watch() {
  const events = new EventSource(streamUrl());
  events.addEventListener('error', async () => {
    if (events.readyState !== EventSource.CLOSED) return;  // reconnecting by itself
    const status = await streamRefusalStatus(streamUrl());
    if ([401, 403, 404].includes(status)) {
      document.getElementById('error').textContent = streamToken
        ? 'Live updates were refused; reload the page to try again.'
        : 'Live updates were refused: open this page from the link given when the batch was submitted.';
      return;
    }
    document.getElementById('error').textContent = 'Live updates interrupted; reconnecting…';
    setTimeout(watch, streamRetry.next());
  });
  events.addEventListener('open', () => {
    streamRetry.reset();
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
    refreshTitles();
  });
}
main();
