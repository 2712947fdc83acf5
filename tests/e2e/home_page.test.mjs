// End to end in a real browser: the home page's recent batches update live over ONE stream
// (GET /v1/events) that watches only the batches not yet completed, each from the seq the list
// showed (no event replayed), and is reopened when a batch is submitted elsewhere. Also a
// phone-sized window. Env: FEEDPIPE_BINARY (default ../../build/feedpipe), CHROMIUM (default
// /usr/bin/chromium), SCREENSHOT_DIR (save pictures of the pages there).
import http from 'node:http';
import path from 'node:path';
import assert from 'node:assert/strict';
import { freePort, launchChromium, listenLocal, testRun, until, waitReady } from './support.mjs';

const run = testRun({ seconds: 150, pageState: () => window.home });

// Feeds answer at once, or are parked while `hold` is on until the test releases them.
let hold = false;
const parked = [];
const feedServer = http.createServer((req, res) => {
  const answer = () => {
    try {
      res.writeHead(200, { 'Content-Type': 'application/rss+xml' });
      res.end(`<?xml version="1.0"?><rss version="2.0"><channel><title>Feed ${req.url}</title>` +
        `<item><title>One item</title><guid>home${req.url}</guid></item></channel></rss>`);
    } catch {}
  };
  if (hold) parked.push(answer);
  else answer();
});

async function main() {
  const { db, log } = run.workDir('feedpipe-e2e-home-');
  const feedBase = `http://127.0.0.1:${await listenLocal(feedServer)}`;
  const port = await freePort();
  run.startFeedpipe(port, db, log, ['--fetch-attempts', '1']);
  await waitReady(port);
  const base = `http://127.0.0.1:${port}`;
  const submit = async (name, count) => {
    const feeds = Array.from({ length: count }, (_, i) => `${feedBase}/${name}/${i}.xml`);
    const res = await fetch(`${base}/v1/batches`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ feeds }),
    });
    assert.equal(res.status, 202);
    return (await res.json()).batch_id;
  };
  const snapshot = async (id) => (await fetch(`${base}/v1/batches/${id}`)).json();

  // Before the page opens: A has completed; B has 1 of 3 done; C has none.
  const a = await submit('a', 2);
  await until('batch A to complete', async () => (await snapshot(a)).status === 'completed');
  hold = true;
  const b = await submit('b', 3);
  await until('B\'s feeds to be requested', () => parked.length === 3);
  parked.shift()();
  await until('B to have 1 done', async () => (await snapshot(b)).done === 1);
  const c = await submit('c', 3);
  await until('C\'s feeds to be requested', () => parked.length === 5);

  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });  // a phone
    run.page = page;
    await page.goto(`${base}/`);
    await page.waitForFunction(() => window.home.opens === 1, null, { timeout: 20_000 });
    const state = () => page.evaluate(() => window.home);
    assert.deepEqual((await state()).watching.sort(), [b, c].sort(), 'watches exactly the batches not completed');
    const row = (id) => page.$eval(`[data-testid=batch][data-batch-id="${id}"]`,
      (r) => ({ status: r.dataset.status, progress: r.querySelector('.progress').textContent }));
    assert.deepEqual(await row(a), { status: 'completed', progress: '2 / 2' });
    assert.deepEqual(await row(b), { status: 'running', progress: '1 / 3' });
    assert.deepEqual(await row(c), { status: 'running', progress: '0 / 3' });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `the home page is ${overflow}px wider than a phone`);

    // A batch submitted elsewhere joins the stream at the next list refresh (one new stream).
    const d = await submit('d', 3);
    await until('D\'s feeds to be requested', () => parked.length === 8);
    await page.waitForFunction((id) => window.home.watching.includes(id), d, { timeout: 20_000 });
    assert.equal((await state()).opens, 2);
    assert.deepEqual((await state()).watching.sort(), [b, c, d].sort());

    // Live: every parked feed answers, a little apart.
    hold = false;
    parked.splice(0, parked.length).forEach((answer, i) => setTimeout(answer, 40 * i));
    for (const id of [b, c, d]) {
      await page.waitForFunction((id) => document.querySelector(`[data-testid=batch][data-batch-id="${id}"]`)
        ?.dataset.status === 'completed', id, { timeout: 30_000 });
      assert.equal((await row(id)).progress, '3 / 3');
    }
    // Every event after what the list showed, once: B 2 jobs + completion, C and D 3 + 1 each.
    await until('the last events', async () => (await state()).events >= 11, 5_000);
    const final = await state();
    assert.equal(final.events, 11, 'no event replayed or repeated');
    assert.equal(final.opens, 2, 'no other stream was opened');
    assert.deepEqual(final.watching, [], 'the stream is closed once its batches completed');
    if (process.env.SCREENSHOT_DIR) {
      await page.screenshot({ path: path.join(process.env.SCREENSHOT_DIR, 'home-phone.png'), fullPage: true });
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.screenshot({ path: path.join(process.env.SCREENSHOT_DIR, 'home-desktop.png'), fullPage: true });
      await page.goto(`${base}/batches/${b}`);
      await page.waitForFunction(() => document.querySelector('[data-testid=progress]')?.textContent === '3 / 3');
      await page.screenshot({ path: path.join(process.env.SCREENSHOT_DIR, 'batch-desktop.png'), fullPage: true });
    }
  } finally {
    await browser.close();
  }
  console.log('home page: live over one stream from the listed seqs; a new batch reopened it; 11 events, none repeated');
}

run.main(main);
