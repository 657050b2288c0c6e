//! The retry decisions, each checked on the wire (`request_count`) and in the ledger: a points
//! request is re-sent only when it provably was not processed; otherwise its outcome is
//! unknown and it is never re-sent.

mod common;

use common::*;
use rewardkit::questionpro::PointsAward;
use rewardkit::sandbox::{Fault, Route};
use rewardkit::{Error, UnknownCause};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const POINTS: Route = Route::QuestionproPoints;

fn rows() -> Vec<PointsAward> {
    vec![PointsAward::new(1001, 50), PointsAward::new(1002, 25)]
}

fn credited() -> BTreeMap<i64, i64> {
    BTreeMap::from([(1001, 50), (1002, 25)])
}

fn cause(e: &Error) -> UnknownCause {
    match e {
        Error::OutcomeUnknown(u) => u.cause,
        other => panic!("expected OutcomeUnknownError, got {} ({other})", other.class_name()),
    }
}

#[tokio::test]
async fn read_timeout_is_unknown_and_not_resent() {
    let sb = sandbox().await;
    let qp = qp_builder(&sb).timeout(ms(300)).max_retries(3).build().unwrap();
    sb.inject(POINTS, Fault::delay(Duration::from_secs(1)));

    let e = qp.award_points(&rows()).await.unwrap_err();
    assert_eq!(cause(&e), UnknownCause::Timeout, "{e}");
    assert_eq!(e.class_name(), "OutcomeUnknownError");
    assert_eq!(e.status(), None);
    assert_eq!(sb.request_count(POINTS), 1, "a timed-out points request must not be re-sent");
    // The sandbox processed it after the client gave up: exactly why it must not be re-sent.
    assert!(eventually(Duration::from_secs(3), || sb.ledger() == credited()).await, "ledger {:?}", sb.ledger());
    tokio::time::sleep(ms(200)).await;
    assert_eq!(sb.request_count(POINTS), 1);
    assert_eq!(sb.awards().len(), 2, "credited once");
}

#[tokio::test]
async fn dropped_connection_after_the_request_is_unknown() {
    let sb = sandbox().await;
    let qp = qp_builder(&sb).max_retries(3).build().unwrap();
    sb.inject(POINTS, Fault::drop_connection());

    let e = qp.award_points(&rows()).await.unwrap_err();
    assert_eq!(cause(&e), UnknownCause::ConnectionLost, "{e}");
    assert_eq!(sb.request_count(POINTS), 1);
    assert!(sb.ledger().is_empty());
}

#[tokio::test]
async fn dropped_connection_after_processing_is_unknown_and_credited_once() {
    let sb = sandbox().await;
    let qp = qp_builder(&sb).max_retries(3).build().unwrap();
    sb.inject(POINTS, Fault::drop_connection().processed());

    let e = qp.award_points(&rows()).await.unwrap_err();
    assert_eq!(cause(&e), UnknownCause::ConnectionLost, "{e}");
    assert_eq!(sb.request_count(POINTS), 1);
    assert_eq!(sb.ledger(), credited());
}

#[tokio::test]
async fn internal_server_error_is_failed_and_not_retried() {
    let sb = sandbox().await;
    let qp = qp_builder(&sb).max_retries(3).build().unwrap();
    sb.inject(POINTS, Fault::status(500));

    let e = qp.award_points(&rows()).await.unwrap_err();
    assert!(matches!(e, Error::InternalServer(_)), "{e:?}");
    assert_eq!(e.status(), Some(500));
    assert_eq!(sb.request_count(POINTS), 1);
    assert!(sb.ledger().is_empty());
}

#[tokio::test]
async fn gateway_errors_are_unknown_and_not_retried() {
    for status in [502u16, 504] {
        let sb = sandbox().await;
        let qp = qp_builder(&sb).max_retries(3).build().unwrap();
        sb.inject(POINTS, Fault::status(status).times(5));

        let e = qp.award_points(&rows()).await.unwrap_err();
        assert_eq!(cause(&e), UnknownCause::Gateway, "{status}: {e}");
        assert_eq!(e.status(), Some(status));
        assert_eq!(sb.request_count(POINTS), 1, "{status} must not be retried");
        assert!(sb.ledger().is_empty());
    }
}

#[tokio::test]
async fn gateway_error_after_processing_is_still_unknown() {
    let sb = sandbox().await;
    let qp = qp_builder(&sb).max_retries(3).build().unwrap();
    sb.inject(POINTS, Fault::status(502).processed());

    let e = qp.award_points(&rows()).await.unwrap_err();
    assert_eq!(cause(&e), UnknownCause::Gateway, "{e}");
    assert_eq!(sb.request_count(POINTS), 1);
    assert_eq!(sb.ledger(), credited(), "the origin did apply it: re-sending would award twice");
}

/// A bare HTTP/1.1 server that answers every request with `response` (raw bytes) and then
/// closes the connection. Returns its base URL and a counter of requests read. Used where
/// the answer must break at the HTTP level (a body shorter than its Content-Length), which
/// the sandbox's faults do not produce.
async fn raw_server(response: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head, then as many body bytes as Content-Length says.
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = sock.write_all(response.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (url, seen)
}

fn raw_qp(url: &str) -> rewardkit::questionpro::QuestionPro {
    rewardkit::questionpro::QuestionPro::builder()
        .api_key("k")
        .base_url(url)
        .rate_limit(None)
        .max_retries(3)
        .backoff(ms(10), ms(50))
        .build()
        .unwrap()
}

/// A 502 whose body is cut off mid-way is still a gateway answer: the origin may have
/// processed the request. (Regression test: `Transport::send` used to return an error status
/// with an unreadable body before the 502/504 → OutcomeUnknown rule, so the call ended in
/// InternalServerError, bulk outcome `failed`.)
#[tokio::test]
async fn gateway_error_with_a_cut_off_body_is_still_unknown() {
    let (url, seen) = raw_server(
        "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: 1000\r\n\r\n<html><body>Bad",
    )
    .await;
    let e = raw_qp(&url).award_points(&rows()).await.unwrap_err();
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert_eq!(e.class_name(), "OutcomeUnknownError", "{e:?}");
    assert_eq!(cause(&e), UnknownCause::Gateway);
    assert_eq!(e.status(), Some(502));
}

#[tokio::test]
async fn success_with_a_cut_off_body_is_unknown() {
    let (url, seen) = raw_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"response\": {\"successCount\": 2",
    )
    .await;
    let e = raw_qp(&url).award_points(&rows()).await.unwrap_err();
    assert_eq!(cause(&e), UnknownCause::UnreadableBody, "{e}");
    assert_eq!(e.status(), Some(200));
    assert_eq!(seen.load(Ordering::SeqCst), 1, "not re-sent");
}

#[tokio::test]
async fn an_error_status_with_a_cut_off_body_keeps_its_class() {
    let (url, seen) =
        raw_server("HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"resp")
            .await;
    let e = raw_qp(&url).award_points(&rows()).await.unwrap_err();
    assert!(matches!(e, Error::BadRequest(_)), "{e:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unreadable_success_body_is_unknown() {
    let sb = sandbox().await;
    let qp = qp_builder(&sb).max_retries(3).build().unwrap();
    sb.inject(POINTS, Fault::unreadable_body().processed());

    let e = qp.award_points(&rows()).await.unwrap_err();
    assert_eq!(cause(&e), UnknownCause::UnreadableBody, "{e}");
    assert_eq!(e.status(), Some(200));
    assert_eq!(sb.request_count(POINTS), 1);
    assert_eq!(sb.ledger(), credited(), "credited exactly once");
}

#[tokio::test]
async fn success_status_with_a_non_json_body_is_unknown() {
    let sb = sandbox().await;
    let qp = qp_builder(&sb).max_retries(3).build().unwrap();
    sb.inject(POINTS, Fault::status(200).body("<html>OK</html>").processed());

    let e = qp.award_points(&rows()).await.unwrap_err();
    assert_eq!(cause(&e), UnknownCause::UnreadableBody, "{e}");
    assert_eq!(sb.request_count(POINTS), 1);
    assert_eq!(sb.ledger(), credited());
}

#[tokio::test]
async fn too_many_requests_with_retry_after_is_retried_once_then_credited_once() {
    let sb = sandbox().await;
    let qp = qp_builder(&sb).max_retries(3).build().unwrap();
    sb.inject(POINTS, Fault::status(429).retry_after(1));

    let res = qp.award_points(&rows()).await.expect("the retry succeeds");
    assert_eq!(res.success_count, 2);
    assert_eq!(sb.request_count(POINTS), 2);
    assert_eq!(sb.ledger(), credited());
    assert_eq!(sb.awards().len(), 2);
}

#[tokio::test]
async fn service_unavailable_is_retried_then_credited_once() {
    let sb = sandbox().await;
    let qp = qp_builder(&sb).max_retries(3).build().unwrap();
    sb.inject(POINTS, Fault::status(503));

    let res = qp.award_points(&rows()).await.expect("the retry succeeds");
    assert_eq!(res.success_count, 2);
    assert_eq!(sb.request_count(POINTS), 2);
    assert_eq!(sb.ledger(), credited());
}

#[tokio::test]
async fn service_unavailable_beyond_max_retries_is_failed() {
    let sb = sandbox().await;
    let qp = qp_builder(&sb).max_retries(2).build().unwrap();
    sb.inject(POINTS, Fault::status(503).times(10));

    let e = qp.award_points(&rows()).await.unwrap_err();
    assert!(matches!(e, Error::InternalServer(_)), "{e:?}");
    assert_eq!(e.status(), Some(503));
    assert_eq!(sb.request_count(POINTS), 3, "max_retries + 1 attempts");
    assert!(sb.ledger().is_empty());
}

#[tokio::test]
async fn too_many_requests_beyond_max_retries_is_a_rate_limit_error() {
    let sb = sandbox().await;
    let qp = qp_builder(&sb).max_retries(1).build().unwrap();
    sb.inject(POINTS, Fault::status(429).retry_after(1).times(10));

    let e = qp.award_points(&rows()).await.unwrap_err();
    assert!(matches!(e, Error::RateLimit(_)), "{e:?}");
    assert_eq!(e.status(), Some(429));
    assert_eq!(e.api_error().unwrap().retry_after, Some(Duration::from_secs(1)));
    assert_eq!(sb.request_count(POINTS), 2, "max_retries + 1 attempts");
    assert!(sb.ledger().is_empty());
}

#[tokio::test]
async fn a_wait_longer_than_max_retry_wait_is_handed_to_the_caller() {
    let sb = sandbox().await;
    let qp = qp_builder(&sb).max_retries(3).max_retry_wait(Duration::from_secs(5)).build().unwrap();
    sb.inject(POINTS, Fault::status(429).retry_after(30).times(10));

    let e = qp.award_points(&rows()).await.unwrap_err();
    assert!(matches!(e, Error::RateLimit(_)), "{e:?}");
    assert_eq!(e.api_error().unwrap().retry_after, Some(Duration::from_secs(30)));
    assert_eq!(sb.request_count(POINTS), 1);
}

#[tokio::test]
async fn a_spent_call_quota_is_not_retried() {
    let quota = r#"{"response":{"error":{"docs":"www.questionpro.com/api/error-codes.html","name":"TOO_MANY_REQUESTS","httpStatusCode":429,"id":"1013","message":"API call limit exceeded","resourceUrl":"resource_url"}}}"#;
    let sb = sandbox().await;
    let qp = qp_builder(&sb).max_retries(3).build().unwrap();
    sb.inject(POINTS, Fault::status(429).body(quota).times(10));

    let e = qp.award_points(&rows()).await.unwrap_err();
    assert!(matches!(e, Error::RateLimit(_)), "{e:?}");
    let api = e.api_error().unwrap();
    assert_eq!(api.error_id.as_deref(), Some("1013"));
    assert_eq!(api.message, "API call limit exceeded");
    assert_eq!(sb.request_count(POINTS), 1, "a spent quota cannot be waited out");
}

#[tokio::test]
async fn connection_refused_is_a_connection_error() {
    let port = dead_port();
    let qp = rewardkit::questionpro::QuestionPro::builder()
        .api_key("k")
        .base_url(format!("http://127.0.0.1:{port}"))
        .rate_limit(None)
        .max_retries(2)
        .backoff(ms(5), ms(20))
        .build()
        .unwrap();
    let e = qp.award_points(&rows()).await.unwrap_err();
    assert!(matches!(e, Error::Connection(_)), "{e:?}");
    assert_eq!(e.class_name(), "APIConnectionError");

    let sp = rewardkit::splio::Splio::builder()
        .api_key("k")
        .base_url(format!("http://127.0.0.1:{port}"))
        .rate_limit(None)
        .max_retries(1)
        .backoff(ms(5), ms(20))
        .build()
        .unwrap();
    let e = sp.get_reward("x").await.unwrap_err();
    assert!(matches!(e, Error::Connection(_)), "{e:?}");
}

#[tokio::test]
async fn connection_refused_then_available_is_retried_and_credited_once() {
    // A request that never reached a server may be re-sent: the server comes up on the port
    // while the client is backing off.
    let port = dead_port();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let qp = rewardkit::questionpro::QuestionPro::builder()
        .api_key("sandbox-questionpro-key")
        .base_url(format!("http://{addr}"))
        .rate_limit(None)
        .max_retries(8)
        .backoff(ms(100), ms(200))
        .build()
        .unwrap();
    let late = tokio::spawn(async move {
        tokio::time::sleep(ms(150)).await;
        sandbox_with(rewardkit::sandbox::SandboxConfig { addr, ..Default::default() }).await
    });
    let res = qp.award_points(&rows()).await.expect("retried until the server was up");
    let sb = late.await.unwrap();
    assert_eq!(res.success_count, 2);
    assert_eq!(sb.request_count(POINTS), 1);
    assert_eq!(sb.ledger(), credited());
}

#[tokio::test]
async fn cross_origin_redirect_is_not_followed() {
    let sb = sandbox().await;
    let other = sandbox().await;
    let qp = qp_builder(&sb).max_retries(3).build().unwrap();
    let target = format!("{}/a/api/v2/micropanel/members/points", other.url());
    sb.inject(POINTS, Fault::status(307).header("location", target));

    let e = qp.award_points(&rows()).await.unwrap_err();
    assert_eq!(e.status(), Some(307), "{e:?}");
    assert!(matches!(e, Error::Api(_)), "{e:?}");
    assert_eq!(sb.request_count(POINTS), 1);
    assert_eq!(other.request_count(POINTS), 0, "the api-key must not be handed to another origin");
    assert!(other.requests(POINTS).is_empty());
    assert!(sb.ledger().is_empty() && other.ledger().is_empty());
}

#[tokio::test]
async fn same_origin_redirect_is_followed_with_the_key() {
    let sb = sandbox().await;
    let qp = qp_builder(&sb).max_retries(3).build().unwrap();
    sb.inject(POINTS, Fault::status(307).header("location", "/a/api/v2/micropanel/members/points"));

    let res = qp.award_points(&rows()).await.expect("the redirect is followed");
    assert_eq!(res.success_count, 2);
    assert_eq!(sb.request_count(POINTS), 2);
    assert_eq!(sb.ledger(), credited());
    let reqs = sb.requests(POINTS);
    assert_eq!(header(&reqs[1], "api-key"), Some("<redacted>"));
    assert_eq!(reqs[1].method, "POST");
    assert_eq!(reqs[1].body, reqs[0].body);
}

#[tokio::test]
async fn splio_cross_origin_redirect_keeps_the_token_home() {
    let sb = sandbox().await;
    let other = sandbox().await;
    let sp = splio(&sb);
    sp.create_reward(&reward("r-redirect")).await.unwrap();
    sb.inject(
        Route::SplioGetReward,
        Fault::status(302).header("location", format!("{}/loyalty/v1/rewards/r-redirect", other.url())),
    );

    let e = sp.get_reward("r-redirect").await.unwrap_err();
    assert_eq!(e.status(), Some(302), "{e:?}");
    for r in Route::ALL {
        assert_eq!(other.request_count(r), 0, "{}", r.as_str());
    }
}

#[tokio::test]
async fn splio_read_is_retried_after_a_server_error() {
    let sb = sandbox().await;
    let sp = splio_builder(&sb).max_retries(3).build().unwrap();
    sp.create_reward(&reward("r-get")).await.unwrap();
    sb.inject(Route::SplioGetReward, Fault::status(500).times(2));

    let r = sp.get_reward("r-get").await.expect("the read is retried");
    assert_eq!(r.external_id, "r-get");
    assert_eq!(sb.request_count(Route::SplioGetReward), 3);
}

#[tokio::test]
async fn splio_read_is_retried_after_a_timeout_or_a_dropped_connection() {
    let sb = sandbox().await;
    let sp = splio_builder(&sb).timeout(ms(300)).max_retries(3).build().unwrap();
    sp.create_reward(&reward("r-get")).await.unwrap();
    sb.inject(Route::SplioGetReward, Fault::delay(Duration::from_secs(1)));
    sb.inject(Route::SplioGetReward, Fault::drop_connection());
    sb.inject(Route::SplioGetReward, Fault::status(502));

    let r = sp.get_reward("r-get").await.expect("reads are safe to repeat");
    assert_eq!(r.external_id, "r-get");
    assert_eq!(sb.request_count(Route::SplioGetReward), 4);
}

#[tokio::test]
async fn splio_read_timeout_beyond_retries_is_a_timeout_error() {
    let sb = sandbox().await;
    let sp = splio_builder(&sb).timeout(ms(300)).max_retries(1).build().unwrap();
    sp.create_reward(&reward("r-get")).await.unwrap();
    sb.inject(Route::SplioGetReward, Fault::delay(Duration::from_secs(1)).times(5));

    let e = sp.get_reward("r-get").await.unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
    assert_eq!(e.class_name(), "APITimeoutError");
    assert_eq!(sb.request_count(Route::SplioGetReward), 2, "max_retries + 1 attempts");
}

#[tokio::test]
async fn splio_create_is_not_retried_after_a_server_error() {
    let sb = sandbox().await;
    let sp = splio_builder(&sb).max_retries(3).build().unwrap();
    sb.inject(Route::SplioCreateReward, Fault::status(500).times(5));

    let e = sp.create_reward(&reward("r-500")).await.unwrap_err();
    assert!(matches!(e, Error::InternalServer(_)), "{e:?}");
    assert_eq!(sb.request_count(Route::SplioCreateReward), 1);
    assert!(sb.rewards().is_empty());
}

#[tokio::test]
async fn splio_create_timeout_is_unknown_and_not_resent() {
    let sb = sandbox().await;
    let sp = splio_builder(&sb).timeout(ms(300)).max_retries(3).build().unwrap();
    sb.inject(Route::SplioCreateReward, Fault::delay(Duration::from_secs(1)));

    let e = sp.create_reward(&reward("r-slow")).await.unwrap_err();
    assert_eq!(cause(&e), UnknownCause::Timeout, "{e}");
    assert_eq!(sb.request_count(Route::SplioCreateReward), 1);
    assert!(eventually(Duration::from_secs(3), || sb.rewards().len() == 1).await);
}

#[tokio::test]
async fn splio_create_gateway_error_is_unknown() {
    let sb = sandbox().await;
    let sp = splio_builder(&sb).max_retries(3).build().unwrap();
    sb.inject(Route::SplioCreateReward, Fault::status(504).processed());

    let e = sp.create_reward(&reward("r-504")).await.unwrap_err();
    assert_eq!(cause(&e), UnknownCause::Gateway, "{e}");
    assert_eq!(sb.request_count(Route::SplioCreateReward), 1);
    assert_eq!(sb.rewards().len(), 1);
}

#[tokio::test]
async fn splio_create_refused_with_503_is_retried_and_created_once() {
    let sb = sandbox().await;
    let sp = splio_builder(&sb).max_retries(3).build().unwrap();
    sb.inject(Route::SplioCreateReward, Fault::status(503));

    let r = sp.create_reward(&reward("r-503")).await.expect("503 was refused before processing");
    assert_eq!(r.external_id, "r-503");
    assert_eq!(sb.request_count(Route::SplioCreateReward), 2);
    assert_eq!(sb.rewards().len(), 1);
}

#[tokio::test]
async fn splio_authentication_is_retried_after_a_server_error() {
    let sb = sandbox().await;
    let sp = splio_builder(&sb).max_retries(3).build().unwrap();
    sb.inject(Route::SplioAuthenticate, Fault::status(500));
    sp.create_reward(&reward("r-auth")).await.expect("authentication is safe to repeat");
    assert_eq!(sb.request_count(Route::SplioAuthenticate), 2);
    assert_eq!(sb.request_count(Route::SplioCreateReward), 1);
}
