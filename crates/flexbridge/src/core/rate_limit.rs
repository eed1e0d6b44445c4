//! A per-customer token bucket: `burst` messages at once, refilled at
//! `per_second`. It protects the Flex quota and the agent's screen from
//! one runaway client. A bridge alone keeps the buckets in memory
//! ([`RateLimiter`]; not a security boundary across restarts); bridges
//! sharing a database keep each customer's in their row, taken in the
//! write that accepts the message ([`RateLimit::take`] does the sums for
//! both), so a customer's limit holds across the instances.

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

/// One customer's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub tokens: f64,
    /// When `tokens` was last refilled (ms).
    pub updated: i64,
}

impl RateLimit {
    /// `bucket` (a full one when `None`) refilled to `now` (ms).
    fn refill(self, bucket: Option<Bucket>, now: i64) -> f64 {
        match bucket {
            None => self.burst,
            Some(bucket) => {
                let elapsed = (now - bucket.updated).max(0) as f64 / 1000.0;
                (bucket.tokens + elapsed * self.per_second).min(self.burst)
            }
        }
    }

    /// Takes one token from `bucket` (a full one when `None`) at `now`
    /// (ms): whether there was one, and the bucket after.
    pub fn take(self, bucket: Option<Bucket>, now: i64) -> (bool, Bucket) {
        let tokens = self.refill(bucket, now);
        let taken = tokens >= 1.0;
        let tokens = if taken { tokens - 1.0 } else { tokens };
        (
            taken,
            Bucket {
                tokens,
                updated: now,
            },
        )
    }
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
        let mut buckets = lock(&self.buckets);
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, bucket| limit.refill(Some(*bucket), now) < limit.burst);
        }
        if let Some(bucket) = buckets.get_mut(customer) {
            let (taken, after) = limit.take(Some(*bucket), now);
            *bucket = after;
            return taken;
        }
        let (taken, after) = limit.take(None, now);
        buckets.insert(customer.clone(), after);
        taken
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

    #[test]
    fn a_bucket_kept_elsewhere_takes_alike() {
        let limit = RateLimit {
            burst: 2.0,
            per_second: 1.0,
        };
        let (taken, bucket) = limit.take(None, 1_000);
        assert!(taken);
        assert_eq!(
            bucket,
            Bucket {
                tokens: 1.0,
                updated: 1_000
            }
        );
        let (taken, bucket) = limit.take(Some(bucket), 1_000);
        assert!(taken && bucket.tokens == 0.0);
        let (taken, bucket) = limit.take(Some(bucket), 1_500);
        assert!(!taken, "half a token");
        assert_eq!(
            bucket,
            Bucket {
                tokens: 0.5,
                updated: 1_500
            }
        );
        let (taken, _) = limit.take(Some(bucket), 2_000);
        assert!(taken, "refilled to one");
    }
}
