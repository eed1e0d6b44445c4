-- What a Flex backend recorded about a conversation when it opened it (for
-- the Conversations backend: its interaction and interaction channel), as
-- JSON text the backend alone reads. The conversation's own `backend`
-- column (since 0001) says which backend that is: a conversation stays
-- with the backend that opened it, so FLEX_BACKEND can change while
-- conversations are open.
ALTER TABLE conversations ADD COLUMN flex_ref TEXT;
