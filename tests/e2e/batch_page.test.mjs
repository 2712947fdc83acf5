// End to end in a real browser: Debian's chromium driven by playwright-core.
// Submits feeds on `/`, watches `/batches/{id}` reach N / N over SSE, then kills and restarts
// feedpipe mid-batch, with a gateway answering 502 meanwhile (the page must reopen its stream
// and resume from the last event it saw).
// Env: FEEDPIPE_BINARY (default ../../build/feedpipe), CHROMIUM (default /usr/bin/chromium),
// SCREENSHOT (a path: save a picture of the finished batch page), FEEDPIPE_E2E_ARGS (more
// standalone flags, space-separated; with --stream-token-secret the page must carry the batch's
// stream token from the submit answer to its EventSource).
import http from 'node:http';
import assert from 'node:assert/strict';
import { freePort, launchChromium, listenLocal, testRun, until, waitReady } from './support.mjs';

const FEEDS = 30;
const extraArgs = (process.env.FEEDPIPE_E2E_ARGS || '').split(/\s+/).filter(Boolean);
const streamTokens = extraArgs.includes('--stream-token-secret');
// What a reader of CI's output needs to tell a slow machine from a broken resume.
const run = testRun({
  seconds: 180,
  logLines: 60,
  pageState: () => ({
    url: location.href,
    progress: document.querySelector('[data-testid=progress]')?.textContent,
    statuses: [...document.querySelectorAll('[data-testid=job]')].map((r) => r.dataset.status).join(','),
  }),
});

// Feeds that answer after a short delay, so that the page shows progress live; `hold` parks
// every request until released.
let hold = false;
const parked = [];
const feedServer = http.createServer((req, res) => {
  const answer = () => {
    const n = req.url.match(/\d+/)?.[0] ?? '0';
    res.writeHead(200, { 'Content-Type': 'application/rss+xml' });
    res.end(`<?xml version="1.0"?><rss version="2.0"><channel><title>Feed ${n}</title>` +
      `<item><title>Item of ${n}</title><guid>e2e-${n}</guid></item></channel></rss>`);
  };
  if (hold) parked.push(answer);
  else setTimeout(answer, 50 + Math.random() * 200);
});

async function main() {
  const { db, log } = run.workDir('feedpipe-e2e-');
  const feedPort = await listenLocal(feedServer);
  const port = await freePort();
  const startFeedpipe = () => run.startFeedpipe(port, db, log, ['--sse-retry-ms', '500', ...extraArgs]);
  let server = startFeedpipe();
  await waitReady(port);

  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    run.page = page;
    const urls = (first) => Array.from({ length: FEEDS }, (_, i) => `http://127.0.0.1:${feedPort}/feed/${first + i}.xml`);

    // 1. Submit on the front page, land on the batch page, watch it finish live.
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.fill('[data-testid=feeds]', urls(0).join('\n'));
    await Promise.all([page.waitForURL(/\/batches\/[^/]+$/), page.click('[data-testid=submit]')]);
    await page.waitForFunction((n) => document.querySelector('[data-testid=progress]')?.textContent === `${n} / ${n}`,
      FEEDS, { timeout: 30_000 });
    if (streamTokens) assert.match(page.url(), /\?token=[0-9a-f]{64}$/);
    const statuses = await page.$$eval('[data-testid=job]', (rows) => rows.map((r) => r.dataset.status));
    assert.equal(statuses.length, FEEDS);
    assert.ok(statuses.every((s) => s === 'ok'), `statuses: ${statuses}`);
    if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
    console.log(`batch page reached ${FEEDS} / ${FEEDS}`);

    // 2. Drop the server mid-batch: the page reconnects by itself and resumes.
    hold = true;
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.fill('[data-testid=feeds]', urls(100).join('\n'));
    await Promise.all([page.waitForURL(/\/batches\/[^/]+$/), page.click('[data-testid=submit]')]);
    await page.waitForSelector('[data-testid=job]');
    for (const answer of parked.splice(0, 10)) answer();
    await page.waitForFunction(() => {
      const [done] = document.querySelector('[data-testid=progress]').textContent.split(' / ').map(Number);
      return done >= 5;
    }, null, { timeout: 30_000 });
    server.kill('SIGKILL');
    await new Promise((r) => server.once('exit', r));
    parked.length = 0;  // their connections died with the server
    hold = false;
    // 3. While it is down, a proxy in front answers 502 (nginx with its upstream gone): that
    // closes an EventSource for good, so the page must reopen the stream by itself.
    let refused = 0;
    const gateway = http.createServer((req, res) => {
      if (req.url.includes('/events')) refused++;
      res.writeHead(502, { 'Content-Type': 'text/html' });
      res.end('<html><body>502 Bad Gateway</body></html>');
    });
    await new Promise((r) => gateway.listen(port, '127.0.0.1', r));
    await until(() => `the page to ask for its stream 3 times while the gateway refused (it asked ${refused} times)`,
      () => refused >= 3, 10_000);
    gateway.closeAllConnections();
    await new Promise((r) => gateway.close(r));
    server = startFeedpipe();
    const restarted = server;
    restarted.once('exit', (code, signal) => {
      if (!run.finished) console.error(`feedpipe exited after the restart: ${code ?? signal}`);
    });
    await page.waitForFunction((n) => document.querySelector('[data-testid=progress]')?.textContent === `${n} / ${n}`,
      FEEDS, { timeout: 90_000 });
    const after = await page.$$eval('[data-testid=job]', (rows) => rows.map((r) => r.dataset.status));
    assert.equal(after.length, FEEDS);
    assert.ok(after.every((s) => s === 'ok'), `statuses after restart: ${after}`);
    console.log('batch page resumed after the server restarted and reached the end');
  } catch (err) {
    await run.fail(err);  // while the page is still open
  } finally {
    await browser.close();
  }
}

run.main(main);
