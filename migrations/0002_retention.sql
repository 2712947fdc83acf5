-- Retention (common/retention.h): the pruner finds completed batches by completion time.
CREATE INDEX batches_completed ON batches (completed_at) WHERE status = 'completed';
