//! The sandbox, over real HTTP.

use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::{Client, Response};
use serde_json::{json, Value};

const POINTS: &str = "/a/api/v2/micropanel/members/points";

fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new()
}

async fn start(config: SandboxConfig) -> (Sandbox, Client) {
    (Sandbox::start_with(config).await.expect("sandbox starts"), client())
}

async fn json_of(res: Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

async fn award(sb: &Sandbox, c: &Client, body: &Value) -> Response {
    c.post(format!("{}{POINTS}", sb.url())).header("api-key", sb.questionpro_api_key()).json(body).send().await.unwrap()
}

async fn token(sb: &Sandbox, c: &Client) -> String {
    let res = c.post(format!("{}/authenticate", sb.url())).json(&json!({"api_key": sb.splio_api_key()})).send().await;
    let (status, body) = json_of(res.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_string()
}

async fn create(sb: &Sandbox, c: &Client, token: &str, body: &Value) -> Response {
    c.post(format!("{}/loyalty/v1/rewards", sb.url())).bearer_auth(token).json(body).send().await.unwrap()
}

async fn get_reward(sb: &Sandbox, c: &Client, token: &str, id: &str) -> Response {
    c.get(format!("{}/loyalty/v1/rewards/{id}", sb.url())).bearer_auth(token).send().await.unwrap()
}

fn good_reward(external_id: &str) -> Value {
    json!({"name": "Gift", "external_id": external_id, "holding_days": 0, "nqp_value": 10,
           "limited": true, "auto_generated": true, "max_attribution_count": "50",
           "custom_fields": [{"name": "color", "value": "red"}]})
}

fn qp_error(body: &Value) -> &Value {
    &body["response"]["error"]
}

#[tokio::test]
async fn questionpro_refuses_missing_wrong_and_old_style_keys() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let url = format!("{}{POINTS}", sb.url());
    let rows = json!([{"panelMemberID": 1, "points": 5}]);
    let attempts = [
        c.post(&url).json(&rows),
        c.post(&url).header("api-key", "wrong").json(&rows),
        c.post(&url).header("apiKey", sb.questionpro_api_key()).json(&rows),
    ];
    for req in attempts {
        let (status, body) = json_of(req.send().await.unwrap()).await;
        assert_eq!(status, 401);
        let e = qp_error(&body);
        assert_eq!(e["id"], "1010");
        assert_eq!(e["name"], "UNAUTHORIZED");
        assert_eq!(e["httpStatusCode"], 401);
        assert_eq!(e["message"], "Incorrect API Key");
        assert_eq!(e["resourceUrl"], POINTS);
    }
    assert!(sb.ledger().is_empty());
    assert_eq!(sb.request_count(Route::QuestionproPoints), 3);
    let recorded = sb.requests(Route::QuestionproPoints);
    let header = |i: usize, name: &str| recorded[i].headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(header(1, "api-key").as_deref(), Some("<redacted>"));
    assert_eq!(header(2, "apikey").as_deref(), Some("<redacted>"));
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].path, POINTS);
    assert_eq!(serde_json::from_str::<Value>(&recorded[0].body).unwrap(), rows);
}

#[tokio::test]
async fn questionpro_credits_members_and_skips_unknown_ones() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let rows = json!([
        {"panelMemberID": 12345678, "points": 100, "comments": "Thanks"},
        {"panelMemberID": 123456789, "points": 5},
        {"panelMemberID": 12345678, "points": -30, "comments": null},
    ]);
    let (status, body) = json_of(award(&sb, &c, &rows).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["response"]["successCount"], 2);
    assert_eq!(body["response"]["skipped"], json!([{"panelMemberID": 123456789, "reason": "Panel member not found"}]));
    let request_id = body["requestID"].as_str().unwrap();
    let parts: Vec<usize> = request_id.split('-').map(str::len).collect();
    assert_eq!(parts, [8, 4, 4, 4, 12]);
    assert_eq!(&request_id[14..15], "4");

    assert_eq!(sb.ledger(), BTreeMap::from([(12345678, 70)]));
    let awards = sb.awards();
    assert_eq!(
        awards,
        vec![
            Award {
                panel_member_id: 12345678,
                points: 100,
                comments: Some("Thanks".into()),
                request_id: request_id.into()
            },
            Award { panel_member_id: 12345678, points: -30, comments: None, request_id: request_id.into() },
        ]
    );
}

#[tokio::test]
async fn questionpro_members_can_be_configured() {
    let config = SandboxConfig { members: Members::Set([7, 8].into()), ..SandboxConfig::default() };
    let (sb, c) = start(config).await;
    let (_, body) =
        json_of(award(&sb, &c, &json!([{"panelMemberID": 7, "points": 1}, {"panelMemberID": 9, "points": 1}])).await)
            .await;
    assert_eq!(body["response"]["successCount"], 1);
    assert_eq!(body["response"]["skipped"][0]["panelMemberID"], 9);

    let config = SandboxConfig { members: Members::All, ..SandboxConfig::default() };
    let (sb, c) = start(config).await;
    let (_, body) = json_of(award(&sb, &c, &json!([{"panelMemberID": i64::MAX, "points": 1}])).await).await;
    assert_eq!(body["response"]["successCount"], 1);
}

#[tokio::test]
async fn questionpro_rejects_bad_bodies_and_credits_nothing() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let url = format!("{}{POINTS}", sb.url());
    let send = |body: &'static str| {
        c.post(&url)
            .header("api-key", sb.questionpro_api_key())
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let (status, body) = json_of(send("[{\"panelMemberID\": 1, \"points\": ").await.unwrap()).await;
    assert_eq!((status, qp_error(&body)["id"].as_str()), (400, Some("1001")));
    assert_eq!(qp_error(&body)["message"], "The body was not a proper JSON string");
    assert_eq!(qp_error(&body)["name"], "BAD_REQUEST");
    // Broken JSON whose first problem is a schema problem is still broken JSON.
    let (_, body) = json_of(send("[{\"panelMemberID\": \"1\"").await.unwrap()).await;
    assert_eq!(qp_error(&body)["id"], "1001");

    for bad in [
        "{}",
        "[]",
        "\"rows\"",
        "[1]",
        r#"[{"panelMemberID": "1", "points": 1}]"#,
        r#"[{"panelMemberID": 1, "points": 1.5}]"#,
        r#"[{"panelMemberID": 1}]"#,
        r#"[{"panelMemberID": 1, "points": 1, "comments": 3}]"#,
        r#"[{"panelMemberID": 1, "points": 1}, {"points": 2}]"#,
    ] {
        let (status, body) = json_of(send(bad).await.unwrap()).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(qp_error(&body)["id"], "1002", "{bad}");
        assert_eq!(qp_error(&body)["message"], "Invalid schema in the body provided");
    }
    assert!(sb.ledger().is_empty());
    assert!(sb.awards().is_empty());
}

#[tokio::test]
async fn questionpro_unknown_paths_and_methods_are_not_found() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let res = c.get(format!("{}{POINTS}", sb.url())).header("api-key", sb.questionpro_api_key()).send().await;
    let (status, body) = json_of(res.unwrap()).await;
    assert_eq!((status, qp_error(&body)["id"].as_str()), (404, Some("1040")));
    let res = c.post(format!("{}/a/api/v2/surveys", sb.url())).send().await;
    let (status, body) = json_of(res.unwrap()).await;
    assert_eq!(status, 404);
    assert_eq!(qp_error(&body)["name"], "NOT_FOUND");
    assert_eq!(qp_error(&body)["resourceUrl"], "/a/api/v2/surveys");
    assert_eq!(qp_error(&body)["message"], "The resource that you're trying to access doesn't exist");
}

#[tokio::test]
async fn splio_authentication_issues_jwts_and_refuses_wrong_keys() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let res = c.post(format!("{}/authenticate", sb.url())).json(&json!({"api_key": "nope"})).send().await;
    let (status, body) = json_of(res.unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"status": 400, "errors": [{"error_key": "api_key", "error": "wrong_value", "error_description": "Authentication failed."}]})
    );
    let res = c.post(format!("{}/authenticate", sb.url())).body("not json").send().await;
    assert_eq!(res.unwrap().status(), 400);

    let token = token(&sb, &c).await;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "HS256", "typ": "JWT"}));
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["sub"], "sandbox");
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 3600);
    assert!(claims["jti"].is_string());
    assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 32);

    let recorded = sb.requests(Route::SplioAuthenticate);
    for r in [&recorded[0], &recorded[2]] {
        assert!(!r.body.contains(sb.splio_api_key()), "{}", r.body);
        assert_eq!(serde_json::from_str::<Value>(&r.body).unwrap(), json!({"api_key": "<redacted>"}));
    }
    assert_eq!(sb.request_count(Route::SplioAuthenticate), 3);
}

#[tokio::test]
async fn splio_loyalty_calls_need_a_valid_token() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let res = c.post(format!("{}/loyalty/v1/rewards", sb.url())).json(&good_reward("a")).send().await.unwrap();
    assert_eq!(json_of(res).await, (401, json!("Authentication failed.")));
    let res = create(&sb, &c, "made.up.token", &good_reward("a")).await;
    assert_eq!(json_of(res).await, (401, json!("Authentication failed.")));
    let token = token(&sb, &c).await;
    let res = c.get(format!("{}/loyalty/v1/rewards/a", sb.url())).header("authorization", token).send().await;
    assert_eq!(res.unwrap().status(), 401, "the Bearer scheme is required");
    assert!(sb.rewards().is_empty());
    let recorded = sb.requests(Route::SplioCreateReward);
    assert!(recorded[1].headers.contains(&("authorization".into(), "<redacted>".into())));
}

#[tokio::test]
async fn splio_tokens_expire() {
    let config = SandboxConfig { token_ttl: Duration::from_millis(1500), ..SandboxConfig::default() };
    let (sb, c) = start(config).await;
    let token = token(&sb, &c).await;
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert!(lifetime == 1 || lifetime == 2, "{lifetime}");
    assert_eq!(get_reward(&sb, &c, &token, "x").await.status(), 404);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(json_of(get_reward(&sb, &c, &token, "x").await).await, (401, json!("Authentication failed.")));
}

#[tokio::test]
async fn splio_revoked_tokens_stop_working() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let first = token(&sb, &c).await;
    assert_eq!(get_reward(&sb, &c, &first, "x").await.status(), 404);
    sb.revoke_tokens();
    assert_eq!(get_reward(&sb, &c, &first, "x").await.status(), 401);
    let second = token(&sb, &c).await;
    assert_eq!(get_reward(&sb, &c, &second, "x").await.status(), 404);
}

#[tokio::test]
async fn splio_create_answers_in_each_error_shape() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let t = token(&sb, &c).await;

    let (status, body) = json_of(create(&sb, &c, &t, &json!([1])).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["error_key"], "");
    assert_eq!(body["errors"][0]["error"], "wrong_type");

    // 1. no external id: flat, with the vendor's other spelling of the key
    let (status, body) = json_of(create(&sb, &c, &t, &json!({"name": "Gift"})).await).await;
    assert_eq!(status, 400);
    assert_eq!(body, json!({"error_key": "ExternalID", "error": "", "error_description": "ExternalID is missing"}));

    // 2. field errors: wrapped, all of them (and no cross-field ones)
    let bad = json!({"external_id": "e1", "name": "", "limited": "yes", "monetary": true});
    let (status, body) = json_of(create(&sb, &c, &t, &bad).await).await;
    assert_eq!((status, body["status"].as_u64()), (400, Some(400)));
    let keys: Vec<(&str, &str)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["error_key"].as_str().unwrap(), e["error"].as_str().unwrap()))
        .collect();
    assert_eq!(
        keys,
        [("holding_days", "is_blank"), ("limited", "wrong_type"), ("name", "is_blank"), ("nqp_value", "is_blank")]
    );

    // 3. the first of the count rules: flat, alone
    let unlimited = json!({"external_id": "e1", "name": "n", "holding_days": 1, "nqp_value": 1, "monetary": true});
    let (status, body) = json_of(create(&sb, &c, &t, &unlimited).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error_key"], "limited");
    assert_eq!(body["error"], "unlimited_non_autogenerated");
    assert!(body.get("errors").is_none());

    // 4. monetary and validity data: wrapped, all of them
    let data = json!({"external_id": "e1", "name": "n", "holding_days": 1, "nqp_value": 1, "auto_generated": true,
                      "monetary": true, "forced_validity_start": "2026-01-01 00:00:00"});
    let (status, body) = json_of(create(&sb, &c, &t, &data).await).await;
    assert_eq!(status, 400);
    let codes: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["error"].as_str().unwrap()).collect();
    assert_eq!(codes, ["invalid_monetary_data", "invalid_monetary_data", "invalid_validity_data"]);

    assert_eq!(sb.request_count(Route::SplioCreateReward), 5);
    assert!(sb.rewards().is_empty());

    // 6. created, echoed with every field
    let (status, reward) = json_of(create(&sb, &c, &t, &good_reward("gift-1")).await).await;
    assert_eq!(status, 201, "{reward}");
    let obj = reward.as_object().unwrap();
    for name in crate::splio::validate::field_names() {
        assert!(obj.contains_key(name), "{name} missing from {reward}");
    }
    assert_eq!(obj.len(), 20);
    assert!(reward["id"].is_i64());
    assert_eq!(reward["max_attribution_count"], 50);
    assert_eq!(reward["monetary_type"], "");
    assert_eq!(reward["description"], "");
    assert_eq!(reward["monetary"], false);
    assert_eq!(reward["custom_fields"][0]["name"], "color");
    assert!(reward["custom_fields"][0]["id"].is_i64());
    assert_eq!(sb.rewards(), vec![reward.clone()]);

    // 5. the same external id again
    let (status, body) = json_of(create(&sb, &c, &t, &good_reward("gift-1")).await).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"status": 400, "errors": [{"error_key": "external_id", "error": "wrong_value", "error_description": "Another reward has ext id gift-1."}]})
    );

    let (status, got) = json_of(get_reward(&sb, &c, &t, "gift-1").await).await;
    assert_eq!(status, 200);
    assert_eq!(got["stock"], 50);
    assert_eq!(got["id"], reward["id"]);
    let (status, body) = json_of(get_reward(&sb, &c, &t, "E2").await).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"status": 404, "errors": [{"error_key": "", "error": "", "error_description": "E2 not found"}]})
    );
    assert_eq!(sb.rewards().len(), 1);
}

#[tokio::test]
async fn splio_wrong_methods_and_unknown_paths() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let res = c.get(format!("{}/loyalty/v1/rewards", sb.url())).send().await.unwrap();
    assert_eq!(json_of(res).await, (405, json!("Method Not Allowed.")));
    let res = c.delete(format!("{}/authenticate", sb.url())).send().await.unwrap();
    assert_eq!(json_of(res).await, (405, json!("Method Not Allowed.")));
    let res = c.post(format!("{}/loyalty/v1/rewards/x", sb.url())).send().await.unwrap();
    assert_eq!(json_of(res).await, (405, json!("Method Not Allowed.")));
    let res = c.get(format!("{}/loyalty/v2/rewards", sb.url())).send().await.unwrap();
    assert_eq!(json_of(res).await, (404, json!("Not Found.")));
}

#[tokio::test]
async fn drop_connection_closes_without_an_answer() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let rows = json!([{"panelMemberID": 1, "points": 10}]);
    assert_eq!(award(&sb, &c, &rows).await.status(), 200);

    sb.inject(Route::QuestionproPoints, Fault::drop_connection());
    let err = c
        .post(format!("{}{POINTS}", sb.url()))
        .header("api-key", sb.questionpro_api_key())
        .json(&rows)
        .send()
        .await
        .expect_err("no answer");
    assert!(err.status().is_none() && !err.is_timeout(), "{err:?}");
    assert_eq!(sb.request_count(Route::QuestionproPoints), 2);
    assert_eq!(sb.ledger()[&1], 10, "not processed");

    sb.inject(Route::QuestionproPoints, Fault::drop_connection().processed());
    assert!(c
        .post(format!("{}{POINTS}", sb.url()))
        .header("api-key", sb.questionpro_api_key())
        .json(&rows)
        .send()
        .await
        .is_err());
    assert_eq!(sb.ledger()[&1], 20, "processed, then dropped");

    assert_eq!(award(&sb, &c, &rows).await.status(), 200);
    assert_eq!(sb.ledger()[&1], 30);
}

#[tokio::test]
async fn unreadable_body_is_not_json() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let rows = json!([{"panelMemberID": 1, "points": 10}]);
    sb.inject(Route::QuestionproPoints, Fault::unreadable_body());
    let res = award(&sb, &c, &rows).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let text = res.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    assert!(sb.ledger().is_empty());

    sb.inject(Route::QuestionproPoints, Fault::unreadable_body().processed());
    let text = award(&sb, &c, &rows).await.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err());
    assert_eq!(sb.ledger()[&1], 10);
}

#[tokio::test]
async fn status_faults_queue_in_order_and_may_process() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let rows = json!([{"panelMemberID": 1, "points": 10}]);
    sb.inject(Route::QuestionproPoints, Fault::status(500).processed());
    sb.inject(Route::QuestionproPoints, Fault::status(503).retry_after(7).times(2));
    sb.inject(Route::QuestionproPoints, Fault::status(502).body("<html>Bad Gateway</html>").header("x-sandbox", "yes"));

    let (status, body) = json_of(award(&sb, &c, &rows).await).await;
    assert_eq!(status, 500);
    assert_eq!(qp_error(&body)["id"], "1026");
    assert_eq!(qp_error(&body)["name"], "INTERNAL_SERVER_ERROR");
    assert_eq!(sb.ledger()[&1], 10, "processed before the fault answer");

    for _ in 0..2 {
        let res = award(&sb, &c, &rows).await;
        assert_eq!(res.headers()["retry-after"], "7");
        let (status, body) = json_of(res).await;
        assert_eq!(status, 503);
        assert_eq!(qp_error(&body)["name"], "SERVICE_UNAVAILABLE");
    }
    let res = award(&sb, &c, &rows).await;
    assert_eq!(res.status(), 502);
    assert_eq!(res.headers()["x-sandbox"], "yes");
    assert_eq!(res.text().await.unwrap(), "<html>Bad Gateway</html>");
    assert_eq!(sb.ledger()[&1], 10, "unprocessed faults credit nothing");

    assert_eq!(award(&sb, &c, &rows).await.status(), 200);
    assert_eq!(sb.ledger()[&1], 20);

    sb.inject(Route::QuestionproPoints, Fault::status(500).times(5));
    sb.clear_faults();
    assert_eq!(award(&sb, &c, &rows).await.status(), 200);
    assert_eq!(sb.request_count(Route::QuestionproPoints), 6);
}

#[tokio::test]
async fn splio_fault_bodies_follow_the_vendor_shapes() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let t = token(&sb, &c).await;
    let route = Route::SplioCreateReward;
    sb.inject(route, Fault::status(401));
    sb.inject(route, Fault::status(429).retry_after(3));
    sb.inject(route, Fault::status(500));
    sb.inject(route, Fault::status(400));
    sb.inject(Route::SplioAuthenticate, Fault::status(503));

    assert_eq!(json_of(create(&sb, &c, &t, &good_reward("a")).await).await, (401, json!("Authentication failed.")));
    let res = create(&sb, &c, &t, &good_reward("a")).await;
    assert_eq!(res.headers()["retry-after"], "3");
    assert_eq!(res.headers()["ratelimit-limit"], "10");
    assert_eq!(res.headers()["ratelimit-remaining"], "0");
    assert_eq!(res.headers()["ratelimit-reset"], "3");
    assert_eq!(json_of(res).await, (429, json!({"message": "API rate limit exceeded"})));
    assert_eq!(json_of(create(&sb, &c, &t, &good_reward("a")).await).await, (500, json!("Internal Server Error.")));
    let (status, body) = json_of(create(&sb, &c, &t, &good_reward("a")).await).await;
    assert_eq!((status, body["status"].as_u64()), (400, Some(400)));
    assert!(body["errors"].is_array());
    let res = c.post(format!("{}/authenticate", sb.url())).json(&json!({"api_key": sb.splio_api_key()})).send().await;
    assert_eq!(json_of(res.unwrap()).await, (503, json!("Service Unavailable.")));

    assert!(sb.rewards().is_empty());
    assert_eq!(create(&sb, &c, &t, &good_reward("a")).await.status(), 201);
}

#[tokio::test]
async fn delay_faults_answer_late_and_still_process() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let rows = json!([{"panelMemberID": 1, "points": 10}]);
    sb.inject(Route::QuestionproPoints, Fault::delay(Duration::from_millis(20)));
    let (status, body) = json_of(award(&sb, &c, &rows).await).await;
    assert_eq!((status, body["response"]["successCount"].as_u64()), (200, Some(1)));

    sb.inject(Route::QuestionproPoints, Fault::delay(Duration::from_secs(30)));
    let err = c
        .post(format!("{}{POINTS}", sb.url()))
        .header("api-key", sb.questionpro_api_key())
        .timeout(Duration::from_millis(300))
        .json(&rows)
        .send()
        .await
        .expect_err("times out");
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(sb.ledger()[&1], 20, "the slow request was applied");

    sb.inject(Route::QuestionproPoints, Fault::status(504).delayed(Duration::from_millis(10)));
    assert_eq!(award(&sb, &c, &rows).await.status(), 504);
    assert_eq!(sb.ledger()[&1], 20);
}

#[tokio::test]
async fn questionpro_rate_limit_answers_429_with_retry_after() {
    let config = SandboxConfig {
        questionpro_rate_limit: Some(RateLimit::new(2, Duration::from_secs(60))),
        ..SandboxConfig::default()
    };
    let (sb, c) = start(config).await;
    let rows = json!([{"panelMemberID": 1, "points": 1}]);
    assert_eq!(award(&sb, &c, &rows).await.status(), 200);
    // Invalid requests count against the window too.
    assert_eq!(award(&sb, &c, &json!([])).await.status(), 400);
    for _ in 0..2 {
        let res = award(&sb, &c, &rows).await;
        let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        let (status, body) = json_of(res).await;
        assert_eq!(status, 429);
        assert_eq!(qp_error(&body)["name"], "TOO_MANY_REQUESTS");
        assert_eq!(qp_error(&body)["httpStatusCode"], 429);
        assert_eq!(qp_error(&body)["id"], "");
        assert_eq!(qp_error(&body)["message"], "Rate limit exceeded. Try again later.");
    }
    // A wrong key is refused before the limit is consulted.
    let res = c.post(format!("{}{POINTS}", sb.url())).header("api-key", "x").json(&rows).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(sb.ledger()[&1], 1);
    assert_eq!(sb.request_count(Route::QuestionproPoints), 5);
    sb.reset();
    assert_eq!(award(&sb, &c, &rows).await.status(), 200, "reset clears the window");
}

#[tokio::test]
async fn splio_rate_limit_answers_429_with_its_headers() {
    let config = SandboxConfig {
        splio_rate_limit: Some(RateLimit::new(2, Duration::from_secs(60))),
        ..SandboxConfig::default()
    };
    let (sb, c) = start(config).await;
    let t = token(&sb, &c).await;
    assert_eq!(get_reward(&sb, &c, &t, "a").await.status(), 404);
    assert_eq!(create(&sb, &c, &t, &good_reward("a")).await.status(), 201);
    let res = get_reward(&sb, &c, &t, "a").await;
    assert_eq!(res.headers()["ratelimit-limit"], "2");
    assert_eq!(res.headers()["ratelimit-remaining"], "0");
    let reset: u64 = res.headers()["ratelimit-reset"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&reset), "{reset}");
    assert_eq!(json_of(res).await, (429, json!({"message": "API rate limit exceeded"})));
    // The limit is on the loyalty endpoints only.
    token(&sb, &c).await;
}

#[tokio::test]
async fn control_api_reads_and_steers_the_sandbox() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let base = sb.url();
    let fault = json!({"route": "questionpro_points", "status": 503, "retry_after": 2});
    let res = c.post(format!("{base}/_sandbox/faults")).json(&fault).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let res = c.post(format!("{base}/_sandbox/faults")).json(&json!({"route": "nowhere"})).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let res = c.post(format!("{base}/_sandbox/faults")).json(&json!({"route": "splio_get_reward", "status": 7})).send();
    assert_eq!(res.await.unwrap().status(), 400);

    let rows = json!([{"panelMemberID": 1, "points": 10, "comments": "hi"}, {"panelMemberID": 2, "points": 5}]);
    let res = award(&sb, &c, &rows).await;
    assert_eq!((res.status().as_u16(), res.headers()["retry-after"].to_str().unwrap()), (503, "2"));
    assert_eq!(award(&sb, &c, &rows).await.status(), 200);

    let (status, body) = json_of(c.get(format!("{base}/_sandbox/ledger")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["ledger"], json!({"1": 10, "2": 5}));
    assert_eq!(body["total_points"], 15);
    assert_eq!(body["awards"][0]["panel_member_id"], 1);
    assert_eq!(body["awards"][0]["comments"], "hi");
    assert_eq!(body["awards"].as_array().unwrap().len(), 2);

    let (_, body) = json_of(c.get(format!("{base}/_sandbox/requests")).send().await.unwrap()).await;
    assert_eq!(
        body,
        json!({"counts": {"questionpro_points": 2, "splio_authenticate": 0, "splio_create_reward": 0, "splio_get_reward": 0}})
    );

    let url = format!("{base}/_sandbox/requests?route=questionpro_points");
    let (_, body) = json_of(c.get(url).send().await.unwrap()).await;
    assert_eq!(body["requests"].as_array().unwrap().len(), 2);
    assert_eq!(body["requests"][0]["path"], POINTS);
    assert_eq!(body["requests"][0]["method"], "POST");
    let res = c.get(format!("{base}/_sandbox/requests?route=elsewhere")).send().await.unwrap();
    assert_eq!(res.status(), 400);

    let t = token(&sb, &c).await;
    assert_eq!(create(&sb, &c, &t, &good_reward("r1")).await.status(), 201);
    let (_, rewards) = json_of(c.get(format!("{base}/_sandbox/rewards")).send().await.unwrap()).await;
    assert_eq!(rewards.as_array().unwrap().len(), 1);
    assert_eq!(rewards[0]["external_id"], "r1");

    let fault = json!({"route": "splio_create_reward", "action": "drop_connection", "times": 3});
    assert_eq!(c.post(format!("{base}/_sandbox/faults")).json(&fault).send().await.unwrap().status(), 204);
    assert_eq!(c.delete(format!("{base}/_sandbox/faults")).send().await.unwrap().status(), 204);
    assert_eq!(create(&sb, &c, &t, &good_reward("r2")).await.status(), 201);

    assert_eq!(c.post(format!("{base}/_sandbox/revoke-tokens")).send().await.unwrap().status(), 204);
    assert_eq!(get_reward(&sb, &c, &t, "r1").await.status(), 401);

    assert_eq!(c.post(format!("{base}/_sandbox/reset")).send().await.unwrap().status(), 204);
    assert!(sb.ledger().is_empty() && sb.awards().is_empty() && sb.rewards().is_empty());
    assert!(Route::ALL.iter().all(|r| sb.request_count(*r) == 0 && sb.requests(*r).is_empty()));
}

#[tokio::test]
async fn records_keep_only_the_most_recent_requests() {
    let (sb, c) = start(SandboxConfig { record_limit: 2, ..SandboxConfig::default() }).await;
    for points in 1..=3 {
        award(&sb, &c, &json!([{"panelMemberID": 1, "points": points}])).await;
    }
    let recorded = sb.requests(Route::QuestionproPoints);
    assert_eq!(recorded.len(), 2);
    assert!(recorded[0].body.contains("\"points\":2"), "{}", recorded[0].body);
    assert!(recorded[1].body.contains("\"points\":3"));
    assert_eq!(sb.request_count(Route::QuestionproPoints), 3);

    let (sb, c) = start(SandboxConfig { record_limit: 0, ..SandboxConfig::default() }).await;
    award(&sb, &c, &json!([{"panelMemberID": 1, "points": 1}])).await;
    assert!(sb.requests(Route::QuestionproPoints).is_empty());
}

#[tokio::test]
async fn faults_deserialize_from_their_json_form() {
    let f: Fault = serde_json::from_value(json!({"action": "unreadable_body", "delay_ms": 5})).unwrap();
    assert_eq!(f, Fault::unreadable_body().delayed(Duration::from_millis(5)));
    let f: Fault = serde_json::from_value(json!({"status": 500, "process": true, "headers": [["a", "b"]]})).unwrap();
    assert_eq!(f, Fault::status(500).processed().header("a", "b"));
    assert_eq!(serde_json::to_value(Route::SplioGetReward).unwrap(), json!("splio_get_reward"));
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let url = sb.url();
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with('/'));
    assert_eq!(c.get(format!("{url}/_sandbox/rewards")).send().await.unwrap().status(), 200);
    sb.shutdown().await;
    assert!(c.get(format!("{url}/_sandbox/rewards")).send().await.is_err());

    let sb = Sandbox::start().await.unwrap();
    let url = sb.url();
    let fresh = client();
    assert_eq!(fresh.get(format!("{url}/_sandbox/rewards")).send().await.unwrap().status(), 200);
    drop(sb);
    tokio::task::yield_now().await;
    let mut closed = false;
    for _ in 0..100 {
        if fresh.get(format!("{url}/_sandbox/rewards")).send().await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(closed);
}
