-- feedpipe schema, version 1. Times are RFC 3339 UTC text unless named *_ms (Unix milliseconds).

CREATE TABLE batches (
  id              TEXT PRIMARY KEY,              -- batch_id: time-ordered, so ORDER BY id is newest last
  created_at      TEXT NOT NULL,
  status          TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'completed')),
  total           INTEGER NOT NULL,
  done            INTEGER NOT NULL DEFAULT 0,    -- final jobs, failed ones included
  failed          INTEGER NOT NULL DEFAULT 0,
  last_seq        INTEGER NOT NULL DEFAULT 0,    -- seq of the batch's newest event
  completed_at    TEXT,
  idempotency_key TEXT UNIQUE,
  request_hash    TEXT
);

CREATE TABLE feeds (
  id                   INTEGER PRIMARY KEY,
  url                  TEXT NOT NULL UNIQUE,     -- normalized URL (identity)
  final_url            TEXT,                     -- after redirects, at the last success
  title                TEXT,
  link                 TEXT,
  etag                 TEXT,
  last_modified        TEXT,
  last_fetch_at        TEXT,
  last_success_at      TEXT,
  last_http_status     INTEGER,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  last_error           TEXT
);

CREATE TABLE jobs (
  id          INTEGER PRIMARY KEY,
  batch_id    TEXT NOT NULL REFERENCES batches(id),
  position    INTEGER NOT NULL,
  url         TEXT NOT NULL,                     -- as submitted
  feed_id     INTEGER REFERENCES feeds(id),      -- NULL when the URL was not fetchable
  status      TEXT NOT NULL DEFAULT 'queued'
              CHECK (status IN ('queued', 'running', 'ok', 'not_modified', 'failed')),
  http_status INTEGER,
  items_new   INTEGER,
  items_total INTEGER,
  duration_ms INTEGER,
  error       TEXT,
  published   INTEGER NOT NULL DEFAULT 0,        -- 1 once Kafka acknowledged the job message (outbox)
  started_at  TEXT,
  finished_at TEXT,
  UNIQUE (batch_id, position)
);
CREATE INDEX jobs_unpublished ON jobs (id) WHERE published = 0;
CREATE INDEX jobs_open ON jobs (id) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_batch_feed ON jobs (batch_id, feed_id);

CREATE TABLE items (
  id            INTEGER PRIMARY KEY,             -- insertion order: higher is newer
  feed_id       INTEGER NOT NULL REFERENCES feeds(id),
  item_key      TEXT NOT NULL,                   -- guid, else link, else a hash of the content
  guid          TEXT,
  link          TEXT,
  title         TEXT,
  author        TEXT,
  published     TEXT,
  updated       TEXT,
  summary       TEXT,
  content       TEXT,
  first_seen_at TEXT NOT NULL,
  UNIQUE (feed_id, item_key)
);

CREATE TABLE events (
  batch_id TEXT NOT NULL REFERENCES batches(id),
  seq      INTEGER NOT NULL,                     -- per batch, gap-free, 1..total+1
  type     TEXT NOT NULL CHECK (type IN ('job.completed', 'job.failed', 'batch.completed')),
  job_id   INTEGER UNIQUE REFERENCES jobs(id),   -- one event per job outcome; NULL for batch.completed
  ts       INTEGER NOT NULL,                     -- Unix ms of the commit
  data     TEXT NOT NULL,                        -- the SSE data JSON
  PRIMARY KEY (batch_id, seq)
) WITHOUT ROWID;
