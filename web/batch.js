// One batch, live: the snapshot draws a row per feed, then the event stream (SSE) updates rows
// and progress as each feed finishes. EventSource reconnects by itself with Last-Event-ID.
const batchId = decodeURIComponent(window.location.pathname.split('/').pop());
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

  const events = new EventSource(`/v1/batches/${encodeURIComponent(batchId)}/events`);
  const onJob = (event) => {
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
