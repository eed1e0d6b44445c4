-- A fourth kind of outbox row, 'close': the customer ended the chat, so
-- its Flex channel (or conversation) is closed after the messages queued
-- before it. SQLite cannot change a CHECK constraint in place, so the
-- (work-only, short-lived) table is rebuilt; the triggers on `messages`
-- that name it are dropped first and made again (a rename checks them).

DROP TRIGGER messages_queue_delivery;
DROP TRIGGER messages_delivery_decided;

CREATE TABLE outbox_new (
    id               INTEGER PRIMARY KEY,
    conversation_id  TEXT    NOT NULL REFERENCES conversations(id),
    kind             TEXT    NOT NULL CHECK (kind IN ('open', 'send', 'sync', 'close')),
    message_id       INTEGER REFERENCES messages(id),
    attempts         INTEGER NOT NULL DEFAULT 0,
    maybe_landed     INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    CHECK ((kind = 'send') = (message_id IS NOT NULL))
);
INSERT INTO outbox_new SELECT * FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_by_conversation ON outbox (conversation_id, id);
CREATE INDEX outbox_by_message ON outbox (message_id) WHERE message_id IS NOT NULL;

-- As in migrations 0005 and 0006.
CREATE TRIGGER messages_queue_delivery AFTER INSERT ON messages
WHEN NEW.direction = 'customer'
BEGIN
    INSERT INTO outbox (conversation_id, kind, message_id, next_attempt_at, created_at)
    VALUES (NEW.conversation_id, 'send', NEW.id, NEW.created_at, NEW.created_at);
END;

CREATE TRIGGER messages_delivery_decided AFTER UPDATE OF delivery ON messages
WHEN OLD.delivery = 'pending' AND NEW.delivery <> 'pending'
BEGIN
    DELETE FROM outbox WHERE message_id = NEW.id AND kind = 'send';
END;
