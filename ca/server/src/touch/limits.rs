//! Rate limits per user and per source address, and the count of failed
//! assertions in a row that locks a user.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// The most keys a limiter tracks; beyond it, idle ones are dropped first.
const MAX_TRACKED: usize = 100_000;

/// A token bucket per key: `per_minute` requests a minute, bursts up to
/// the same number.
#[derive(Debug)]
pub(super) struct Limiter<K> {
    per_minute: u32,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// A limiter allowing `per_minute` requests per key per minute.
    pub(super) fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; false when the key is over its rate.
    pub(super) fn allow(&self, key: &K) -> bool {
        let capacity = f64::from(self.per_minute);
        let rate = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = crate::store::lock(&self.buckets);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(key) {
            // Full buckets are the idle ones: forgetting them changes nothing.
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < capacity
            });
            if buckets.len() >= MAX_TRACKED {
                return false;
            }
        }
        let (tokens, at) = buckets.entry(key.clone()).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The limits of the touch flow.
#[derive(Debug)]
pub(super) struct RateLimits {
    /// Per user name (known or not: the name asked for).
    pub(super) per_user: Limiter<String>,
    /// Per source address.
    pub(super) per_source: Limiter<IpAddr>,
}

/// Consecutive failed assertions per user.
#[derive(Debug, Default)]
pub(super) struct Failures {
    counts: Mutex<HashMap<String, u32>>,
}

impl Failures {
    /// Counts a failure; returns the count in a row.
    pub(super) fn fail(&self, user: &str) -> u32 {
        let mut counts = crate::store::lock(&self.counts);
        if counts.len() >= MAX_TRACKED && !counts.contains_key(user) {
            counts.clear();
        }
        let count = counts.entry(user.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    /// A success (or an unlock) ends the run.
    pub(super) fn reset(&self, user: &str) {
        crate::store::lock(&self.counts).remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses() {
        let limiter = Limiter::new(3);
        let key = "alice".to_owned();
        assert!(limiter.allow(&key));
        assert!(limiter.allow(&key));
        assert!(limiter.allow(&key));
        assert!(!limiter.allow(&key));
        // Another key has its own bucket.
        assert!(limiter.allow(&"bob".to_owned()));
    }

    #[test]
    fn failures_count_in_a_row_and_reset() {
        let failures = Failures::default();
        assert_eq!(failures.fail("alice"), 1);
        assert_eq!(failures.fail("alice"), 2);
        failures.reset("alice");
        assert_eq!(failures.fail("alice"), 1);
    }
}
