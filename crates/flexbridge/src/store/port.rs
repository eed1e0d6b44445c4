//! The core's storage port, implemented by the store's tables: each
//! method is one statement or one transaction of one table's handle.

use super::Store;
use crate::core::attachment::{Attachment, AttachmentId};
use crate::core::backend::Opened;
use crate::core::conversation::CloseReason;
use crate::core::ids::{ClientMessageId, ConversationId, CustomerId, CustomerName, Seq, TokenHash};
use crate::core::model::{ConversationRecord, CustomerRecord, MessageRecord};
use crate::core::pre_engagement::PreEngagement;
use crate::core::storage::{
    Accepted, AgentMessage, EventKey, Inbound, IncomingCustomerMessage, NewUpload, SendOutcome,
    Storage, StorageResult, StoredAgentMessage, StoredFile,
};
use crate::core::work::{Abandoned, Begin, FailedMessage, NextJob, OutboxJob, OutgoingMessage};

#[async_trait::async_trait]
impl Storage for Store {
    async fn create_customer(
        &self,
        id: &CustomerId,
        name: &CustomerName,
        token_hash: &TokenHash,
        pre_engagement: &PreEngagement,
        now: i64,
    ) -> StorageResult<CustomerRecord> {
        Ok(self
            .customers()
            .create(id, name, token_hash, pre_engagement, now)
            .await?)
    }

    async fn customer_by_token(&self, hash: &TokenHash) -> StorageResult<Option<CustomerRecord>> {
        Ok(self.customers().by_token(hash).await?)
    }

    async fn customer(&self, id: &CustomerId) -> StorageResult<Option<CustomerRecord>> {
        Ok(self.customers().get(id).await?)
    }

    async fn store_upload(&self, upload: NewUpload) -> StorageResult<Attachment> {
        Ok(self.attachments().store_upload(upload).await?)
    }

    async fn customer_file(
        &self,
        customer: &CustomerId,
        id: &AttachmentId,
    ) -> StorageResult<Option<StoredFile>> {
        Ok(self.attachments().customer_file(customer, id).await?)
    }

    async fn keep_fetched(&self, id: &AttachmentId, bytes: &[u8]) -> StorageResult<()> {
        Ok(self.attachments().keep_fetched(id, bytes).await?)
    }

    async fn conversation(&self, id: &ConversationId) -> StorageResult<Option<ConversationRecord>> {
        Ok(self.conversations().get(id).await?)
    }

    async fn conversation_messages(
        &self,
        conversation: &ConversationId,
        limit: u32,
    ) -> StorageResult<Vec<MessageRecord>> {
        Ok(self.messages().of_conversation(conversation, limit).await?)
    }

    async fn latest_conversation(
        &self,
        customer: &CustomerId,
    ) -> StorageResult<Option<ConversationRecord>> {
        Ok(self.conversations().latest_of(customer).await?)
    }

    async fn messages_since(
        &self,
        customer: &CustomerId,
        since: Seq,
        limit: u32,
    ) -> StorageResult<Vec<MessageRecord>> {
        Ok(self.messages().since(customer, since, limit).await?)
    }

    async fn customer_message(
        &self,
        customer: &CustomerId,
        client_msg_id: &ClientMessageId,
    ) -> StorageResult<Option<MessageRecord>> {
        Ok(self
            .messages()
            .by_client_id(customer, client_msg_id)
            .await?)
    }

    async fn accept_customer_message(&self, m: IncomingCustomerMessage) -> StorageResult<Accepted> {
        Ok(self.messages().accept(m).await?)
    }

    async fn close_by_customer(
        &self,
        customer: &CustomerId,
        now: i64,
    ) -> StorageResult<Option<ConversationRecord>> {
        Ok(self.conversations().end_by_customer(customer, now).await?)
    }

    async fn record_agent_message(
        &self,
        key: EventKey,
        message: AgentMessage,
    ) -> StorageResult<Inbound<StoredAgentMessage>> {
        Ok(self.messages().record_agent(key, message).await?)
    }

    async fn record_agent_joined(
        &self,
        key: EventKey,
        agent_name: &str,
    ) -> StorageResult<Inbound<ConversationRecord>> {
        Ok(self.conversations().agent_joined(key, agent_name).await?)
    }

    async fn close_by_channel(
        &self,
        key: EventKey,
        reason: CloseReason,
    ) -> StorageResult<Inbound<ConversationRecord>> {
        Ok(self.conversations().end_by_channel(key, reason).await?)
    }

    async fn finish_open(
        &self,
        job: &OutboxJob,
        opened: &Opened,
        now: i64,
        begin: Begin,
    ) -> StorageResult<(Option<ConversationRecord>, NextJob)> {
        Ok(self.outbox().finish_open(job, opened, now, begin).await?)
    }

    async fn settle_send(
        &self,
        job: &OutboxJob,
        message: &OutgoingMessage,
        outcome: &SendOutcome,
        now: i64,
        begin: Begin,
    ) -> StorageResult<NextJob> {
        Ok(self
            .outbox()
            .settle_send(job, message, outcome, now, begin)
            .await?)
    }

    async fn finish_job(&self, job: &OutboxJob, begin: Begin) -> StorageResult<NextJob> {
        Ok(self.outbox().finish(job, begin).await?)
    }

    async fn queued_messages(
        &self,
        conversation: &ConversationId,
    ) -> StorageResult<Vec<FailedMessage>> {
        Ok(self.messages().queued(conversation).await?)
    }

    async fn resynced(
        &self,
        conversation: &ConversationId,
        through_index: Option<i64>,
        now: i64,
    ) -> StorageResult<()> {
        Ok(self
            .outbox()
            .resynced(conversation, through_index, now)
            .await?)
    }

    async fn abandon(
        &self,
        conversation: &ConversationId,
        reason: CloseReason,
        error: &str,
        now: i64,
    ) -> StorageResult<Abandoned> {
        Ok(self
            .outbox()
            .abandon(conversation, reason, error, now)
            .await?)
    }
}
