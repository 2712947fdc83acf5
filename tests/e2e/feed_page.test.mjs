// End to end in a real browser: the batch page names each feed by its title, linked to the feed's
// page, and puts failed feeds first on request; the feed page shows the feed's health and its
// newest items, and item text from a hostile feed (markup, script, javascript: links) is shown as
// text and never runs. Also a phone-sized window and the keyboard.
// Env: FEEDPIPE_BINARY (default ../../build/feedpipe), CHROMIUM (default /usr/bin/chromium),
// SCREENSHOT_DIR (save pictures of the pages there).
import http from 'node:http';
import path from 'node:path';
import assert from 'node:assert/strict';
import { freePort, launchChromium, listenLocal, testRun, waitReady } from './support.mjs';

const run = testRun({ seconds: 120 });

// Item text that would run if a page put it in as HTML. Each payload sets a flag on window.
const HOSTILE_TITLE = '<img src=x onerror="window.__pwned=\'title\'">Hostile <b>title</b>';
const HOSTILE_SUMMARY = '<script>window.__pwned="summary"</script><img src=x onerror="window.__pwned=\'summary-img\'">' +
  '<p>Plain <em>words</em> of the summary.</p>';
const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const FEED_TITLE = 'The <Good> Feed';

const feedServer = http.createServer((req, res) => {
  if (req.url.split('?')[0] === '/good.xml') {
    res.writeHead(200, { 'Content-Type': 'application/rss+xml' });
    res.end(`<?xml version="1.0"?><rss version="2.0"><channel><title>${esc(FEED_TITLE)}</title>` +
      '<link>http://example.test/</link>' +
      `<item><title>${esc(HOSTILE_TITLE)}</title><link>javascript:window.__pwned='link'</link>` +
      `<guid>hostile</guid><pubDate>Mon, 01 Jan 2024 10:00:00 GMT</pubDate><description>${esc(HOSTILE_SUMMARY)}</description></item>` +
      '<item><title>A safe item</title><link>http://example.test/safe</link><guid>safe</guid>' +
      '<pubDate>Sun, 31 Dec 2023 10:00:00 GMT</pubDate><description>Just text.</description></item>' +
      '</channel></rss>');
  } else {
    res.writeHead(500);
    res.end('no');
  }
});

// How far the page is wider than the window, and which elements stick out.
function overflowOf(page) {
  return page.evaluate(() => ({
    px: document.documentElement.scrollWidth - window.innerWidth,
    out: [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
      .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}${e.className ? `.${e.className}` : ''}`),
  }));
}

async function main() {
  const { db, log } = run.workDir('feedpipe-e2e-feed-');
  const feedBase = `http://127.0.0.1:${await listenLocal(feedServer)}`;
  const port = await freePort();
  run.startFeedpipe(port, db, log, ['--fetch-attempts', '1']);
  await waitReady(port);
  const base = `http://127.0.0.1:${port}`;

  // A batch: two good positions around a failing one.
  const submit = await fetch(`${base}/v1/batches`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ feeds: [`${feedBase}/good.xml`, `${feedBase}/broken.xml`, `${feedBase}/good.xml?again`] }),
  });
  assert.equal(submit.status, 202);
  const { batch_id: batchId } = await submit.json();

  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });  // a phone
    await page.goto(`${base}/batches/${batchId}`);
    await page.waitForFunction(() => document.querySelector('[data-testid=progress]')?.textContent === '3 / 3', null,
      { timeout: 60_000 });
    // Titles arrive with the snapshot read at completion.
    await page.waitForFunction((t) => document.querySelector('[data-testid=feed-link]')?.textContent === t, FEED_TITLE,
      { timeout: 10_000 });
    const order = () => page.$$eval('[data-testid=job]', (rows) => rows.map((r) => r.dataset.status));
    assert.deepEqual(await order(), ['ok', 'failed', 'ok']);

    // "Failed first", by keyboard: focus the button and press Enter; again to undo.
    await page.focus('[data-testid=failed-first]');
    await page.keyboard.press('Enter');
    assert.deepEqual(await order(), ['failed', 'ok', 'ok']);
    assert.equal(await page.getAttribute('[data-testid=failed-first]', 'aria-pressed'), 'true');
    await page.keyboard.press('Enter');
    assert.deepEqual(await order(), ['ok', 'failed', 'ok']);
    const overflow = await overflowOf(page);
    assert.ok(overflow.px <= 1, `the batch page is ${overflow.px}px wider than a phone: ${overflow.out}`);
    if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: path.join(process.env.SCREENSHOT_DIR, 'batch-phone.png'), fullPage: true });

    // The feed's page, from its title's link.
    await Promise.all([page.waitForURL(/\/feeds\/\d+$/), page.click('[data-testid=feed-link]')]);
    await page.waitForSelector('[data-testid=item]');
    assert.equal(await page.textContent('[data-testid=feed-title]'), FEED_TITLE);
    assert.equal(await page.textContent('[data-testid=consecutive-failures]'), '0');
    assert.notEqual((await page.textContent('[data-testid=last-success]')).trim(), '—');
    const items = await page.$$('[data-testid=item]');
    assert.equal(items.length, 2);

    // The hostile item: its title is shown as the text it is, its summary as its words, its
    // javascript: link is no link, and nothing ran.
    const hostile = items[0];
    assert.equal(await hostile.$eval('.title', (e) => e.tagName), 'STRONG');
    assert.equal(await hostile.$eval('.title', (e) => e.textContent), HOSTILE_TITLE);
    assert.equal(await hostile.$eval('.summary', (e) => e.textContent), 'Plain words of the summary.');
    assert.equal(await page.$$eval('[data-testid=items] img, [data-testid=items] script', (e) => e.length), 0);
    const safe = items[1];
    assert.equal(await safe.$eval('.title', (e) => e.getAttribute('href')), 'http://example.test/safe');
    await page.waitForTimeout(500);  // an onerror would have fired by now
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    const overflowFeed = await overflowOf(page);
    assert.ok(overflowFeed.px <= 1, `the feed page is ${overflowFeed.px}px wider than a phone: ${overflowFeed.out}`);
    if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: path.join(process.env.SCREENSHOT_DIR, 'feed-phone.png'), fullPage: true });

    // The failing feed's page shows its health.
    await page.goBack();
    await page.waitForSelector('[data-testid=job][data-status=failed] [data-testid=feed-link]');
    await Promise.all([page.waitForURL(/\/feeds\/\d+$/), page.click('[data-testid=job][data-status=failed] [data-testid=feed-link]')]);
    await page.waitForFunction(() => document.querySelector('[data-testid=consecutive-failures]')?.textContent === '1');
    assert.match(await page.textContent('[data-testid=last-error]'), /500/);

    // An unknown feed says so.
    await page.goto(`${base}/feeds/987654321`);
    await page.waitForFunction(() => document.querySelector('[data-testid=error]')?.textContent.includes('No feed'));
    console.log('batch page titles and failed-first, feed page health and items, hostile text inert');
  } finally {
    await browser.close();
  }
}

run.main(main);
