-- A "send" row lives while its message waits for Flex: the UPDATE that
-- records the message's fate (delivered or failed) also removes the row,
-- through this trigger, so recording an outcome is one statement and no
-- decided message keeps a row that could send it again.
CREATE INDEX outbox_by_message ON outbox (message_id) WHERE message_id IS NOT NULL;

CREATE TRIGGER messages_delivery_decided AFTER UPDATE OF delivery ON messages
WHEN OLD.delivery = 'pending' AND NEW.delivery <> 'pending'
BEGIN
    DELETE FROM outbox WHERE message_id = NEW.id AND kind = 'send';
END;
