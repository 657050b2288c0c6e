//! The offline sandbox server, for tests and demos.
//!
//! The server runs as a task on napi's tokio runtime: it holds no libuv handle, so it never
//! keeps Node's event loop (or a worker) alive. `close()` stops it gracefully; dropping the
//! JavaScript object stops it too.

use crate::convert::{self, Options};
use crate::errors::{self, to_napi};
use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use rewardkit::sandbox::{Fault, FaultAction, Members, Route, Sandbox, SandboxConfig};
use rewardkit::splio::Reward;
use rewardkit::RateLimit;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Mutex, MutexGuard};

/// A running sandbox. Made by `startSandbox`.
#[napi(js_name = "Sandbox")]
pub struct SandboxHandle {
    url: String,
    questionpro_api_key: String,
    splio_api_key: String,
    inner: Mutex<Option<Sandbox>>,
}

/// Starts a sandbox on a free loopback port. `options`: JSON of `{port, questionproApiKey,
/// splioApiKey, tokenTtl (ms), members, rateLimits, recordLimit}`.
#[napi]
pub async fn start_sandbox(options: String) -> napi::Result<SandboxHandle> {
    crate::init_logging();
    let cfg = config(&options)?;
    let sb = Sandbox::start_with(cfg).await.map_err(to_napi)?;
    Ok(SandboxHandle {
        url: sb.url(),
        questionpro_api_key: sb.questionpro_api_key().to_string(),
        splio_api_key: sb.splio_api_key().to_string(),
        inner: Mutex::new(Some(sb)),
    })
}

fn config(options: &str) -> napi::Result<SandboxConfig> {
    let mut o = Options::parse("Sandbox", options)?;
    let mut cfg = SandboxConfig::default();
    if let Some(port) = o.uint("port")? {
        let port = u16::try_from(port).map_err(|_| errors::config("Sandbox option `port` must be 0 to 65535"))?;
        cfg.addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    }
    if let Some(k) = o.string("questionproApiKey")? {
        cfg.questionpro_api_key = k;
    }
    if let Some(k) = o.string("splioApiKey")? {
        cfg.splio_api_key = k;
    }
    if let Some(ttl) = o.millis("tokenTtl")? {
        cfg.token_ttl = ttl;
    }
    if let Some(n) = o.uint("recordLimit")? {
        cfg.record_limit = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(m) = o.value("members") {
        cfg.members = members(&m)
            .ok_or_else(|| errors::config("Sandbox option `members` must be 'all', {from, to} or an array of ids"))?;
    }
    if let Some(r) = o.value("rateLimits") {
        let (qp, sp) = rate_limits(&r).ok_or_else(|| {
            errors::config(
                "Sandbox option `rateLimits` must be a boolean or {questionpro, splio}, each true, false or {calls, perMs}",
            )
        })?;
        cfg.questionpro_rate_limit = qp;
        cfg.splio_rate_limit = sp;
    }
    o.finish()?;
    Ok(cfg)
}

fn members(v: &Value) -> Option<Members> {
    match v {
        Value::String(s) if s == "all" => Some(Members::All),
        Value::Object(o) if o.len() == 2 => Some(Members::Range(o.get("from")?.as_i64()?, o.get("to")?.as_i64()?)),
        Value::Array(ids) => ids.iter().map(Value::as_i64).collect::<Option<HashSet<i64>>>().map(Members::Set),
        _ => None,
    }
}

/// `true` enforces both vendors' published limits; an object sets each one.
fn rate_limits(v: &Value) -> Option<(Option<RateLimit>, Option<RateLimit>)> {
    let one = |v: Option<&Value>, published: RateLimit| match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Some(None),
        Some(Value::Bool(true)) => Some(Some(published)),
        Some(other) => convert::rate_of(other).map(Some),
    };
    match v {
        Value::Bool(true) => Some((Some(RateLimit::QUESTIONPRO), Some(RateLimit::SPLIO))),
        Value::Bool(false) => Some((None, None)),
        Value::Object(o) if o.keys().all(|k| k == "questionpro" || k == "splio") => {
            Some((one(o.get("questionpro"), RateLimit::QUESTIONPRO)?, one(o.get("splio"), RateLimit::SPLIO)?))
        }
        _ => None,
    }
}

fn route(name: &str) -> napi::Result<Route> {
    Route::ALL.into_iter().find(|r| r.as_str() == name).ok_or_else(|| {
        let names: Vec<_> = Route::ALL.iter().map(|r| r.as_str()).collect();
        errors::config(format!("unknown sandbox route {name:?}; the routes are: {}", names.join(", ")))
    })
}

/// `{status, body, headers, retryAfter, delayMs, action, process, times}`.
fn fault(text: &str) -> napi::Result<Fault> {
    let mut o = Options::parse("fault", text)?;
    let mut f = Fault::default();
    if let Some(s) = o.uint("status")? {
        f.status = Some(u16::try_from(s).map_err(|_| errors::config("fault option `status` must be an HTTP status"))?);
    }
    f.body = o.string("body")?;
    if let Some(h) = o.value("headers") {
        f.headers = headers(&h).ok_or_else(|| {
            errors::config("fault option `headers` must be an object of strings or an array of [name, value] pairs")
        })?;
    }
    f.retry_after = o.uint("retryAfter")?;
    f.delay_ms = o.uint("delayMs")?;
    if let Some(a) = o.string("action")? {
        f.action = serde_json::from_value::<FaultAction>(Value::String(a)).map_err(|_| {
            errors::config("fault option `action` must be 'respond', 'drop_connection' or 'unreadable_body'")
        })?;
    }
    f.process = o.bool("process")?.unwrap_or(false);
    if let Some(n) = o.uint("times")? {
        f.times = u32::try_from(n).unwrap_or(u32::MAX);
    }
    o.finish()?;
    Ok(f)
}

fn headers(v: &Value) -> Option<Vec<(String, String)>> {
    match v {
        Value::Object(o) => o.iter().map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect(),
        Value::Array(pairs) => pairs
            .iter()
            .map(|p| match p.as_array()?.as_slice() {
                [k, v] => Some((k.as_str()?.to_string(), v.as_str()?.to_string())),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

#[napi]
impl SandboxHandle {
    /// The base URL, `http://127.0.0.1:PORT`.
    #[napi(getter)]
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The QuestionPro API key the sandbox accepts.
    #[napi(getter)]
    pub fn questionpro_api_key(&self) -> String {
        self.questionpro_api_key.clone()
    }

    /// The Splio API key the sandbox accepts.
    #[napi(getter)]
    pub fn splio_api_key(&self) -> String {
        self.splio_api_key.clone()
    }

    /// Whether `close()` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.lock().is_none()
    }

    fn lock(&self) -> MutexGuard<'_, Option<Sandbox>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with<T>(&self, f: impl FnOnce(&Sandbox) -> T) -> napi::Result<T> {
        match self.lock().as_ref() {
            Some(sb) => Ok(f(sb)),
            None => Err(errors::config("the sandbox is closed")),
        }
    }

    /// Queues a fault for the next `times` requests to `route`. `fault`: JSON.
    #[napi]
    pub fn inject(&self, route_name: String, fault_json: String) -> napi::Result<()> {
        let (r, f) = (route(&route_name)?, fault(&fault_json)?);
        self.with(|sb| sb.inject(r, f))
    }

    /// Removes every queued fault.
    #[napi]
    pub fn clear_faults(&self) -> napi::Result<()> {
        self.with(Sandbox::clear_faults)
    }

    /// How many requests `route` received since start or reset.
    #[napi]
    pub fn request_count(&self, route_name: String) -> napi::Result<f64> {
        let r = route(&route_name)?;
        self.with(|sb| sb.request_count(r) as f64)
    }

    /// The recent requests to `route`, oldest first, secrets redacted:
    /// `[{method, path, headers: {name: value}, body}]`.
    #[napi]
    pub fn requests(&self, route_name: String) -> napi::Result<Value> {
        let r = route(&route_name)?;
        self.with(|sb| {
            let list = sb.requests(r).into_iter().map(|req| {
                let mut headers = Map::new();
                for (k, v) in req.headers {
                    match headers.get_mut(&k) {
                        Some(Value::String(prev)) => {
                            prev.push_str(", ");
                            prev.push_str(&v);
                        }
                        _ => {
                            headers.insert(k, Value::String(v));
                        }
                    }
                }
                json!({"method": req.method, "path": req.path, "headers": headers, "body": req.body})
            });
            Value::Array(list.collect())
        })
    }

    /// Points credited per panel member id: `{"12345678": 100}`.
    #[napi]
    pub fn ledger(&self) -> napi::Result<Value> {
        self.with(|sb| Value::Object(sb.ledger().into_iter().map(|(id, pts)| (id.to_string(), json!(pts))).collect()))
    }

    /// Every credited row: `[{panelMemberId, points, comments, requestId}]`.
    #[napi]
    pub fn awards(&self) -> napi::Result<Value> {
        self.with(|sb| convert::records(&sb.awards()))
    }

    /// Every created reward, as `getReward` would return it.
    #[napi]
    pub fn rewards(&self) -> napi::Result<Value> {
        self.with(|sb| {
            let list = sb.rewards().into_iter().map(|v| match serde_json::from_value::<Reward>(v.clone()) {
                Ok(r) => convert::reward_output(&r),
                Err(_) => v,
            });
            Value::Array(list.collect())
        })
    }

    /// Invalidates every Splio token issued so far.
    #[napi]
    pub fn revoke_tokens(&self) -> napi::Result<()> {
        self.with(Sandbox::revoke_tokens)
    }

    /// Clears the ledger, awards, rewards, faults, recorded requests and counters.
    #[napi]
    pub fn reset(&self) -> napi::Result<()> {
        self.with(Sandbox::reset)
    }

    /// Stops the server: no new connections, requests in flight finish (up to 5 s). Calling
    /// it again does nothing.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let sb = self.lock().take();
        env.spawn_future(async move {
            if let Some(sb) = sb {
                sb.shutdown().await;
            }
            Ok(())
        })
    }
}
