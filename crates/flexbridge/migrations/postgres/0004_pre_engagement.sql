-- The web chat's pre-engagement form (issue 10): what a customer told
-- besides their name, kept with the customer. `pre_engagement` is a JSON
-- object of the answers (`email`, `question`, `topic`; absent when not
-- given), as `core::pre_engagement::PreEngagement` writes it; NULL for a
-- customer who registered with a name only. The twin of
-- migrations/sqlite/0004_pre_engagement.sql.
ALTER TABLE customers ADD COLUMN pre_engagement TEXT;
