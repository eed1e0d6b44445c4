-- flexbridge store, SQLite dialect: the baseline (the pre-release
-- migrations squashed). Timestamps are integer milliseconds since the Unix
-- epoch; JSON is stored as text. Uniqueness lives here; every other rule
-- (which states, kinds and directions exist, what a write also does)
-- lives in the Rust of `crates/flexbridge/src/store/`, so this schema and
-- `migrations/postgres/` say the same in two dialects.

-- A customer: an identity the bridge issued. Only the SHA-256 of the resume
-- token is kept. `last_seq` is the per-customer message counter, advanced
-- by the store with each message it inserts.
CREATE TABLE customers (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    token_hash  BLOB    NOT NULL UNIQUE,
    last_seq    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);

-- One Flex conversation of one customer: `opening -> open -> closed`
-- (core/conversation.rs). `backend` opened it and serves it; `flex_ref` is
-- what that backend recorded (JSON, opaque to the store).
CREATE TABLE conversations (
    id            TEXT    PRIMARY KEY,
    customer_id   TEXT    NOT NULL REFERENCES customers(id),
    backend       TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    flex_channel  TEXT,
    flex_ref      TEXT,
    agent_name    TEXT,
    close_reason  TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- At most one live conversation per customer: this index is what makes
-- concurrent first messages create ONE conversation.
CREATE UNIQUE INDEX conversations_one_live_per_customer
    ON conversations (customer_id) WHERE state <> 'closed';
CREATE INDEX conversations_by_customer ON conversations (customer_id, created_at);
-- Not unique: Flex may hand back a still-active channel for a new
-- conversation (same Target); webhooks go to the newest one.
CREATE INDEX conversations_by_channel ON conversations (flex_channel, created_at);

-- Every message, both directions. `seq` orders one customer's messages and
-- is the replay cursor. A retried emit (same client message id) and a
-- repeated webhook (same Flex message) hit a unique constraint.
CREATE TABLE messages (
    id               INTEGER PRIMARY KEY,
    customer_id      TEXT    NOT NULL REFERENCES customers(id),
    conversation_id  TEXT    NOT NULL REFERENCES conversations(id),
    seq              INTEGER NOT NULL,
    direction        TEXT    NOT NULL,
    author           TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    client_msg_id    TEXT,
    flex_message     TEXT    UNIQUE,
    delivery         TEXT,
    delivery_error   TEXT,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    UNIQUE (customer_id, seq),
    UNIQUE (customer_id, client_msg_id)
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, seq);

-- Work for Flex, in order per conversation (by id): `open`, `send` (with
-- its message), `sync`, `close`. A row is deleted when done; the message
-- row records a send's outcome. `maybe_landed` is set when an attempt
-- failed without proof that nothing reached Flex, so the retry looks first.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    conversation_id  TEXT    NOT NULL REFERENCES conversations(id),
    kind             TEXT    NOT NULL,
    message_id       INTEGER REFERENCES messages(id),
    attempts         INTEGER NOT NULL DEFAULT 0,
    maybe_landed     INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL
);
CREATE INDEX outbox_by_conversation ON outbox (conversation_id, id);
CREATE INDEX outbox_by_message ON outbox (message_id) WHERE message_id IS NOT NULL;

-- Webhooks already applied, keyed by an idempotency key derived from the
-- event, so a repeated delivery has no second effect.
CREATE TABLE webhook_receipts (
    idempotency_key  TEXT    PRIMARY KEY,
    event_type       TEXT    NOT NULL,
    received_at      INTEGER NOT NULL
);
CREATE INDEX webhook_receipts_by_age ON webhook_receipts (received_at);
