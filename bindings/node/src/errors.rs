//! The one place where core errors become JavaScript errors.
//!
//! A napi error can only carry a status and a message, and a rejected `async fn` only a
//! generic status. So every [`rewardkit::Error`] leaves the native layer as an error whose
//! message is [`TAG`] followed by a JSON payload: the class name (from
//! [`rewardkit::Error::class_name`], so the mapping cannot drift from the core) and every
//! field of the error. `errors.js` reads the payload and throws the class it names.

use rewardkit::{Error, FieldError};
use serde_json::{json, Map, Value};

/// The start of the message of every error that carries a payload. `errors.js` knows it too.
pub const TAG: &str = "\u{1}rewardkit-error\u{1}";

/// The napi error that carries `err` to JavaScript.
pub fn to_napi(err: Error) -> napi::Error {
    napi::Error::new(napi::Status::GenericFailure, format!("{TAG}{}", payload(&err)))
}

/// A configuration error (bad option, unknown route), carried like any other core error.
pub fn config(message: impl Into<String>) -> napi::Error {
    to_napi(Error::Config(message.into()))
}

/// The JSON form of one field error: `{key, code, description}`, plus `row` for bulk input.
pub fn field_error(e: &FieldError) -> Value {
    let mut o = Map::new();
    o.insert("key".into(), json!(e.key));
    o.insert("code".into(), json!(e.code));
    o.insert("description".into(), json!(e.description));
    if let Some(row) = e.row {
        o.insert("row".into(), json!(row));
    }
    Value::Object(o)
}

/// Every field of the error, named as the JavaScript classes name them. Absent values are
/// `null`. Nothing here can hold a secret: the core never puts keys in messages or bodies.
pub fn payload(err: &Error) -> Value {
    let mut p = Map::new();
    p.insert("class".into(), json!(err.class_name()));
    p.insert("errors".into(), Value::Array(err.field_errors().iter().map(field_error).collect()));
    match err {
        Error::OutcomeUnknown(u) => {
            p.insert("message".into(), json!(err.to_string()));
            p.insert("cause".into(), json!(u.cause));
            p.insert("statusCode".into(), json!(u.status));
            p.insert("requestId".into(), json!(u.request_id));
            p.insert("body".into(), json!(u.body));
        }
        _ => match err.api_error() {
            Some(api) => {
                // The vendor's own message, exactly; the class and `statusCode` carry the rest.
                p.insert("message".into(), json!(api.message));
                p.insert("vendor".into(), json!(api.vendor));
                p.insert("statusCode".into(), json!(api.status));
                p.insert("requestId".into(), json!(api.request_id));
                p.insert("errorId".into(), json!(api.error_id));
                p.insert("errorName".into(), json!(api.name));
                p.insert("docs".into(), json!(api.docs));
                p.insert("body".into(), json!(api.body));
                p.insert("retryAfter".into(), json!(api.retry_after.map(|d| d.as_secs_f64())));
            }
            None => {
                p.insert("message".into(), json!(err.to_string()));
            }
        },
    }
    Value::Object(p)
}
