// End to end in a real browser: with API tokens on (--api-tokens), the submit form on `/` asks
// for a token, keeps it for the tab only (sessionStorage), sends it as `Authorization: Bearer`,
// and shows the 401's message for a wrong one.
// Env: FEEDPIPE_BINARY (default ../../build/feedpipe), CHROMIUM (default /usr/bin/chromium).
import http from 'node:http';
import assert from 'node:assert/strict';
import { freePort, launchChromium, listenLocal, testRun, waitReady } from './support.mjs';

const TOKEN = 'e2e-token-4d7b9a';
const FEEDS = 3;
const run = testRun({ seconds: 100 });

const feedServer = http.createServer((req, res) => {
  const n = req.url.match(/\d+/)?.[0] ?? '0';
  res.writeHead(200, { 'Content-Type': 'application/rss+xml' });
  res.end(`<?xml version="1.0"?><rss version="2.0"><channel><title>Feed ${n}</title>` +
    `<item><title>Item of ${n}</title><guid>token-${n}</guid></item></channel></rss>`);
});

async function main() {
  const { db, log } = run.workDir('feedpipe-e2e-token-');
  const feedPort = await listenLocal(feedServer);
  const port = await freePort();
  run.startFeedpipe(port, db, log, ['--api-tokens', TOKEN]);
  await waitReady(port);

  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const sent = [];
    page.on('request', (req) => {
      if (req.method() === 'POST' && req.url().endsWith('/v1/batches')) sent.push(req.headers().authorization ?? null);
    });
    const urls = Array.from({ length: FEEDS }, (_, i) => `http://127.0.0.1:${feedPort}/feed/${i}.xml`);

    // 1. The form asks for a token.
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('[data-testid=token]', { state: 'visible' });
    await page.fill('[data-testid=feeds]', urls.join('\n'));

    // 2. A wrong one: the 401's message is shown, nothing is kept, the page stays.
    await page.fill('[data-testid=token]', 'wrong-token');
    await page.click('[data-testid=submit]');
    await page.waitForFunction(() => document.querySelector('[data-testid=error]').textContent !== '');
    assert.equal(await page.textContent('[data-testid=error]'), 'the bearer token is not valid');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('feedpipe.apiToken')), null);
    assert.deepEqual(sent, ['Bearer wrong-token']);
    assert.match(page.url(), /\/$/);

    // 3. The right one: sent, kept in sessionStorage (not localStorage), the batch runs to the end.
    await page.fill('[data-testid=token]', TOKEN);
    await Promise.all([page.waitForURL(/\/batches\/[^/]+$/), page.click('[data-testid=submit]')]);
    assert.deepEqual(sent, ['Bearer wrong-token', `Bearer ${TOKEN}`]);
    await page.waitForFunction((n) => document.querySelector('[data-testid=progress]')?.textContent === `${n} / ${n}`,
      FEEDS, { timeout: 30_000 });
    assert.equal(await page.evaluate(() => sessionStorage.getItem('feedpipe.apiToken')), TOKEN);
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    console.log(`submitted with a token, batch page reached ${FEEDS} / ${FEEDS}`);

    // 4. Back on the form in the same tab, the token is filled in; a new tab has none.
    await page.goto(`http://127.0.0.1:${port}/`);
    assert.equal(await page.inputValue('[data-testid=token]'), TOKEN);
    const other = await context.newPage();
    await other.goto(`http://127.0.0.1:${port}/`);
    await other.waitForSelector('[data-testid=token]', { state: 'visible' });
    assert.equal(await other.inputValue('[data-testid=token]'), '');

    // 5. Without a token the form does not submit (the field is required), so no 401 is needed.
    await other.fill('[data-testid=feeds]', urls[0]);
    await other.click('[data-testid=submit]');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(sent.length, 2);
    console.log('the token stays in its tab');
  } catch (err) {
    await run.fail(err);
  } finally {
    await browser.close();
  }
}

run.main(main, 'SIGTERM');
