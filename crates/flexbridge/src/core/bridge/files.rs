//! Files, customer side: an upload checked and stored before it is
//! answered ([`Bridge::upload`]), a message carrying it
//! ([`Bridge::send_attachment`], then delivered by the outbox like any
//! message), and a file served to its customer only ([`Bridge::file`]),
//! an agent's fetched from Flex on its first download and kept.

use std::time::Duration;

use super::{Bridge, BridgeError, SentMessage};
use crate::core::attachment::{
    Attachment, AttachmentId, AttachmentPolicy, UploadRefused, safe_filename,
};
use crate::core::backend::BackendError;
use crate::core::ids::{ClientMessageId, CustomerId, MessageBody};
use crate::core::model::CustomerRecord;
use crate::core::storage::NewUpload;

/// Why an upload was not stored.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Refused(#[from] UploadRefused),
    #[error(transparent)]
    Bridge(#[from] BridgeError),
}

/// Why a file could not be served.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    /// Flex did not hand over an agent's file (try again later).
    #[error("fetching the file from Flex")]
    Flex(#[source] BackendError),
    #[error("fetching the file from Flex took too long")]
    FlexTimeout,
}

/// How long fetching an agent's file from Flex may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

impl Bridge {
    /// Which files customers may upload.
    pub fn attachment_policy(&self) -> &AttachmentPolicy {
        &self.inner.attachments
    }

    /// Checks an upload (type allowed, size, bytes of the declared type)
    /// and stores it with its bytes; answered once committed.
    pub async fn upload(
        &self,
        customer: &CustomerRecord,
        declared_type: &str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Result<Attachment, UploadError> {
        let content_type = AttachmentPolicy::normalise(declared_type);
        self.inner.attachments.check(&content_type, &bytes)?;
        let upload = NewUpload {
            customer: customer.id.clone(),
            filename: safe_filename(filename, "file"),
            content_type,
            bytes,
            now: self.now(),
        };
        let stored = self
            .inner
            .storage
            .store_upload(upload)
            .await
            .map_err(BridgeError::from)?;
        tracing::info!(customer = %customer.id, attachment = %stored.id, size = stored.size, "file uploaded");
        Ok(stored)
    }

    /// Accepts a message carrying the customer's uploaded file `id` (its
    /// body is the file's name); as [`Bridge::send_message`] otherwise. A
    /// retried client message id finds the original even though the file
    /// is carried by then.
    pub async fn send_attachment(
        &self,
        customer: &CustomerRecord,
        client_msg_id: &ClientMessageId,
        id: &AttachmentId,
    ) -> Result<SentMessage, BridgeError> {
        let storage = &self.inner.storage;
        let file = storage
            .customer_file(&customer.id, id)
            .await?
            .ok_or(BridgeError::UnknownAttachment)?;
        let body = MessageBody::parse(&file.attachment.filename)
            .map_err(|_| BridgeError::UnknownAttachment)?;
        // A file carried already (by another message, or an agent's) is
        // refused by the store, unless this is a retry of the message
        // carrying it (then the original comes back).
        self.accept(customer, client_msg_id, &body, Some(file.attachment))
            .await
    }

    /// `customer`'s file `id` and its bytes; `None` when they have no such
    /// file (another customer's included). An agent's file is fetched
    /// from Flex the first time and kept.
    pub async fn file(
        &self,
        customer: &CustomerId,
        id: &AttachmentId,
    ) -> Result<Option<(Attachment, Vec<u8>)>, FileError> {
        let storage = &self.inner.storage;
        let Some(file) = storage
            .customer_file(customer, id)
            .await
            .map_err(BridgeError::from)?
        else {
            return Ok(None);
        };
        if let Some(bytes) = file.content {
            return Ok(Some((file.attachment, bytes)));
        }
        let (Some(media), Some(backend)) = (&file.media, &file.backend) else {
            return Ok(None);
        };
        let Some(backend) = self.inner.backends.get(backend) else {
            return Err(FileError::Flex(BackendError::not_configured(format!(
                "no {backend} backend"
            ))));
        };
        let bytes = tokio::time::timeout(FETCH_TIMEOUT, backend.fetch_media(media))
            .await
            .map_err(|_| FileError::FlexTimeout)?
            .map_err(FileError::Flex)?;
        storage
            .keep_fetched(id, &bytes)
            .await
            .map_err(BridgeError::from)?;
        Ok(Some((file.attachment, bytes)))
    }
}
