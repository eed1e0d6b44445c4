-- A third kind of outbox row, 'sync': after a restart, re-point a live
-- conversation's channel webhooks at this bridge and catch up on what Flex
-- said while the bridge could not hear it. SQLite cannot change a CHECK
-- constraint in place, so the (work-only, short-lived) table is rebuilt.

CREATE TABLE outbox_new (
    id               INTEGER PRIMARY KEY,
    conversation_id  TEXT    NOT NULL REFERENCES conversations(id),
    kind             TEXT    NOT NULL CHECK (kind IN ('open', 'send', 'sync')),
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
