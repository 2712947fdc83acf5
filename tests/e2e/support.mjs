// What the browser tests share: feedpipe started standalone on a free loopback port with its
// database and log in a fresh directory, waiting for its /readyz, Debian's chromium launched
// headless, polling with a deadline, and a test run's failure handling.
// Env: FEEDPIPE_BINARY (default ../../build/feedpipe), CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const here = path.dirname(new URL(import.meta.url).pathname);
export const feedpipeBinary = process.env.FEEDPIPE_BINARY || path.join(here, '../../build/feedpipe');

// A free port of 127.0.0.1 below the kernel's ephemeral range (32768-60999 by default): a port
// that listen(0) handed out and closed goes back to that range, where another process's connect()
// or listen(0) can take it before feedpipe binds it.
const handedOut = new Set();
export async function freePort() {
  const first = 20000, count = 12000, start = Math.floor(Math.random() * count);
  for (let i = 0; i < count; i++) {
    const port = first + ((start + i) % count);
    if (handedOut.has(port)) continue;
    const free = await new Promise((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port in 20000-31999');
}

// Starts listening on a free port of 127.0.0.1; returns the port.
export async function listenLocal(server) {
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return server.address().port;
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Calls `check` every `everyMs` until it returns something truthy, and returns that; throws
// "timed out waiting for <what>" after `timeoutMs`. `what` may be a function, called then, to
// say how far it got.
export async function until(what, check, timeoutMs = 30_000, everyMs = 50) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
    await sleep(everyMs);
  }
}

export async function waitReady(port) {
  await until('feedpipe to become ready (GET /readyz answering 200)', async () => {
    try {
      return (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
    } catch {
      return false;
    }
  }, 30_000, 100);
}

export function launchChromium() {
  return chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

// Every thread's stack of each feedpipe child still running, from gdb: a process that stopped
// answering (it never became ready, say) shows where it waits.
function printFeedpipeStacks(children) {
  for (const child of children) {
    if (!child.feedpipe || child.exitCode !== null || child.signalCode !== null) continue;
    const gdb = spawnSync('gdb', ['-p', String(child.pid), '-batch', '-nx', '-ex', 'thread apply all bt'],
      { encoding: 'utf8', timeout: 60_000 });
    if (gdb.error) console.error(`no stacks of feedpipe (pid ${child.pid}): ${gdb.error.message}`);
    else console.error(`--- threads of feedpipe (pid ${child.pid})\n${gdb.stdout}`);
  }
}

// One test run: its child processes, feedpipe's log and the page under test, for a failure to
// report. `fail(err)` prints the error, the page's state (`pageState`, evaluated in the page set
// as `run.page`), the last `logLines` lines of the log at `run.logPath`, ends the children and
// exits 1; it is called too when the run takes more than `seconds`. `finish(signal)` ends the
// children (SIGKILL unless told) and the deadline; `finished` is set from then on, and by fail.
// `main(fn)` runs the test's main function with the two.
export function testRun({ seconds, logLines = 40, pageState = null }) {
  const run = {
    children: [],
    logPath: null,
    page: null,
    finished: false,
    endChildren(signal = 'SIGKILL') {
      for (const child of run.children) if (child.exitCode === null) child.kill(signal);
    },
    async fail(err) {
      console.error(err);
      try {
        if (run.page && pageState) console.error('page state:', JSON.stringify(await run.page.evaluate(pageState)));
      } catch (e) {
        console.error('page state unavailable:', e.message);
      }
      run.finished = true;
      if (run.logPath) {
        const lines = fs.readFileSync(run.logPath, 'utf8').split('\n');
        console.error(`--- last ${logLines} lines of ${run.logPath}\n${lines.slice(-logLines).join('\n')}`);
      }
      printFeedpipeStacks(run.children);
      run.endChildren();
      process.exit(1);
    },
    // A fresh directory (`prefix` and six random characters, in the system's temp folder) for
    // feedpipe's database and log; the log is the one a failure shows.
    workDir(prefix) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
      run.logPath = path.join(dir, 'feedpipe.log');
      return { db: path.join(dir, 'feedpipe.db'), log: fs.openSync(run.logPath, 'a') };
    },
    // `feedpipe standalone` on 127.0.0.1:port with the database `db`, private networks allowed,
    // one consumer and `flags`, its output to the file descriptor `log`; one of the run's children.
    startFeedpipe(port, db, log, flags = []) {
      const child = spawn(feedpipeBinary, ['standalone', '--http', `127.0.0.1:${port}`, '--db', db,
        '--allow-private-networks', '--consumers', '1', ...flags], { stdio: ['ignore', log, log] });
      child.feedpipe = true;
      run.children.push(child);
      return child;
    },
    finish(signal = 'SIGKILL') {
      run.finished = true;
      clearTimeout(deadline);
      run.endChildren(signal);
    },
    // Runs the test's `main`: when it is done, finish(signal) and exit 0; when it throws, fail.
    main(main, signal = 'SIGKILL') {
      main().then(() => {
        run.finish(signal);
        process.exit(0);
      }, run.fail);
    },
  };
  const deadline = setTimeout(() => run.fail(new Error(`e2e test timed out after ${seconds} s`)), seconds * 1000);
  return run;
}
