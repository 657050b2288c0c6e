//! QuestionPro award-points client against the sandbox: success, skipped rows, validation
//! before the network, headers, datacenters and base-URL rules.

mod common;

use common::*;
use rewardkit::questionpro::{rows_from_values, Datacenter, PointsAward, QuestionPro};
use rewardkit::sandbox::Route;
use rewardkit::splio::Splio;
use rewardkit::Error;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const POINTS: Route = Route::QuestionproPoints;

fn validation_errors(e: Error) -> Vec<(Option<usize>, String, String)> {
    match e {
        Error::Validation(errs) => errs.into_iter().map(|e| (e.row, e.key, e.code)).collect(),
        other => panic!("expected a ValidationError, got {} ({other})", other.class_name()),
    }
}

fn row(r: usize, key: &str, code: &str) -> (Option<usize>, String, String) {
    (Some(r), key.to_string(), code.to_string())
}

#[tokio::test]
async fn award_points_credits_the_ledger_and_returns_the_request_id() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    let rows = [PointsAward::new(12345678, 100).with_comments("Add Comments"), PointsAward::new(23456789, 300)];
    let res = qp.award_points(&rows).await.expect("the award succeeds");

    assert_eq!(res.success_count, 2);
    assert!(res.skipped.is_empty(), "{:?}", res.skipped);
    let request_id = res.request_id.clone().expect("a requestID");
    assert!(!request_id.is_empty());

    assert_eq!(sb.ledger(), BTreeMap::from([(12345678, 100), (23456789, 300)]));
    let awards = sb.awards();
    assert_eq!(awards.len(), 2);
    assert!(awards.iter().all(|a| a.request_id == request_id), "{awards:?}");
    assert_eq!(awards[0].comments.as_deref(), Some("Add Comments"));
    assert_eq!(awards[1].comments, None);
    assert_eq!(sb.request_count(POINTS), 1);

    // The body on the wire uses the vendor's names.
    let sent: Value = serde_json::from_str(&sb.requests(POINTS)[0].body).expect("a JSON body");
    assert_eq!(
        sent,
        json!([{"panelMemberID": 12345678, "points": 100, "comments": "Add Comments"},
               {"panelMemberID": 23456789, "points": 300}])
    );
}

#[tokio::test]
async fn negative_points_deduct() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    qp.award_points(&[PointsAward::new(7, 100)]).await.unwrap();
    let res = qp.award_points(&[PointsAward::new(7, -30)]).await.unwrap();
    assert_eq!(res.success_count, 1);
    assert_eq!(sb.ledger(), BTreeMap::from([(7, 70)]));
    assert_eq!(sb.request_count(POINTS), 2);
}

#[tokio::test]
async fn unknown_member_is_skipped_and_mapped_back_to_its_row() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    let rows = [PointsAward::new(1, 10), PointsAward::new(100_000_000, 5), PointsAward::new(2, 7)];
    let res = qp.award_points(&rows).await.expect("the award succeeds");

    assert_eq!(res.success_count, 2);
    assert_eq!(res.skipped.len(), 1, "{:?}", res.skipped);
    let s = &res.skipped[0];
    assert_eq!(s.row, Some(1));
    assert_eq!(s.panel_member_id, Some(100_000_000));
    assert_eq!(s.raw["panelMemberID"], json!(100_000_000));
    assert!(s.raw["reason"].as_str().is_some_and(|r| !r.is_empty()), "{}", s.raw);
    assert_eq!(sb.ledger(), BTreeMap::from([(1, 10), (2, 7)]));
}

#[tokio::test]
async fn every_bad_row_is_reported_before_anything_is_sent() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    let rows = [
        PointsAward::new(5, 10), // fine
        PointsAward::new(0, 10), // bad id
        PointsAward::new(6, 0),  // zero points
        PointsAward::new(-4, 0), // both
        PointsAward::new(5, 3),  // duplicate of row 0
        PointsAward::new(8, -2), // fine
    ];
    let got = validation_errors(qp.award_points(&rows).await.unwrap_err());
    assert_eq!(
        got,
        vec![
            row(1, "panelMemberID", "wrong_value"),
            row(2, "points", "wrong_value"),
            row(3, "panelMemberID", "wrong_value"),
            row(3, "points", "wrong_value"),
            row(4, "panelMemberID", "duplicate"),
        ]
    );
    assert_eq!(sb.request_count(POINTS), 0, "nothing may be sent when a row is bad");
    assert!(sb.ledger().is_empty());
}

#[tokio::test]
async fn no_rows_is_a_validation_error() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    assert!(matches!(qp.award_points(&[]).await, Err(Error::Validation(_))));
    assert!(matches!(qp.award_points_values(&[]).await, Err(Error::Validation(_))));
    assert_eq!(sb.request_count(POINTS), 0);
}

#[tokio::test]
async fn duplicates_are_refused_unless_allowed() {
    let sb = sandbox().await;
    let rows = [PointsAward::new(1, 10), PointsAward::new(2, 5), PointsAward::new(1, 3)];

    let strict = qp(&sb);
    let got = validation_errors(strict.award_points(&rows).await.unwrap_err());
    assert_eq!(got, vec![row(2, "panelMemberID", "duplicate")]);
    assert_eq!(sb.request_count(POINTS), 0);

    let lenient = qp_builder(&sb).allow_duplicates(true).build().unwrap();
    let res = lenient.award_points(&rows).await.expect("duplicates allowed");
    assert_eq!(res.success_count, 3);
    assert_eq!(sb.ledger(), BTreeMap::from([(1, 13), (2, 5)]));
    assert_eq!(sb.request_count(POINTS), 1);
}

#[tokio::test]
async fn untyped_rows_with_wrong_types_are_field_errors_not_panics() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    let rows = vec![
        json!({"panelMemberID": "12", "points": 1}),
        json!({"panelMemberID": 5, "points": "ten"}),
        json!({"panelMemberID": true, "points": 1.5}),
        json!([1, 2]),
        json!({"panel_member_id": 6, "points": 1, "comments": 7}),
        json!({"points": 1}),
        json!({"panelMemberID": 18446744073709551615u64, "points": 1}),
        json!(null),
        json!({"panelMemberID": 9, "points": 4}),
    ];
    let got = validation_errors(qp.award_points_values(&rows).await.unwrap_err());
    assert_eq!(
        got,
        vec![
            row(0, "panelMemberID", "wrong_type"),
            row(1, "points", "wrong_type"),
            row(2, "panelMemberID", "wrong_type"),
            row(2, "points", "wrong_type"),
            row(3, "row", "wrong_type"),
            row(4, "comments", "wrong_type"),
            row(5, "panelMemberID", "is_missing"),
            row(6, "panelMemberID", "wrong_type"),
            row(7, "row", "wrong_type"),
        ]
    );
    assert_eq!(sb.request_count(POINTS), 0);
}

#[tokio::test]
async fn untyped_rows_accept_every_spelling() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    let rows = vec![
        json!({"panelMemberID": 1, "points": 10, "comments": "wire"}),
        json!({"panel_member_id": 2, "points": 20}),
        json!({"panelMemberId": 3, "points": -5, "comments": null}),
    ];
    let res = qp.award_points_values(&rows).await.expect("valid rows");
    assert_eq!(res.success_count, 3);
    assert_eq!(sb.ledger(), BTreeMap::from([(1, 10), (2, 20), (3, -5)]));
}

/// The typed path (`validate_rows`) reports a repeated member id even when its first row is
/// bad for another reason; the untyped path (`rows_from_values`, used by the bindings and the
/// CLI) must report the same problems for the same input. (Regression test: `rows_from_values`
/// used to skip the duplicate check for rows that were bad for another reason.)
#[tokio::test]
async fn duplicate_of_an_invalid_row_is_reported_on_both_paths() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    let typed = [PointsAward::new(5, 0), PointsAward::new(5, 1)];
    let values = vec![json!({"panelMemberID": 5, "points": 0}), json!({"panelMemberID": 5, "points": 1})];
    let want = vec![row(0, "points", "wrong_value"), row(1, "panelMemberID", "duplicate")];

    assert_eq!(validation_errors(qp.award_points(&typed).await.unwrap_err()), want, "typed rows");
    let untyped = rows_from_values(&values, false).unwrap_err();
    let untyped: Vec<_> = untyped.into_iter().map(|e| (e.row, e.key, e.code)).collect();
    assert_eq!(untyped, want, "untyped rows must report the duplicate too");
    assert_eq!(sb.request_count(POINTS), 0);
}

#[tokio::test]
async fn sends_the_api_key_header_and_the_user_agent() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    qp.award_points(&[PointsAward::new(42, 1)]).await.unwrap();

    let reqs = sb.requests(POINTS);
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/a/api/v2/micropanel/members/points");
    // The sandbox accepted the key (the award went through) and records it redacted.
    assert_eq!(header(r, "api-key"), Some("<redacted>"), "{:?}", r.headers);
    assert_eq!(header(r, "apikey"), None, "the retired apiKey header must not be sent");
    let ua = format!("rewardkit/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(header(r, "user-agent"), Some(ua.as_str()));
    assert_eq!(rewardkit::transport::USER_AGENT, ua);
    assert!(header(r, "content-type").is_some_and(|c| c.starts_with("application/json")));
    assert!(!r.path.contains(sb.questionpro_api_key()), "no key in the query string");
    let everything = format!("{r:?}");
    assert!(!everything.contains(sb.questionpro_api_key()), "the key must not be recorded");
}

#[tokio::test]
async fn a_wrong_key_is_an_authentication_error() {
    let sb = sandbox().await;
    let qp = qp_builder(&sb).api_key("not-the-key").build().unwrap();
    let e = qp.award_points(&[PointsAward::new(1, 1)]).await.unwrap_err();
    assert!(matches!(e, Error::Authentication(_)), "{e:?}");
    assert_eq!(e.status(), Some(401));
    assert_eq!(e.api_error().and_then(|a| a.error_id.clone()).as_deref(), Some("1010"), "{e:?}");
    assert!(sb.ledger().is_empty());
    assert_eq!(sb.request_count(POINTS), 1, "a 401 is not retried");
}

#[test]
fn every_datacenter_has_its_url() {
    let want = [
        (Datacenter::Com, "com"),
        (Datacenter::Eu, "eu"),
        (Datacenter::Ca, "ca"),
        (Datacenter::Au, "au"),
        (Datacenter::Ae, "ae"),
        (Datacenter::Sg, "sg"),
    ];
    assert_eq!(Datacenter::ALL.len(), want.len());
    for (dc, code) in want {
        assert_eq!(dc.code(), code);
        assert_eq!(dc.to_string(), code);
        assert_eq!(dc.base_url(), format!("https://api.questionpro.{code}"));
        assert_eq!(code.parse::<Datacenter>().unwrap(), dc);
        assert_eq!(code.to_uppercase().parse::<Datacenter>().unwrap(), dc);
        let qp = QuestionPro::builder().api_key("k").datacenter(dc).build().unwrap();
        assert_eq!(qp.base_url(), format!("https://api.questionpro.{code}/"));
        // The points URL joins onto it.
        assert_eq!(
            format!("{}{}", qp.base_url(), rewardkit::questionpro::POINTS_PATH),
            format!("https://api.questionpro.{code}/a/api/v2/micropanel/members/points")
        );
    }
    assert_eq!(Datacenter::default(), Datacenter::Com);
    assert_eq!(QuestionPro::new("k").unwrap().base_url(), "https://api.questionpro.com/");
    assert!(matches!("uk".parse::<Datacenter>(), Err(Error::Config(_))));
    // A base URL wins over the datacenter: the two regions on other hosts.
    for host in ["https://api.surveyanalytics.com", "https://api.questionprosa.com"] {
        let qp = QuestionPro::builder().api_key("k").datacenter(Datacenter::Eu).base_url(host).build().unwrap();
        assert_eq!(qp.base_url(), format!("{host}/"));
    }
}

#[test]
fn base_url_rules_are_enforced_when_building() {
    let refused = [
        "http://api.questionpro.com",
        "http://example.com:8080/",
        "http://10.0.0.1:8080",
        "http://localhost.example.com",
        "ftp://api.questionpro.com",
        "https://user:pass@api.questionpro.com",
        "not a url",
    ];
    for url in refused {
        let qp = QuestionPro::builder().api_key("k").base_url(url).build();
        assert!(matches!(qp, Err(Error::Config(_))), "QuestionPro {url}: {qp:?}");
        let sp = Splio::builder().api_key("k").base_url(url).build();
        assert!(matches!(sp, Err(Error::Config(_))), "Splio {url}: {sp:?}");
    }
    let allowed = [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/"),
        ("http://localhost:1", "http://localhost:1/"),
        ("http://[::1]:9", "http://[::1]:9/"),
        ("https://api.questionpro.eu", "https://api.questionpro.eu/"),
        ("https://proxy.example.com/prefix", "https://proxy.example.com/prefix/"),
    ];
    for (url, base) in allowed {
        let qp = QuestionPro::builder().api_key("k").base_url(url).build().unwrap();
        assert_eq!(qp.base_url(), base);
        let sp = Splio::builder().api_key("k").base_url(url).build().unwrap();
        assert_eq!(sp.base_url(), base);
    }
}

#[test]
fn a_key_is_required_and_never_shown() {
    if std::env::var_os(rewardkit::questionpro::API_KEY_ENV).is_none() {
        let e = QuestionPro::builder().api_key("   ").build().unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e:?}");
    }
    let e = QuestionPro::builder().api_key("bad\nkey").build().unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    let qp = QuestionPro::builder().api_key("very-secret-key").build().unwrap();
    assert!(!format!("{qp:?}").contains("very-secret-key"));
    let b = QuestionPro::builder().api_key("very-secret-key");
    assert!(!format!("{b:?}").contains("very-secret-key"));
}

#[tokio::test]
async fn a_base_url_with_a_trailing_slash_works() {
    let sb = sandbox().await;
    let qp = QuestionPro::builder()
        .api_key(sb.questionpro_api_key())
        .base_url(format!("{}/", sb.url()))
        .rate_limit(None)
        .build()
        .unwrap();
    assert_eq!(qp.base_url(), format!("{}/", sb.url()));
    qp.award_points(&[PointsAward::new(3, 3)]).await.unwrap();
    assert_eq!(sb.ledger(), BTreeMap::from([(3, 3)]));
}

/// With `allow_duplicates`, one member can be on two rows; when the server skips both, each
/// skipped item must map to its own row. CORE BUG in src/questionpro/mod.rs `parse_award`:
/// `rows.iter().position(..)` maps every item to the first matching row, so the bulk
/// accounting (`bulk::batch_outcomes`) sees an unmapped item and reports the second row as
/// `unknown` although the server said it skipped it.
#[tokio::test]
async fn skipped_items_for_a_repeated_member_map_to_distinct_rows() {
    let sb = sandbox().await;
    let qp = qp_builder(&sb).allow_duplicates(true).build().unwrap();
    let rows = [PointsAward::new(100_000_000, 1), PointsAward::new(7, 1), PointsAward::new(100_000_000, 2)];
    let res = qp.award_points(&rows).await.unwrap();
    assert_eq!(res.success_count, 1);
    let mapped: Vec<_> = res.skipped.iter().map(|s| s.row).collect();
    assert_eq!(mapped, vec![Some(0), Some(2)]);

    let outcomes = rewardkit::bulk::batch_outcomes(0, &rows, &Ok(res));
    let got: Vec<_> = outcomes.iter().map(|o| o.outcome.as_str()).collect();
    assert_eq!(got, ["skipped", "awarded", "skipped"]);
}
