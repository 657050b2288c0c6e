//! The bulk engine against the sandbox: concurrency, faults mid-job, validation modes, the
//! journal, fatal errors and cancelling. Every test checks the same invariant against the
//! sandbox's ledger: every row has exactly one outcome, awarded rows are credited exactly
//! once, rows that were not applied are not credited, and unknown rows are credited at most once.

mod common;

use common::*;
use rewardkit::bulk::{BulkJob, BulkOptions, BulkReport, IterSource, OnInvalid, Outcome, VecSource};
use rewardkit::questionpro::PointsAward;
use rewardkit::sandbox::{Fault, Route, Sandbox};
use rewardkit::Error;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const POINTS: Route = Route::QuestionproPoints;

fn rows(n: usize) -> Vec<PointsAward> {
    (0..n).map(|i| PointsAward::new(1_000_000 + i as i64, 1 + (i % 7) as i64)).collect()
}

fn opts(batch: usize, concurrency: usize) -> BulkOptions {
    BulkOptions { batch_size: batch, concurrency, ..BulkOptions::default() }
}

fn journal_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("rewardkit-test-{name}-{}-{}.db", std::process::id(), fastrand_u64()));
    let _ = std::fs::remove_file(&p);
    p
}

fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish()
}

/// The invariant of design.md point 1, checked against what the sandbox credited.
fn check_exactly_once(report: &BulkReport, input: &[PointsAward], sb: &Sandbox) {
    let views: Vec<_> = report.rows().collect();
    assert_eq!(views.len(), input.len(), "every row has an outcome: {:?}", report.totals);
    for (i, v) in views.iter().enumerate() {
        assert_eq!(v.row, i, "rows in order, each once");
    }
    let mut credited: HashMap<i64, usize> = HashMap::new();
    for a in sb.awards() {
        *credited.entry(a.panel_member_id).or_default() += 1;
    }
    for v in &views {
        let id = input[v.row].panel_member_id;
        let n = credited.get(&id).copied().unwrap_or(0);
        match v.outcome {
            Outcome::Awarded => assert_eq!(n, 1, "row {} awarded exactly once", v.row),
            Outcome::Unknown => assert!(n <= 1, "row {} unknown but credited {n} times", v.row),
            other => assert_eq!(n, 0, "row {} is {other:?} but was credited", v.row),
        }
    }
    let t = report.totals;
    assert_eq!(t.rows, input.len());
    assert_eq!(t.awarded + t.skipped + t.invalid + t.rejected + t.failed + t.unknown, input.len(), "{t:?}");
}

#[tokio::test]
async fn a_clean_job_awards_every_row_once() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    let input = rows(2_000);
    let report = qp.bulk_award(VecSource::new(input.clone()), opts(100, 4)).await.unwrap();
    assert_eq!(report.totals.awarded, 2_000);
    assert_eq!(report.requests, 20);
    assert_eq!(sb.request_count(POINTS), 20);
    assert_eq!(report.totals.points_awarded, input.iter().map(|r| r.points).sum::<i64>());
    assert!(report.is_complete());
    assert!(report.chunks.iter().all(|c| c.request_id.is_some()));
    check_exactly_once(&report, &input, &sb);
}

#[tokio::test]
async fn skipped_members_are_reported_on_their_rows() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    let mut input = rows(250);
    input[7].panel_member_id = 900_000_000_007;
    input[201].panel_member_id = 900_000_000_201;
    let report = qp.bulk_award(VecSource::new(input.clone()), opts(100, 3)).await.unwrap();
    assert_eq!((report.totals.awarded, report.totals.skipped), (248, 2));
    let skipped: Vec<usize> = report.rows().filter(|v| v.outcome == Outcome::Skipped).map(|v| v.row).collect();
    assert_eq!(skipped, [7, 201]);
    assert!(report.is_complete());
    check_exactly_once(&report, &input, &sb);
}

#[tokio::test]
async fn invalid_rows_stop_the_job_before_anything_is_sent() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    let values: Vec<_> = (0..300)
        .map(|i| match i {
            17 => json!({"panelMemberID": "x", "points": 1}),
            250 => json!({"panelMemberID": 5, "points": 0}),
            _ => json!({"panelMemberID": 10_000 + i, "points": 1}),
        })
        .collect();
    let err = qp.bulk_award(VecSource::from_values(&values), opts(50, 2)).await.unwrap_err();
    assert_eq!(sb.request_count(POINTS), 0, "nothing is sent");
    let Error::Validation(errs) = &err.error else { panic!("{:?}", err.error) };
    let bad: Vec<_> = errs.iter().map(|e| (e.row, e.key.as_str(), e.code.as_str())).collect();
    assert_eq!(bad, [(Some(17), "panelMemberID", "wrong_type"), (Some(250), "points", "wrong_value")]);
    assert_eq!(err.report.totals.invalid, 2);
}

#[tokio::test]
async fn send_valid_sends_the_good_rows_and_reports_the_bad_ones() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    let mut input = rows(300);
    let mut values: Vec<_> = input.iter().map(|r| serde_json::to_value(r).unwrap()).collect();
    values[17] = json!({"panelMemberID": "x", "points": 1});
    values[18] = json!({"panelMemberID": input[3].panel_member_id, "points": 1}); // a duplicate
    input[17].panel_member_id = -1; // never credited
    input[18].panel_member_id = -2;
    let o = BulkOptions { on_invalid: OnInvalid::SendValid, ..opts(50, 3) };
    let report = qp.bulk_award(VecSource::from_values(&values), o).await.unwrap();
    assert_eq!((report.totals.awarded, report.totals.invalid), (298, 2));
    let invalid: Vec<_> = report.exceptions.iter().map(|e| (e.row, e.outcome, e.errors[0].code.as_str())).collect();
    assert_eq!(invalid, [(17, Outcome::Invalid, "wrong_type"), (18, Outcome::Invalid, "duplicate")]);
    check_exactly_once(&report, &input, &sb);
}

#[tokio::test]
async fn a_one_shot_source_is_validated_first_and_then_sent() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    let input = rows(5_000);
    let source = IterSource(input.clone().into_iter().map(Ok));
    let report = qp.bulk_award(source, opts(500, 4)).await.unwrap();
    assert_eq!(report.totals.awarded, 5_000);
    check_exactly_once(&report, &input, &sb);
}

/// Injects faults once the job is under way: the first fault after `after` chunks are done.
fn inject_mid_job(sb: &Arc<Sandbox>, after: usize, faults: Vec<Fault>) -> impl Fn(&rewardkit::bulk::Progress) {
    let sb = sb.clone();
    let seen = AtomicUsize::new(0);
    let faults = std::sync::Mutex::new(Some(faults));
    move |_p| {
        if seen.fetch_add(1, Ordering::SeqCst) + 1 == after {
            for f in faults.lock().unwrap().take().unwrap_or_default() {
                sb.inject(POINTS, f);
            }
        }
    }
}

#[tokio::test]
async fn faults_mid_job_give_each_row_one_honest_outcome() {
    let sb = Arc::new(sandbox().await);
    let qp = qp_builder(&sb).timeout(ms(400)).max_retries(3).build().unwrap();
    let input = rows(3_000);
    let faults = vec![
        Fault::status(429).retry_after(0).times(3),
        Fault::status(503).times(2),
        Fault::status(500),
        Fault::drop_connection().processed(),
        Fault::drop_connection(),
        Fault::status(502).processed(),
        Fault::delay(ms(1_000)),
        Fault::unreadable_body().processed(),
    ];
    let job = BulkJob::new(&qp, opts(100, 4)).on_progress(inject_mid_job(&sb, 3, faults));
    let report = job.run(VecSource::new(input.clone())).await.unwrap();
    let t = report.totals;
    assert_eq!(t.failed, 100, "one chunk got the 500: {t:?}");
    assert_eq!(t.unknown, 500, "drop x2, 502, read timeout, unreadable body: {t:?}");
    assert_eq!(t.awarded, 2_400, "{t:?}");
    assert_eq!(report.unknown_chunks().count(), 5);
    // 30 chunks, plus the re-sends after 3 x 429 and 2 x 503; never a re-send after the rest.
    assert_eq!(sb.request_count(POINTS), 30 + 5);
    check_exactly_once(&report, &input, &sb);
}

#[tokio::test]
async fn a_fatal_error_stops_the_job_with_the_partial_report() {
    let sb = Arc::new(sandbox().await);
    let qp = qp(&sb);
    let input = rows(2_000);
    let job = BulkJob::new(&qp, opts(100, 1)).on_progress(inject_mid_job(&sb, 5, vec![Fault::status(401)]));
    let err = job.run(VecSource::new(input.clone())).await.unwrap_err();
    assert!(matches!(err.error, Error::Authentication(_)), "{:?}", err.error);
    let report = &err.report;
    assert_eq!(report.stopped_by.as_ref().unwrap().class, "AuthenticationError");
    assert_eq!(report.totals.awarded, 500);
    assert_eq!(report.totals.rejected, 100, "the chunk that got the 401");
    assert_eq!(report.totals.failed, 1_400, "the rest were not sent");
    assert_eq!(sb.request_count(POINTS), 6);
    check_exactly_once(report, &input, &sb);
}

#[tokio::test]
async fn a_cancelled_job_stops_cleanly() {
    let sb = Arc::new(sandbox().await);
    let qp = qp(&sb);
    let input = rows(5_000);
    let job = BulkJob::new(&qp, opts(100, 2));
    let token = job.cancel_token();
    let seen = AtomicUsize::new(0);
    let job = job.on_progress(move |_| {
        if seen.fetch_add(1, Ordering::SeqCst) == 4 {
            token.cancel();
        }
    });
    let report = job.run(VecSource::new(input.clone())).await.unwrap();
    assert_eq!(report.stopped_by.as_ref().unwrap().class, "Interrupted");
    let sent = sb.request_count(POINTS) as usize;
    assert!(sent < 50, "stopped early ({sent} requests)");
    assert_eq!(report.totals.awarded, sent * 100, "chunks in flight finished and were recorded");
    // The rows the job never read have no outcome in this report; a re-run with a journal sends them.
    for v in report.rows() {
        assert_eq!(v.outcome, Outcome::Awarded);
    }
}

#[tokio::test]
async fn a_journal_resumes_without_resending() {
    let sb = Arc::new(sandbox().await);
    let qp = qp_builder(&sb).timeout(ms(400)).build().unwrap();
    let input = rows(2_000);
    let path = journal_path("resume");
    let o = BulkOptions { journal: Some(path.clone()), ..opts(100, 2) };

    // First run: one chunk fails (500), one ends unknown (dropped after processing).
    let faults = vec![Fault::status(500), Fault::drop_connection().processed()];
    let job = BulkJob::new(&qp, o.clone()).on_progress(inject_mid_job(&sb, 2, faults));
    let first = job.run(VecSource::new(input.clone())).await.unwrap();
    assert_eq!((first.totals.failed, first.totals.unknown, first.totals.awarded), (100, 100, 1_800));
    assert_eq!(sb.request_count(POINTS), 20);

    // Second run, same input and journal: only the failed chunk is sent; the unknown one is listed.
    let second = qp.bulk_award(VecSource::new(input.clone()), o.clone()).await.unwrap();
    assert_eq!(sb.request_count(POINTS), 21, "only the failed chunk went out again");
    assert_eq!(second.requests, 1);
    assert_eq!(second.resumed_chunks, 19);
    assert_eq!((second.totals.awarded, second.totals.unknown), (1_900, 100));
    let unknown: Vec<_> = second.unknown_chunks().map(|c| c.from_journal).collect();
    assert_eq!(unknown, [true]);
    check_exactly_once(&second, &input, &sb);

    // Third run with resend_unknown: the unknown chunk is sent again. The sandbox had applied it,
    // so its rows are now credited twice — which is exactly why this is opt-in.
    let o3 = BulkOptions { resend_unknown: true, ..o.clone() };
    let third = qp.bulk_award(VecSource::new(input.clone()), o3).await.unwrap();
    assert_eq!(third.requests, 1);
    assert_eq!(third.totals.awarded, 2_000);
    assert_eq!(sb.awards().len(), 2_100);

    // A fourth run sends nothing at all.
    let fourth = qp.bulk_award(VecSource::new(input.clone()), o).await.unwrap();
    assert_eq!(fourth.requests, 0);
    assert_eq!(fourth.resumed_chunks, 20);
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_journal_from_another_input_is_refused() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    let path = journal_path("other");
    let o = BulkOptions { journal: Some(path.clone()), ..opts(100, 2) };
    qp.bulk_award(VecSource::new(rows(300)), o.clone()).await.unwrap();
    let mut other = rows(300);
    other[5].points = 99;
    let err = qp.bulk_award(VecSource::new(other), o.clone()).await.unwrap_err();
    assert!(matches!(&err.error, Error::Config(m) if m.contains("different input")), "{:?}", err.error);
    assert_eq!(sb.request_count(POINTS), 3, "nothing sent for the other input");

    let err = qp.bulk_award(VecSource::new(rows(300)), BulkOptions { batch_size: 50, ..o }).await.unwrap_err();
    assert!(matches!(&err.error, Error::Config(m) if m.contains("batch_size")), "{:?}", err.error);
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn progress_reports_rows_rate_and_eta() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let job = BulkJob::new(&qp, opts(100, 2)).on_progress(move |p| s.lock().unwrap().push(p.clone()));
    job.run(VecSource::new(rows(1_000))).await.unwrap();
    let seen = seen.lock().unwrap();
    assert!(seen.len() >= 10);
    assert!(seen.windows(2).all(|w| w[0].rows_done <= w[1].rows_done));
    let last = seen.last().unwrap();
    assert_eq!((last.rows_done, last.rows_total), (1_000, Some(1_000)));
    assert_eq!(last.totals.awarded, 1_000);
    assert!(seen.iter().any(|p| p.eta.is_some()));
}

#[tokio::test]
async fn progress_names_each_chunk_as_it_is_recorded() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let job = BulkJob::new(&qp, opts(100, 3)).on_progress(move |p| s.lock().unwrap().push(p.chunk.clone()));
    let report = job.run(VecSource::new(rows(1_000))).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 11, "one call per chunk, and one at the end");
    assert!(seen.last().unwrap().is_none());
    let mut named: Vec<_> = seen.iter().flatten().cloned().collect();
    named.sort_by_key(|c| c.chunk);
    assert_eq!(named, report.chunks);
}

#[tokio::test]
async fn a_cancel_while_waiting_for_room_sends_nothing_more() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    let job = BulkJob::new(&qp, opts(100, 1));
    let token = job.cancel_token();
    let job = job.on_progress(move |_| token.cancel());
    let report = job.run(VecSource::new(rows(1_000))).await.unwrap();
    assert_eq!(sb.request_count(POINTS), 1, "the chunk waiting for room was not sent");
    assert_eq!(report.requests, 1);
    assert_eq!(report.stopped_by.as_ref().unwrap().class, "Interrupted");
    assert_eq!((report.totals.rows, report.totals.awarded), (100, 100));
}

#[tokio::test]
async fn an_aborted_job_abandons_its_requests_in_flight_as_unknown() {
    let sb = Arc::new(sandbox().await);
    let qp = qp(&sb);
    let input = rows(1_000);
    let path = journal_path("abort");
    let o = BulkOptions { journal: Some(path.clone()), ..opts(100, 2) };
    // The second and third chunks hang (the sandbox credits them first, as a server that answers late does).
    sb.inject(POINTS, Fault::delay(ms(0)));
    sb.inject(POINTS, Fault::delay(ms(30_000)).times(2));
    let job = BulkJob::new(&qp, o.clone());
    let abort = job.abort_token();
    let cancel = job.cancel_token();
    let sb2 = sb.clone();
    let waiter = tokio::spawn(async move {
        while sb2.request_count(POINTS) < 3 {
            tokio::time::sleep(ms(5)).await;
        }
        abort.cancel();
    });
    let report = job.run(VecSource::new(input.clone())).await.unwrap();
    waiter.await.unwrap();
    assert!(cancel.is_cancelled(), "aborting cancels too");
    let stop = report.stopped_by.as_ref().unwrap();
    assert_eq!(stop.class, "Interrupted");
    assert!(stop.message.contains("at once"), "{stop:?}");
    let outcomes: Vec<_> = report.chunks.iter().map(|c| (c.chunk, c.outcome)).collect();
    assert_eq!(outcomes, [(0, Outcome::Awarded), (1, Outcome::Unknown), (2, Outcome::Unknown)]);
    assert_eq!(sb.request_count(POINTS), 3, "nothing more was sent");
    check_exactly_once_so_far(&report, &input, &sb);

    // Resumed: the abandoned chunks stay unknown (never re-sent), the rest is sent.
    sb.clear_faults();
    let second = qp.bulk_award(VecSource::new(input.clone()), o).await.unwrap();
    assert_eq!(second.requests, 7);
    assert_eq!(second.resumed_chunks, 3);
    let unknown: Vec<_> = second.unknown_chunks().map(|c| (c.chunk, c.from_journal)).collect();
    assert_eq!(unknown, [(1, true), (2, true)]);
    assert_eq!((second.totals.awarded, second.totals.unknown), (800, 200));
    check_exactly_once(&second, &input, &sb);
    let _ = std::fs::remove_file(&path);
}

/// [`check_exactly_once`] for a report that covers the first rows of `input` only.
fn check_exactly_once_so_far(report: &BulkReport, input: &[PointsAward], sb: &Sandbox) {
    let covered = report.rows().count();
    let mut credited: HashMap<i64, usize> = HashMap::new();
    for a in sb.awards() {
        *credited.entry(a.panel_member_id).or_default() += 1;
    }
    for (i, v) in report.rows().enumerate() {
        assert_eq!(v.row, i);
        let n = credited.get(&input[i].panel_member_id).copied().unwrap_or(0);
        match v.outcome {
            Outcome::Awarded => assert_eq!(n, 1, "row {i}"),
            Outcome::Unknown => assert!(n <= 1, "row {i}"),
            _ => assert_eq!(n, 0, "row {i}"),
        }
    }
    for r in &input[covered..] {
        assert_eq!(credited.get(&r.panel_member_id), None, "a row with no outcome was credited");
    }
}

#[tokio::test]
async fn a_journal_that_sent_nothing_takes_the_next_job() {
    let sb = sandbox().await;
    let qp = qp(&sb);
    let path = journal_path("fresh");
    let o = BulkOptions { journal: Some(path.clone()), ..opts(100, 2) };
    // An invalid input sends nothing, and claims neither the journal's input nor its settings.
    let mut values: Vec<_> = rows(300).iter().map(|r| serde_json::to_value(r).unwrap()).collect();
    values[5] = json!({"panelMemberID": 5, "points": 0});
    let err = qp.bulk_award(VecSource::from_values(&values), o.clone()).await.unwrap_err();
    assert!(matches!(err.error, Error::Validation(_)), "{:?}", err.error);
    let o50 = BulkOptions { batch_size: 50, ..o.clone() };
    let report = qp.bulk_award(VecSource::new(rows(300)), o50.clone()).await.unwrap();
    assert_eq!(report.totals.awarded, 300);
    // Once something was sent, the journal is that job's.
    let err = qp.bulk_award(VecSource::new(rows(300)), o).await.unwrap_err();
    assert!(matches!(&err.error, Error::Config(m) if m.contains("batch_size")), "{:?}", err.error);
    let err = qp.bulk_award(VecSource::new(rows(299)), o50).await.unwrap_err();
    assert!(matches!(&err.error, Error::Config(m) if m.contains("different input")), "{:?}", err.error);
    assert_eq!(sb.request_count(POINTS), 6);
    let _ = std::fs::remove_file(&path);
}
