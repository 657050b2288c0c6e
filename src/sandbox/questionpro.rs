//! QuestionPro's award-points endpoint, as the sandbox plays it.

use super::server::{lock, whole_secs, Call, Reply, Shared, StoredAward};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;
use tokio::time::Instant;

pub(crate) const POINTS_PATH: &str = "/a/api/v2/micropanel/members/points";
const DOCS: &str = "https://www.questionpro.com/api/error-codes.html";
const NOT_FOUND: &str = "The resource that you're trying to access doesn't exist";
const RATE_LIMITED: &str = "Rate limit exceeded. Try again later.";

#[derive(Serialize)]
struct Envelope<'a> {
    response: ErrorResponse<'a>,
}

#[derive(Serialize)]
struct ErrorResponse<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    docs: &'a str,
    name: &'a str,
    http_status_code: u16,
    id: &'a str,
    message: &'a str,
    resource_url: &'a str,
}

pub(crate) fn envelope(status: u16, id: &str, message: &str, resource_url: &str) -> Reply {
    let name = error_name(status);
    let body = Envelope {
        response: ErrorResponse {
            error: ErrorBody { docs: DOCS, name: &name, http_status_code: status, id, message, resource_url },
        },
    };
    Reply::json(status, &body)
}

fn error_name(status: u16) -> String {
    let reason = reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("ERROR");
    reason.to_ascii_uppercase().replace([' ', '-'], "_").replace('\'', "")
}

/// The envelope QuestionPro answers with for a status, with its documented id where one exists.
pub(crate) fn default_error(status: u16) -> Reply {
    let reason = reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
    let (id, message) = match status {
        400 => ("1002", "Invalid schema in the body provided"),
        401 => ("1010", "Incorrect API Key"),
        403 => ("1011", "Permission has not been granted"),
        404 => ("1040", NOT_FOUND),
        429 => ("", RATE_LIMITED),
        500 => ("1026", "We are not able to process your request"),
        _ => ("", reason),
    };
    envelope(status, id, message, POINTS_PATH)
}

pub(crate) fn not_found(path: &str) -> Reply {
    envelope(404, "1040", NOT_FOUND, path)
}

/// One row of a points request.
#[derive(Deserialize)]
pub(crate) struct Item<'a> {
    #[serde(rename = "panelMemberID")]
    pub panel_member_id: i64,
    pub points: i64,
    #[serde(default, borrow)]
    pub comments: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct Answer<'a> {
    response: Counts,
    #[serde(rename = "requestID")]
    request_id: &'a str,
}

#[derive(Serialize)]
struct Counts {
    #[serde(rename = "successCount")]
    success_count: usize,
    skipped: Vec<Skipped>,
}

#[derive(Serialize)]
struct Skipped {
    #[serde(rename = "panelMemberID")]
    panel_member_id: i64,
    reason: &'static str,
}

pub(crate) fn award_points(sh: &Shared, call: &Call) -> Reply {
    let key = sh.cfg.questionpro_api_key.as_bytes();
    let authorized = call.headers.get("api-key").is_some_and(|v| v.as_bytes() == key);
    if !authorized {
        return default_error(401);
    }
    if let Some(limit) = sh.cfg.questionpro_rate_limit {
        // Only the configured key gets this far, so one window is the per-key window.
        if let Err(wait) = lock(&sh.qp_window).admit(limit, Instant::now()) {
            return envelope(429, "", RATE_LIMITED, POINTS_PATH).header("retry-after", whole_secs(wait));
        }
    }
    let parsed = match super::points_body::parse(&call.body) {
        Some(items) => Ok(items),
        None => serde_json::from_slice::<Vec<Item>>(&call.body),
    };
    let items = match parsed {
        Ok(items) if !items.is_empty() => items,
        // Only a body that fails is checked for syntax, so broken JSON is told apart from a bad
        // schema even when the typed parse trips over the schema first; good bodies parse once.
        Err(_) if serde_json::from_slice::<serde::de::IgnoredAny>(&call.body).is_err() => {
            return envelope(400, "1001", "The body was not a proper JSON string", POINTS_PATH)
        }
        _ => return envelope(400, "1002", "Invalid schema in the body provided", POINTS_PATH),
    };

    let request_id: Arc<str> = uuid_v4().into();
    let mut credited = Vec::with_capacity(items.len());
    let mut skipped = Vec::new();
    let mut last: Option<Arc<str>> = None;
    for item in items {
        if sh.cfg.members.contains(item.panel_member_id) {
            let comments = item.comments.map(|c| match &last {
                Some(l) if **l == *c => l.clone(),
                _ => last.insert(Arc::from(c.as_ref())).clone(),
            });
            credited.push(StoredAward {
                panel_member_id: item.panel_member_id,
                points: item.points,
                comments,
                request_id: request_id.clone(),
            });
        } else {
            skipped.push(Skipped { panel_member_id: item.panel_member_id, reason: "Panel member not found" });
        }
    }
    let success_count = credited.len();
    sh.credit(credited);
    Reply::json(200, &Answer { response: Counts { success_count, skipped }, request_id: &request_id })
}

/// A random id in the form of a version-4 UUID.
fn uuid_v4() -> String {
    let mut n = fastrand::u128(..);
    n = (n & !(0xF << 76)) | (0x4 << 76);
    n = (n & !(0x3 << 62)) | (0x2 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (n >> 96) as u32,
        (n >> 80) as u16,
        (n >> 64) as u16,
        (n >> 48) as u16,
        n & 0xFFFF_FFFF_FFFF
    )
}
