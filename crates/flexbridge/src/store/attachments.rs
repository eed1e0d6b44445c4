//! `attachments`: the files messages carry, with their bytes (a BLOB
//! column, so several bridges sharing one PostgreSQL database see the same
//! files; migration 0005 says what each column holds).
//!
//! A customer's upload is a group-commit write answered only once
//! committed ([`Attachments::store_upload`]); a message naming it then
//! carries it (`messages.attachment_id`, unique). The outbox records the
//! file's id at Flex once uploaded ([`Attachments::set_media`]) and reads
//! the bytes to upload ([`Attachments::content`]). An agent's file is
//! inserted with its message ([`insert_agent`]) and its bytes kept when
//! first fetched ([`Attachments::keep_fetched`]).

use super::{Conn, Store, StoreResult, corrupt, sql};
use crate::core::attachment::{Attachment, AttachmentId, RemoteMedia, safe_filename};
use crate::core::backend::BackendName;
use crate::core::ids::CustomerId;
use crate::core::model::Direction;
use crate::core::storage::{NewUpload, StoredFile};

/// The `attachments` table.
#[derive(Clone, Copy)]
pub struct Attachments<'a> {
    pub(super) store: &'a Store,
}

/// The carried file's columns in a message query (`attachments a`).
pub(super) const AS_MESSAGE_COLUMNS: &str =
    "a.filename AS att_filename, a.content_type AS att_content_type, a.size AS att_size";

/// [`AS_MESSAGE_COLUMNS`], read (absent in an insert's `RETURNING`).
#[derive(Debug, Default, sqlx::FromRow)]
pub(super) struct MessageFileRow {
    #[sqlx(default)]
    att_filename: Option<String>,
    #[sqlx(default)]
    att_content_type: Option<String>,
    #[sqlx(default)]
    att_size: Option<i64>,
}

impl MessageFileRow {
    /// The file `id`, if its columns were read.
    pub(super) fn attachment(&self, id: &str) -> StoreResult<Option<Attachment>> {
        let (Some(filename), Some(content_type), Some(size)) =
            (&self.att_filename, &self.att_content_type, self.att_size)
        else {
            return Ok(None);
        };
        Ok(Some(Attachment {
            id: AttachmentId::parse(id).map_err(|e| corrupt("messages.attachment_id", e))?,
            filename: filename.clone(),
            content_type: content_type.clone(),
            size,
        }))
    }
}

#[derive(sqlx::FromRow)]
struct FileRow {
    id: String,
    filename: String,
    content_type: String,
    size: i64,
    media_sid: Option<String>,
    content: Option<Vec<u8>>,
    carried: i64,
    backend: Option<String>,
}

impl Attachments<'_> {
    /// Stores a customer's checked upload with its bytes.
    pub async fn store_upload(self, upload: NewUpload) -> StoreResult<Attachment> {
        self.store
            .write(upload, |upload, conn| {
                Box::pin(async move {
                    let attachment = Attachment {
                        id: AttachmentId::generate(),
                        filename: upload.filename.clone(),
                        content_type: upload.content_type.clone(),
                        size: i64::try_from(upload.bytes.len()).unwrap_or(i64::MAX),
                    };
                    insert(
                        conn,
                        &upload.customer,
                        Direction::Customer,
                        &attachment,
                        None,
                        Some(upload.bytes.as_slice()),
                        upload.now,
                    )
                    .await?;
                    Ok(attachment)
                })
            })
            .await
    }

    /// `customer`'s file `id` (another customer's reads as none).
    pub async fn customer_file(
        self,
        customer: &CustomerId,
        id: &AttachmentId,
    ) -> StoreResult<Option<StoredFile>> {
        let row: Option<FileRow> = sql::query_as(
            "SELECT a.id, a.filename, a.content_type, a.size, a.media_sid, a.content,
                    CAST(CASE WHEN m.id IS NULL THEN 0 ELSE 1 END AS BIGINT) AS carried, c.backend
             FROM attachments a
             LEFT JOIN messages m ON m.attachment_id = a.id
             LEFT JOIN conversations c ON c.id = m.conversation_id
             WHERE a.id = $1 AND a.customer_id = $2",
        )
        .bind(id.as_str())
        .bind(customer.as_str())
        .fetch_optional(self.store.reader())
        .await?;
        row.map(|row| {
            Ok(StoredFile {
                attachment: Attachment {
                    id: AttachmentId::parse(&row.id).map_err(|e| corrupt("attachments.id", e))?,
                    filename: row.filename,
                    content_type: row.content_type,
                    size: row.size,
                },
                carried: row.carried != 0,
                content: row.content,
                media: row.media_sid,
                backend: row.backend.map(BackendName::new),
            })
        })
        .transpose()
    }

    /// The bytes of file `id`, if stored.
    pub async fn content(self, id: &AttachmentId) -> StoreResult<Option<Vec<u8>>> {
        let content: Option<Option<Vec<u8>>> =
            sql::query_scalar("SELECT content FROM attachments WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(self.store.reader())
                .await?;
        Ok(content.flatten())
    }

    /// Records file `id`'s id at Flex (the outbox uploaded it).
    pub async fn set_media(self, id: &AttachmentId, media: &str) -> StoreResult<()> {
        let args = (id.clone(), media.to_owned());
        self.store
            .write(args, |(id, media), conn| {
                Box::pin(async move {
                    sql::query("UPDATE attachments SET media_sid = $1 WHERE id = $2")
                        .bind(media.as_str())
                        .bind(id.as_str())
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    /// Keeps the fetched bytes of an agent's file (the first fetch wins).
    pub async fn keep_fetched(self, id: &AttachmentId, bytes: &[u8]) -> StoreResult<()> {
        let args = (id.clone(), bytes.to_vec());
        self.store
            .write(args, |(id, bytes), conn| {
                Box::pin(async move {
                    sql::query(
                        "UPDATE attachments SET content = $1 WHERE id = $2 AND content IS NULL",
                    )
                    .bind(bytes.as_slice())
                    .bind(id.as_str())
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            })
            .await
    }
}

/// Whether a message carries file `id` already.
pub(super) async fn is_carried(conn: &mut Conn<'_>, id: &AttachmentId) -> StoreResult<bool> {
    let found: Option<i64> = sql::query_scalar("SELECT id FROM messages WHERE attachment_id = $1")
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// Inserts an agent's file (its bytes come later), inside the caller's
/// transaction.
pub(super) async fn insert_agent(
    conn: &mut Conn<'_>,
    customer: &CustomerId,
    media: &RemoteMedia,
    now: i64,
) -> StoreResult<Attachment> {
    let attachment = Attachment {
        id: AttachmentId::generate(),
        filename: safe_filename(media.filename.as_deref().unwrap_or_default(), "attachment"),
        content_type: media.content_type.clone(),
        size: media.size,
    };
    insert(
        conn,
        customer,
        Direction::Agent,
        &attachment,
        Some(&media.sid),
        None,
        now,
    )
    .await?;
    Ok(attachment)
}

async fn insert(
    conn: &mut Conn<'_>,
    customer: &CustomerId,
    direction: Direction,
    attachment: &Attachment,
    media: Option<&str>,
    content: Option<&[u8]>,
    now: i64,
) -> StoreResult<()> {
    sql::query(
        "INSERT INTO attachments (id, customer_id, direction, filename, content_type, size,
                                  media_sid, content, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(attachment.id.as_str())
    .bind(customer.as_str())
    .bind(direction.as_str())
    .bind(attachment.filename.as_str())
    .bind(attachment.content_type.as_str())
    .bind(attachment.size)
    .bind(media)
    .bind(content)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
