//! Translation between JavaScript's shapes and the core's: reading JSON text from the
//! wrapper, camelCase <-> the vendors' snake_case names, client options, and the results.
//! No vendor rule lives here; the core applies them all.

use crate::errors;
use rewardkit::questionpro::AwardResult;
use rewardkit::splio::Reward;
use rewardkit::RateLimit;
use serde_json::{Map, Value};
use std::time::Duration;

/// Parses JSON text made by the JavaScript wrapper.
pub fn parse(text: &str) -> napi::Result<Value> {
    serde_json::from_str(text)
        .map_err(|e| napi::Error::new(napi::Status::InvalidArg, format!("rewardkit: bad JSON from the wrapper: {e}")))
}

/// `externalId` -> `external_id`.
pub fn camel_to_snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `external_id` -> `externalId`.
pub fn snake_to_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' && !out.is_empty() {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A reward as the user wrote it (camelCase, snake_case or both) with the vendor's names:
/// a camelCase key that names a reward field becomes that field's name. When both spellings
/// of one field are given, the vendor's (snake_case) one is kept. Other keys are left alone.
pub fn reward_input(v: Value) -> Value {
    let Value::Object(obj) = v else { return v };
    let mut out = Map::with_capacity(obj.len());
    let mut renamed = Vec::new();
    for (k, v) in obj {
        let snake = camel_to_snake(&k);
        if snake != k && rewardkit::splio::validate::field_names().any(|f| f == snake) {
            renamed.push((snake, v));
        } else {
            out.insert(k, v);
        }
    }
    for (k, v) in renamed {
        out.entry(k).or_insert(v);
    }
    Value::Object(out)
}

/// Top-level keys in camelCase.
fn camel_keys(v: Value) -> Value {
    match v {
        Value::Object(obj) => Value::Object(obj.into_iter().map(|(k, v)| (snake_to_camel(&k), v)).collect()),
        other => other,
    }
}

/// A reward as Node sees it: the core's fields (and any extra ones Splio sent) in camelCase.
pub fn reward_output(r: &Reward) -> Value {
    camel_keys(serde_json::to_value(r).unwrap_or(Value::Null))
}

/// `{successCount, skipped: [{raw, panelMemberId, row}], requestId}`.
pub fn award_result(r: &AwardResult) -> Value {
    let mut v = camel_keys(serde_json::to_value(r).unwrap_or(Value::Null));
    if let Some(Value::Array(items)) = v.get_mut("skipped") {
        for item in items.iter_mut() {
            *item = camel_keys(item.take());
        }
    }
    v
}

/// Any serializable core value with camelCase keys at the top level, for lists of records.
pub fn records<T: serde::Serialize>(items: &[T]) -> Value {
    Value::Array(items.iter().map(|i| camel_keys(serde_json::to_value(i).unwrap_or(Value::Null))).collect())
}

/// An options object, read key by key; [`Options::finish`] refuses keys nobody asked for, so
/// a typo (`apikey`) is an error instead of a silent fallback to the environment.
pub struct Options {
    what: &'static str,
    map: Map<String, Value>,
    known: Vec<&'static str>,
}

impl Options {
    /// Reads `text` (JSON of an object, or `null` for none).
    pub fn parse(what: &'static str, text: &str) -> napi::Result<Options> {
        let map = match parse(text)? {
            Value::Null => Map::new(),
            Value::Object(m) => m,
            _ => return Err(errors::config(format!("{what} options must be an object"))),
        };
        Ok(Options { what, map, known: Vec::new() })
    }

    /// The value of `key`; `null` counts as absent.
    pub fn value(&mut self, key: &'static str) -> Option<Value> {
        self.known.push(key);
        self.map.remove(key).filter(|v| !v.is_null())
    }

    /// The value of `key`, including `null`, or `None` when the key is absent.
    fn take_raw(&mut self, key: &'static str) -> Option<Value> {
        self.known.push(key);
        self.map.remove(key)
    }

    fn bad(&self, key: &str, expected: &str) -> napi::Error {
        // Never shows the value: it could be a key.
        errors::config(format!("{} option `{key}` must be {expected}", self.what))
    }

    pub fn string(&mut self, key: &'static str) -> napi::Result<Option<String>> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.bad(key, "a string")),
        }
    }

    pub fn bool(&mut self, key: &'static str) -> napi::Result<Option<bool>> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(self.bad(key, "a boolean")),
        }
    }

    pub fn uint(&mut self, key: &'static str) -> napi::Result<Option<u64>> {
        match self.value(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| self.bad(key, "a whole number of 0 or more")),
        }
    }

    /// A duration given in milliseconds.
    pub fn millis(&mut self, key: &'static str) -> napi::Result<Option<Duration>> {
        match self.value(key) {
            None => Ok(None),
            Some(v) => millis_of(&v).map(Some).ok_or_else(|| self.bad(key, "a number of milliseconds (0 or more)")),
        }
    }

    /// `false` or `null` turn pacing off; `{calls, perMs}` sets a rate; absent keeps the default.
    pub fn rate_limit(&mut self, key: &'static str) -> napi::Result<Option<Option<RateLimit>>> {
        match self.take_raw(key) {
            None => Ok(None),
            Some(Value::Null | Value::Bool(false)) => Ok(Some(None)),
            Some(v) => rate_of(&v)
                .map(|r| Some(Some(r)))
                .ok_or_else(|| self.bad(key, "false (no pacing) or {calls, perMs} with calls >= 1 and perMs > 0")),
        }
    }

    /// Errors on any key that was not read.
    pub fn finish(self) -> napi::Result<()> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(errors::config(format!(
                "unknown {} option `{k}`; the options are: {}",
                self.what,
                self.known.join(", ")
            ))),
        }
    }
}

fn millis_of(v: &Value) -> Option<Duration> {
    let ms = v.as_f64().filter(|ms| ms.is_finite() && *ms >= 0.0)?;
    Some(Duration::from_secs_f64(ms.min(1e12) / 1000.0))
}

/// `{calls, perMs}`.
pub fn rate_of(v: &Value) -> Option<RateLimit> {
    let o = v.as_object()?;
    if o.keys().any(|k| k != "calls" && k != "perMs") {
        return None;
    }
    let calls = o.get("calls")?.as_u64().filter(|c| *c >= 1)?;
    let per = millis_of(o.get("perMs")?).filter(|d| !d.is_zero())?;
    Some(RateLimit::new(u32::try_from(calls).ok()?, per))
}

/// The transport options both clients take, applied to a builder with the same setters.
pub struct TransportOpts {
    pub timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub max_retries: Option<u32>,
    pub backoff: Option<(Duration, Duration)>,
    pub max_retry_wait: Option<Duration>,
    pub rate_limit: Option<Option<RateLimit>>,
}

impl TransportOpts {
    pub fn read(o: &mut Options) -> napi::Result<TransportOpts> {
        let max_retries = match o.uint("maxRetries")? {
            None => None,
            Some(n) => Some(u32::try_from(n).map_err(|_| o.bad("maxRetries", "at most 4294967295"))?),
        };
        let backoff = match o.value("backoff") {
            None => None,
            Some(v) => {
                let read = |k: &str| v.as_object().and_then(|m| m.get(k)).and_then(millis_of);
                let ok = v.as_object().is_some_and(|m| m.keys().all(|k| k == "baseMs" || k == "maxMs"));
                match (read("baseMs"), read("maxMs")) {
                    (Some(base), Some(max)) if ok => Some((base, max)),
                    _ => return Err(o.bad("backoff", "{baseMs, maxMs}, both numbers of milliseconds")),
                }
            }
        };
        Ok(TransportOpts {
            timeout: o.millis("timeout")?,
            connect_timeout: o.millis("connectTimeout")?,
            max_retries,
            backoff,
            max_retry_wait: o.millis("maxRetryWait")?,
            rate_limit: o.rate_limit("rateLimit")?,
        })
    }
}

/// Applies [`TransportOpts`] to a client builder (both builders share these setters).
macro_rules! apply_transport {
    ($builder:expr, $t:expr) => {{
        let t = $t;
        let mut b = $builder;
        if let Some(d) = t.timeout {
            b = b.timeout(d);
        }
        if let Some(d) = t.connect_timeout {
            b = b.connect_timeout(d);
        }
        if let Some(n) = t.max_retries {
            b = b.max_retries(n);
        }
        if let Some((base, max)) = t.backoff {
            b = b.backoff(base, max);
        }
        if let Some(d) = t.max_retry_wait {
            b = b.max_retry_wait(d);
        }
        if let Some(r) = t.rate_limit {
            b = b.rate_limit(r);
        }
        b
    }};
}
pub(crate) use apply_transport;
