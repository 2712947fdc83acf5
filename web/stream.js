// What the pages that watch an event stream share (loaded before index.js and batch.js).
// EventSource reconnects by itself after a dropped connection, but an answer other than a stream
// (a proxy's 502 while the broadcaster restarts, a 503, a refusal) closes it for good without
// saying which: the page asks the stream URL itself, and tries again later unless it is refused.

// The status the stream URL answers now; 0 when the server cannot be reached (worth another try).
async function streamRefusalStatus(url) {
  const abort = new AbortController();
  try {
    const res = await fetch(url, { headers: { Accept: 'text/event-stream' }, signal: abort.signal });
    return res.status;
  } catch {
    return 0;
  } finally {
    abort.abort();  // only the status is wanted, not the stream
  }
}

// The wait before each new try: 1 s, doubled after each try up to 30 s, back to 1 s once a stream
// opens.
function streamBackoff() {
  let delayMs = 1000;
  return {
    next() {
      const delay = delayMs;
      delayMs = Math.min(delayMs * 2, 30000);
      return delay;
    },
    reset() { delayMs = 1000; },
  };
}
