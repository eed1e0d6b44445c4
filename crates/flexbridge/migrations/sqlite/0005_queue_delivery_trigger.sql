-- A customer message is stored with its delivery queued: the INSERT that
-- stores it also queues its "send" row, through this trigger, so no code
-- path can store one without the other, and storing a message stays one
-- statement. (The conversation's "open" row, when the message opens it, is
-- queued before the message, so it stays first.)
CREATE TRIGGER messages_queue_delivery AFTER INSERT ON messages
WHEN NEW.direction = 'customer'
BEGIN
    INSERT INTO outbox (conversation_id, kind, message_id, next_attempt_at, created_at)
    VALUES (NEW.conversation_id, 'send', NEW.id, NEW.created_at, NEW.created_at);
END;
