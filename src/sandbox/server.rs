//! The accept loop, the routing, the fault pipeline, the shared state and the control API.

use super::{questionpro, splio, Award, Fault, FaultAction, RecordedRequest, Route, SandboxConfig};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tower::ServiceExt;

/// Values of the stop signal shared by the handle, the accept loop and every connection.
pub(crate) const RUNNING: u8 = 0;
/// Stop accepting; let each connection finish the request in flight.
pub(crate) const DRAINING: u8 = 1;
/// Close every connection now.
pub(crate) const STOPPED: u8 = 2;

/// Large enough for any batch a client would send, small enough to bound a bad request.
const MAX_BODY: usize = 32 * 1024 * 1024;
const REDACTED: &str = "<redacted>";

/// A poisoned lock only means a panic elsewhere; the data is still usable for a test server.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Everything the handlers share.
pub(crate) struct Shared {
    pub cfg: SandboxConfig,
    counts: [AtomicU64; 4],
    records: [Mutex<VecDeque<Record>>; 4],
    faults: [Mutex<VecDeque<Queued>>; 4],
    ledger: Mutex<Ledger>,
    pub qp_window: Mutex<Window>,
    pub splio: splio::SplioState,
}

struct Queued {
    fault: Fault,
    left: u32,
}

/// Every credited row, in order. Crediting is the hot path (a bulk job sends hundreds of
/// thousands of rows), so it only appends; the per-member totals are summed on the rare read.
#[derive(Default)]
struct Ledger {
    awards: Vec<StoredAward>,
}

impl Ledger {
    fn totals(&self) -> HashMap<i64, i64> {
        let mut totals = HashMap::new();
        for a in &self.awards {
            let t: &mut i64 = totals.entry(a.panel_member_id).or_default();
            *t = t.saturating_add(a.points);
        }
        totals
    }
}

/// An award as stored: the rows of one request share one request id.
pub(crate) struct StoredAward {
    pub panel_member_id: i64,
    pub points: i64,
    /// Shared between consecutive rows with the same comment (a job usually has one).
    pub comments: Option<Arc<str>>,
    pub request_id: Arc<str>,
}

impl StoredAward {
    fn to_award(&self) -> Award {
        Award {
            panel_member_id: self.panel_member_id,
            points: self.points,
            comments: self.comments.as_deref().map(str::to_string),
            request_id: self.request_id.to_string(),
        }
    }
}

impl Shared {
    pub fn new(cfg: SandboxConfig) -> Self {
        Shared {
            cfg,
            counts: Default::default(),
            records: Default::default(),
            faults: Default::default(),
            ledger: Default::default(),
            qp_window: Default::default(),
            splio: splio::SplioState::default(),
        }
    }

    pub fn inject(&self, route: Route, fault: Fault) {
        let left = fault.times.max(1);
        lock(&self.faults[route.index()]).push_back(Queued { fault, left });
    }

    pub fn clear_faults(&self) {
        for q in &self.faults {
            lock(q).clear();
        }
    }

    fn take_fault(&self, route: Route) -> Option<Fault> {
        let mut q = lock(&self.faults[route.index()]);
        let front = q.front_mut()?;
        front.left -= 1;
        if front.left == 0 {
            q.pop_front().map(|f| f.fault)
        } else {
            Some(front.fault.clone())
        }
    }

    pub fn request_count(&self, route: Route) -> u64 {
        self.counts[route.index()].load(Ordering::Relaxed)
    }

    pub fn requests(&self, route: Route) -> Vec<RecordedRequest> {
        let records: Vec<Record> = lock(&self.records[route.index()]).iter().cloned().collect();
        records.into_iter().map(|r| r.into_recorded(route, &self.cfg.splio_api_key)).collect()
    }

    pub fn ledger(&self) -> BTreeMap<i64, i64> {
        lock(&self.ledger).totals().into_iter().collect()
    }

    pub fn awards(&self) -> Vec<Award> {
        lock(&self.ledger).awards.iter().map(StoredAward::to_award).collect()
    }

    /// Credits every row of one request at once, so a reader never sees half a request.
    pub fn credit(&self, rows: Vec<StoredAward>) {
        lock(&self.ledger).awards.extend(rows);
    }

    pub fn reset(&self) {
        {
            // Cleared, not freed: the next job of the same size then appends without regrowing.
            lock(&self.ledger).awards.clear();
        }
        self.clear_faults();
        for q in &self.records {
            lock(q).clear();
        }
        for c in &self.counts {
            c.store(0, Ordering::Relaxed);
        }
        lock(&self.qp_window).clear();
        self.splio.reset();
    }

    fn record(&self, route: Route, parts: &Parts, body: &Bytes) {
        let limit = self.cfg.record_limit;
        if limit == 0 {
            return;
        }
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| {
                let value = if matches!(k.as_str(), "api-key" | "apikey" | "authorization") {
                    REDACTED.to_string()
                } else {
                    String::from_utf8_lossy(v.as_bytes()).into_owned()
                };
                (k.as_str().to_string(), value)
            })
            .collect();
        // The body is kept as received (a cheap clone of its bytes) and turned into text, and
        // redacted, only when read back: recording must not slow the hot path.
        let rec =
            Record { method: parts.method.to_string(), path: redact_query(&parts.uri), headers, body: body.clone() };
        let mut q = lock(&self.records[route.index()]);
        while q.len() >= limit {
            q.pop_front();
        }
        q.push_back(rec);
    }
}

/// A request as recorded, before it is turned into a [`RecordedRequest`] on read.
#[derive(Clone)]
struct Record {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Record {
    fn into_recorded(self, route: Route, splio_key: &str) -> RecordedRequest {
        let mut body = String::from_utf8_lossy(&self.body).into_owned();
        if route == Route::SplioAuthenticate {
            body = splio::redact_auth_body(&body, splio_key);
        }
        RecordedRequest { method: self.method, path: self.path, headers: self.headers, body }
    }
}

/// Keys in the query string are a thing of QuestionPro's past; keep them out of records too.
fn redact_query(uri: &axum::http::Uri) -> String {
    let Some(query) = uri.query() else { return uri.path().to_string() };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if matches!(k.to_ascii_lowercase().as_str(), "apikey" | "api_key" | "api-key") => {
                format!("{k}={REDACTED}")
            }
            _ => pair.to_string(),
        })
        .collect();
    format!("{}?{}", uri.path(), pairs.join("&"))
}

/// A sliding-window log of accepted requests, for the emulated rate limits.
#[derive(Default)]
pub(crate) struct Window {
    hits: VecDeque<Instant>,
}

impl Window {
    /// Counts the request in and returns how many remain, or refuses it and returns how long
    /// until a slot frees. Refused requests are not counted.
    pub fn admit(&mut self, limit: crate::transport::RateLimit, now: Instant) -> Result<u32, Duration> {
        self.expire(limit.per, now);
        if self.hits.len() >= limit.calls as usize {
            let wait =
                self.hits.front().map_or(limit.per, |&oldest| (oldest + limit.per).saturating_duration_since(now));
            return Err(wait);
        }
        self.hits.push_back(now);
        Ok(limit.calls - self.hits.len() as u32)
    }

    /// Whether the window holds nothing that still counts (so it can be forgotten).
    pub fn is_idle(&mut self, per: Duration, now: Instant) -> bool {
        self.expire(per, now);
        self.hits.is_empty()
    }

    pub fn clear(&mut self) {
        self.hits.clear();
    }

    fn expire(&mut self, per: Duration, now: Instant) {
        while self.hits.front().is_some_and(|&t| now.saturating_duration_since(t) >= per) {
            self.hits.pop_front();
        }
    }
}

/// Whole seconds, rounded up and at least 1, as `Retry-After` wants them.
pub(crate) fn whole_secs(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

/// An answer before it becomes a response, so a fault can reuse the normal answer's parts.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl Reply {
    pub fn raw(status: StatusCode, body: impl Into<Bytes>) -> Reply {
        Reply { status, headers: Vec::new(), body: body.into() }
    }

    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Reply {
        let body = serde_json::to_vec(value).unwrap_or_default();
        Reply::raw(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body)
    }

    pub fn header(mut self, name: &'static str, value: impl ToString) -> Reply {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut res = Response::new(Body::from(self.body));
        *res.status_mut() = self.status;
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // Headers given here replace the defaults of the same name; repeats of one name stay.
        for (k, _) in &self.headers {
            h.remove(k);
        }
        for (k, v) in self.headers {
            h.append(k, v);
        }
        res
    }
}

/// Per-connection data the handlers need: the peer (for per-IP limits) and the signal that
/// closes the connection without an answer.
#[derive(Clone)]
struct ConnCtx {
    kill: Arc<Notify>,
    peer: SocketAddr,
}

pub(crate) async fn accept_loop(listener: TcpListener, router: Router, mut stop: watch::Receiver<u8>) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s != RUNNING) => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::spawn(serve_connection(stream, peer, router.clone(), stop.clone()));
            }
            // Out of file descriptors and the like: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, router: Router, mut stop: watch::Receiver<u8>) {
    let _ = stream.set_nodelay(true);
    let kill = Arc::new(Notify::new());
    let ctx = ConnCtx { kill: kill.clone(), peer };
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ctx.clone());
        router.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    // Returning drops the connection future, which closes the socket with no answer written.
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = kill.notified() => return,
        _ = stop.wait_for(|s| *s != RUNNING) => {}
    }
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        _ = conn => {}
        _ = kill.notified() => {}
        _ = stop.wait_for(|s| *s == STOPPED) => {}
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(questionpro::POINTS_PATH, any(questionpro_points))
        .route("/authenticate", any(splio_authenticate))
        .route("/loyalty/v1/rewards", any(splio_create_reward))
        .route("/loyalty/v1/rewards/{external_id}", any(splio_get_reward))
        .route("/_sandbox/ledger", get(control_ledger))
        .route("/_sandbox/rewards", get(control_rewards))
        .route("/_sandbox/requests", get(control_requests))
        .route("/_sandbox/faults", post(control_add_fault).delete(control_clear_faults))
        .route("/_sandbox/reset", post(control_reset))
        .route("/_sandbox/revoke-tokens", post(control_revoke_tokens))
        .fallback(fallback)
        .with_state(shared)
}

type St = State<Arc<Shared>>;

/// What a vendor handler gets to see of a request.
pub(crate) struct Call {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub peer: SocketAddr,
    /// The `{external_id}` of the get-reward path.
    pub param: String,
}

async fn questionpro_points(State(sh): St, req: Request) -> Response {
    if req.method() != Method::POST {
        return questionpro::not_found(req.uri().path()).into_response();
    }
    handle(sh, Route::QuestionproPoints, req, String::new()).await
}

async fn splio_authenticate(State(sh): St, req: Request) -> Response {
    if req.method() != Method::POST {
        return splio::method_not_allowed().into_response();
    }
    handle(sh, Route::SplioAuthenticate, req, String::new()).await
}

async fn splio_create_reward(State(sh): St, req: Request) -> Response {
    if req.method() != Method::POST {
        return splio::method_not_allowed().into_response();
    }
    handle(sh, Route::SplioCreateReward, req, String::new()).await
}

async fn splio_get_reward(State(sh): St, Path(external_id): Path<String>, req: Request) -> Response {
    if req.method() != Method::GET {
        return splio::method_not_allowed().into_response();
    }
    handle(sh, Route::SplioGetReward, req, external_id).await
}

async fn fallback(req: Request) -> Response {
    let path = req.uri().path();
    if path.starts_with("/a/api/") {
        questionpro::not_found(path).into_response()
    } else {
        splio::not_found().into_response()
    }
}

fn process(sh: &Shared, route: Route, call: &Call) -> Reply {
    match route {
        Route::QuestionproPoints => questionpro::award_points(sh, call),
        Route::SplioAuthenticate => splio::authenticate(sh, call),
        Route::SplioCreateReward => splio::create_reward(sh, call),
        Route::SplioGetReward => splio::get_reward(sh, call),
    }
}

/// Reads, counts and records the request, then answers it normally or as a queued fault says.
async fn handle(sh: Arc<Shared>, route: Route, req: Request, param: String) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return Reply::raw(StatusCode::PAYLOAD_TOO_LARGE, "\"Payload Too Large.\"").into_response();
    };
    sh.counts[route.index()].fetch_add(1, Ordering::Relaxed);
    sh.record(route, &parts, &body);
    let ctx = parts.extensions.get::<ConnCtx>().cloned();
    let peer = ctx.as_ref().map_or(SocketAddr::from(([127, 0, 0, 1], 0)), |c| c.peer);
    let call = Call { headers: parts.headers, body, peer, param };

    let Some(fault) = sh.take_fault(route) else {
        return process(&sh, route, &call).into_response();
    };
    let delay_only = fault.is_delay_only();
    let normal = (fault.process || delay_only).then(|| process(&sh, route, &call));
    if let Some(ms) = fault.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    match (delay_only, normal) {
        (true, Some(normal)) => normal.into_response(),
        (_, normal) => {
            if fault.action == FaultAction::DropConnection {
                if let Some(ctx) = ctx {
                    ctx.kill.notify_one();
                    // The connection task drops this future together with the connection.
                    std::future::pending::<()>().await;
                }
            }
            fault_reply(&sh, route, fault, normal).into_response()
        }
    }
}

fn fault_reply(sh: &Shared, route: Route, fault: Fault, normal: Option<Reply>) -> Reply {
    let status = fault.status.and_then(|s| StatusCode::from_u16(s).ok());
    let mut reply = match fault.action {
        FaultAction::UnreadableBody => {
            let body = fault.body.unwrap_or_else(|| truncated_body(route).to_string());
            Reply::raw(status.unwrap_or(StatusCode::OK), body)
        }
        _ => {
            let status = status.or(normal.as_ref().map(|n| n.status)).unwrap_or(StatusCode::OK);
            match (fault.body, normal) {
                (Some(body), _) => Reply::raw(status, body),
                (None, _) if status.as_u16() >= 400 => default_error(sh, route, status.as_u16(), fault.retry_after),
                (None, Some(normal)) => Reply { status, ..normal },
                (None, None) => Reply::raw(status, "{}"),
            }
        }
    };
    if let Some(secs) = fault.retry_after {
        reply = reply.header("retry-after", secs);
    }
    for (k, v) in &fault.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::try_from(v.as_str())) {
            reply.headers.retain(|(name, _)| *name != k);
            reply.headers.push((k, v));
        }
    }
    reply
}

fn default_error(sh: &Shared, route: Route, status: u16, retry_after: Option<u64>) -> Reply {
    match route {
        Route::QuestionproPoints => questionpro::default_error(status),
        _ => splio::default_error(sh, status, retry_after),
    }
}

/// A success body cut off mid-way, as a connection that broke while answering leaves it.
fn truncated_body(route: Route) -> &'static str {
    match route {
        Route::QuestionproPoints => r#"{"response": {"successCount": "#,
        Route::SplioAuthenticate => r#"{"token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."#,
        Route::SplioCreateReward | Route::SplioGetReward => r#"{"auto_generated": false, "custom_fields": ["#,
    }
}

async fn control_ledger(State(sh): St) -> Response {
    let (ledger, awards) = {
        let l = lock(&sh.ledger);
        let totals: BTreeMap<i64, i64> = l.totals().into_iter().collect();
        let ledger: serde_json::Map<String, Value> =
            totals.iter().map(|(id, pts)| (id.to_string(), Value::from(*pts))).collect();
        let awards: Vec<Award> = l.awards.iter().map(StoredAward::to_award).collect();
        (ledger, awards)
    };
    let total = ledger.values().filter_map(Value::as_i64).fold(0i64, i64::saturating_add);
    Reply::json(200, &json!({"ledger": ledger, "awards": awards, "total_points": total})).into_response()
}

async fn control_rewards(State(sh): St) -> Response {
    Reply::json(200, &sh.splio.rewards()).into_response()
}

/// `?route=NAME` adds that route's recorded requests to the counts.
async fn control_requests(State(sh): St, req: Request) -> Response {
    let counts: serde_json::Map<String, Value> =
        Route::ALL.iter().map(|r| (r.as_str().to_string(), Value::from(sh.request_count(*r)))).collect();
    let wanted = req.uri().query().unwrap_or("").split('&').find_map(|pair| pair.strip_prefix("route="));
    match wanted {
        None => Reply::json(200, &json!({ "counts": counts })).into_response(),
        Some(name) => match Route::ALL.into_iter().find(|r| r.as_str() == name) {
            Some(route) => {
                Reply::json(200, &json!({ "counts": counts, "requests": sh.requests(route) })).into_response()
            }
            None => Reply::json(400, &json!({"error": format!("unknown route {name:?}")})).into_response(),
        },
    }
}

#[derive(Deserialize)]
struct FaultSpec {
    route: Route,
    #[serde(flatten)]
    fault: Fault,
}

async fn control_add_fault(State(sh): St, body: Bytes) -> Response {
    let spec = match serde_json::from_slice::<FaultSpec>(&body) {
        Ok(spec) => spec,
        Err(e) => return Reply::json(400, &json!({"error": format!("invalid fault: {e}")})).into_response(),
    };
    if let Some(s) = spec.fault.status {
        if StatusCode::from_u16(s).is_err() {
            return Reply::json(400, &json!({"error": format!("invalid status {s}")})).into_response();
        }
    }
    for (k, v) in &spec.fault.headers {
        if HeaderName::try_from(k.as_str()).is_err() || HeaderValue::try_from(v.as_str()).is_err() {
            return Reply::json(400, &json!({"error": format!("invalid header {k:?}")})).into_response();
        }
    }
    sh.inject(spec.route, spec.fault);
    StatusCode::NO_CONTENT.into_response()
}

async fn control_clear_faults(State(sh): St) -> Response {
    sh.clear_faults();
    StatusCode::NO_CONTENT.into_response()
}

async fn control_reset(State(sh): St) -> Response {
    sh.reset();
    StatusCode::NO_CONTENT.into_response()
}

async fn control_revoke_tokens(State(sh): St) -> Response {
    sh.splio.revoke_tokens();
    StatusCode::NO_CONTENT.into_response()
}
