// End to end in a real browser: Debian's chromium driven by playwright-core.
// Submits feeds on `/`, watches `/batches/{id}` reach N / N over SSE, then kills and restarts
// feedpipe mid-batch, with a gateway answering 502 meanwhile (the page must reopen its stream
// and resume from the last event it saw).
// Env: FEEDPIPE_BINARY (default ../../build/feedpipe), CHROMIUM (default /usr/bin/chromium),
// SCREENSHOT (a path: save a picture of the finished batch page), FEEDPIPE_E2E_ARGS (more
// standalone flags, space-separated; with --stream-token-secret the page must carry the batch's
// stream token from the submit answer to its EventSource).
import { spawn } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { freePort, launchChromium, waitReady } from './support.mjs';

const here = path.dirname(new URL(import.meta.url).pathname);
const binary = process.env.FEEDPIPE_BINARY || path.join(here, '../../build/feedpipe');
const FEEDS = 30;
const extraArgs = (process.env.FEEDPIPE_E2E_ARGS || '').split(/\s+/).filter(Boolean);
const streamTokens = extraArgs.includes('--stream-token-secret');
const children = [];
const deadline = setTimeout(() => fail(new Error('e2e test timed out after 180 s')), 180_000);

let logPath = null;
let finished = false;
let currentPage = null;
async function fail(err) {
  console.error(err);
  // What a reader of CI's output needs to tell a slow machine from a broken resume.
  try {
    if (currentPage) {
      const state = await currentPage.evaluate(() => ({
        url: location.href,
        progress: document.querySelector('[data-testid=progress]')?.textContent,
        statuses: [...document.querySelectorAll('[data-testid=job]')].map((r) => r.dataset.status).join(','),
      }));
      console.error('page state:', JSON.stringify(state));
    }
  } catch (e) {
    console.error('page state unavailable:', e.message);
  }
  finished = true;
  if (logPath) {
    const lines = fs.readFileSync(logPath, 'utf8').split('\n');
    console.error(`--- last 60 lines of ${logPath}\n${lines.slice(-60).join('\n')}`);
  }
  cleanup();
  process.exit(1);
}
function cleanup() {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
}



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

function startFeedpipe(port, db, log) {
  const child = spawn(binary, ['standalone', '--http', `127.0.0.1:${port}`, '--db', db,
    '--allow-private-networks', '--consumers', '1', '--sse-retry-ms', '500', ...extraArgs],
  { stdio: ['ignore', log, log] });
  children.push(child);
  return child;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'feedpipe-e2e-'));
  logPath = path.join(dir, 'feedpipe.log');
  const log = fs.openSync(logPath, 'a');
  await new Promise((r) => feedServer.listen(0, '127.0.0.1', r));
  const feedPort = feedServer.address().port;
  const port = await freePort();
  const db = path.join(dir, 'feedpipe.db');
  let server = startFeedpipe(port, db, log);
  await waitReady(port);

  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    currentPage = page;
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
    for (let i = 0; i < 200 && refused < 3; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(refused >= 3, `the page asked for its stream ${refused} times while the gateway refused`);
    gateway.closeAllConnections();
    await new Promise((r) => gateway.close(r));
    server = startFeedpipe(port, db, log);
    const restarted = server;
    restarted.once('exit', (code, signal) => {
      if (!finished) console.error(`feedpipe exited after the restart: ${code ?? signal}`);
    });
    await page.waitForFunction((n) => document.querySelector('[data-testid=progress]')?.textContent === `${n} / ${n}`,
      FEEDS, { timeout: 90_000 });
    const after = await page.$$eval('[data-testid=job]', (rows) => rows.map((r) => r.dataset.status));
    assert.equal(after.length, FEEDS);
    assert.ok(after.every((s) => s === 'ok'), `statuses after restart: ${after}`);
    console.log('batch page resumed after the server restarted and reached the end');
  } catch (err) {
    await fail(err);  // while the page is still open
  } finally {
    await browser.close();
  }
}

main().then(() => {
  finished = true;
  clearTimeout(deadline);
  cleanup();
  feedServer.close();
  process.exit(0);
}, fail);
