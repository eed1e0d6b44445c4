//! Files through Twilio's Media Content Service (docs/twilio-reference.md
//! §10), alike for both backends: both post to the Flex Chat Service's
//! media collection.
//!
//! - upload: `POST /v1/Services/{ChatServiceSid}/Media`, the file as the
//!   body, its type as `Content-Type`; the answer's `sid` (ME…) goes into
//!   the message's `MediaSid`.
//! - fetch: `GET /v1/Services/{ChatServiceSid}/Media/{Sid}`, then its
//!   `links.content_direct_temporary` (a URL that works for a limited time,
//!   fetched without credentials). The bridge serves the bytes itself, so
//!   no Twilio URL ever reaches a customer.

use super::client::{Product, TwilioClient};
use super::sid::{ChatServiceSid, MediaSid};
use super::{FlexError, parse_sid};
use crate::core::backend::MediaUpload;

/// A Media resource as MCS answers it (the fields the bridge reads).
#[derive(Debug, serde::Deserialize)]
struct MediaResource {
    sid: String,
    links: Option<MediaLinks>,
}

#[derive(Debug, serde::Deserialize)]
struct MediaLinks {
    content_direct_temporary: Option<String>,
}

fn collection(service: &ChatServiceSid) -> String {
    format!("/v1/Services/{service}/Media")
}

/// Uploads `upload`; answers its SID.
pub async fn upload(
    client: &TwilioClient,
    service: &ChatServiceSid,
    upload: &MediaUpload<'_>,
) -> Result<MediaSid, FlexError> {
    let created: MediaResource = client
        .post_bytes(
            Product::Media,
            &collection(service),
            upload.content_type,
            upload.filename,
            upload.bytes.to_vec(),
        )
        .await?;
    parse_sid(&created.sid, MediaSid::parse)
}

/// The bytes of media `sid`.
pub async fn fetch(
    client: &TwilioClient,
    service: &ChatServiceSid,
    sid: &str,
) -> Result<Vec<u8>, FlexError> {
    let sid = parse_sid(sid, MediaSid::parse)?;
    let path = format!("{}/{sid}", collection(service));
    let media: MediaResource = client.get(Product::Media, &path, &[]).await?;
    let url = media
        .links
        .and_then(|links| links.content_direct_temporary)
        .ok_or_else(|| FlexError::BadResponse(format!("media {sid} has no temporary URL")))?;
    client.get_temporary(&url).await
}
