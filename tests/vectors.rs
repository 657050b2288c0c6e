//! Runs the shared vectors of `tests/cases/` (the format is in `tests/cases/README.md`).
//! Every vector is checked; the failures are listed together, each under its vector's name.

mod common;

use common::*;
use rewardkit::questionpro::{rows_from_values, PointsAward};
use rewardkit::sandbox::{Fault, Route};
use rewardkit::splio::validate_reward_value;
use rewardkit::Error;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

fn load<T: for<'de> Deserialize<'de>>(file: &str) -> Vec<T> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "cases", file].iter().collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn finish(file: &str, total: usize, failures: Vec<String>) {
    assert!(total > 0, "{file}: no vectors");
    if !failures.is_empty() {
        let mut msg = format!("{file}: {} of {total} vectors failed\n", failures.len());
        for f in &failures {
            writeln!(msg, "  - {f}").unwrap();
        }
        panic!("{msg}");
    }
}

fn check_names_unique(file: &str, names: impl Iterator<Item = String>) {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        assert!(seen.insert(n.clone()), "{file}: the name {n:?} is used twice");
    }
}

// ---------------------------------------------------------------- reward_validation.json

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RewardCase {
    name: String,
    payload: Value,
    errors: Vec<ExpectedFieldError>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ExpectedFieldError {
    key: String,
    code: String,
    #[serde(default)]
    description: Option<String>,
}

fn field_errors_match(got: &[rewardkit::FieldError], want: &[ExpectedFieldError]) -> Result<(), String> {
    let show = |g: &[rewardkit::FieldError]| {
        g.iter().map(|e| format!("{}/{} ({:?})", e.key, e.code, e.description)).collect::<Vec<_>>().join(", ")
    };
    if got.len() != want.len() {
        return Err(format!("expected {} errors {want:?}, got {}: [{}]", want.len(), got.len(), show(got)));
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let desc_ok = w.description.as_ref().is_none_or(|d| *d == g.description);
        if g.key != w.key || g.code != w.code || !desc_ok {
            return Err(format!("error #{i}: expected {w:?}, got [{}]", show(got)));
        }
    }
    Ok(())
}

#[test]
fn reward_validation_vectors() {
    let cases: Vec<RewardCase> = load("reward_validation.json");
    check_names_unique("reward_validation.json", cases.iter().map(|c| c.name.clone()));
    assert!(cases.len() >= 30, "at least 30 reward vectors");
    let mut failures = Vec::new();
    for case in &cases {
        let got = validate_reward_value(&case.payload);
        if let Err(why) = field_errors_match(&got, &case.errors) {
            failures.push(format!("{}: {why}", case.name));
            continue;
        }
        // The typed model agrees: a valid payload reads into a NewReward that validates the
        // same, an invalid one is refused with the same errors.
        match rewardkit::splio::NewReward::from_value(&case.payload) {
            Ok(r) if case.errors.is_empty() => {
                if !r.validate().is_empty() {
                    failures.push(format!("{}: NewReward::validate disagrees: {:?}", case.name, r.validate()));
                }
            }
            Ok(_) => failures.push(format!("{}: NewReward::from_value accepted an invalid payload", case.name)),
            Err(errs) if !case.errors.is_empty() => {
                if let Err(why) = field_errors_match(&errs, &case.errors) {
                    failures.push(format!("{}: NewReward::from_value: {why}", case.name));
                }
            }
            Err(errs) => {
                failures.push(format!("{}: NewReward::from_value refused a valid payload: {errs:?}", case.name))
            }
        }
    }
    finish("reward_validation.json", cases.len(), failures);
}

/// The valid reward vectors go through the real client to the sandbox and are created; the
/// invalid ones are refused before anything is sent.
#[tokio::test]
async fn reward_validation_vectors_over_http() {
    let cases: Vec<RewardCase> = load("reward_validation.json");
    let sb = sandbox().await;
    let sp = splio(&sb);
    let mut failures = Vec::new();
    for case in &cases {
        sb.reset();
        let res = sp.create_reward_value(&case.payload).await;
        match (case.errors.is_empty(), res) {
            (true, Ok(r)) => {
                let sent = case.payload.get("external_id").and_then(Value::as_str).unwrap_or_default();
                if r.external_id != sent || sb.rewards().len() != 1 {
                    failures.push(format!(
                        "{}: created {:?}, sandbox holds {}",
                        case.name,
                        r.external_id,
                        sb.rewards().len()
                    ));
                }
            }
            (true, Err(e)) => failures.push(format!("{}: a valid reward was refused: {e}", case.name)),
            (false, Err(Error::Validation(errs))) => {
                if let Err(why) = field_errors_match(&errs, &case.errors) {
                    failures.push(format!("{}: {why}", case.name));
                }
                if sb.request_count(Route::SplioCreateReward) != 0 {
                    failures.push(format!("{}: an invalid reward reached the server", case.name));
                }
            }
            (false, other) => failures.push(format!("{}: expected a ValidationError, got {other:?}", case.name)),
        }
    }
    finish("reward_validation.json (over HTTP)", cases.len(), failures);
}

// ---------------------------------------------------------------- points_validation.json

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointsCase {
    name: String,
    rows: Vec<Value>,
    allow_duplicates: bool,
    errors: Vec<ExpectedRowError>,
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct ExpectedRowError {
    row: usize,
    key: String,
    code: String,
}

#[tokio::test]
async fn points_validation_vectors() {
    let cases: Vec<PointsCase> = load("points_validation.json");
    check_names_unique("points_validation.json", cases.iter().map(|c| c.name.clone()));
    let sb = sandbox().await;
    let mut failures = Vec::new();
    for case in &cases {
        let got: Vec<ExpectedRowError> = match rows_from_values(&case.rows, case.allow_duplicates) {
            Ok(_) => Vec::new(),
            Err(errs) => errs
                .into_iter()
                .map(|e| ExpectedRowError { row: e.row.unwrap_or(usize::MAX), key: e.key, code: e.code })
                .collect(),
        };
        if got != case.errors {
            failures.push(format!("{}: expected {:?}, got {got:?}", case.name, case.errors));
            continue;
        }
        // Over HTTP: valid rows are all awarded; invalid ones never leave the client.
        sb.reset();
        let qp = qp_builder(&sb).allow_duplicates(case.allow_duplicates).build().unwrap();
        let res = qp.award_points_values(&case.rows).await;
        match (case.errors.is_empty(), res) {
            (true, Ok(r)) => {
                let want: i64 =
                    case.rows.iter().map(|v| PointsAward::from_value(v).map(|r| r.points).unwrap_or(0)).sum();
                let got: i64 = sb.ledger().values().sum();
                if r.success_count as usize != case.rows.len() || got != want {
                    failures.push(format!("{}: success_count {} ledger total {got}", case.name, r.success_count));
                }
            }
            (true, Err(e)) => failures.push(format!("{}: valid rows were refused: {e}", case.name)),
            (false, Err(Error::Validation(_))) => {
                if sb.request_count(Route::QuestionproPoints) != 0 {
                    failures.push(format!("{}: invalid rows reached the server", case.name));
                }
            }
            (false, other) => failures.push(format!("{}: expected a ValidationError, got {other:?}", case.name)),
        }
    }
    finish("points_validation.json", cases.len(), failures);
}

// ---------------------------------------------------------------- error_bodies.json

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorCase {
    name: String,
    vendor: String,
    route: Route,
    call: String,
    status: u16,
    #[serde(default)]
    headers: Map<String, Value>,
    body: String,
    #[serde(default)]
    times: Option<u32>,
    #[serde(default)]
    max_retries: Option<u32>,
    expect: Map<String, Value>,
}

const EXPECT_KEYS: &[&str] =
    &["class", "status_code", "request_id", "error_id", "message", "errors", "retry_after", "requests"];

/// The reward every create vector sends (valid, so only the injected answer can fail it).
fn vector_reward() -> Value {
    json!({"external_id": "vector-reward", "name": "Vector", "holding_days": 0, "nqp_value": 10, "auto_generated": true})
}

/// The rows every points vector sends.
fn vector_rows() -> Vec<Value> {
    vec![json!({"panelMemberID": 12345678, "points": 100, "comments": "vector"})]
}

async fn run_error_case(case: &ErrorCase) -> Result<(), String> {
    for k in case.expect.keys() {
        if !EXPECT_KEYS.contains(&k.as_str()) {
            return Err(format!("unknown expect key {k:?}"));
        }
    }
    let vendor_ok = match case.route {
        Route::QuestionproPoints => case.vendor == "questionpro" && case.call == "award_points",
        _ => case.vendor == "splio" && matches!(case.call.as_str(), "create_reward" | "get_reward"),
    };
    if !vendor_ok {
        return Err(format!(
            "vendor {:?} / route {:?} / call {:?} do not go together",
            case.vendor, case.route, case.call
        ));
    }

    let sb = sandbox().await;
    let mut fault = Fault::status(case.status).body(case.body.clone()).times(case.times.unwrap_or(1));
    for (k, v) in &case.headers {
        fault = fault.header(k.clone(), v.as_str().ok_or("header values must be strings")?);
    }
    sb.inject(case.route, fault);
    let max_retries = case.max_retries.unwrap_or(0);

    let err = match case.call.as_str() {
        "award_points" => {
            let qp = qp_builder(&sb).max_retries(max_retries).build().map_err(|e| e.to_string())?;
            qp.award_points_values(&vector_rows()).await.err()
        }
        "create_reward" => {
            let sp = splio_builder(&sb).max_retries(max_retries).build().map_err(|e| e.to_string())?;
            sp.create_reward_value(&vector_reward()).await.err()
        }
        "get_reward" => {
            let sp = splio_builder(&sb).max_retries(max_retries).build().map_err(|e| e.to_string())?;
            sp.get_reward("vector-reward").await.err()
        }
        other => return Err(format!("unknown call {other:?}")),
    };
    let Some(e) = err else { return Err("the call succeeded".into()) };
    let x = &case.expect;
    let mut problems = Vec::new();
    let mut check = |what: &str, want: &Value, got: Value| {
        if *want != got {
            problems.push(format!("{what}: expected {want}, got {got}"));
        }
    };
    if let Some(w) = x.get("class") {
        check("class", w, json!(e.class_name()));
    }
    if let Some(w) = x.get("status_code") {
        check("status_code", w, json!(e.status()));
    }
    if let Some(w) = x.get("request_id") {
        check("request_id", w, json!(e.request_id()));
    }
    let api = e.api_error();
    if let Some(w) = x.get("error_id") {
        check("error_id", w, json!(api.and_then(|a| a.error_id.clone())));
    }
    if let Some(w) = x.get("message") {
        check("message", w, json!(api.map(|a| a.message.clone())));
    }
    if let Some(w) = x.get("errors") {
        let got: Vec<Value> = e
            .field_errors()
            .iter()
            .map(|f| json!({"key": f.key, "code": f.code, "description": f.description}))
            .collect();
        check("errors", w, Value::Array(got));
    }
    if let Some(w) = x.get("retry_after") {
        // Seconds, compared as numbers (7 and 7.0 are the same wait).
        let got = api.and_then(|a| a.retry_after).map(|d| d.as_secs_f64());
        if w.as_f64() != got {
            check("retry_after", w, json!(got));
        }
    }
    if let Some(w) = x.get("requests") {
        check("requests", w, json!(sb.request_count(case.route)));
    }
    // Whatever the shape, a status error keeps the raw body.
    if let Some(a) = api {
        if a.body != case.body {
            problems.push(format!("body: expected the raw body {:?}, got {:?}", case.body, a.body));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{} [{e}]", problems.join("; ")))
    }
}

#[tokio::test]
async fn error_body_vectors() {
    let cases: Vec<ErrorCase> = load("error_bodies.json");
    check_names_unique("error_bodies.json", cases.iter().map(|c| c.name.clone()));
    let mut failures = Vec::new();
    for case in &cases {
        let run = tokio::time::timeout(Duration::from_secs(20), run_error_case(case)).await;
        match run {
            Ok(Ok(())) => {}
            Ok(Err(why)) => failures.push(format!("{}: {why}", case.name)),
            Err(_) => failures.push(format!("{}: timed out", case.name)),
        }
    }
    finish("error_bodies.json", cases.len(), failures);
}
