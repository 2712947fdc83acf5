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

  const query = streamToken ? `?token=${encodeURIComponent(streamToken)}` : '';
  const events = new EventSource(`/v1/batches/${encodeURIComponent(batchId)}/events${query}`);
  let received = false;
  events.addEventListener('error', () => {
    // A refused stream (403 without the batch's token, 429) closes the EventSource for good.
    if (!received && events.readyState === EventSource.CLOSED) {
      document.getElementById('error').textContent = streamToken
        ? 'Live updates were refused; reload the page to try again.'
        : 'Live updates were refused: open this page from the link given when the batch was submitted.';
    }
  });
  const onJob = (event) => {
    received = true;
    const data = JSON.parse(event.data);
    renderJob(data);
    renderProgress(data.progress, 'running');
  };
  events.addEventListener('job.completed', onJob);
  events.addEventListener('job.failed', onJob);
  events.addEventListener('batch.completed', (event) => {
    received = true;
    const data = JSON.parse(event.data);
    renderProgress(data.progress, data.status);
    events.close();
  });
}
main();
