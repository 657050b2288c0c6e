//! The HTTP transport shared by both vendor clients: timeouts, safe retries, pacing, redirect
//! and plain-http rules, and request logging.
//!
//! The retry rule is the heart of rewardkit's promise. A request marked [`Safety::Unsafe`]
//! (awarding points, creating a reward) is re-sent only when it provably never reached the
//! server (no connection, connect timeout) or the server refused it before processing
//! (429, 503). When it was sent and no definitive answer came, the call ends in
//! [`Error::OutcomeUnknown`] and is never re-sent.

mod pacing;

pub use pacing::{Pacer, RateLimit};

use crate::error::{Error, OutcomeUnknown, UnknownCause, Vendor};
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};
use url::Url;

/// The `User-Agent` every request carries.
pub const USER_AGENT: &str = concat!("rewardkit/", env!("CARGO_PKG_VERSION"));

/// Settings of the transport, shared by both clients' builders.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Limit for the whole request (connect, send, answer). Default 30 s.
    pub timeout: Duration,
    /// Limit for opening the connection. Default 10 s.
    pub connect_timeout: Duration,
    /// How many times a request may be re-sent when re-sending is safe. Default 3.
    pub max_retries: u32,
    /// First backoff step; doubled each retry, with full jitter. Default 500 ms.
    pub backoff_base: Duration,
    /// Largest backoff step. Default 30 s.
    pub backoff_max: Duration,
    /// Longest `Retry-After` the client waits for on its own; beyond it the error is raised
    /// with `retry_after` set. Default 120 s.
    pub max_retry_wait: Duration,
    /// Client-side pacing; `None` turns it off. Defaults to the vendor's published limit.
    pub rate_limit: Option<RateLimit>,
}

impl TransportOptions {
    fn new(rate_limit: RateLimit) -> Self {
        TransportOptions {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_retries: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            max_retry_wait: Duration::from_secs(120),
            rate_limit: Some(rate_limit),
        }
    }

    pub(crate) fn questionpro() -> Self {
        Self::new(RateLimit::QUESTIONPRO)
    }

    pub(crate) fn splio() -> Self {
        Self::new(RateLimit::SPLIO)
    }
}

/// The transport setters both clients' builders share; `$defaults` makes the vendor's
/// default options. The builder needs a field `opts: Option<TransportOptions>`.
macro_rules! builder_setters {
    ($defaults:path) => {
        fn opts(&mut self) -> &mut TransportOptions {
            self.opts.get_or_insert_with($defaults)
        }
        /// Limit for the whole request (default 30 s).
        pub fn timeout(mut self, t: std::time::Duration) -> Self {
            self.opts().timeout = t;
            self
        }
        /// Limit for connecting (default 10 s).
        pub fn connect_timeout(mut self, t: std::time::Duration) -> Self {
            self.opts().connect_timeout = t;
            self
        }
        /// How many times a request may be re-sent when that is safe (default 3).
        pub fn max_retries(mut self, n: u32) -> Self {
            self.opts().max_retries = n;
            self
        }
        /// First backoff step and the largest one (defaults 500 ms and 30 s).
        pub fn backoff(mut self, base: std::time::Duration, max: std::time::Duration) -> Self {
            let o = self.opts();
            o.backoff_base = base;
            o.backoff_max = max;
            self
        }
        /// The longest server-requested wait the client sits out by itself (default 120 s).
        pub fn max_retry_wait(mut self, t: std::time::Duration) -> Self {
            self.opts().max_retry_wait = t;
            self
        }
        /// Client-side pacing (default: the vendor's published limit); `None` turns it off.
        pub fn rate_limit(mut self, rate: Option<$crate::transport::RateLimit>) -> Self {
            self.opts().rate_limit = rate;
            self
        }
        /// All transport settings at once.
        pub fn transport_options(mut self, opts: TransportOptions) -> Self {
            self.opts = Some(opts);
            self
        }
    };
}
pub(crate) use builder_setters;

/// Whether a request may be repeated when its outcome is not known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    /// Repeating it changes nothing (reads, authentication).
    Safe,
    /// Repeating it could apply it twice (awarding points, creating a reward).
    Unsafe,
}

/// A final answer from the server (after any retries).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn into_error(self, vendor: Vendor) -> Error {
        Error::from_response(vendor, self.status.as_u16(), &self.headers, &self.body)
    }
}

/// One HTTP client with the retry and pacing policy of one vendor client.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    http: reqwest::Client,
    base: Url,
    opts: TransportOptions,
    pacer: Arc<Pacer>,
}

/// Checks a base URL: https anywhere, plain http only to a loopback host.
pub(crate) fn check_base_url(raw: &str) -> Result<Url, Error> {
    let mut url = Url::parse(raw).map_err(|e| Error::Config(format!("invalid base URL {raw:?}: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(Error::Config(format!(
                "refusing plain http to {}: use https (plain http is allowed only to loopback)",
                url.host_str().unwrap_or("")
            )))
        }
        s => return Err(Error::Config(format!("unsupported URL scheme {s:?} in base URL"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config("credentials in the base URL are not allowed; pass the API key".into()));
    }
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn install_crypto_provider() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // Fails only when the application installed its own provider first; theirs is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Redirects are followed only within the origin the request went to, so an `api-key`
/// header or a bearer token is never handed to another host (or downgraded to http).
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(first) = attempt.previous().first() else { return attempt.stop() };
        let same_origin = first.origin() == attempt.url().origin();
        // 301/302/303 would turn a POST into a GET without its body: only 307/308 keep both.
        let keeps_method = matches!(attempt.status().as_u16(), 307 | 308);
        if attempt.previous().len() > 5 || !same_origin || !keeps_method {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

impl Transport {
    /// Builds the transport; `pacing_scope` identifies who shares a pacer (vendor, host, key).
    pub fn new(vendor: Vendor, base: Url, opts: TransportOptions, pacing_scope: &str) -> Result<Self, Error> {
        install_crypto_provider();
        let mut builder = reqwest::Client::builder();
        if is_loopback(&base) {
            // A proxy from the environment has no business relaying loopback traffic.
            builder = builder.no_proxy();
        }
        let http = builder
            .user_agent(USER_AGENT)
            .connect_timeout(opts.connect_timeout.min(opts.timeout))
            .timeout(opts.timeout)
            .redirect(redirect_policy())
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Config(format!("could not build the HTTP client: {e}")))?;
        let host = base.host_str().unwrap_or_default();
        let port = base.port_or_known_default().unwrap_or(0);
        let pacer = pacing::shared(format!("{vendor:?}|{host}:{port}|{pacing_scope}"), opts.rate_limit);
        Ok(Transport { http, base, opts, pacer })
    }

    /// The absolute URL of `path` (relative to the base URL).
    pub fn url(&self, path: &str) -> Url {
        self.base.join(path.trim_start_matches('/')).unwrap_or_else(|_| self.base.clone())
    }

    /// Sends a request, re-sending it only as `safety` allows, and returns the final answer
    /// whatever its status. `build` makes a fresh request for each attempt.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        safety: Safety,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Answer, Error> {
        self.send_observed(method, path, safety, build, &|| {}).await
    }

    /// [`Transport::send`], calling `before_send` right before each attempt goes on the wire
    /// (after pacing), so a journal can tell "never sent" from "maybe sent".
    pub async fn send_observed(
        &self,
        method: Method,
        path: &str,
        safety: Safety,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
        before_send: &(dyn Fn() + Send + Sync),
    ) -> Result<Answer, Error> {
        let url = self.url(path);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            self.pacer.acquire().await;
            before_send();
            let started = tokio::time::Instant::now();
            let req = build(self.http.request(method.clone(), url.clone()));
            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    match resp.bytes().await {
                        Ok(body) => Ok(Answer { status, headers, body }),
                        // An error status is definitive even when its body was cut off.
                        Err(_) if !status.is_success() => Ok(Answer { status, headers, body: Bytes::new() }),
                        Err(e) => Err((Some((status, headers)), e)),
                    }
                }
                Err(e) => Err((None, e)),
            };
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let retries_left = attempt <= self.opts.max_retries;
            match outcome {
                Ok(ans) => {
                    let request_id = answer_request_id(&ans);
                    tracing::debug!(
                        target: "rewardkit",
                        method = %method, path = url.path(), status = ans.status.as_u16(),
                        request_id = request_id.as_deref().unwrap_or(""), attempt, elapsed_ms,
                        "answer"
                    );
                    let s = ans.status.as_u16();
                    let refused = s == 429 || s == 503;
                    let retryable = refused || (safety == Safety::Safe && matches!(s, 500 | 502 | 504));
                    if retryable && retries_left && !is_spent_quota(&ans) {
                        let wait = retry_after(&ans.headers).unwrap_or_else(|| self.backoff(attempt));
                        if wait <= self.opts.max_retry_wait {
                            if refused {
                                // The server is telling everyone who shares this key to slow down.
                                self.pacer.pause_until(tokio::time::Instant::now() + wait);
                            }
                            tracing::debug!(target: "rewardkit", status = s, wait_ms = wait.as_millis() as u64, attempt, "retrying");
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                    }
                    if safety == Safety::Unsafe && matches!(s, 502 | 504) {
                        return Err(unknown(
                            UnknownCause::Gateway,
                            format!("the gateway answered {s}; the vendor may or may not have processed the request"),
                            Some(&ans),
                        ));
                    }
                    return Ok(ans);
                }
                Err((head, e)) => {
                    let never_sent = head.is_none() && e.is_connect();
                    tracing::debug!(
                        target: "rewardkit",
                        method = %method, path = url.path(), attempt, elapsed_ms,
                        error = %describe(&e), never_sent, "request failed"
                    );
                    if never_sent || safety == Safety::Safe {
                        if retries_left {
                            tokio::time::sleep(self.backoff(attempt)).await;
                            continue;
                        }
                        if never_sent {
                            return Err(if e.is_timeout() {
                                Error::Timeout(format!("could not connect to {}: {}", origin(&url), describe(&e)))
                            } else {
                                Error::Connection(format!("could not connect to {}: {}", origin(&url), describe(&e)))
                            });
                        }
                        return Err(if e.is_timeout() {
                            Error::Timeout(format!("no answer from {} in time: {}", origin(&url), describe(&e)))
                        } else {
                            Error::Connection(format!("{}: {}", origin(&url), describe(&e)))
                        });
                    }
                    return Err(match head {
                        Some((status, headers)) => {
                            let ans = Answer { status, headers, body: Bytes::new() };
                            unknown(
                                UnknownCause::UnreadableBody,
                                format!("the answer's body could not be read: {}", describe(&e)),
                                Some(&ans),
                            )
                        }
                        None if e.is_timeout() => unknown(
                            UnknownCause::Timeout,
                            format!(
                                "no answer within {:?}; the request was sent and may have been applied",
                                self.opts.timeout
                            ),
                            None,
                        ),
                        None => unknown(
                            UnknownCause::ConnectionLost,
                            format!("the connection broke after the request was sent: {}", describe(&e)),
                            None,
                        ),
                    });
                }
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.opts.backoff_base.saturating_mul(1u32 << attempt.min(16).saturating_sub(1));
        let cap = exp.min(self.opts.backoff_max);
        // Full jitter, with a floor so a retry never fires in the same instant.
        cap.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// Builds the unknown-outcome error, keeping whatever the answer said.
pub(crate) fn unknown(cause: UnknownCause, message: String, ans: Option<&Answer>) -> Error {
    Error::OutcomeUnknown(Box::new(OutcomeUnknown {
        cause,
        message,
        status: ans.map(|a| a.status.as_u16()),
        request_id: ans.and_then(answer_request_id),
        body: ans.filter(|a| !a.body.is_empty()).map(|a| String::from_utf8_lossy(&a.body).into_owned()),
    }))
}

fn answer_request_id(ans: &Answer) -> Option<String> {
    if let Some(h) = ["x-request-id", "request-id"].iter().find_map(|h| ans.headers.get(*h)) {
        return h.to_str().ok().map(str::to_string);
    }
    // QuestionPro puts it in the body; a cheap look avoids parsing large bodies twice.
    let text = std::str::from_utf8(&ans.body[..ans.body.len().min(65536)]).ok()?;
    let i = text.find("\"requestID\"")?;
    let rest = text[i + 11..].trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    rest.find('"').map(|end| rest[..end].to_string())
}

/// QuestionPro answers 429 with error 1013 "API call limit exceeded" when the licence's call
/// quota is spent: waiting a few seconds cannot help, so it is not retried.
fn is_spent_quota(ans: &Answer) -> bool {
    if ans.status != StatusCode::TOO_MANY_REQUESTS {
        return false;
    }
    let e = crate::error::ApiError::parse(Vendor::QuestionPro, 429, &ans.headers, &ans.body);
    e.error_id.as_deref() == Some("1013") || e.message.to_ascii_lowercase().contains("call limit exceeded")
}

/// How long the server asked to wait: `Retry-After` (seconds or an HTTP date) or Splio's
/// `rateLimit-reset` (seconds).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(v) = headers.get("retry-after").and_then(|v: &HeaderValue| v.to_str().ok()) {
        let v = v.trim();
        if let Ok(secs) = v.parse::<f64>() {
            if secs.is_finite() && secs >= 0.0 {
                return Some(Duration::from_secs_f64(secs.min(86_400.0)));
            }
        }
        if let Ok(when) = httpdate::parse_http_date(v) {
            return Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO));
        }
    }
    let reset = headers.get("ratelimit-reset").and_then(|v| v.to_str().ok())?;
    let secs = reset.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0)?;
    Some(Duration::from_secs_f64(secs.min(86_400.0)))
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// The error and its causes, without the URL (reqwest puts the full URL in its messages).
fn describe(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connect error"
    } else if e.is_body() || e.is_decode() {
        "body error"
    } else {
        "request error"
    };
    if parts.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {}", parts.join(": "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_rules() {
        assert!(check_base_url("http://127.0.0.1:8080").is_ok());
        assert!(check_base_url("http://localhost:1").is_ok());
        assert!(check_base_url("http://[::1]:1").is_ok());
        assert!(matches!(check_base_url("http://api.questionpro.com"), Err(Error::Config(_))));
        assert!(matches!(check_base_url("ftp://x"), Err(Error::Config(_))));
        assert_eq!(check_base_url("https://api.splio.com").unwrap().as_str(), "https://api.splio.com/");
        assert_eq!(check_base_url("https://x.test/prefix").unwrap().as_str(), "https://x.test/prefix/");
    }

    #[test]
    fn reads_retry_after_in_both_forms() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(120);
        h.insert("retry-after", HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap());
        let got = retry_after(&h).unwrap();
        assert!(got <= Duration::from_secs(120) && got >= Duration::from_secs(115));
        let mut h = HeaderMap::new();
        h.insert("ratelimit-reset", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
    }
}
