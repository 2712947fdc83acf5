// End to end in a real browser: one page opens ONE EventSource on GET /v1/events for 8 batches
// (more than the 6 connections a browser opens per origin) and sees every batch complete, each
// batch's events once and in seq order, across a kill -9 and restart of feedpipe mid-stream (the
// EventSource reconnects with the stream's Last-Event-ID). The page is served by this test from
// another origin, so the stream is a CORS request (feedpipe runs with --cors-origins).
// Env: FEEDPIPE_BINARY (default ../../build/feedpipe), CHROMIUM (default /usr/bin/chromium),
// FEEDPIPE_E2E_ARGS (more standalone flags; with --stream-token-secret the page passes one
// token= per batch=, from the submit answers).
import http from 'node:http';
import assert from 'node:assert/strict';
import { freePort, launchChromium, listenLocal, testRun, waitReady } from './support.mjs';

const BATCHES = 8;
const FEEDS = 6;  // per batch
const extraArgs = (process.env.FEEDPIPE_E2E_ARGS || '').split(/\s+/).filter(Boolean);
const streamTokens = extraArgs.includes('--stream-token-secret');
const run = testRun({ seconds: 150, logLines: 60, pageState: () => window.watch });

// Feeds that answer after a short delay; `hold` parks every request until released.
let hold = false;
const parked = [];
const feedServer = http.createServer((req, res) => {
  const answer = () => {
    const n = req.url.match(/\d+/)?.[0] ?? '0';
    try {
      res.writeHead(200, { 'Content-Type': 'application/rss+xml' });
      res.end(`<?xml version="1.0"?><rss version="2.0"><channel><title>Feed ${n}</title>` +
        `<item><title>Item of ${n}</title><guid>e2e-many-${n}</guid></item></channel></rss>`);
    } catch {}
  };
  if (hold) parked.push(answer);
  else setTimeout(answer, 20 + Math.random() * 100);
});

// The test's page: one EventSource for every batch; window.watch records what arrived.
function pageHtml(streamUrl) {
  return `<!doctype html><meta charset="utf-8"><title>many batches</title>
<p data-testid="state">watching</p>
<script>
const watch = window.watch = { seqs: {}, problems: [], completed: [], opens: 0, lastId: '' };
const source = new EventSource(${JSON.stringify(streamUrl)});
source.onopen = () => { watch.opens++; };
function take(e) {
  const d = JSON.parse(e.data);
  const seqs = (watch.seqs[d.batch_id] ||= []);
  if (d.seq !== seqs.length + 1) watch.problems.push(d.batch_id + ': seq ' + d.seq + ' after ' + seqs.length);
  seqs.push(d.seq);
  watch.lastId = e.lastEventId;
  if (e.type === 'batch.completed') {
    watch.completed.push(d.batch_id);
    if (watch.completed.length === ${BATCHES}) {
      source.close();
      document.querySelector('[data-testid=state]').textContent = 'all completed';
    }
  }
}
for (const type of ['job.completed', 'job.failed', 'batch.completed']) source.addEventListener(type, take);
</script>`;
}

async function main() {
  const { db, log } = run.workDir('feedpipe-e2e-many-');
  const feedPort = await listenLocal(feedServer);
  const port = await freePort();

  let streamUrl = '';
  const pageServer = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(pageHtml(streamUrl));
  });
  const pageOrigin = `http://127.0.0.1:${await listenLocal(pageServer)}`;
  const startFeedpipe = () => run.startFeedpipe(port, db, log,
    ['--sse-retry-ms', '500', '--cors-origins', pageOrigin, ...extraArgs]);
  let server = startFeedpipe();
  await waitReady(port);

  // Eight batches, their feeds held so that the page opens its stream before they finish.
  hold = true;
  const params = [];
  const batchIds = [];
  for (let b = 0; b < BATCHES; b++) {
    const feeds = Array.from({ length: FEEDS }, (_, i) => `http://127.0.0.1:${feedPort}/feed/${100 * b + i}.xml`);
    const res = await fetch(`http://127.0.0.1:${port}/v1/batches`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ feeds }),
    });
    assert.equal(res.status, 202);
    const body = await res.json();
    batchIds.push(body.batch_id);
    params.push(`batch=${encodeURIComponent(body.batch_id)}`);
    if (streamTokens) params.push(`token=${body.stream_token}`);
  }
  streamUrl = `http://127.0.0.1:${port}/v1/events?${params.join('&')}`;

  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    run.page = page;
    await page.goto(`${pageOrigin}/`);
    await page.waitForFunction(() => window.watch.opens === 1, null, { timeout: 30_000 });
    // Some jobs finish, then feedpipe dies mid-stream and comes back on the same database.
    for (const answer of parked.splice(0, 15)) answer();
    await page.waitForFunction(() => Object.values(window.watch.seqs).flat().length >= 10, null, { timeout: 30_000 });
    server.kill('SIGKILL');
    await new Promise((r) => server.once('exit', r));
    parked.length = 0;  // their connections died with the server
    hold = false;
    server = startFeedpipe();
    await page.waitForFunction(() => document.querySelector('[data-testid=state]').textContent === 'all completed',
      null, { timeout: 90_000 });
    const watch = await page.evaluate(() => window.watch);
    assert.deepEqual(watch.problems, [], 'each batch\'s events once, in seq order, across the restart');
    assert.ok(watch.opens >= 2, `the EventSource reconnected (opens: ${watch.opens})`);
    assert.deepEqual([...watch.completed].sort(), [...batchIds].sort());
    for (const id of batchIds) assert.equal(watch.seqs[id].length, FEEDS + 1, `batch ${id}: ${watch.seqs[id]}`);
    assert.equal(watch.lastId.split('.').length, BATCHES);
    console.log(`one EventSource watched ${BATCHES} batches to the end across a restart (${watch.opens} opens)`);
  } catch (err) {
    await run.fail(err);
  } finally {
    await browser.close();
  }
  pageServer.close();
}

run.main(main);
