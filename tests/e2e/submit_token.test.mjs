// End to end in a real browser: with API tokens on (--api-tokens), the submit form on `/` asks
// for a token, keeps it for the tab only (sessionStorage), sends it as `Authorization: Bearer`,
// and shows the 401's message for a wrong one.
// Env: FEEDPIPE_BINARY (default ../../build/feedpipe), CHROMIUM (default /usr/bin/chromium).
import { spawn } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { freePort, launchChromium, waitReady } from './support.mjs';

const here = path.dirname(new URL(import.meta.url).pathname);
const binary = process.env.FEEDPIPE_BINARY || path.join(here, '../../build/feedpipe');
const TOKEN = 'e2e-token-4d7b9a';
const FEEDS = 3;
const children = [];
const deadline = setTimeout(() => fail(new Error('e2e test timed out after 100 s')), 100_000);

let logPath = null;
async function fail(err) {
  console.error(err);
  if (logPath) {
    const lines = fs.readFileSync(logPath, 'utf8').split('\n');
    console.error(`--- last 40 lines of ${logPath}\n${lines.slice(-40).join('\n')}`);
  }
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  process.exit(1);
}



const feedServer = http.createServer((req, res) => {
  const n = req.url.match(/\d+/)?.[0] ?? '0';
  res.writeHead(200, { 'Content-Type': 'application/rss+xml' });
  res.end(`<?xml version="1.0"?><rss version="2.0"><channel><title>Feed ${n}</title>` +
    `<item><title>Item of ${n}</title><guid>token-${n}</guid></item></channel></rss>`);
});

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'feedpipe-e2e-token-'));
  logPath = path.join(dir, 'feedpipe.log');
  const log = fs.openSync(logPath, 'a');
  await new Promise((r) => feedServer.listen(0, '127.0.0.1', r));
  const feedPort = feedServer.address().port;
  const port = await freePort();
  const child = spawn(binary, ['standalone', '--http', `127.0.0.1:${port}`, '--db', path.join(dir, 'feedpipe.db'),
    '--allow-private-networks', '--consumers', '1', '--api-tokens', TOKEN], { stdio: ['ignore', log, log] });
  children.push(child);
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
    await fail(err);
  } finally {
    await browser.close();
  }
}

main().then(() => {
  clearTimeout(deadline);
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  feedServer.close();
  process.exit(0);
}, fail);
