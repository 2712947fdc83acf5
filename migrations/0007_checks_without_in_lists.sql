-- The CHECKs on status and type columns say the same as before, as OR chains instead of IN
-- lists. SQLite evaluates an IN list of more than two values by building a temporary table at
-- every row it checks (a B-tree and its pager, about 2.5 µs): several times per job, on the
-- writers' critical path. A CHECK's text is changed in place, without rebuilding the table, by
-- the procedure of https://sqlite.org/lang_altertable.html ("otherschemachanges"); the
-- migration runner bumps the schema version, so other connections read the new schema.
PRAGMA writable_schema=ON;
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (status IN (''queued'', ''running'', ''completed''))',
    'CHECK (status = ''queued'' OR status = ''running'' OR status = ''completed'')')
  WHERE type = 'table' AND name = 'batches';
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (status IN (''queued'', ''running'', ''ok'', ''not_modified'', ''failed''))',
    'CHECK (status = ''queued'' OR status = ''running'' OR status = ''ok'' OR status = ''not_modified'' OR status = ''failed'')')
  WHERE type = 'table' AND name = 'jobs';
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (type IN (''job.completed'', ''job.failed'', ''batch.completed''))',
    'CHECK (type = ''job.completed'' OR type = ''job.failed'' OR type = ''batch.completed'')')
  WHERE type = 'table' AND name = 'events';
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (status IN (''pending'', ''delivered'', ''failed''))',
    'CHECK (status = ''pending'' OR status = ''delivered'' OR status = ''failed'')')
  WHERE type = 'table' AND name = 'callbacks';
PRAGMA writable_schema=RESET;
