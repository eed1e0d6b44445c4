-- flexbridge store, SQLite dialect, migration 2 (issue 11: nothing lost,
-- nothing stuck, nothing silent). Runs outside sqlx's transaction: SQLite
-- changes a table's constraints only by rebuilding it, which needs the
-- foreign keys off (a PRAGMA without effect inside a transaction), so
-- this file opens and commits its own.
--
-- 1. A Flex message is unique per conversation, no longer across all of
--    them: a webhook is a duplicate only when the same Twilio message of
--    the same conversation was stored before. A SID seen in another
--    conversation (a Flex account that repeats an earlier account's SIDs,
--    e.g. a development emulator started again on an old database) is
--    stored, and logged, instead of dropped or stuck on a constraint.
-- 2. `messages.flex_index`: the message's position in its Flex channel
--    (Twilio's `Index`), and `conversations.flex_synced_index`, the
--    position up to which the bridge has looked at every message of the
--    channel: a message arriving beyond an unknown position is a gap the
--    bridge fills from Flex first, so customers see Flex's order.
-- 3. `conversations.synced_at`: when the conversation was last re-synced
--    with Flex (the periodic re-sync picks the oldest).

PRAGMA foreign_keys = OFF;

BEGIN;

CREATE TABLE messages_rebuilt (
    id               INTEGER PRIMARY KEY,
    customer_id      TEXT    NOT NULL REFERENCES customers(id),
    conversation_id  TEXT    NOT NULL REFERENCES conversations(id),
    seq              INTEGER NOT NULL,
    direction        TEXT    NOT NULL,
    author           TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    client_msg_id    TEXT,
    flex_message     TEXT,
    flex_index       INTEGER,
    delivery         TEXT,
    delivery_error   TEXT,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    UNIQUE (customer_id, seq),
    UNIQUE (customer_id, client_msg_id),
    UNIQUE (conversation_id, flex_message)
);

INSERT INTO messages_rebuilt (id, customer_id, conversation_id, seq, direction, author, body,
                              client_msg_id, flex_message, delivery, delivery_error,
                              created_at, delivered_at)
SELECT id, customer_id, conversation_id, seq, direction, author, body,
       client_msg_id, flex_message, delivery, delivery_error, created_at, delivered_at
FROM messages;

DROP TABLE messages;
ALTER TABLE messages_rebuilt RENAME TO messages;

CREATE INDEX messages_by_conversation ON messages (conversation_id, seq);
-- Finds a SID seen in another conversation (logged as a collision).
CREATE INDEX messages_by_flex_message ON messages (flex_message)
    WHERE flex_message IS NOT NULL;
-- Counts the known positions of a conversation's channel (gap check).
CREATE INDEX messages_by_flex_index ON messages (conversation_id, flex_index)
    WHERE flex_index IS NOT NULL;

ALTER TABLE conversations ADD COLUMN flex_synced_index INTEGER;
ALTER TABLE conversations ADD COLUMN synced_at INTEGER;

COMMIT;

PRAGMA foreign_keys = ON;
