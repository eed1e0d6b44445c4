//! Twilio SIDs: a two-letter prefix naming the resource type plus 32
//! lowercase hex digits, drawn from a deterministic generator so that the
//! same `--seed` always produces the same SIDs in the same order.
//!
//! The generator is SplitMix64 (Steele, Lea & Flood, 2014): tiny, fast, and
//! good enough to make SIDs look random while staying reproducible. It is not
//! a cryptographic generator, which is fine: this is a local test double and
//! its "secrets" are printed on start anyway.

use std::fmt;

/// The resource-type prefixes the emulator hands out (`docs/twilio-reference.md` §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Account,
    ApiKey,
    ChatService,
    Channel,
    FlexFlow,
    StudioFlow,
    Execution,
    Workspace,
    Workflow,
    Task,
    Reservation,
    Worker,
    TaskQueue,
    Activity,
    TaskChannel,
    Member,
    User,
    Message,
    Webhook,
    Role,
    StudioContact,
    Interaction,
    InteractionChannel,
    InteractionParticipant,
    InteractionContext,
    MessagingService,
    Media,
}

impl Prefix {
    pub fn as_str(self) -> &'static str {
        match self {
            Prefix::Account => "AC",
            Prefix::ApiKey => "SK",
            Prefix::ChatService => "IS",
            Prefix::Channel => "CH",
            Prefix::FlexFlow => "FO",
            Prefix::StudioFlow => "FW",
            Prefix::Execution => "FN",
            Prefix::Workspace => "WS",
            Prefix::Workflow => "WW",
            Prefix::Task => "WT",
            Prefix::Reservation => "WR",
            Prefix::Worker => "WK",
            Prefix::TaskQueue => "WQ",
            Prefix::Activity => "WA",
            Prefix::TaskChannel => "TC",
            Prefix::Member => "MB",
            Prefix::User => "US",
            Prefix::Message => "IM",
            Prefix::Webhook => "WH",
            Prefix::Role => "RL",
            Prefix::StudioContact => "FC",
            Prefix::Interaction => "KD",
            Prefix::InteractionChannel => "UO",
            Prefix::InteractionParticipant => "UT",
            Prefix::InteractionContext => "HQ",
            Prefix::MessagingService => "MG",
            Prefix::Media => "ME",
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True when `value` has the shape of a SID with this prefix
/// (`^XX[0-9a-fA-F]{32}$`), the pattern every spec declares.
pub fn has_shape(value: &str, prefix: Prefix) -> bool {
    value.len() == 34
        && value.starts_with(prefix.as_str())
        && value[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A deterministic source of SIDs and secrets (SplitMix64).
#[derive(Debug, Clone)]
pub struct SidGenerator {
    state: u64,
}

impl SidGenerator {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 32 lowercase hex digits (128 bits).
    pub fn hex32(&mut self) -> String {
        format!("{:016x}{:016x}", self.next_u64(), self.next_u64())
    }

    /// A fresh SID with the given prefix.
    pub fn sid(&mut self, prefix: Prefix) -> String {
        format!("{prefix}{}", self.hex32())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_sids_in_the_same_order() {
        let mut a = SidGenerator::new(7);
        let mut b = SidGenerator::new(7);
        for _ in 0..10 {
            assert_eq!(a.sid(Prefix::Channel), b.sid(Prefix::Channel));
        }
    }

    #[test]
    fn different_seeds_give_different_sids() {
        assert_ne!(
            SidGenerator::new(1).sid(Prefix::Task),
            SidGenerator::new(2).sid(Prefix::Task)
        );
    }

    #[test]
    fn sids_have_the_spec_shape() {
        let mut generator = SidGenerator::new(0);
        let sid = generator.sid(Prefix::Reservation);
        assert!(has_shape(&sid, Prefix::Reservation), "{sid}");
        assert!(sid[2..].bytes().all(|b| !b.is_ascii_uppercase()));
        assert!(!has_shape(&sid, Prefix::Task));
        assert!(!has_shape("WRxyz", Prefix::Reservation));
    }
}
