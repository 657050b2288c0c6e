//! Printing: human lines or one JSON document, errors in both forms, and the scrubbing of
//! secrets from everything that is printed or logged.

use rewardkit::{Error, FieldError};
use serde_json::{json, Value};
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::{Mutex, OnceLock};

fn secrets() -> &'static Mutex<Vec<String>> {
    static SECRETS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Shortest value treated as a secret: shorter ones would blank out ordinary words.
const MIN_SECRET_LEN: usize = 6;

/// Remembers `value` as a secret: it is replaced by `***` wherever it would be printed.
pub fn add_secret(value: &str) {
    let v = value.trim();
    if v.len() >= MIN_SECRET_LEN {
        let mut s = secrets().lock().unwrap_or_else(|e| e.into_inner());
        if !s.iter().any(|k| k == v) {
            s.push(v.to_string());
            // Longest first, so a key that contains another is replaced whole.
            s.sort_by_key(|k| std::cmp::Reverse(k.len()));
        }
    }
}

/// `text` with every known secret replaced by `***`.
pub fn scrub(text: &str) -> String {
    let s = secrets().lock().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for k in s.iter() {
        if out.contains(k.as_str()) {
            out = out.replace(k.as_str(), "***");
        }
    }
    out
}

/// Prints a line on stdout, secrets scrubbed. A closed pipe (`| head`) is not an error.
pub fn out(text: impl AsRef<str>) {
    let mut o = io::stdout().lock();
    let _ = writeln!(o, "{}", scrub(text.as_ref()));
}

/// Prints a line on stderr, secrets scrubbed.
pub fn err(text: impl AsRef<str>) {
    let mut e = io::stderr().lock();
    let _ = writeln!(e, "{}", scrub(text.as_ref()));
}

/// Prints a JSON document on one line of stdout, secrets scrubbed.
pub fn out_json(v: &Value) {
    out(serde_json::to_string(v).unwrap_or_else(|_| "null".into()));
}

/// A stderr writer for the log that scrubs secrets from each record.
pub struct ScrubbedStderr;

impl Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr().lock().write_all(scrub(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// A field error as `key: code (description)`, without its row.
pub fn field_error_text(e: &FieldError) -> String {
    let mut s = format!("{}: {}", e.key, e.code);
    if !e.description.is_empty() {
        s.push_str(&format!(" ({})", e.description));
    }
    s
}

/// A field error as JSON, with the file line when known.
pub fn field_error_json(e: &FieldError, line: Option<usize>, row: Option<usize>) -> Value {
    let mut v = json!({"key": e.key, "code": e.code, "description": e.description});
    if let Some(line) = line {
        v["line"] = json!(line);
    }
    if let Some(row) = row.or(e.row) {
        v["row"] = json!(row);
    }
    v
}

/// What an error holds, as the `error` member of a JSON answer.
pub fn error_json(e: &Error) -> Value {
    let api = e.api_error();
    let mut v = json!({
        "class": e.class_name(),
        "message": e.to_string(),
        "status": e.status(),
        "request_id": e.request_id(),
        "error_id": api.and_then(|a| a.error_id.clone()),
        "errors": e.field_errors().iter().map(|f| field_error_json(f, None, None)).collect::<Vec<_>>(),
    });
    if let Some(a) = api {
        v["vendor"] = json!(a.vendor);
        if let Some(ra) = a.retry_after {
            v["retry_after"] = json!(ra.as_secs_f64());
        }
    }
    if let Error::OutcomeUnknown(u) = e {
        v["cause"] = json!(u.cause);
    }
    v
}

/// Reports `e` (on stderr for people, on stdout as JSON) and gives the exit code.
pub fn report_error(e: &Error, json_mode: bool) -> ExitCode {
    if json_mode {
        out_json(&json!({"ok": false, "error": error_json(e)}));
        return ExitCode::FAILURE;
    }
    match e {
        Error::Validation(errs) => {
            let n = errs.len();
            err(format!(
                "error: {}: {n} validation error{}; nothing was sent",
                e.class_name(),
                if n == 1 { "" } else { "s" }
            ));
            for f in errs {
                err(format!("  {}", field_error_text(f)));
            }
        }
        _ => {
            err(format!("error: {}: {e}", e.class_name()));
            if let Some(status) = e.status() {
                err(format!("  status: {status}"));
            }
            if let Some(id) = e.api_error().and_then(|a| a.error_id.as_deref()) {
                err(format!("  error id: {id}"));
            }
            if let Some(id) = e.request_id() {
                err(format!("  request id: {id}"));
            }
            for f in e.field_errors() {
                err(format!("  {}", field_error_text(f)));
            }
            if let Some(ra) = e.api_error().and_then(|a| a.retry_after) {
                err(format!("  retry after: {:.0} s", ra.as_secs_f64().ceil()));
            }
            if let Error::OutcomeUnknown(_) = e {
                err("  the request was sent and may or may not have been applied: check before sending it again");
            }
        }
    }
    ExitCode::FAILURE
}

/// Reports a failure of the command line itself (a file that cannot be read, ...).
pub fn report_failure(message: &str, json_mode: bool) -> ExitCode {
    if json_mode {
        out_json(&json!({"ok": false, "error": {
            "class": "RewardkitError", "message": message, "status": null,
            "request_id": null, "error_id": null, "errors": [],
        }}));
    } else {
        err(format!("error: RewardkitError: {message}"));
    }
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_registered_secrets_only_when_long_enough() {
        add_secret("abc");
        add_secret("s3cr3t-value");
        assert_eq!(scrub("key abc s3cr3t-value!"), "key abc ***!");
    }
}
