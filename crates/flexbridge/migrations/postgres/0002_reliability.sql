-- flexbridge store, PostgreSQL dialect, migration 2 (issue 11: nothing
-- lost, nothing stuck, nothing silent): the twin of
-- migrations/sqlite/0002_reliability.sql, which says why. PostgreSQL
-- changes constraints in place (no rebuild), inside sqlx's transaction.
--
-- 1. A Flex message is unique per conversation, no longer across all of
--    them.
-- 2. `messages.flex_index` (Twilio's `Index` of the message in its
--    channel) and `conversations.flex_synced_index` (up to where the
--    bridge has looked at every message of the channel).
-- 3. `conversations.synced_at`: when the conversation was last re-synced.

ALTER TABLE messages DROP CONSTRAINT messages_flex_message_key;
ALTER TABLE messages ADD CONSTRAINT messages_conversation_flex_message_key
    UNIQUE (conversation_id, flex_message);
ALTER TABLE messages ADD COLUMN flex_index BIGINT;

-- Finds a SID seen in another conversation (logged as a collision).
CREATE INDEX messages_by_flex_message ON messages (flex_message)
    WHERE flex_message IS NOT NULL;
-- Counts the known positions of a conversation's channel (gap check).
CREATE INDEX messages_by_flex_index ON messages (conversation_id, flex_index)
    WHERE flex_index IS NOT NULL;

ALTER TABLE conversations ADD COLUMN flex_synced_index BIGINT;
ALTER TABLE conversations ADD COLUMN synced_at BIGINT;
