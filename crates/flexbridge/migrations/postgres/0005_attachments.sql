-- Attachments (issue 10): the twin of migrations/sqlite/0005_attachments.sql
-- (read its comments); the bytes are BYTEA here, BLOB there.
CREATE TABLE attachments (
    id            TEXT    PRIMARY KEY,
    customer_id   TEXT    NOT NULL REFERENCES customers(id),
    direction     TEXT    NOT NULL,
    filename      TEXT    NOT NULL,
    content_type  TEXT    NOT NULL,
    size          BIGINT  NOT NULL,
    media_sid     TEXT,
    content       BYTEA,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX attachments_by_customer ON attachments (customer_id, created_at);

ALTER TABLE messages ADD COLUMN attachment_id TEXT REFERENCES attachments(id);
CREATE UNIQUE INDEX messages_one_per_attachment
    ON messages (attachment_id) WHERE attachment_id IS NOT NULL;
