//! Helpers shared by the integration tests: sandbox start-up, clients pointed at it with tiny
//! backoffs, a valid reward, and header look-ups on recorded requests.
#![allow(dead_code)]

use rewardkit::questionpro::{QuestionPro, QuestionProBuilder};
use rewardkit::sandbox::{RecordedRequest, Route, Sandbox, SandboxConfig};
use rewardkit::splio::{NewReward, Splio, SplioBuilder};
use std::time::Duration;

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Turns on `RUST_LOG=rewardkit=debug` style logging when the variable is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

pub async fn sandbox() -> Sandbox {
    init_tracing();
    Sandbox::start().await.expect("the sandbox starts")
}

pub async fn sandbox_with(cfg: SandboxConfig) -> Sandbox {
    init_tracing();
    Sandbox::start_with(cfg).await.expect("the sandbox starts")
}

/// A QuestionPro builder pointed at the sandbox: no pacing, 5 s timeout, 2 retries, tiny backoff.
pub fn qp_builder(sb: &Sandbox) -> QuestionProBuilder {
    QuestionPro::builder()
        .api_key(sb.questionpro_api_key())
        .base_url(sb.url())
        .rate_limit(None)
        .timeout(Duration::from_secs(5))
        .max_retries(2)
        .backoff(ms(10), ms(50))
}

pub fn qp(sb: &Sandbox) -> QuestionPro {
    qp_builder(sb).build().expect("the QuestionPro client builds")
}

/// A Splio builder pointed at the sandbox: no pacing, 5 s timeout, 2 retries, tiny backoff.
pub fn splio_builder(sb: &Sandbox) -> SplioBuilder {
    Splio::builder()
        .api_key(sb.splio_api_key())
        .base_url(sb.url())
        .rate_limit(None)
        .timeout(Duration::from_secs(5))
        .max_retries(2)
        .backoff(ms(10), ms(50))
}

pub fn splio(sb: &Sandbox) -> Splio {
    splio_builder(sb).build().expect("the Splio client builds")
}

/// The smallest valid reward: unlimited and auto-generated.
pub fn reward(external_id: &str) -> NewReward {
    let mut r = NewReward::new(external_id, "Gift card", 0, 100);
    r.auto_generated = Some(true);
    r
}

/// The value of a recorded header (names compared case-insensitively).
pub fn header<'a>(req: &'a RecordedRequest, name: &str) -> Option<&'a str> {
    req.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Every request count, for messages.
pub fn counts(sb: &Sandbox) -> String {
    Route::ALL.iter().map(|r| format!("{}={}", r.as_str(), sb.request_count(*r))).collect::<Vec<_>>().join(" ")
}

/// A loopback port nothing listens on.
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

/// Polls `f` until it is true or `limit` passes (for effects the sandbox applies after a
/// client gave up waiting, e.g. a delayed request that is still processed).
pub async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = tokio::time::Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(ms(20)).await;
    }
}
