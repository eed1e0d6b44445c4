//! Attachments: a file carried by one message, either way. What the core
//! knows of a file ([`Attachment`]), what Flex says of an agent's
//! ([`RemoteMedia`]), and the checks an upload passes ([`AttachmentPolicy`]):
//! an allowed type, a size within the limit, and bytes whose sniffed type
//! is the declared one (a PNG declared `text/html` is refused, and so is
//! HTML declared `text/plain`).
//!
//! Only types the bridge can recognise from their bytes may be allowed
//! (`SNIFFABLE`), so the check is never skipped. Which types are shown
//! inline by the download route is [`Attachment::inline_safe`]: raster
//! images, PDF and plain text; anything else (SVG, HTML) is served as a
//! download of `application/octet-stream`.

use super::ids::{IdError, random_hex};

/// A file's id as customers see it: `att_` + 32 hex digits, random, so it
/// tells nothing; the download route also checks whose file it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttachmentId(String);

impl AttachmentId {
    pub const PREFIX: &'static str = "att_";

    pub fn generate() -> Self {
        Self(format!("{}{}", Self::PREFIX, random_hex(16)))
    }

    pub fn parse(s: &str) -> Result<Self, IdError> {
        if super::ids::is_prefixed_hex(s, Self::PREFIX, 32) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::Malformed {
                what: "an attachment id",
                prefix: Self::PREFIX,
                hex_len: 32,
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AttachmentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is known of a stored file (its bytes are the store's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: AttachmentId,
    /// A file name safe to show and to put in `Content-Disposition`.
    pub filename: String,
    /// The MIME type, lower case, without parameters.
    pub content_type: String,
    pub size: i64,
}

impl Attachment {
    /// Whether a browser may render it (images, PDF, plain text); SVG
    /// and HTML never are.
    pub fn inline_safe(&self) -> bool {
        INLINE_SAFE.contains(&self.content_type.as_str())
    }
}

/// An agent's file as Flex announced it (a Twilio Media, `ME…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    /// The backend's id of the media (opaque to the core).
    pub sid: String,
    pub filename: Option<String>,
    pub content_type: String,
    pub size: i64,
}

/// The types whose bytes the bridge recognises, so only these may be allowed.
pub const SNIFFABLE: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
];

/// Served with their own type (the rest as `application/octet-stream`).
const INLINE_SAFE: &[&str] = SNIFFABLE;

/// Which uploads are accepted (`ATTACHMENT_TYPES`, `ATTACHMENT_MAX_BYTES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentPolicy {
    /// Allowed MIME types, lower case; each one of [`SNIFFABLE`].
    pub types: Vec<String>,
    /// The largest file, in bytes.
    pub max_bytes: usize,
}

impl Default for AttachmentPolicy {
    fn default() -> Self {
        Self {
            types: SNIFFABLE.iter().map(|t| (*t).to_owned()).collect(),
            max_bytes: 10 * 1024 * 1024,
        }
    }
}

/// Why an upload was refused (the customer is told; nothing is stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadRefused {
    #[error("files of type {0} are not accepted (accepted: {1})")]
    TypeNotAllowed(String, String),
    #[error("the file is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("the file is empty")]
    Empty,
    #[error("the file's content is not {declared} (it looks like {sniffed})")]
    ContentMismatch { declared: String, sniffed: String },
}

impl UploadRefused {
    /// The protocol's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TypeNotAllowed(..) => "type_not_allowed",
            Self::TooLarge { .. } => "too_large",
            Self::Empty => "empty",
            Self::ContentMismatch { .. } => "content_mismatch",
        }
    }
}

impl AttachmentPolicy {
    /// Checks a list of types for the setting: each must be sniffable.
    pub fn parse_types(raw: &str) -> Result<Vec<String>, String> {
        let types: Vec<String> = raw
            .split(',')
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        if types.is_empty() {
            return Err("name at least one type".into());
        }
        if let Some(unknown) = types.iter().find(|t| !SNIFFABLE.contains(&t.as_str())) {
            return Err(format!(
                "{unknown:?} cannot be checked against the file's bytes (possible: {})",
                SNIFFABLE.join(", ")
            ));
        }
        Ok(types)
    }

    /// The declared type, normalised (lower case, no parameters).
    pub fn normalise(declared: &str) -> String {
        declared
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }

    /// Whether `declared` is allowed (before reading the body).
    pub fn check_type(&self, declared: &str) -> Result<(), UploadRefused> {
        if self.types.iter().any(|t| t == declared) {
            Ok(())
        } else {
            Err(UploadRefused::TypeNotAllowed(
                declared.to_owned(),
                self.types.join(", "),
            ))
        }
    }

    /// Every check of an upload of `bytes` declared `declared` (normalised).
    pub fn check(&self, declared: &str, bytes: &[u8]) -> Result<(), UploadRefused> {
        self.check_type(declared)?;
        if bytes.len() > self.max_bytes {
            return Err(UploadRefused::TooLarge {
                max: self.max_bytes,
            });
        }
        if bytes.is_empty() {
            return Err(UploadRefused::Empty);
        }
        let sniffed = sniff(bytes);
        if sniffed != declared {
            return Err(UploadRefused::ContentMismatch {
                declared: declared.to_owned(),
                sniffed: sniffed.to_owned(),
            });
        }
        Ok(())
    }
}

/// The type `bytes` are, by their first bytes: one of [`SNIFFABLE`], else
/// `text/html` (markup a browser would run), else
/// `application/octet-stream`.
pub fn sniff(bytes: &[u8]) -> &'static str {
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"%PDF-", "application/pdf"),
    ];
    if let Some((_, kind)) = SIGNATURES
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
    {
        return kind;
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return "image/webp";
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return "application/octet-stream";
    };
    if text.contains('\0') {
        return "application/octet-stream";
    }
    if looks_like_markup(text) {
        return "text/html";
    }
    "text/plain"
}

/// Whether text starts (after blanks) like HTML, SVG or XML, which a
/// browser sniffing the bytes would render.
fn looks_like_markup(text: &str) -> bool {
    const TAGS: &[&str] = &[
        "<!doctype",
        "<html",
        "<head",
        "<body",
        "<script",
        "<iframe",
        "<svg",
        "<?xml",
        "<a ",
        "<div",
        "<img",
        "<style",
        "<title",
        "<table",
        "<p>",
        "<!--",
    ];
    let start: String = text
        .trim_start()
        .chars()
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    TAGS.iter().any(|tag| start.starts_with(tag))
}

/// A file name safe to store and show: the last path segment, control
/// characters, quotes and separators replaced, at most 120 characters;
/// `fallback` when nothing is left.
pub fn safe_filename(raw: &str, fallback: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '"' | ';' | '<' | '>' | '`') {
                '_'
            } else {
                c
            }
        })
        .take(120)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        fallback.to_owned()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn each_allowed_type_is_recognised_from_its_bytes() {
        assert_eq!(sniff(PNG), "image/png");
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF"), "image/jpeg");
        assert_eq!(sniff(b"GIF89a\x01\0"), "image/gif");
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), "image/webp");
        assert_eq!(sniff(b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(sniff("hello, wörld\n".as_bytes()), "text/plain");
        assert_eq!(sniff(b"  <!DOCTYPE html><p>"), "text/html");
        assert_eq!(sniff(b"<svg xmlns="), "text/html");
        assert_eq!(sniff(b"\0\x01\x02"), "application/octet-stream");
    }

    #[test]
    fn a_png_declared_as_html_or_text_is_refused_and_html_declared_as_text_too() {
        let mut policy = AttachmentPolicy::default();
        policy.types.push("text/html".into()); // even if it were allowed
        assert_eq!(
            policy.check("text/html", PNG),
            Err(UploadRefused::ContentMismatch {
                declared: "text/html".into(),
                sniffed: "image/png".into()
            })
        );
        let policy = AttachmentPolicy::default();
        assert_eq!(
            policy.check("text/plain", PNG).map_err(|e| e.code()),
            Err("content_mismatch")
        );
        assert_eq!(
            policy
                .check("text/plain", b"<html><script>x</script>")
                .map_err(|e| e.code()),
            Err("content_mismatch")
        );
        assert_eq!(policy.check("image/png", PNG), Ok(()));
    }

    #[test]
    fn types_sizes_and_empty_files_are_checked() {
        let policy = AttachmentPolicy {
            types: vec!["image/png".into()],
            max_bytes: 20,
        };
        assert_eq!(
            policy
                .check("application/pdf", b"%PDF-1.7")
                .map_err(|e| e.code()),
            Err("type_not_allowed")
        );
        assert_eq!(
            policy
                .check("image/png", &[PNG, &[0; 10]].concat())
                .map_err(|e| e.code()),
            Err("too_large")
        );
        assert_eq!(
            policy.check("image/png", b"").map_err(|e| e.code()),
            Err("empty")
        );
    }

    #[test]
    fn only_sniffable_types_may_be_configured() {
        assert_eq!(
            AttachmentPolicy::parse_types(" image/PNG, application/pdf ").unwrap(),
            ["image/png", "application/pdf"]
        );
        assert!(AttachmentPolicy::parse_types("image/svg+xml").is_err());
        assert!(AttachmentPolicy::parse_types(" , ").is_err());
        assert_eq!(
            AttachmentPolicy::normalise("Text/Plain; charset=utf-8"),
            "text/plain"
        );
    }

    #[test]
    fn file_names_lose_paths_quotes_and_control_characters() {
        assert_eq!(safe_filename("C:\\Users\\me\\shot.png", "file"), "shot.png");
        assert_eq!(safe_filename("../../etc/passwd", "file"), "passwd");
        assert_eq!(safe_filename("a\"b;\r\nc.txt", "file"), "a_b___c.txt");
        assert_eq!(safe_filename("...", "file"), "file");
        assert_eq!(safe_filename("", "file"), "file");
    }

    #[test]
    fn ids_are_random_and_parse_back() {
        let id = AttachmentId::generate();
        assert_eq!(AttachmentId::parse(id.as_str()), Ok(id.clone()));
        assert_ne!(id, AttachmentId::generate());
        assert!(AttachmentId::parse("att_zz").is_err());
    }
}
