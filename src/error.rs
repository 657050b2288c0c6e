//! The one error type of rewardkit, and the parsing of both vendors' error bodies.
//!
//! Every failure is an [`Error`] whose variant names the class users see in Python and Node
//! (`BadRequestError`, `RateLimitError`, `OutcomeUnknownError`, ...). Whatever a vendor's
//! error body holds — QuestionPro's envelope, Splio's wrapped, flat or bare-string shapes, or
//! something that is not JSON at all — is read into an [`ApiError`].

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// One problem with one field: `key` is the vendor's field name, `code` the vendor's error
/// code (`is_blank`, `wrong_type`, ...), `row` the input row for bulk input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub key: String,
    pub code: String,
    pub description: String,
    /// Index of the input row (0-based) when the error belongs to one row of many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<usize>,
}

impl FieldError {
    /// A field error that belongs to no particular row.
    pub fn new(key: impl Into<String>, code: impl Into<String>, description: impl Into<String>) -> Self {
        FieldError { key: key.into(), code: code.into(), description: description.into(), row: None }
    }

    /// The same error, tied to input row `row`.
    pub fn at_row(mut self, row: usize) -> Self {
        self.row = Some(row);
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(row) = self.row {
            write!(f, "row {row}: ")?;
        }
        write!(f, "{}: {}", self.key, self.code)?;
        if !self.description.is_empty() {
            write!(f, " ({})", self.description)?;
        }
        Ok(())
    }
}

/// Which vendor answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    QuestionPro,
    Splio,
}

/// What a vendor said when it answered with an error status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiError {
    pub vendor: Vendor,
    /// The HTTP status code.
    pub status: u16,
    /// The vendor's request id (QuestionPro `requestID`, or a request-id header).
    pub request_id: Option<String>,
    /// The vendor's error id (QuestionPro `id`, e.g. `"1010"`), always as a string.
    pub error_id: Option<String>,
    /// The vendor's error name (QuestionPro `name`, e.g. `"UNAUTHORIZED"`).
    pub name: Option<String>,
    /// A human-readable message: the vendor's, or one made from the status.
    pub message: String,
    /// QuestionPro's `docs` link, when given.
    pub docs: Option<String>,
    /// Field errors (Splio `errors` / flat `error_key` bodies).
    pub errors: Vec<FieldError>,
    /// The raw response body, as text (lossy UTF-8), at most 64 KiB.
    pub body: String,
    /// How long the server asked us to wait (`Retry-After`, Splio `rateLimit-reset`).
    pub retry_after: Option<Duration>,
}

/// Why an outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownCause {
    /// The request was sent and no answer came in time.
    Timeout,
    /// The connection broke after the request was sent.
    ConnectionLost,
    /// A gateway (502/504) answered: the origin may or may not have processed the request.
    Gateway,
    /// A success status came with a body that could not be read or understood.
    UnreadableBody,
}

/// The request was sent and it cannot be known whether the vendor applied it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutcomeUnknown {
    pub cause: UnknownCause,
    pub message: String,
    /// The status, when one came (502/504 or a success with an unreadable body).
    pub status: Option<u16>,
    pub request_id: Option<String>,
    pub body: Option<String>,
}

/// Every failure rewardkit reports. The variant names match the exception classes of the
/// Python and Node packages (see [`Error::class_name`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input was rejected before anything was sent.
    #[error("{}", fmt_validation(.0))]
    Validation(Vec<FieldError>),
    /// 400, and other 4xx without a variant of their own.
    #[error("{0}")]
    BadRequest(Box<ApiError>),
    /// 401 (and a refused Splio authentication).
    #[error("{0}")]
    Authentication(Box<ApiError>),
    /// 403.
    #[error("{0}")]
    PermissionDenied(Box<ApiError>),
    /// 404.
    #[error("{0}")]
    NotFound(Box<ApiError>),
    /// 429: too many requests, or a spent call quota.
    #[error("{0}")]
    RateLimit(Box<ApiError>),
    /// 5xx.
    #[error("{0}")]
    InternalServer(Box<ApiError>),
    /// Any other unexpected status (e.g. a redirect that was not followed).
    #[error("{0}")]
    Api(Box<ApiError>),
    /// No answer could be had and the request never reached the server.
    #[error("connection error: {0}")]
    Connection(String),
    /// Connecting timed out; the request never reached the server.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The request was sent; it may or may not have been applied.
    #[error("{}", fmt_unknown(.0))]
    OutcomeUnknown(Box<OutcomeUnknown>),
    /// The client was misconfigured (no API key, a bad URL, plain http to a remote host).
    #[error("configuration error: {0}")]
    Config(String),
}

/// Shorthand for results of rewardkit calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn fmt_validation(errors: &[FieldError]) -> String {
    let n = errors.len();
    let mut s = format!("{n} validation error{}", if n == 1 { "" } else { "s" });
    for (i, e) in errors.iter().enumerate() {
        if i == 20 {
            s.push_str(&format!("; ... and {} more", n - 20));
            break;
        }
        s.push_str(if i == 0 { ": " } else { "; " });
        s.push_str(&e.to_string());
    }
    s
}

fn fmt_unknown(u: &OutcomeUnknown) -> String {
    let mut s = format!("outcome unknown ({}): {}", cause_name(u.cause), u.message);
    if let Some(id) = &u.request_id {
        s.push_str(&format!(" [request id {id}]"));
    }
    s
}

fn cause_name(c: UnknownCause) -> &'static str {
    match c {
        UnknownCause::Timeout => "timeout",
        UnknownCause::ConnectionLost => "connection lost",
        UnknownCause::Gateway => "gateway",
        UnknownCause::UnreadableBody => "unreadable body",
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vendor = match self.vendor {
            Vendor::QuestionPro => "QuestionPro",
            Vendor::Splio => "Splio",
        };
        write!(f, "{vendor} answered {}", self.status)?;
        if let Some(name) = &self.name {
            write!(f, " {name}")?;
        }
        if let Some(id) = &self.error_id {
            write!(f, " (error {id})")?;
        }
        write!(f, ": {}", self.message)?;
        for e in self.errors.iter().take(20) {
            write!(f, "; {e}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request id {id}]")?;
        }
        Ok(())
    }
}

impl Error {
    /// The name of the matching Python / Node exception class.
    pub fn class_name(&self) -> &'static str {
        match self {
            Error::Validation(_) => "ValidationError",
            Error::BadRequest(_) => "BadRequestError",
            Error::Authentication(_) => "AuthenticationError",
            Error::PermissionDenied(_) => "PermissionDeniedError",
            Error::NotFound(_) => "NotFoundError",
            Error::RateLimit(_) => "RateLimitError",
            Error::InternalServer(_) => "InternalServerError",
            Error::Api(_) => "APIError",
            Error::Connection(_) => "APIConnectionError",
            Error::Timeout(_) => "APITimeoutError",
            Error::OutcomeUnknown(_) => "OutcomeUnknownError",
            Error::Config(_) => "RewardkitError",
        }
    }

    /// The vendor's answer, for the status-error variants.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Error::BadRequest(e)
            | Error::Authentication(e)
            | Error::PermissionDenied(e)
            | Error::NotFound(e)
            | Error::RateLimit(e)
            | Error::InternalServer(e)
            | Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The HTTP status, when an answer came.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::OutcomeUnknown(u) => u.status,
            _ => self.api_error().map(|e| e.status),
        }
    }

    /// The vendor's request id, when one was given.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::OutcomeUnknown(u) => u.request_id.as_deref(),
            _ => self.api_error().and_then(|e| e.request_id.as_deref()),
        }
    }

    /// Field errors: the client's own (validation) or the vendor's.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            Error::Validation(errs) => errs,
            _ => self.api_error().map(|e| e.errors.as_slice()).unwrap_or(&[]),
        }
    }

    /// Builds the variant the status calls for.
    pub fn from_api(e: ApiError) -> Error {
        let e = Box::new(e);
        match e.status {
            400 => Error::BadRequest(e),
            401 => Error::Authentication(e),
            403 => Error::PermissionDenied(e),
            404 => Error::NotFound(e),
            429 => Error::RateLimit(e),
            402 | 405..=428 | 430..=499 => Error::BadRequest(e),
            500..=599 => Error::InternalServer(e),
            _ => Error::Api(e),
        }
    }

    /// Reads an error answer (any status, any body) into the matching variant.
    pub fn from_response(vendor: Vendor, status: u16, headers: &reqwest::header::HeaderMap, body: &[u8]) -> Error {
        Error::from_api(ApiError::parse(vendor, status, headers, body))
    }
}

const MAX_BODY: usize = 64 * 1024;

impl ApiError {
    /// Reads whatever can be read from an error answer. Never fails: a body that is not JSON
    /// (an HTML page from a proxy, the vendor's own invalid-JSON examples) still gives an error
    /// with the status, a message and the raw body.
    pub fn parse(vendor: Vendor, status: u16, headers: &reqwest::header::HeaderMap, body: &[u8]) -> ApiError {
        let text = String::from_utf8_lossy(&body[..body.len().min(MAX_BODY)]).into_owned();
        let mut e = ApiError {
            vendor,
            status,
            request_id: header_request_id(headers),
            error_id: None,
            name: None,
            message: String::new(),
            docs: None,
            errors: Vec::new(),
            body: text,
            retry_after: crate::transport::retry_after(headers),
        };
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => e.read_json(&v),
            Err(_) => e.read_lenient(),
        }
        if e.message.is_empty() {
            e.message = e
                .errors
                .iter()
                .map(|f| if f.description.is_empty() { f.code.clone() } else { f.description.clone() })
                .find(|s| !s.is_empty())
                .unwrap_or_else(|| status_text(status));
        }
        e
    }

    fn read_json(&mut self, v: &Value) {
        match v {
            Value::String(s) => self.message = s.clone(),
            Value::Object(o) => {
                if let Some(id) = o.get("requestID").or_else(|| o.get("requestId")).and_then(scalar_string) {
                    self.request_id = Some(id);
                }
                // QuestionPro: {"response": {"error": {...}}}
                if let Some(err) = o.get("response").and_then(|r| r.get("error")).and_then(Value::as_object) {
                    self.error_id = err.get("id").and_then(scalar_string);
                    self.name = err.get("name").and_then(scalar_string);
                    self.docs = err.get("docs").and_then(scalar_string);
                    if let Some(m) = err.get("message").and_then(scalar_string) {
                        self.message = m;
                    }
                    return;
                }
                // Splio wrapped: {"status": 400, "errors": [...]}
                if let Some(items) = o.get("errors").and_then(Value::as_array) {
                    self.errors = items.iter().filter_map(splio_field_error).collect();
                    let message = items.iter().find_map(|i| match i {
                        Value::String(s) => Some(s.clone()),
                        Value::Object(_) if splio_field_error(i).is_none() => {
                            i.get("error_description").and_then(scalar_string)
                        }
                        _ => None,
                    });
                    if let Some(m) = message {
                        self.message = m;
                    }
                }
                // Splio flat: {"error_key", "error", "error_description"}
                if o.contains_key("error_key") || o.contains_key("error_description") {
                    self.errors.extend(splio_field_error(v));
                }
                for k in ["message", "error_description", "detail", "title"] {
                    if self.message.is_empty() {
                        if let Some(m) = o.get(k).and_then(scalar_string).filter(|m| !m.is_empty()) {
                            self.message = m;
                        }
                    }
                }
                if self.message.is_empty() {
                    if let Some(m) = o.get("error").and_then(Value::as_str).filter(|m| !m.is_empty()) {
                        self.message = m.to_string();
                    }
                }
            }
            _ => {}
        }
    }

    /// Pulls `"key": value` pairs out of text that is almost JSON (the vendor's own
    /// examples leave `docs` unquoted), and otherwise keeps a short plain-text message.
    fn read_lenient(&mut self) {
        let text = self.body.clone();
        let get = |key: &str| lenient_value(&text, key);
        if text.contains("\"error\"") || text.contains("\"requestID\"") {
            self.error_id = get("id");
            self.name = get("name");
            self.docs = get("docs");
            if let Some(m) = get("message") {
                self.message = m;
            }
            if let Some(r) = get("requestID") {
                self.request_id = Some(r);
            }
            if let (Some(k), Some(d)) = (get("error_key"), get("error_description")) {
                self.errors.push(FieldError::new(normalize_key(&k), get("error").unwrap_or_default(), d));
            }
        }
        if self.message.is_empty() {
            let plain = strip_tags(&text);
            let plain = plain.split_whitespace().collect::<Vec<_>>().join(" ");
            if !plain.is_empty() {
                let short: String = plain.chars().take(200).collect();
                self.message = format!("{}: {short}", status_text(self.status));
            }
        }
    }
}

fn splio_field_error(item: &Value) -> Option<FieldError> {
    let o = item.as_object()?;
    let key = o.get("error_key").and_then(scalar_string).unwrap_or_default();
    let code = o.get("error").and_then(scalar_string).unwrap_or_default();
    let description = o.get("error_description").and_then(scalar_string).unwrap_or_default();
    // An item that names no field (`{"error_key": "", "error": "", "error_description": "E2 not
    // found"}`) is a message, not a field error.
    if key.is_empty() && code.is_empty() {
        return None;
    }
    Some(FieldError::new(normalize_key(&key), code, description))
}

/// Splio spells one key both `ExternalID` and `external_id`: report the snake_case form.
pub(crate) fn normalize_key(key: &str) -> String {
    if !key.chars().any(|c| c.is_ascii_uppercase()) {
        return key.to_string();
    }
    let chars: Vec<char> = key.chars().collect();
    let mut out = String::with_capacity(key.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower = i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn header_request_id(headers: &reqwest::header::HeaderMap) -> Option<String> {
    ["x-request-id", "request-id", "x-requestid", "x-correlation-id"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).map(str::to_string))
}

/// Finds `"key" : value` in almost-JSON text; the value may be quoted or bare.
fn lenient_value(text: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\"");
    let mut from = 0;
    while let Some(pos) = text[from..].find(&pat) {
        let after = &text[from + pos + pat.len()..];
        let after_ws = after.trim_start();
        if let Some(rest) = after_ws.strip_prefix(':') {
            let rest = rest.trim_start();
            if let Some(q) = rest.strip_prefix('"') {
                let mut out = String::new();
                let mut chars = q.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => return Some(out),
                        '\\' => {
                            if let Some(n) = chars.next() {
                                out.push(n)
                            }
                        }
                        c => out.push(c),
                    }
                }
                return Some(out);
            }
            let end = rest.find([',', '\n', '\r', '}']).unwrap_or(rest.len());
            let v = rest[..end].trim();
            return if v.is_empty() { None } else { Some(v.to_string()) };
        }
        from += pos + pat.len();
    }
    None
}

fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

fn status_text(status: u16) -> String {
    let reason = reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
    format!("HTTP {status} {reason}").trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    #[test]
    fn normalizes_camel_keys() {
        assert_eq!(normalize_key("ExternalID"), "external_id");
        assert_eq!(normalize_key("external_id"), "external_id");
        assert_eq!(normalize_key("custom_fields[0].value"), "custom_fields[0].value");
        assert_eq!(normalize_key("maxAttributionCount"), "max_attribution_count");
    }

    #[test]
    fn reads_the_seed_invalid_json_envelope() {
        let body = br#"{
    "response": {
     "error": {
         "docs": www.questionpro.com/api/error-codes.html
         "name": "UNAUTHORIZED",
         "httpStatusCode": 401,
         "id" : "1010",
         "message": "Incorrect API Key",
         "resourceUrl":"resource_url"
        }
    }
}"#;
        let e = ApiError::parse(Vendor::QuestionPro, 401, &HeaderMap::new(), body);
        assert_eq!(e.error_id.as_deref(), Some("1010"));
        assert_eq!(e.name.as_deref(), Some("UNAUTHORIZED"));
        assert_eq!(e.message, "Incorrect API Key");
        assert_eq!(e.docs.as_deref(), Some("www.questionpro.com/api/error-codes.html"));
    }

    #[test]
    fn html_body_keeps_status_and_text() {
        let e = ApiError::parse(Vendor::Splio, 502, &HeaderMap::new(), b"<html><h1>Bad Gateway</h1></html>");
        assert_eq!(e.message, "HTTP 502 Bad Gateway: Bad Gateway");
        assert!(matches!(Error::from_api(e), Error::InternalServer(_)));
    }
}
