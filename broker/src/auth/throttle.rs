//! Login throttling: too many failures for one user name or from one address lock further
//! attempts for a while. Kept in memory per node (a cluster multiplies the budget by its node
//! count; the budget is small).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many failures, over what period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures per user name within `window` before attempts are refused; an address gets
    /// four times as many.
    pub max_failures: u32,
    /// The sliding window.
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(300),
        }
    }
}

/// A throttling key and its limit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    name: String,
    per_address: bool,
}

/// Entries kept at most, so a flood of names cannot grow memory without bound.
const MAX_KEYS: usize = 50_000;

pub(crate) struct Throttle {
    limits: LoginLimits,
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

impl Throttle {
    pub(crate) fn new(limits: LoginLimits) -> Self {
        Self {
            limits,
            failures: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn keys(user: &str, source: Option<IpAddr>) -> Vec<Key> {
        let mut keys = vec![Key {
            name: user.to_lowercase(),
            per_address: false,
        }];
        if let Some(address) = source {
            keys.push(Key {
                name: address.to_string(),
                per_address: true,
            });
        }
        keys
    }

    fn limit(&self, key: &Key) -> usize {
        let base = self.limits.max_failures.max(1) as usize;
        if key.per_address { base * 4 } else { base }
    }

    /// Seconds until attempts are accepted again, if any key is over its limit.
    pub(crate) fn retry_after(&self, keys: &[Key]) -> Option<u64> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .filter_map(|key| {
                let list = failures.get_mut(key)?;
                while list
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.limits.window)
                {
                    list.pop_front();
                }
                (list.len() >= self.limit(key)).then(|| {
                    let oldest = list.front().copied().unwrap_or(now);
                    self.limits
                        .window
                        .saturating_sub(now.duration_since(oldest))
                        .as_secs()
                        .max(1)
                })
            })
            .max()
    }

    pub(crate) fn fail(&self, keys: &[Key]) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, list| {
                list.back()
                    .is_some_and(|t| now.duration_since(*t) < self.limits.window)
            });
        }
        for key in keys {
            let limit = self.limit(key);
            let list = failures.entry(key.clone()).or_default();
            list.push_back(now);
            while list.len() > limit {
                list.pop_front();
            }
        }
    }

    /// Forgets the user's failures after a success (the address keeps its count).
    pub(crate) fn clear(&self, keys: &[Key]) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys.iter().filter(|k| !k.per_address) {
            failures.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_limit_and_clears_on_success() {
        let throttle = Throttle::new(LoginLimits {
            max_failures: 3,
            window: Duration::from_secs(60),
        });
        let keys = Throttle::keys("Eng1", Some("10.0.0.1".parse().unwrap()));
        for _ in 0..3 {
            assert_eq!(throttle.retry_after(&keys), None);
            throttle.fail(&keys);
        }
        let retry = throttle.retry_after(&keys).unwrap();
        assert!((1..=60).contains(&retry));
        assert!(
            throttle
                .retry_after(&Throttle::keys("eng1", None))
                .is_some(),
            "names are case-insensitive"
        );
        assert_eq!(
            throttle.retry_after(&Throttle::keys("other", Some("10.0.0.1".parse().unwrap()))),
            None
        );
        throttle.clear(&keys);
        assert_eq!(throttle.retry_after(&keys), None);
    }

    #[test]
    fn addresses_get_a_larger_budget() {
        let throttle = Throttle::new(LoginLimits {
            max_failures: 2,
            window: Duration::from_secs(60),
        });
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        for i in 0..8 {
            throttle.fail(&Throttle::keys(&format!("user{i}"), Some(ip)));
        }
        assert!(
            throttle
                .retry_after(&Throttle::keys("fresh", Some(ip)))
                .is_some()
        );
    }
}
