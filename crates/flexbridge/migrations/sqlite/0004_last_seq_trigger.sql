-- A customer's `last_seq` follows the messages stored for them inside the
-- INSERT itself: the INSERT takes `last_seq + 1` from `customers` and this
-- trigger records it (an INSERT that `ON CONFLICT DO NOTHING` skipped fires
-- nothing). So storing a message is one statement, and a `seq` is never
-- given twice, even if messages were ever deleted.
CREATE TRIGGER messages_advance_last_seq AFTER INSERT ON messages
BEGIN
    UPDATE customers SET last_seq = NEW.seq WHERE id = NEW.customer_id;
END;
