//! QuestionPro API v2: award (or deduct) points to micropanel members.

mod rows;

pub(crate) use rows::encode_rows;
pub use rows::{rows_from_values, validate_rows, Cell, DuplicateCheck, PointsAward, COMMENTS_KEYS, MEMBER_ID_KEYS};

use crate::error::{Error, UnknownCause, Vendor};
use crate::transport::{self, Safety, Transport, TransportOptions};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// The environment variable the API key is read from when none is given.
pub const API_KEY_ENV: &str = "QUESTIONPRO_API_KEY";
/// The path of the points endpoint, relative to the base URL.
pub const POINTS_PATH: &str = "a/api/v2/micropanel/members/points";

/// A QuestionPro datacenter; each serves `https://api.questionpro.{code}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Datacenter {
    /// United States (`.com`).
    #[default]
    Com,
    /// Europe.
    Eu,
    /// Canada.
    Ca,
    /// Australia.
    Au,
    /// United Arab Emirates.
    Ae,
    /// Singapore.
    Sg,
}

impl Datacenter {
    /// Every datacenter.
    pub const ALL: [Datacenter; 6] = [Self::Com, Self::Eu, Self::Ca, Self::Au, Self::Ae, Self::Sg];

    /// The short code (`com`, `eu`, ...).
    pub fn code(self) -> &'static str {
        match self {
            Self::Com => "com",
            Self::Eu => "eu",
            Self::Ca => "ca",
            Self::Au => "au",
            Self::Ae => "ae",
            Self::Sg => "sg",
        }
    }

    /// The API's base URL in this datacenter.
    pub fn base_url(self) -> String {
        format!("https://api.questionpro.{}", self.code())
    }
}

impl fmt::Display for Datacenter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Datacenter {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim().trim_start_matches('.').to_ascii_lowercase();
        Datacenter::ALL.into_iter().find(|d| d.code() == s).ok_or_else(|| {
            Error::Config(format!(
                "unknown datacenter {s:?}: expected one of com, eu, ca, au, ae, sg (or pass a base URL)"
            ))
        })
    }
}

/// An item of the answer's `skipped` list. Its shape is not documented, so the raw JSON is
/// kept; `panel_member_id` and `row` are filled in when the item names a member.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkippedItem {
    pub raw: Value,
    pub panel_member_id: Option<i64>,
    /// Index of the sent row this item refers to.
    pub row: Option<usize>,
}

/// The answer to one points request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AwardResult {
    pub success_count: u64,
    pub skipped: Vec<SkippedItem>,
    pub request_id: Option<String>,
}

/// The QuestionPro client. Cheap to clone; clones share the connection pool and the pacer.
#[derive(Clone)]
pub struct QuestionPro {
    transport: Transport,
    // Marked sensitive so the HTTP stack never logs it or adds it to HTTP/2 header tables.
    api_key: reqwest::header::HeaderValue,
    allow_duplicates: bool,
}

impl fmt::Debug for QuestionPro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuestionPro")
            .field("base_url", &self.transport.url("").as_str())
            .field("api_key", &"<redacted>")
            .finish()
    }
}

/// Builds a [`QuestionPro`] client.
#[derive(Clone, Default)]
pub struct QuestionProBuilder {
    api_key: Option<String>,
    datacenter: Datacenter,
    base_url: Option<String>,
    opts: Option<TransportOptions>,
    allow_duplicates: bool,
}

impl fmt::Debug for QuestionProBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuestionProBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("datacenter", &self.datacenter)
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl QuestionProBuilder {
    transport::builder_setters!(TransportOptions::questionpro);

    /// The API key; without it, `QUESTIONPRO_API_KEY` is read.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }
    /// The datacenter (default `com`).
    pub fn datacenter(mut self, dc: Datacenter) -> Self {
        self.datacenter = dc;
        self
    }
    /// A full base URL, for regions on other hosts, a proxy, or the sandbox. Wins over the datacenter.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }
    /// Allow one member id to appear more than once in a submission (default: an error).
    pub fn allow_duplicates(mut self, yes: bool) -> Self {
        self.allow_duplicates = yes;
        self
    }
    /// Builds the client. Fails when no key is given or found, or the base URL is not allowed.
    pub fn build(self) -> Result<QuestionPro, Error> {
        let api_key = match self.api_key.filter(|k| !k.trim().is_empty()) {
            Some(k) => k,
            None => std::env::var(API_KEY_ENV)
                .ok()
                .filter(|k| !k.trim().is_empty())
                .ok_or_else(|| Error::Config(format!("no QuestionPro API key: pass one or set {API_KEY_ENV}")))?,
        };
        let mut key_header = reqwest::header::HeaderValue::from_str(api_key.trim())
            .map_err(|_| Error::Config("the QuestionPro API key contains characters a header cannot carry".into()))?;
        key_header.set_sensitive(true);
        let raw = self.base_url.unwrap_or_else(|| self.datacenter.base_url());
        let base = transport::check_base_url(&raw)?;
        let opts = self.opts.unwrap_or_else(TransportOptions::questionpro);
        let transport = Transport::new(Vendor::QuestionPro, base, opts, &key_fingerprint(&api_key))?;
        Ok(QuestionPro { transport, api_key: key_header, allow_duplicates: self.allow_duplicates })
    }
}

/// A stable, non-reversible tag for a key, so pacers can be shared per key without keeping it.
pub(crate) fn key_fingerprint(key: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    format!("{:016x}", h.finish())
}

impl QuestionPro {
    /// A builder; see its methods for every option.
    pub fn builder() -> QuestionProBuilder {
        QuestionProBuilder::default()
    }

    /// A client for the `com` datacenter with this key.
    pub fn new(api_key: impl Into<String>) -> Result<Self, Error> {
        Self::builder().api_key(api_key).build()
    }

    /// A client for the `com` datacenter with the key from `QUESTIONPRO_API_KEY`.
    pub fn from_env() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> String {
        self.transport.url("").to_string()
    }

    /// Sends one points request for `rows` (validated first; nothing is sent if any row is
    /// bad). Re-sent only if it provably was not processed; see the crate docs.
    pub async fn award_points(&self, rows: &[PointsAward]) -> Result<AwardResult, Error> {
        if rows.is_empty() {
            return Err(Error::Validation(vec![crate::FieldError::new(
                "rows",
                "is_blank",
                "There are no rows to send.",
            )]));
        }
        let errs = validate_rows(rows, self.allow_duplicates);
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        self.send_points(rows).await
    }

    /// [`QuestionPro::award_points`] for untyped rows (what the bindings and the CLI read).
    pub async fn award_points_values(&self, rows: &[Value]) -> Result<AwardResult, Error> {
        let rows = rows_from_values(rows, self.allow_duplicates).map_err(Error::Validation)?;
        self.award_points(&rows).await
    }

    /// Sends already validated rows.
    pub(crate) async fn send_points(&self, rows: &[PointsAward]) -> Result<AwardResult, Error> {
        self.send_points_encoded(rows, rows::encode_rows(rows).into(), &|| {}).await
    }

    /// Sends already validated rows whose JSON body (from `rows::encode_rows`) is in hand,
    /// calling `before_send` right before each attempt. The body is shared, not copied, by
    /// every attempt.
    pub(crate) async fn send_points_encoded(
        &self,
        rows: &[PointsAward],
        body: bytes::Bytes,
        before_send: &(dyn Fn() + Send + Sync),
    ) -> Result<AwardResult, Error> {
        let key = &self.api_key;
        let ans = self
            .transport
            .send_observed(
                Method::POST,
                POINTS_PATH,
                Safety::Unsafe,
                |r| {
                    r.header("api-key", key.clone())
                        .header("content-type", "application/json")
                        .header("accept", "application/json")
                        .body(body.clone())
                },
                before_send,
            )
            .await?;
        if !ans.status.is_success() {
            return Err(ans.into_error(Vendor::QuestionPro));
        }
        parse_award(&ans.body, rows).map_err(|why| {
            transport::unknown(
                UnknownCause::UnreadableBody,
                format!("QuestionPro answered {} but the body could not be understood: {why}", ans.status.as_u16()),
                Some(&ans),
            )
        })
    }
}

#[derive(Deserialize)]
struct Envelope {
    response: Payload,
    #[serde(rename = "requestID")]
    request_id: Option<Value>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "successCount")]
    success_count: u64,
    #[serde(default)]
    skipped: Vec<Value>,
}

fn parse_award(body: &[u8], rows: &[PointsAward]) -> Result<AwardResult, String> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    // With duplicates allowed, one member can be skipped on several rows: each item claims
    // the next row of that member not claimed yet.
    let mut claimed = vec![false; rows.len()];
    let skipped = env
        .response
        .skipped
        .into_iter()
        .map(|raw| {
            let panel_member_id = skipped_member_id(&raw);
            let row = panel_member_id.and_then(|id| {
                let i = (0..rows.len()).find(|&i| !claimed[i] && rows[i].panel_member_id == id)?;
                claimed[i] = true;
                Some(i)
            });
            SkippedItem { raw, panel_member_id, row }
        })
        .collect();
    let request_id = env.request_id.and_then(|v| match v {
        Value::String(s) => Some(s),
        Value::Null => None,
        other => Some(other.to_string()),
    });
    Ok(AwardResult { success_count: env.response.success_count, skipped, request_id })
}

/// A skipped item may be a bare id, or an object naming the member under one of its spellings.
fn skipped_member_id(v: &Value) -> Option<i64> {
    let as_id = |v: &Value| v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()));
    match v {
        Value::Object(o) => ["panelMemberID", "panelMemberId", "panel_member_id", "memberID", "id"]
            .iter()
            .find_map(|k| o.get(*k).and_then(as_id)),
        other => as_id(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn datacenters_and_urls() {
        assert_eq!(Datacenter::Eu.base_url(), "https://api.questionpro.eu");
        assert_eq!("SG".parse::<Datacenter>().unwrap(), Datacenter::Sg);
        assert!(matches!("uk".parse::<Datacenter>(), Err(Error::Config(_))));
    }

    #[test]
    fn skipped_items_map_back_to_rows() {
        let rows = [PointsAward::new(7, 1), PointsAward::new(9, 1)];
        let body = json!({"response": {"successCount": 0, "skipped": [{"panelMemberID": 9, "reason": "x"}, "7", {"other": 1}]}, "requestID": "r"});
        let r = parse_award(body.to_string().as_bytes(), &rows).unwrap();
        assert_eq!(r.skipped[0].row, Some(1));
        assert_eq!(r.skipped[1].row, Some(0));
        assert_eq!(r.skipped[2].panel_member_id, None);
        assert_eq!(r.request_id.as_deref(), Some("r"));
    }

    #[test]
    fn debug_hides_the_key() {
        let qp = QuestionPro::builder().api_key("very-secret").base_url("http://127.0.0.1:9").build().unwrap();
        assert!(!format!("{qp:?}").contains("very-secret"));
    }
}
