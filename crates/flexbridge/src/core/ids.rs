//! Identifiers and validated values, built only by `parse` (or, for ids the
//! bridge issues, by `generate`). Once a value has one of these types it is
//! known to be well formed; nothing downstream re-checks it.
//!
//! Three families live here:
//! - the bridge's own ids (`CustomerId`, `ConversationId`) and the
//!   per-customer message counter (`Seq`);
//! - customer input (`ClientMessageId`, `CustomerName`, `MessageBody`,
//!   `ResumeToken`);
//! - remote ids (`RemoteChannel`, `RemoteMessage`): what Flex calls a
//!   conversation's channel and a message. They are opaque here, as a chat
//!   bridge's core keeps a network's ids (mautrix bridgev2's `networkid`):
//!   only the backend that made one parses it (Twilio SIDs live in
//!   `crate::flex::sid`).

use std::fmt;

use base64::Engine as _;
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// Why a piece of input was refused. The message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} must start with `{prefix}` followed by {hex_len} hex digits")]
    Malformed {
        what: &'static str,
        prefix: &'static str,
        hex_len: usize,
    },
    #[error("a client message id must be 1–64 characters of A–Z, a–z, 0–9, `_` or `-`")]
    ClientMessageId,
    #[error("a name must be 1–{max} characters after trimming")]
    Name { max: usize },
    #[error("the message is empty")]
    EmptyBody,
    #[error("the message is longer than {max} characters")]
    BodyTooLong { max: usize },
    #[error("the resume token is malformed")]
    Token,
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex(&buf)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Whether `s` is `prefix` followed by exactly `hex_len` hex digits.
pub(crate) fn is_prefixed_hex(s: &str, prefix: &str, hex_len: usize) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|rest| rest.len() == hex_len && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Declares an id type: a fixed prefix + 32 hex digits, built by `parse`
/// (also used by `crate::flex::sid` for Twilio's SIDs).
macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn parse(s: &str) -> Result<Self, $crate::core::ids::IdError> {
                if $crate::core::ids::is_prefixed_hex(s, $prefix, 32) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err($crate::core::ids::IdError::Malformed {
                        what: $what,
                        prefix: $prefix,
                        hex_len: 32,
                    })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use prefixed_id;

/// Declares an id the bridge issues: [`prefixed_id!`] plus `generate`
/// (16 random bytes, lower-case hex).
macro_rules! bridge_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        prefixed_id!($(#[$doc])* $name, $prefix, $what);

        impl $name {
            /// A fresh random id.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, random_hex(16)))
            }
        }
    };
}

bridge_id!(
    /// A customer: a browser, app or bot the bridge issued an identity to.
    CustomerId,
    "cus_",
    "a customer id"
);
bridge_id!(
    /// One customer conversation, i.e. one Flex channel and task.
    ConversationId,
    "conv_",
    "a conversation id"
);

/// Declares an opaque remote id: whatever text a backend produced. Only
/// that backend gives it meaning (and parses it back).
macro_rules! remote_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

remote_id!(
    /// A conversation's channel on the Flex side (for Twilio, a Chat
    /// channel or a Conversation, both `CH…`).
    RemoteChannel
);
remote_id!(
    /// A message on the Flex side (for Twilio, `IM…`).
    RemoteMessage
);

/// The id a client gives each message so a retried emit is stored once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientMessageId(String);

impl ClientMessageId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = (1..=Self::MAX_LEN).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::ClientMessageId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A customer's display name: 1–100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerName(String);

impl CustomerName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let trimmed = s.trim();
        let chars = trimmed.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS || trimmed.chars().any(char::is_control) {
            return Err(IdError::Name {
                max: Self::MAX_CHARS,
            });
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message body: 1–1600 characters after trimming (Twilio's Chat limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    pub const MAX_CHARS: usize = 1600;

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(IdError::EmptyBody);
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(IdError::BodyTooLong {
                max: Self::MAX_CHARS,
            });
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The secret a client presents to resume as a customer: 32 random bytes,
/// base64url without padding. Shown to the client once; the store keeps
/// only its SHA-256 ([`TokenHash`]). `Debug` never shows it.
#[derive(Clone)]
pub struct ResumeToken(SecretString);

impl fmt::Debug for ResumeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResumeToken(<redacted>)")
    }
}

impl ResumeToken {
    const BYTES: usize = 32;
    /// 32 bytes in unpadded base64 are 43 characters.
    const ENCODED_LEN: usize = 43;

    pub fn generate() -> Self {
        let mut buf = [0u8; Self::BYTES];
        rand::rng().fill_bytes(&mut buf);
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf);
        Self(SecretString::from(encoded))
    }

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let well_formed = s.len() == Self::ENCODED_LEN
            && base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .is_ok_and(|bytes| bytes.len() == Self::BYTES);
        if well_formed {
            Ok(Self(SecretString::from(s.to_owned())))
        } else {
            Err(IdError::Token)
        }
    }

    /// The token itself, for the one place it is handed to the client.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.expose_secret().as_bytes()).into())
    }
}

/// SHA-256 of a resume token: what the store keeps.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

impl TokenHash {
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Constant-time equality.
    pub fn matches(&self, other: &TokenHash) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}

/// A customer's message counter: strictly increasing over all of one
/// customer's messages, both directions. Clients resume from the last one
/// they saw (`lastSeq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Seq(pub i64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_customer_ids_parse_back_and_differ() {
        let a = CustomerId::generate();
        let b = CustomerId::generate();
        assert_ne!(a, b);
        assert_eq!(CustomerId::parse(a.as_str()), Ok(a.clone()));
        assert!(a.as_str().starts_with("cus_"));
        assert_eq!(a.as_str().len(), 4 + 32);
    }

    #[test]
    fn customer_id_parse_rejects_wrong_prefix_length_and_digits() {
        assert!(CustomerId::parse("conv_00000000000000000000000000000000").is_err());
        assert!(CustomerId::parse("cus_0000").is_err());
        assert!(CustomerId::parse("cus_zz000000000000000000000000000000").is_err());
        assert!(CustomerId::parse("").is_err());
    }

    #[test]
    fn client_message_ids_allow_only_the_documented_alphabet() {
        assert!(ClientMessageId::parse("a1_B-2").is_ok());
        assert!(ClientMessageId::parse(&"x".repeat(64)).is_ok());
        assert!(ClientMessageId::parse(&"x".repeat(65)).is_err());
        assert!(ClientMessageId::parse("").is_err());
        assert!(ClientMessageId::parse("has space").is_err());
        assert!(ClientMessageId::parse("é").is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(CustomerName::parse("  Ada ").unwrap().as_str(), "Ada");
        assert!(CustomerName::parse("   ").is_err());
        assert!(CustomerName::parse(&"é".repeat(100)).is_ok());
        assert!(CustomerName::parse(&"é".repeat(101)).is_err());
        assert!(CustomerName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn bodies_are_trimmed_and_limited_to_1600_characters() {
        assert_eq!(MessageBody::parse(" hi ").unwrap().as_str(), "hi");
        assert_eq!(MessageBody::parse(" \n "), Err(IdError::EmptyBody));
        assert!(MessageBody::parse(&"😀".repeat(1600)).is_ok());
        assert_eq!(
            MessageBody::parse(&"a".repeat(1601)),
            Err(IdError::BodyTooLong { max: 1600 })
        );
    }

    #[test]
    fn resume_tokens_round_trip_and_hash_matches_in_constant_time() {
        let token = ResumeToken::generate();
        assert_eq!(token.expose().len(), 43);
        let again = ResumeToken::parse(token.expose()).unwrap();
        assert!(token.hash().matches(&again.hash()));
        assert!(!token.hash().matches(&ResumeToken::generate().hash()));
        assert!(ResumeToken::parse("short").is_err());
        assert!(ResumeToken::parse(&"!".repeat(43)).is_err());
    }

    #[test]
    fn resume_tokens_never_appear_in_debug_output() {
        let token = ResumeToken::generate();
        let printed = format!("{token:?} {:?}", token.hash());
        assert!(!printed.contains(token.expose()));
    }

    proptest::proptest! {
        /// Parsing never panics, and what parses satisfies the rule.
        #[test]
        fn parsing_any_text_is_safe_and_what_parses_is_valid(text in ".{0,80}") {
            if let Ok(id) = ClientMessageId::parse(&text) {
                proptest::prop_assert!((1..=64).contains(&id.as_str().len()));
            }
            if let Ok(body) = MessageBody::parse(&text) {
                proptest::prop_assert!(!body.as_str().trim().is_empty());
            }
            if let Ok(name) = CustomerName::parse(&text) {
                proptest::prop_assert_eq!(name.as_str(), text.trim());
            }
            let _ = ResumeToken::parse(&text);
            let _ = CustomerId::parse(&text);
        }
    }
}
