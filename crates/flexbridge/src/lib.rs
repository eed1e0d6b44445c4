//! # flexbridge
//!
//! Connects a custom Socket.IO chat channel to Twilio Flex. (Skeleton; being built.)
