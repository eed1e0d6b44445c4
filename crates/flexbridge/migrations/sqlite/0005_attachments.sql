-- Attachments (issue 10): files a customer uploaded and files an agent
-- sent, one per message. Written in SQL both dialects accept except the
-- byte column's type (`BLOB` here, `BYTEA` in PostgreSQL).
--
-- A customer's file is stored with its bytes before the upload is
-- answered, so the `message` that names it refers to something durable;
-- `media_sid` is its Twilio Media (ME…) once the outbox uploaded it (so a
-- retry does not upload again). An agent's file arrives as a Media SID
-- from a webhook; its bytes are fetched from Twilio on the customer's first
-- download and kept (`content` NULL until then). `customer_id` is whose
-- file it is: the download route answers it to that customer only.
CREATE TABLE attachments (
    id            TEXT    PRIMARY KEY,
    customer_id   TEXT    NOT NULL REFERENCES customers(id),
    direction     TEXT    NOT NULL,
    filename      TEXT    NOT NULL,
    content_type  TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    media_sid     TEXT,
    content       BLOB,
    created_at    INTEGER NOT NULL
);
CREATE INDEX attachments_by_customer ON attachments (customer_id, created_at);

-- The message that carries a file; a file is carried by one message only.
ALTER TABLE messages ADD COLUMN attachment_id TEXT REFERENCES attachments(id);
CREATE UNIQUE INDEX messages_one_per_attachment
    ON messages (attachment_id) WHERE attachment_id IS NOT NULL;
