-- A server's Retry-After on a failed fetch (429/503): no fetch of the feed before this time.
ALTER TABLE feeds ADD COLUMN next_fetch_at TEXT;
