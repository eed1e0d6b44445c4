-- Several bridges on one database (issue 9).
--
-- Outbox leases: which bridge delivers
-- a conversation's queue, and until when (ms). Claimed by the take that
-- starts a delivery, renewed while it runs, released by the write that
-- ends it; a lease whose owner stopped renewing it is taken over once it
-- expires (crates/flexbridge/src/store/leases.rs).
ALTER TABLE conversations ADD COLUMN lease_owner TEXT;
ALTER TABLE conversations ADD COLUMN lease_expires_at BIGINT;
-- When a start last queued this conversation's re-attachment ("sync"):
-- bridges starting together claim each conversation's once.
ALTER TABLE conversations ADD COLUMN reattached_at BIGINT;

-- A queue left by a version without leases may have had a send in flight
-- when it stopped: held by an owner that is gone, so the first bridge to
-- take it marks its head "look in Flex first".
UPDATE conversations SET lease_owner = 'before-leases', lease_expires_at = 0
WHERE id IN (SELECT conversation_id FROM outbox);

-- Bridges sharing the database keep each customer's rate-limit bucket in
-- their row, taken in the write that accepts a message: tokens left, in
-- thousandths, and when they were counted (ms). NULL: a full bucket (and
-- a bridge alone keeps its buckets in memory).
ALTER TABLE customers ADD COLUMN rate_tokens_milli BIGINT;
ALTER TABLE customers ADD COLUMN rate_counted_at BIGINT;
