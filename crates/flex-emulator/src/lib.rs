//! # flex-emulator
//!
//! A local Twilio Flex: see `docs/architecture.md` §3. (Skeleton; being built.)
