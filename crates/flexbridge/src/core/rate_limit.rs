//! A per-customer token bucket: `burst` messages at once, refilled at
//! `per_second`. In memory: it protects this process's Flex quota and the
//! agent's screen from one runaway client; it is not a security boundary
//! across restarts.

use std::collections::HashMap;
use std::sync::Mutex;

use super::ids::CustomerId;
use super::lock;

/// Limits of the bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub burst: f64,
    pub per_second: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            burst: 20.0,
            per_second: 5.0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    /// When `tokens` was last refilled (ms).
    updated: i64,
}

/// Buckets of every customer seen recently.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<CustomerId, Bucket>>,
}

/// Above this many buckets, full ones are dropped (they equal a new one).
const PRUNE_ABOVE: usize = 10_000;

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `customer` at `now` (ms); `false` when empty.
    pub fn try_acquire(&self, customer: &CustomerId, now: i64) -> bool {
        let limit = self.limit;
        let refill = |bucket: &Bucket| {
            let elapsed = (now - bucket.updated).max(0) as f64 / 1000.0;
            (bucket.tokens + elapsed * limit.per_second).min(limit.burst)
        };
        let mut buckets = lock(&self.buckets);
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, bucket| refill(bucket) < limit.burst);
        }
        let bucket = buckets.entry(customer.clone()).or_insert(Bucket {
            tokens: limit.burst,
            updated: now,
        });
        let tokens = refill(bucket);
        bucket.updated = now;
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            true
        } else {
            bucket.tokens = tokens;
            false
        }
    }

    /// Gives back the token a message took that turned out to cost
    /// nothing (a retry of a stored one).
    pub fn refund(&self, customer: &CustomerId) {
        let burst = self.limit.burst;
        if let Some(bucket) = lock(&self.buckets).get_mut(customer) {
            bucket.tokens = (bucket.tokens + 1.0).min(burst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_then_refilled_over_time() {
        let limiter = RateLimiter::new(RateLimit {
            burst: 3.0,
            per_second: 2.0,
        });
        let customer = CustomerId::generate();
        let t0 = 1_000;
        assert!((0..3).all(|_| limiter.try_acquire(&customer, t0)));
        assert!(!limiter.try_acquire(&customer, t0));
        assert!(limiter.try_acquire(&customer, t0 + 500));
        assert!(!limiter.try_acquire(&customer, t0 + 500));
    }

    #[test]
    fn a_refunded_token_can_be_taken_again() {
        let limiter = RateLimiter::new(RateLimit {
            burst: 1.0,
            per_second: 0.001,
        });
        let customer = CustomerId::generate();
        assert!(limiter.try_acquire(&customer, 0));
        limiter.refund(&customer);
        assert!(limiter.try_acquire(&customer, 0));
        assert!(!limiter.try_acquire(&customer, 0));
    }

    #[test]
    fn customers_have_separate_buckets() {
        let limiter = RateLimiter::new(RateLimit {
            burst: 1.0,
            per_second: 0.1,
        });
        let t0 = 1_000;
        let (a, b) = (CustomerId::generate(), CustomerId::generate());
        assert!(limiter.try_acquire(&a, t0));
        assert!(!limiter.try_acquire(&a, t0));
        assert!(limiter.try_acquire(&b, t0));
    }
}
