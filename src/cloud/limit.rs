//! Client-side rate limits, so scar stays inside AWS's per-account API quotas instead of
//! leaning on throttling errors: Lambda `GetFunction` 100 req/s, `GetPolicy` 15 req/s and every
//! other Lambda control-plane call 15 req/s together (reference/peers.md §5.1); Batch 50 req/s;
//! API Gateway 10 req/s, `CreateRestApi` one every 3 s and `DeleteRestApi` one every 30 s.
//!
//! `SCAR_RATE_LIMIT=off` turns them off, for local emulators that have no quotas.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
pub struct Limiter {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
    enabled: bool,
}

impl Limiter {
    /// A bucket of `rate` per second with room for `burst`.
    #[must_use]
    pub fn new(rate: f64, burst: f64) -> Self {
        let enabled = std::env::var("SCAR_RATE_LIMIT").map_or(true, |v| v != "off");
        Self {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
            enabled,
        }
    }

    /// Waits for one token.
    pub async fn acquire(&self) {
        if !self.enabled {
            return;
        }
        loop {
            let wait = {
                let mut s = match self.state.lock() {
                    Ok(g) => g,
                    Err(poisoned) => poisoned.into_inner(),
                };
                let now = Instant::now();
                let elapsed = now.duration_since(s.1).as_secs_f64();
                s.0 = (s.0 + elapsed * self.rate).min(self.burst);
                s.1 = now;
                if s.0 >= 1.0 {
                    s.0 -= 1.0;
                    None
                } else {
                    Some(Duration::from_secs_f64((1.0 - s.0) / self.rate))
                }
            };
            match wait {
                None => return,
                Some(d) => tokio::time::sleep(d).await,
            }
        }
    }
}

/// The limiters of one run.
#[derive(Debug)]
pub struct Limits {
    /// Lambda `GetFunction`.
    pub get_function: Limiter,
    /// Lambda `GetPolicy`.
    pub get_policy: Limiter,
    /// Every other Lambda control-plane call.
    pub lambda_control: Limiter,
    /// AWS Batch API calls (50 req/s).
    pub batch: Limiter,
    /// API Gateway control-plane calls (10 req/s, burst 40).
    pub apigateway: Limiter,
    /// API Gateway `CreateRestApi` (one every 3 s).
    pub apigateway_create: Limiter,
    /// API Gateway `DeleteRestApi` (one every 30 s).
    pub apigateway_delete: Limiter,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            get_function: Limiter::new(100.0, 100.0),
            get_policy: Limiter::new(15.0, 15.0),
            lambda_control: Limiter::new(15.0, 15.0),
            batch: Limiter::new(50.0, 50.0),
            apigateway: Limiter::new(10.0, 40.0),
            apigateway_create: Limiter::new(1.0 / 3.0, 1.0),
            apigateway_delete: Limiter::new(1.0 / 30.0, 1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_spends_its_burst_then_paces() {
        let l = Limiter {
            rate: 10.0,
            burst: 5.0,
            state: Mutex::new((5.0, Instant::now())),
            enabled: true,
        };
        let start = Instant::now();
        for _ in 0..15 {
            l.acquire().await;
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(990), "{took:?}");
        assert!(took <= Duration::from_millis(1100), "{took:?}");
    }
}
