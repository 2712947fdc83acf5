-- Callbacks (DESIGN.md, Callbacks): the URL a batch asked to be called at when it completes, and
-- the durable queue of those calls. A row is written in the transaction that completes its batch;
-- senders (standalone, consumer --db, recorder) claim due rows with a conditional UPDATE and a
-- lease (claimed_until_ms), so processes sharing the file never send one callback at once, and a
-- claimer that dies only delays it until the lease expires. Times are Unix milliseconds.
ALTER TABLE batches ADD COLUMN callback_url TEXT;

CREATE TABLE callbacks (
  batch_id           TEXT PRIMARY KEY REFERENCES batches(id),
  url                TEXT NOT NULL,
  delivery_id        TEXT NOT NULL,                -- Feedpipe-Delivery: random, fixed at creation
  body               TEXT NOT NULL,                -- the JSON POSTed, the same on every attempt
  status             TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts           INTEGER NOT NULL DEFAULT 0,   -- attempts finished
  last_error         TEXT,
  created_at_ms      INTEGER NOT NULL,
  next_attempt_at_ms INTEGER NOT NULL,
  claimed_by         TEXT,                         -- the sender working on it, until claimed_until_ms
  claimed_until_ms   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX callbacks_due ON callbacks (next_attempt_at_ms) WHERE status = 'pending';
