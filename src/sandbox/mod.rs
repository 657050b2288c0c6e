//! A sandbox server that emulates both vendor APIs on 127.0.0.1, for tests and demos.
//!
//! [`Sandbox::start`] serves QuestionPro's award-points endpoint and Splio's authenticate,
//! create-reward and get-reward endpoints on a free loopback port. It keeps a ledger of what
//! was awarded and created, records recent requests (with secrets redacted), enforces the
//! vendors' authentication, validation and (optionally) rate limits, and lets a test inject
//! faults: error statuses, delays, dropped connections and unreadable bodies.
//!
//! The same state is reachable over HTTP under `/_sandbox/`, for the `rewardkit sandbox`
//! command and for tests written in other languages: `GET ledger`, `GET rewards`,
//! `GET requests` (`?route=NAME` adds that route's recorded requests), `POST faults`,
//! `DELETE faults`, `POST reset` and `POST revoke-tokens`.

mod points_body;
mod questionpro;
mod server;
mod splio;
#[cfg(test)]
mod tests;

use crate::error::Error;
use crate::transport::RateLimit;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Settings of a sandbox server; [`SandboxConfig::default`] suits most tests.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where to listen. Default `127.0.0.1:0` (a free port).
    pub addr: SocketAddr,
    /// The only QuestionPro `api-key` accepted. Default `sandbox-questionpro-key`.
    pub questionpro_api_key: String,
    /// The only Splio `api_key` accepted by `/authenticate`. Default `sandbox-splio-key`.
    pub splio_api_key: String,
    /// How long an issued Splio token stays valid. Default one hour.
    pub token_ttl: Duration,
    /// Which panel member ids exist; awards to any other id are skipped.
    pub members: Members,
    /// QuestionPro's per-key limit, enforced when set. Off by default.
    pub questionpro_rate_limit: Option<RateLimit>,
    /// Splio's per-IP limit on the loyalty endpoints, enforced when set. Off by default.
    pub splio_rate_limit: Option<RateLimit>,
    /// How many recent requests are kept per route for [`Sandbox::requests`]. Default 1000.
    pub record_limit: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            questionpro_api_key: "sandbox-questionpro-key".into(),
            splio_api_key: "sandbox-splio-key".into(),
            token_ttl: Duration::from_secs(3600),
            members: Members::default(),
            questionpro_rate_limit: None,
            splio_rate_limit: None,
            record_limit: 1000,
        }
    }
}

/// The panel member ids that exist in the sandbox's QuestionPro panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Members {
    /// Every id exists.
    All,
    /// Ids from the first to the second, both included.
    Range(i64, i64),
    /// Exactly these ids.
    Set(HashSet<i64>),
}

impl Default for Members {
    /// Ids of up to eight digits exist (`1..=99_999_999`); larger ids are not in the panel.
    fn default() -> Self {
        Members::Range(1, 99_999_999)
    }
}

impl Members {
    /// Whether a panel member with this id exists.
    pub fn contains(&self, id: i64) -> bool {
        match self {
            Members::All => true,
            Members::Range(lo, hi) => (*lo..=*hi).contains(&id),
            Members::Set(ids) => ids.contains(&id),
        }
    }
}

/// One emulated endpoint, for fault injection and read-back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `POST /a/api/v2/micropanel/members/points`
    QuestionproPoints,
    /// `POST /authenticate`
    SplioAuthenticate,
    /// `POST /loyalty/v1/rewards`
    SplioCreateReward,
    /// `GET /loyalty/v1/rewards/{external_id}`
    SplioGetReward,
}

impl Route {
    /// Every route, in a fixed order.
    pub const ALL: [Route; 4] =
        [Route::QuestionproPoints, Route::SplioAuthenticate, Route::SplioCreateReward, Route::SplioGetReward];

    /// The snake_case name used by the HTTP control API.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::QuestionproPoints => "questionpro_points",
            Route::SplioAuthenticate => "splio_authenticate",
            Route::SplioCreateReward => "splio_create_reward",
            Route::SplioGetReward => "splio_get_reward",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A request as the sandbox received it. Values of `api-key`, `apikey` and `authorization`
/// headers, and the `api_key` of authentication bodies, are replaced by `<redacted>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    /// The path, with the query string if there was one.
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
}

/// One credited row of a QuestionPro award-points request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Award {
    pub panel_member_id: i64,
    pub points: i64,
    pub comments: Option<String>,
    /// The `requestID` the sandbox answered with.
    pub request_id: String,
}

/// What a faulted request gets instead of the normal answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer with the fault's status, body and headers.
    #[default]
    Respond,
    /// Read the request, then close the connection without answering.
    DropConnection,
    /// Answer 200 (or the fault's status) with a JSON content type and a truncated body.
    UnreadableBody,
}

/// A fault to inject with [`Sandbox::inject`]: an error answer, a delay, a dropped connection
/// or an unreadable body, for the next `times` requests to one route.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Fault {
    /// Respond with this status.
    pub status: Option<u16>,
    /// Respond with this raw body; by default the vendor's usual error body for the status.
    pub body: Option<String>,
    /// Extra response headers; they replace headers of the same name.
    pub headers: Vec<(String, String)>,
    /// Adds `Retry-After: N`.
    pub retry_after: Option<u64>,
    /// Wait this long before answering. A fault with only a delay answers normally.
    pub delay_ms: Option<u64>,
    pub action: FaultAction,
    /// Process the request normally first (credit the ledger, create the reward), then answer
    /// with the fault. A delay-only fault always processes.
    pub process: bool,
    /// How many requests the fault applies to; 0 counts as 1.
    pub times: u32,
}

impl Fault {
    /// Answer with this status and the vendor's usual error body for it.
    pub fn status(code: u16) -> Fault {
        Fault { status: Some(code), ..Fault::default() }
    }

    /// Read the request, then close the connection with no answer at all.
    pub fn drop_connection() -> Fault {
        Fault { action: FaultAction::DropConnection, ..Fault::default() }
    }

    /// Answer 200 with a body that is not valid JSON.
    pub fn unreadable_body() -> Fault {
        Fault { action: FaultAction::UnreadableBody, ..Fault::default() }
    }

    /// Process the request normally and answer normally, after waiting `d`.
    pub fn delay(d: Duration) -> Fault {
        Fault::default().delayed(d)
    }

    /// Also wait `d` before answering (or before dropping the connection).
    pub fn delayed(mut self, d: Duration) -> Fault {
        self.delay_ms = Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Answer with this raw body instead of the default one.
    pub fn body(mut self, body: impl Into<String>) -> Fault {
        self.body = Some(body.into());
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Fault {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds `Retry-After: secs`.
    pub fn retry_after(mut self, secs: u64) -> Fault {
        self.retry_after = Some(secs);
        self
    }

    /// Applies to the next `n` requests instead of one.
    pub fn times(mut self, n: u32) -> Fault {
        self.times = n;
        self
    }

    /// Process the request normally before answering with the fault.
    pub fn processed(mut self) -> Fault {
        self.process = true;
        self
    }

    fn is_delay_only(&self) -> bool {
        self.status.is_none()
            && self.body.is_none()
            && self.headers.is_empty()
            && self.retry_after.is_none()
            && self.action == FaultAction::Respond
    }
}

/// A running sandbox server. Dropping the handle stops it; [`Sandbox::shutdown`] stops it
/// gracefully.
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    stop: watch::Sender<u8>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Starts a sandbox with the default configuration. Must be called inside a tokio runtime.
    pub async fn start() -> Result<Sandbox, Error> {
        Sandbox::start_with(SandboxConfig::default()).await
    }

    /// Starts a sandbox with this configuration. Must be called inside a tokio runtime.
    pub async fn start_with(config: SandboxConfig) -> Result<Sandbox, Error> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config("the sandbox must be started inside a tokio runtime".into()));
        }
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|e| Error::Config(format!("sandbox cannot listen on {}: {e}", config.addr)))?;
        let addr = listener.local_addr().map_err(|e| Error::Config(format!("sandbox cannot read its address: {e}")))?;
        let shared = Arc::new(server::Shared::new(config));
        let (stop, stop_rx) = watch::channel(server::RUNNING);
        let task = tokio::spawn(server::accept_loop(listener, server::router(shared.clone()), stop_rx));
        Ok(Sandbox { addr, shared, stop, task })
    }

    /// The base URL, `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The QuestionPro API key the sandbox accepts.
    pub fn questionpro_api_key(&self) -> &str {
        &self.shared.cfg.questionpro_api_key
    }

    /// The Splio API key the sandbox accepts.
    pub fn splio_api_key(&self) -> &str {
        &self.shared.cfg.splio_api_key
    }

    /// Queues a fault for the next `fault.times` requests to `route`; faults queued for one
    /// route apply in order.
    pub fn inject(&self, route: Route, fault: Fault) {
        self.shared.inject(route, fault);
    }

    /// Removes every queued fault.
    pub fn clear_faults(&self) {
        self.shared.clear_faults();
    }

    /// How many requests `route` received (faulted ones included) since start or reset.
    pub fn request_count(&self, route: Route) -> u64 {
        self.shared.request_count(route)
    }

    /// The most recent requests to `route` (at most `record_limit`), oldest first.
    pub fn requests(&self, route: Route) -> Vec<RecordedRequest> {
        self.shared.requests(route)
    }

    /// Total points credited per panel member id.
    pub fn ledger(&self) -> BTreeMap<i64, i64> {
        self.shared.ledger()
    }

    /// Every credited row, in the order it was credited. Rows are kept until [`Sandbox::reset`].
    pub fn awards(&self) -> Vec<Award> {
        self.shared.awards()
    }

    /// Every created reward as it was echoed back, in creation order.
    pub fn rewards(&self) -> Vec<serde_json::Value> {
        self.shared.splio.rewards()
    }

    /// Invalidates every Splio token issued so far; the next loyalty call answers 401.
    pub fn revoke_tokens(&self) {
        self.shared.splio.revoke_tokens();
    }

    /// Clears the ledger, awards, rewards, faults, recorded requests, counters and rate-limit
    /// windows. Issued tokens stay valid.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops accepting connections, lets requests in flight finish (for up to 5 seconds), then
    /// closes every connection.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(server::DRAINING);
        let _ = (&mut self.task).await;
        // Every connection task holds a receiver: when they are all gone, everything has closed.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.stop.closed()).await;
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop.send_replace(server::STOPPED);
        self.task.abort();
    }
}
