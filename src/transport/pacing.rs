//! Client-side pacing: requests are spaced evenly at a vendor's published rate.
//!
//! Written by hand rather than with `governor` because the bulk engine needs one thing
//! governor does not offer: when the server answers 429/503, the whole pacer (every task that
//! shares the key) must pause until the `Retry-After` time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::time::Instant;

const HEADROOM: f64 = 1.02;

/// A rate: at most `calls` requests per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub calls: u32,
    pub per: Duration,
}

impl RateLimit {
    /// `calls` requests per `per`.
    pub const fn new(calls: u32, per: Duration) -> Self {
        RateLimit { calls, per }
    }

    /// QuestionPro's published limit: 300 calls per 60 seconds per API key.
    pub const QUESTIONPRO: RateLimit = RateLimit::new(300, Duration::from_secs(60));
    /// Splio's published limit for the loyalty endpoints: 10 requests per second.
    pub const SPLIO: RateLimit = RateLimit::new(10, Duration::from_secs(1));

    /// The spacing between sends: 2% wider than the rate's own, because requests that leave
    /// evenly can still arrive bunched (jitter, a slow first connection), and a vendor counting
    /// in a sliding window would refuse the one that lands early.
    fn interval(&self) -> Duration {
        (self.per / self.calls.max(1)).mul_f64(HEADROOM)
    }
}

/// Hands out evenly spaced send slots. Shared by every client that uses the same key.
/// Without a rate it spaces nothing, but still holds everyone back after a 429 or 503.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    /// A pacer for one rate; `None` for no pacing (only server-requested pauses).
    pub fn new(rate: Option<RateLimit>) -> Self {
        Pacer { interval: rate.map_or(Duration::ZERO, |r| r.interval()), next: Mutex::new(None) }
    }

    /// Waits for the next free slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        // A slot that is already due is taken at once: tokio's timer rounds every deadline up
        // to its next millisecond tick, so sleeping until "now" would add up to 1 ms per request.
        if slot > Instant::now() {
            tokio::time::sleep_until(slot).await;
        }
    }

    /// Holds every later slot until `until` (the server asked everyone to wait).
    pub fn pause_until(&self, until: Instant) {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        if next.is_none_or(|n| n < until) {
            *next = Some(until);
        }
    }
}

/// The process-wide pacer for `scope` (vendor, host and a hash of the key) at `rate`.
/// Clients built with the same key and rate share it, so they share the vendor's budget.
pub(crate) fn shared(scope: String, rate: Option<RateLimit>) -> Arc<Pacer> {
    type Registry = Mutex<HashMap<(String, u32, Duration), Weak<Pacer>>>;
    static PACERS: OnceLock<Registry> = OnceLock::new();
    let mut map = PACERS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    map.retain(|_, w| w.strong_count() > 0);
    let key = (scope, rate.map_or(0, |r| r.calls), rate.map_or(Duration::ZERO, |r| r.per));
    if let Some(p) = map.get(&key).and_then(Weak::upgrade) {
        return p;
    }
    let p = Arc::new(Pacer::new(rate));
    map.insert(key, Arc::downgrade(&p));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_calls_evenly_and_pauses() {
        let p = Pacer::new(Some(RateLimit::new(10, Duration::from_secs(1))));
        let step = Duration::from_millis(100).mul_f64(HEADROOM);
        let t0 = Instant::now();
        for _ in 0..5 {
            p.acquire().await;
        }
        assert_eq!(Instant::now() - t0, step * 4);
        let resume = Instant::now() + Duration::from_secs(3);
        p.pause_until(resume);
        p.acquire().await;
        assert_eq!(Instant::now(), resume);
    }

    #[test]
    fn same_scope_shares_one_pacer() {
        let a = shared("qp|host|1".into(), Some(RateLimit::QUESTIONPRO));
        let b = shared("qp|host|1".into(), Some(RateLimit::QUESTIONPRO));
        let c = shared("qp|host|2".into(), Some(RateLimit::QUESTIONPRO));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
