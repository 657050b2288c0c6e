//! The command line end to end: the built `rewardkit` binary talks HTTP to a sandbox started
//! in-process on the test's own runtime, and the sandbox's ledger says what really happened.

use rewardkit::sandbox::{Fault, Route, Sandbox};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rewardkit");

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "rewardkit-cli-test-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a run of the binary gave.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn both(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!("stdout is not one JSON document ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs the binary with a clean environment (no keys, no RUST_LOG) plus `env`, feeding `stdin`.
async fn rewardkit(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("QUESTIONPRO_API_KEY")
        .env_remove("SPLIO_API_KEY")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("the rewardkit binary runs");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).await.unwrap();
        drop(pipe);
    }
    let out: Output = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the rewardkit binary finishes within 60 s")
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn sandbox() -> Sandbox {
    Sandbox::start().await.expect("the sandbox starts")
}

/// Runs `award-points FILE --base-url <sandbox>` with the sandbox's key from the environment.
async fn award(sb: &Sandbox, file: &str, extra: &[&str]) -> Run {
    let url = sb.url();
    let mut args = vec!["questionpro", "award-points", file, "--base-url", url.as_str(), "--no-pacing"];
    args.extend_from_slice(extra);
    rewardkit(&args, &[("QUESTIONPRO_API_KEY", sb.questionpro_api_key())], None).await
}

fn ledger(pairs: &[(i64, i64)]) -> BTreeMap<i64, i64> {
    pairs.iter().copied().collect()
}

const GOOD_CSV: &str = "panelMemberID,points,comments\n\
    1001,100,Thanks for the survey\n\
    1002,250,\"Diary study, week 1\"\n\
    1003,-20,Correction\n\
    123456789012,50,Not a panel member\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_rows_reach_the_ledger_and_exit_0() {
    let sb = sandbox().await;
    let dir = TempDir::new();
    let file = dir.file("points.csv", GOOD_CSV);
    let run = award(&sb, &file, &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(sb.ledger(), ledger(&[(1001, 100), (1002, 250), (1003, -20)]));
    assert_eq!(sb.request_count(Route::QuestionproPoints), 1);
    // The skipped row is listed with its line; the summary counts it.
    assert!(run.stdout.contains("line 5: panelMemberID 123456789012"), "{run:?}");
    assert!(run.stdout.contains("330 points"), "{run:?}");
    assert!(run.stderr.contains("batch 1/1"), "{run:?}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_the_given_size_are_sent_in_order() {
    let sb = sandbox().await;
    let dir = TempDir::new();
    let mut csv = String::from("panel_member_id,points\n");
    for id in 1..=7 {
        csv.push_str(&format!("{id},{id}\n"));
    }
    let run = award(&sb, &dir.file("p.csv", &csv), &["--batch-size", "3"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(sb.request_count(Route::QuestionproPoints), 3);
    assert_eq!(sb.ledger(), (1..=7).map(|i| (i, i)).collect());
    assert!(run.stderr.contains("batch 3/3: line 8: 1 awarded"), "{run:?}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_csv_lists_every_bad_line_and_sends_nothing() {
    let sb = sandbox().await;
    let dir = TempDir::new();
    let file = dir.file(
        "bad.csv",
        "panelMemberID,points,comments\n\
         1001,100,fine\n\
         abc,100,not a number\n\
         1003,,points missing\n\
         1004,0,zero\n\
         1005,12.5,not an integer\n\
         1001,10,a repeat\n\
         1007,7,fine\n",
    );
    let run = award(&sb, &file, &[]).await;
    assert_eq!(run.code, 1, "{run:?}");
    let text = run.both();
    for want in [
        "line 3: panelMemberID: wrong_type",
        "line 4: points: is_missing",
        "line 5: points: wrong_value",
        "line 6: points: wrong_type",
        "line 7: panelMemberID: duplicate",
    ] {
        assert!(text.contains(want), "missing {want:?} in {run:?}");
    }
    assert!(!text.contains("line 2:") && !text.contains("line 8:"), "{run:?}");
    assert!(run.stderr.contains("error: ValidationError"), "{run:?}");
    assert_eq!(sb.request_count(Route::QuestionproPoints), 0);
    assert!(sb.ledger().is_empty());

    // The same in JSON: one object, every error with its line and row.
    let run = award(&sb, &file, &["--json"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    let v = run.json();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["class"], "ValidationError");
    let errors = v["error"]["errors"].as_array().unwrap();
    let lines: Vec<i64> = errors.iter().map(|e| e["line"].as_i64().unwrap()).collect();
    assert_eq!(lines, [3, 4, 5, 6, 7]);
    assert_eq!(errors[0]["row"], 1);
    assert_eq!(errors[0]["key"], "panelMemberID");
    assert_eq!(errors[0]["code"], "wrong_type");
    assert_eq!(errors[0]["description"], "This value should be of type int.");
    assert_eq!(sb.request_count(Route::QuestionproPoints), 0);

    // With --allow-duplicates the repeat is no longer a problem, the others still are.
    let run = award(&sb, &file, &["--allow-duplicates", "--json"]).await;
    assert_eq!(run.json()["error"]["errors"].as_array().unwrap().len(), 4, "{run:?}");
    assert_eq!(sb.request_count(Route::QuestionproPoints), 0);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_array_json_lines_and_stdin_are_read() {
    let sb = sandbox().await;
    let dir = TempDir::new();
    let array = dir.file(
        "rows.json",
        "[\n  {\"panelMemberID\": 1, \"points\": 10},\n  {\n    \"panel_member_id\": 2,\n    \"points\": 20,\n    \"comments\": \"hi\"\n  }\n]\n",
    );
    let run = award(&sb, &array, &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(sb.ledger(), ledger(&[(1, 10), (2, 20)]));

    let lines =
        dir.file("rows.jsonl", "{\"panelMemberId\": 3, \"points\": 30}\n\n{\"panelMemberID\": 4, \"points\": 40}\n");
    let run = award(&sb, &lines, &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(sb.ledger(), ledger(&[(1, 10), (2, 20), (3, 30), (4, 40)]));

    // A bad element of a multi-line JSON array is reported at the line it starts on.
    let bad = dir.file(
        "bad.json",
        "[\n  {\"panelMemberID\": 5, \"points\": 1},\n  {\n    \"panelMemberID\": \"6\",\n    \"points\": 1\n  }\n]\n",
    );
    let run = award(&sb, &bad, &["--json"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.json()["error"]["errors"][0]["line"], 3, "{run:?}");
    let bad_lines = dir.file("bad.ndjson", "{\"panelMemberID\": 5, \"points\": 1}\nnot json\n");
    let run = award(&sb, &bad_lines, &[]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("line 2: row: invalid_json"), "{run:?}");

    // `-` reads standard input; the format is found from the content.
    let url = sb.url();
    let key = sb.questionpro_api_key().to_string();
    let env = [("QUESTIONPRO_API_KEY", key.as_str())];
    let args = ["questionpro", "award-points", "-", "--base-url", url.as_str(), "--json"];
    let run = rewardkit(&args, &env, Some("{\"panelMemberID\": 5, \"points\": 50}\n")).await;
    assert_eq!(run.code, 0, "{run:?}");
    let run = rewardkit(&args, &env, Some("panelMemberID,points\n6,60\n")).await;
    assert_eq!(run.code, 0, "{run:?}");
    let run = rewardkit(&args, &env, Some("  [{\"panelMemberID\": 7, \"points\": 70}]")).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(sb.ledger(), ledger(&[(1, 10), (2, 20), (3, 30), (4, 40), (5, 50), (6, 60), (7, 70)]));
    assert_eq!(sb.request_count(Route::QuestionproPoints), 5);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_accounts_for_every_row() {
    let sb = sandbox().await;
    let dir = TempDir::new();
    let run = award(&sb, &dir.file("points.csv", GOOD_CSV), &["--json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let v = run.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["requests"], 1);
    assert_eq!(v["stopped_by"], Value::Null);
    let t = &v["totals"];
    assert_eq!((t["rows"].as_u64(), t["awarded"].as_u64(), t["skipped"].as_u64()), (Some(4), Some(3), Some(1)));
    assert_eq!(t["points_awarded"], 330);
    for k in ["invalid", "rejected", "failed", "unknown"] {
        assert_eq!(t[k], 0, "{k}");
    }
    // Only the rows that were not awarded are listed, with their line in the file.
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["line"], 5);
    assert_eq!(rows[0]["row"], 3);
    assert_eq!(rows[0]["outcome"], "skipped");
    assert_eq!(rows[0]["panel_member_id"], 123456789012i64);
    assert!(rows[0]["request_id"].is_string());
    // Nothing but the JSON document on stdout; no progress lines in JSON mode.
    assert_eq!(run.stdout.trim().lines().count(), 1);
    assert!(!run.stderr.contains("batch"), "{run:?}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_fails_its_batch_and_exits_1() {
    let sb = sandbox().await;
    sb.inject(Route::QuestionproPoints, Fault::status(500));
    let dir = TempDir::new();
    let failed = dir.path("failed.csv");
    let failed_arg = failed.to_str().unwrap();
    let csv = "panelMemberID,points,comments\n1,1,a\n2,2,b\n3,3,c\n4,4,d\n";
    let args = ["--batch-size", "2", "--concurrency", "1", "--json", "--failed-csv", failed_arg];
    let run = award(&sb, &dir.file("p.csv", csv), &args).await;
    assert_eq!(run.code, 1, "{run:?}");
    let v = run.json();
    assert_eq!(v["ok"], false);
    assert_eq!(v["totals"]["failed"], 2);
    assert_eq!(v["totals"]["awarded"], 2);
    let rows = v["rows"].as_array().unwrap();
    let failed_lines: Vec<i64> = rows.iter().map(|r| r["line"].as_i64().unwrap()).collect();
    assert_eq!(failed_lines, [2, 3]);
    assert!(rows.iter().all(|r| r["outcome"] == "failed"));
    // A 500 is not re-sent (the request was processed by someone): one request per batch.
    assert_eq!(sb.request_count(Route::QuestionproPoints), 2);
    assert_eq!(sb.ledger(), ledger(&[(3, 3), (4, 4)]));

    let written = std::fs::read_to_string(&failed).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines[0], "line,panelMemberID,points,comments,outcome,request_id,message");
    assert!(lines[1].starts_with("2,1,1,a,failed,"), "{written}");
    assert!(lines[2].starts_with("3,2,2,b,failed,"), "{written}");
    assert_eq!(lines.len(), 3);

    // In human form the failed rows are listed with their lines and the run ends in an error line.
    sb.inject(Route::QuestionproPoints, Fault::status(500));
    let run = award(&sb, &dir.file("q.csv", "panelMemberID,points\n9,9\n"), &[]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("line 2: panelMemberID 9"), "{run:?}");
    assert!(run.stdout.contains("InternalServer") || run.stdout.contains("500"), "{run:?}");
    assert!(run.stderr.contains("error:"), "{run:?}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_unknown_and_flagged() {
    let sb = sandbox().await;
    sb.inject(Route::QuestionproPoints, Fault::drop_connection().processed());
    let dir = TempDir::new();
    let run = award(&sb, &dir.file("p.csv", "panelMemberID,points\n1,5\n"), &[]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("UNKNOWN"), "{run:?}");
    assert!(run.stdout.contains("do not resend blindly"), "{run:?}");
    assert!(run.stdout.contains("line 2: panelMemberID 1"), "{run:?}");
    // Sent once and never again: the sandbox did credit it, so a resend would double it.
    assert_eq!(sb.request_count(Route::QuestionproPoints), 1);
    assert_eq!(sb.ledger(), ledger(&[(1, 5)]));
    sb.shutdown().await;
}

/// Starts `award-points FILE --base-url <sandbox> --no-pacing --json ARGS` without waiting for it.
fn spawn_award(sb: &Sandbox, file: &str, extra: &[&str]) -> tokio::process::Child {
    let url = sb.url();
    Command::new(BIN)
        .args(["questionpro", "award-points", file, "--base-url", &url, "--no-pacing", "--json"])
        .args(extra)
        .env("QUESTIONPRO_API_KEY", sb.questionpro_api_key())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn wait_for_requests(sb: &Sandbox, n: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while sb.request_count(Route::QuestionproPoints) < n {
        assert!(std::time::Instant::now() < deadline, "request {n} never came");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

fn signal(child: &tokio::process::Child, sig: &str) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill").args([sig, &pid]).status().unwrap();
    assert!(status.success());
}

async fn finish(child: tokio::process::Child) -> Run {
    let out = tokio::time::timeout(std::time::Duration::from_secs(15), child.wait_with_output())
        .await
        .expect("the job stops promptly")
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn outcomes_by_line(v: &Value) -> Vec<(i64, String)> {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_i64().unwrap(), r["outcome"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_job_still_accounts_for_every_row() {
    let sb = sandbox().await;
    // The second request hangs long enough to interrupt the job while it is in flight.
    sb.inject(Route::QuestionproPoints, Fault::delay(std::time::Duration::ZERO));
    sb.inject(Route::QuestionproPoints, Fault::delay(std::time::Duration::from_secs(20)));
    let dir = TempDir::new();
    let file = dir.file("p.csv", "panelMemberID,points\n1,1\n2,2\n3,3\n4,4\n5,5\n6,6\n");
    let child = spawn_award(&sb, &file, &["--batch-size", "2", "--concurrency", "1"]);
    wait_for_requests(&sb, 2).await;
    // The first Ctrl-C waits for the request in flight; the second stops at once.
    signal(&child, "-INT");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    signal(&child, "-INT");
    let run = finish(child).await;
    assert_eq!(run.code, 130, "{run:?}");
    assert!(run.stderr.contains("press Ctrl-C again"), "{run:?}");
    let v = run.json();
    assert_eq!(v["ok"], false);
    assert_eq!(v["stopped_by"]["class"], "Interrupted", "{run:?}");
    assert!(v["stopped_by"]["message"].as_str().unwrap().contains("interrupted"), "{run:?}");
    let t = &v["totals"];
    assert_eq!(
        (t["rows"].as_u64(), t["awarded"].as_u64(), t["unknown"].as_u64(), t["failed"].as_u64()),
        (Some(6), Some(2), Some(2), Some(2)),
        "{run:?}"
    );
    // The abandoned request's rows are unknown; the rows never sent are failed.
    let want = [(4, "unknown"), (5, "unknown"), (6, "failed"), (7, "failed")];
    assert_eq!(outcomes_by_line(&v), want.map(|(l, o)| (l, o.to_string())));
    assert_eq!(v["not_sent"], 2);
    assert_eq!(sb.request_count(Route::QuestionproPoints), 2);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_finishes_the_requests_in_flight_and_a_rerun_resumes() {
    let sb = sandbox().await;
    sb.inject(Route::QuestionproPoints, Fault::delay(std::time::Duration::ZERO));
    sb.inject(Route::QuestionproPoints, Fault::delay(std::time::Duration::from_millis(1_500)));
    let dir = TempDir::new();
    let file = dir.file("p.csv", "panelMemberID,points\n1,1\n2,2\n3,3\n4,4\n5,5\n6,6\n");
    let journal = dir.path("job.db");
    let journal = journal.to_str().unwrap();
    let args = ["--batch-size", "2", "--concurrency", "1", "--journal", journal];
    let child = spawn_award(&sb, &file, &args);
    wait_for_requests(&sb, 2).await;
    signal(&child, "-TERM");
    let run = finish(child).await;
    assert_eq!(run.code, 130, "{run:?}");
    let v = run.json();
    assert_eq!(v["stopped_by"]["class"], "Interrupted", "{run:?}");
    let t = &v["totals"];
    assert_eq!(
        (t["awarded"].as_u64(), t["failed"].as_u64()),
        (Some(4), Some(2)),
        "the request in flight finished: {run:?}"
    );
    assert_eq!(outcomes_by_line(&v), [(6, "failed".to_string()), (7, "failed".to_string())]);
    assert_eq!(sb.request_count(Route::QuestionproPoints), 2);

    // The same command again sends only what was not sent.
    let run = finish(spawn_award(&sb, &file, &args)).await;
    assert_eq!(run.code, 0, "{run:?}");
    let v = run.json();
    assert_eq!((v["requests"].as_u64(), v["resumed_chunks"].as_u64()), (Some(1), Some(2)), "{run:?}");
    assert_eq!(sb.request_count(Route::QuestionproPoints), 3);
    assert_eq!(sb.ledger(), (1..=6).map(|i| (i, i)).collect());
    sb.shutdown().await;
}

/// `n` rows, members 5001.. with points 1..=9, one a line from line 2 on.
fn rows_csv(n: usize) -> String {
    let mut csv = String::from("panelMemberID,points,comments\n");
    for i in 0..n {
        csv.push_str(&format!("{},{},row {i}\n", 5001 + i, 1 + i % 9));
    }
    csv
}

/// How many times each member was credited.
fn credits(sb: &Sandbox) -> std::collections::HashMap<i64, usize> {
    let mut m = std::collections::HashMap::new();
    for a in sb.awards() {
        *m.entry(a.panel_member_id).or_insert(0) += 1;
    }
    m
}

/// Design point 1 against the ledger, for a `--json` result over `rows_csv(n)`: awarded rows
/// credited once, unknown rows at most once, every other row not at all.
fn check_ledger(v: &Value, n: usize, sb: &Sandbox) {
    let listed: BTreeMap<i64, String> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_i64().unwrap(), r["outcome"].as_str().unwrap().to_string()))
        .collect();
    let credited = credits(sb);
    for i in 0..n {
        let (line, id) = (i as i64 + 2, 5001 + i as i64);
        let c = credited.get(&id).copied().unwrap_or(0);
        match listed.get(&line).map(String::as_str) {
            None => assert_eq!(c, 1, "line {line} was awarded: credited once"),
            Some("unknown") => assert!(c <= 1, "line {line} is unknown but credited {c} times"),
            Some(o) => assert_eq!(c, 0, "line {line} is {o} but was credited"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_with_a_500_and_a_drop_mid_job_and_the_failed_csv() {
    let sb = sandbox().await;
    // The first three requests go through; then one gets a 500 and one is dropped after the
    // sandbox credited it. With four in flight, which batches get them is up to timing.
    sb.inject(Route::QuestionproPoints, Fault::delay(std::time::Duration::from_millis(20)).times(3));
    sb.inject(Route::QuestionproPoints, Fault::status(500));
    sb.inject(Route::QuestionproPoints, Fault::drop_connection().processed());
    let dir = TempDir::new();
    let failed = dir.path("failed.csv");
    let file = dir.file("rows.csv", &rows_csv(1_000));
    let args = ["--batch-size", "50", "--concurrency", "4", "--json", "--failed-csv", failed.to_str().unwrap()];
    let run = award(&sb, &file, &args).await;
    assert_eq!(run.code, 1, "{run:?}");
    let v = run.json();
    assert_eq!(v["ok"], false);
    let t = &v["totals"];
    assert_eq!(
        (t["rows"].as_u64(), t["awarded"].as_u64(), t["failed"].as_u64(), t["unknown"].as_u64()),
        (Some(1_000), Some(900), Some(50), Some(50)),
        "{run:?}"
    );
    assert_eq!(v["stopped_by"], Value::Null, "a 500 and a drop do not stop the job");
    // Neither is re-sent: one request per batch.
    assert_eq!(sb.request_count(Route::QuestionproPoints), 20);
    assert_eq!(v["requests"], 20);
    let unknown = v["unknown_chunks"].as_array().unwrap();
    assert_eq!(unknown.len(), 1, "{run:?}");
    let (first, last) = (unknown[0]["first_line"].as_i64().unwrap(), unknown[0]["last_line"].as_i64().unwrap());
    assert_eq!((last - first, (first - 2) % 50), (49, 0), "a whole batch: {unknown:?}");
    check_ledger(&v, 1_000, &sb);

    // The failed-rows CSV: the failed and the unknown rows, each with its line and content.
    let mut rdr = csv::Reader::from_path(&failed).unwrap();
    assert_eq!(
        rdr.headers().unwrap().iter().collect::<Vec<_>>(),
        ["line", "panelMemberID", "points", "comments", "outcome", "request_id", "message"]
    );
    let records: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 100);
    let mut outcomes = BTreeMap::new();
    for r in &records {
        let line: usize = r[0].parse().unwrap();
        let i = line - 2;
        assert_eq!(&r[1], (5001 + i).to_string(), "{r:?}");
        assert_eq!(&r[2], (1 + i % 9).to_string(), "{r:?}");
        assert_eq!(&r[3], format!("row {i}"), "{r:?}");
        *outcomes.entry(r[4].to_string()).or_insert(0) += 1;
        assert!(!r[6].is_empty(), "every row says why: {r:?}");
        if &r[4] == "unknown" {
            assert!((first..=last).contains(&(line as i64)));
        }
    }
    assert_eq!(outcomes, BTreeMap::from([("failed".to_string(), 50), ("unknown".to_string(), 50)]));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_valid_sends_the_good_rows_and_lists_the_bad_lines() {
    let sb = sandbox().await;
    let dir = TempDir::new();
    let file = dir.file(
        "p.csv",
        "panelMemberID,points,comments\n\
         1001,100,fine\n\
         abc,100,not a number\n\
         1003,5,fine\n\
         1004,0,zero\n\
         1001,10,a repeat\n\
         1006,6,fine\n",
    );
    let run = award(&sb, &file, &["--on-invalid", "send-valid", "--batch-size", "2", "--json"]).await;
    assert_eq!(run.code, 1, "invalid rows mean not every row was awarded: {run:?}");
    assert_eq!(sb.ledger(), ledger(&[(1001, 100), (1003, 5), (1006, 6)]));
    let v = run.json();
    let t = &v["totals"];
    assert_eq!((t["rows"].as_u64(), t["awarded"].as_u64(), t["invalid"].as_u64()), (Some(6), Some(3), Some(3)));
    let rows = v["rows"].as_array().unwrap();
    let bad: Vec<(i64, &str, &str)> = rows
        .iter()
        .map(|r| {
            (r["line"].as_i64().unwrap(), r["outcome"].as_str().unwrap(), r["errors"][0]["code"].as_str().unwrap())
        })
        .collect();
    assert_eq!(bad, [(3, "invalid", "wrong_type"), (5, "invalid", "wrong_value"), (6, "invalid", "duplicate")]);
    assert!(rows[2]["errors"][0]["description"].as_str().unwrap().contains("line 2"), "{run:?}");

    // In words: the bad lines are listed; the good rows were sent all the same.
    sb.reset();
    let run = award(&sb, &file, &["--on-invalid", "send-valid"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(sb.ledger().len(), 3);
    assert!(run.stdout.contains("Invalid (3): not sent."), "{run:?}");
    assert!(run.stdout.contains("line 3: panelMemberID: wrong_type"), "{run:?}");
    assert!(run.stdout.contains("line 6: panelMemberID 1001, 10 points; panelMemberID: duplicate"), "{run:?}");
    assert!(run.stderr.contains("3 invalid"), "{run:?}");

    // Every row invalid: nothing to send, reported like --on-invalid stop.
    let all_bad = dir.file("bad.csv", "panelMemberID,points\nx,1\n2,0\n");
    let run = award(&sb, &all_bad, &["--on-invalid", "send-valid"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("2 of 2 rows are invalid"), "{run:?}");
    assert_eq!(sb.request_count(Route::QuestionproPoints), 1, "one request for the earlier run, none for this one");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_rerun_sends_only_what_is_missing_and_lists_the_unknown_batch() {
    let sb = sandbox().await;
    let dir = TempDir::new();
    let file = dir.file("rows.csv", &rows_csv(500));
    let journal = dir.path("job.db");
    let j = journal.to_str().unwrap();
    sb.inject(Route::QuestionproPoints, Fault::delay(std::time::Duration::ZERO).times(2));
    sb.inject(Route::QuestionproPoints, Fault::status(500));
    sb.inject(Route::QuestionproPoints, Fault::drop_connection().processed());
    let args = ["--batch-size", "50", "--journal", j, "--json"];
    let first = award(&sb, &file, &args).await;
    assert_eq!(first.code, 1, "{first:?}");
    let t = &first.json()["totals"];
    assert_eq!((t["awarded"].as_u64(), t["failed"].as_u64(), t["unknown"].as_u64()), (Some(400), Some(50), Some(50)));
    assert_eq!(sb.request_count(Route::QuestionproPoints), 10);

    // The same command again: only the failed batch goes out; the unknown one is listed, not sent.
    let second = award(&sb, &file, &args).await;
    assert_eq!(second.code, 1, "unknown rows remain: {second:?}");
    assert_eq!(sb.request_count(Route::QuestionproPoints), 11, "only the failed batch was sent again");
    let v = second.json();
    assert_eq!((v["requests"].as_u64(), v["resumed_chunks"].as_u64()), (Some(1), Some(9)), "{second:?}");
    let t = &v["totals"];
    assert_eq!((t["awarded"].as_u64(), t["unknown"].as_u64(), t["failed"].as_u64()), (Some(450), Some(50), Some(0)));
    let unknown = v["unknown_chunks"].as_array().unwrap();
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0]["from_journal"], true);
    assert_eq!(unknown[0]["rows"], 50);
    let first_line = unknown[0]["first_line"].as_i64().unwrap();
    let unknown_lines: Vec<i64> = v["rows"].as_array().unwrap().iter().map(|r| r["line"].as_i64().unwrap()).collect();
    assert_eq!(unknown_lines, (first_line..first_line + 50).collect::<Vec<_>>());
    check_ledger(&v, 500, &sb);

    // In words, a third run says so and sends nothing.
    let run = award(&sb, &file, &["--batch-size", "50", "--journal", j]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(sb.request_count(Route::QuestionproPoints), 11);
    assert!(run.stdout.contains("10 batches recorded by an earlier run were not sent again"), "{run:?}");
    assert!(run.stdout.contains("do not resend blindly"), "{run:?}");
    assert!(run.stdout.contains(&format!("unknown batch: lines {first_line}-{}", first_line + 49)), "{run:?}");
    assert!(run.stdout.contains("To resume, run the same command again"), "{run:?}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_of_another_input_is_refused() {
    let sb = sandbox().await;
    let dir = TempDir::new();
    let journal = dir.path("job.db");
    let j = journal.to_str().unwrap();
    // A run that sends nothing (an invalid row) does not tie the journal to its input.
    let bad = dir.file("bad.csv", "panelMemberID,points\n1,0\n");
    let run = award(&sb, &bad, &["--journal", j]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("ValidationError"), "{run:?}");

    let a = dir.file("a.csv", "panelMemberID,points\n1,1\n2,2\n");
    let run = award(&sb, &a, &["--journal", j]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let b = dir.file("b.csv", "panelMemberID,points\n1,1\n2,3\n");
    let run = award(&sb, &b, &["--journal", j]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("error: RewardkitError:"), "{run:?}");
    assert!(run.stderr.contains("the journal was written for a different input"), "{run:?}");
    let run = award(&sb, &b, &["--journal", j, "--json"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    let v = run.json();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["class"], "RewardkitError");
    assert!(v["error"]["message"].as_str().unwrap().contains("different input"), "{run:?}");
    // Other settings are refused too, and the journal cannot be the input itself.
    let run = award(&sb, &a, &["--journal", j, "--batch-size", "1"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("batch_size"), "{run:?}");
    let run = award(&sb, &a, &["--journal", &a]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("is the input file"), "{run:?}");
    assert_eq!(sb.request_count(Route::QuestionproPoints), 1);
    assert_eq!(sb.ledger(), ledger(&[(1, 1), (2, 2)]));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_rows_are_validated_sent_and_listed_in_the_failed_csv() {
    let sb = sandbox().await;
    sb.inject(Route::QuestionproPoints, Fault::status(500));
    let dir = TempDir::new();
    let failed = dir.path("failed.csv");
    let url = sb.url();
    let args = [
        "questionpro",
        "award-points",
        "-",
        "--base-url",
        &url,
        "--no-pacing",
        "--batch-size",
        "2",
        "--concurrency",
        "1",
        "--failed-csv",
        failed.to_str().unwrap(),
    ];
    let input = "{\"panelMemberID\": 1, \"points\": 1, \"comments\": \"a\"}\n{\"panelMemberID\": 2, \"points\": 2}\n\n{\"panelMemberID\": 3, \"points\": 3}\n";
    let run = rewardkit(&args, &[("QUESTIONPRO_API_KEY", sb.questionpro_api_key())], Some(input)).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(sb.ledger(), ledger(&[(3, 3)]));
    assert!(run.stdout.contains("line 1: panelMemberID 1, 1 points"), "{run:?}");
    let written = std::fs::read_to_string(&failed).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines.len(), 3, "{written}");
    assert!(lines[1].starts_with("1,1,1,a,failed,"), "{written}");
    assert!(lines[2].starts_with("2,2,2,,failed,"), "{written}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_job_prints_progress_every_5_percent_and_its_problem_batches() {
    let sb = sandbox().await;
    let dir = TempDir::new();
    let file = dir.file("rows.csv", &rows_csv(300));
    sb.inject(Route::QuestionproPoints, Fault::delay(std::time::Duration::ZERO).times(10));
    sb.inject(Route::QuestionproPoints, Fault::status(500));
    let run = award(&sb, &file, &["--batch-size", "2", "--concurrency", "1"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    let progress: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("progress: ")).collect();
    assert_eq!(progress.len(), 20, "{run:?}");
    assert!(progress[19].starts_with("progress: 100% (300 of 300 rows, 150 requests"), "{run:?}");
    // Past 100 batches, only the batch with a problem gets a line of its own.
    let batches: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("batch ")).collect();
    assert_eq!(batches.len(), 1, "{run:?}");
    assert!(batches[0].starts_with("batch 11/150: lines 22-23: 2 failed: "), "{run:?}");
    sb.shutdown().await;
}

const GOOD_REWARD: &str = r#"{"external_id": "cli-gift-1", "name": "Gift", "nqp_value": 100, "holding_days": 0,
    "limited": true, "auto_generated": true, "max_attribution_count": "10"}"#;
const BAD_REWARD: &str = r#"{"external_id": "", "name": "Gift", "nqp_value": "100", "holding_days": 0,
    "limited": false, "auto_generated": false}"#;

async fn splio(sb: &Sandbox, args: &[&str]) -> Run {
    let url = sb.url();
    let mut all: Vec<&str> = vec!["splio"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--base-url", url.as_str()]);
    rewardkit(&all, &[("SPLIO_API_KEY", sb.splio_api_key())], None).await
}

fn splio_requests(sb: &Sandbox) -> u64 {
    sb.request_count(Route::SplioAuthenticate) + sb.request_count(Route::SplioCreateReward)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_reward_validates_creates_and_dry_runs() {
    let sb = sandbox().await;
    let dir = TempDir::new();
    let good = dir.file("reward.json", GOOD_REWARD);
    let bad = dir.file("bad.json", BAD_REWARD);

    // Invalid: every field error, exit 1, nothing sent (not even authentication).
    let run = splio(&sb, &["create-reward", &bad]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("error: ValidationError"), "{run:?}");
    for want in ["external_id: is_blank", "nqp_value: wrong_type", "limited: unlimited_non_autogenerated"] {
        assert!(run.stderr.contains(want), "missing {want:?} in {run:?}");
    }
    let run = splio(&sb, &["create-reward", &bad, "--json"]).await;
    assert_eq!(run.code, 1);
    let v = run.json();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["class"], "ValidationError");
    assert_eq!(v["error"]["errors"].as_array().unwrap().len(), 3, "{run:?}");
    assert_eq!(splio_requests(&sb), 0);

    // Dry run: valid, prints the payload, sends nothing.
    let run = splio(&sb, &["create-reward", &good, "--dry-run", "--json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let v = run.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["payload"]["external_id"], "cli-gift-1");
    let run = splio(&sb, &["create-reward", &good, "--dry-run"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("cli-gift-1"), "{run:?}");
    assert_eq!(splio_requests(&sb), 0);
    assert!(sb.rewards().is_empty());

    // Created for real.
    let run = splio(&sb, &["create-reward", &good, "--json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let v = run.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["reward"]["external_id"], "cli-gift-1");
    assert_eq!(v["reward"]["max_attribution_count"], 10);
    assert_eq!(sb.rewards().len(), 1);

    // The same external id again: Splio's own error, with its status and field error.
    let run = splio(&sb, &["create-reward", &good]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("error: BadRequestError"), "{run:?}");
    assert!(run.stderr.contains("status: 400"), "{run:?}");
    assert!(run.stderr.contains("external_id: wrong_value"), "{run:?}");
    let run = splio(&sb, &["create-reward", &good, "--json"]).await;
    let v = run.json();
    assert_eq!(v["error"]["class"], "BadRequestError");
    assert_eq!(v["error"]["status"], 400);
    assert_eq!(v["error"]["errors"][0]["key"], "external_id");
    assert_eq!(sb.rewards().len(), 1);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_reward_says_valid_or_lists_errors() {
    let dir = TempDir::new();
    let good = dir.file("reward.json", GOOD_REWARD);
    let bad = dir.file("bad.json", BAD_REWARD);
    let run = rewardkit(&["splio", "validate-reward", &good], &[], None).await;
    assert_eq!((run.code, run.stdout.trim()), (0, "valid"), "{run:?}");
    let run = rewardkit(&["splio", "validate-reward", &good, "--json"], &[], None).await;
    assert_eq!(run.code, 0);
    assert_eq!(run.json(), serde_json::json!({"valid": true, "errors": []}));

    let run = rewardkit(&["splio", "validate-reward", &bad], &[], None).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout.lines().count(), 3, "{run:?}");
    assert!(run.stdout.contains("external_id: is_blank (This value should not be blank.)"), "{run:?}");
    let run = rewardkit(&["splio", "validate-reward", &bad, "--json"], &[], None).await;
    assert_eq!(run.code, 1);
    let v = run.json();
    assert_eq!(v["valid"], false);
    let keys: Vec<&str> = v["errors"].as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["external_id", "nqp_value", "limited"]);

    // Not JSON at all: still a field error, not a crash.
    let broken = dir.file("broken.json", "{\"name\": ");
    let run = rewardkit(&["splio", "validate-reward", &broken, "--json"], &[], None).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.json()["errors"][0]["code"], "invalid_json");
    // From stdin.
    let run = rewardkit(&["splio", "validate-reward", "-"], &[], Some(GOOD_REWARD)).await;
    assert_eq!((run.code, run.stdout.trim()), (0, "valid"), "{run:?}");
    // A missing file is an error, exit 1.
    let run = rewardkit(&["splio", "validate-reward", "/nonexistent/reward.json"], &[], None).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.starts_with("error: "), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_never_appears_in_any_output() {
    let sb = sandbox().await;
    let dir = TempDir::new();
    let points = dir.file("p.csv", "panelMemberID,points\n1,1\n");
    let reward = dir.file("reward.json", GOOD_REWARD);
    let url = sb.url();
    let secret = "wrong-secret-k3y-0123456789";
    let runs = [
        rewardkit(&["questionpro", "award-points", &points, "--base-url", &url, "--api-key", secret], &[], None).await,
        rewardkit(
            &["questionpro", "award-points", &points, "--base-url", &url, "--api-key", secret, "--json"],
            &[],
            None,
        )
        .await,
        rewardkit(
            &["-v", "questionpro", "award-points", &points, "--base-url", &url],
            &[("QUESTIONPRO_API_KEY", secret)],
            None,
        )
        .await,
        rewardkit(&["splio", "create-reward", &reward, "--base-url", &url, "--api-key", secret], &[], None).await,
        rewardkit(
            &["-v", "splio", "create-reward", &reward, "--base-url", &url, "--json"],
            &[("SPLIO_API_KEY", secret)],
            None,
        )
        .await,
        rewardkit(&["questionpro", "award-points", "--help"], &[("QUESTIONPRO_API_KEY", secret)], None).await,
        rewardkit(&["splio", "create-reward", "--help"], &[("SPLIO_API_KEY", secret)], None).await,
    ];
    for run in &runs {
        assert!(!run.both().contains(secret), "the key leaked: {run:?}");
        assert!(!run.both().contains("k3y-0123"), "part of the key leaked: {run:?}");
    }
    for run in &runs[..5] {
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.both().contains("AuthenticationError") || run.both().contains("Incorrect API Key"), "{run:?}");
    }
    assert_eq!(runs[1].json()["ok"], false);
    assert_eq!(runs[4].json()["error"]["class"], "AuthenticationError");
    assert!(sb.ledger().is_empty());
    assert!(sb.rewards().is_empty());
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_keys_and_usage_errors() {
    let dir = TempDir::new();
    let points = dir.file("p.csv", "panelMemberID,points\n1,1\n");
    // No key anywhere: a configuration error naming the variable, exit 1.
    let run = rewardkit(&["questionpro", "award-points", &points, "--base-url", "http://127.0.0.1:9"], &[], None).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("QUESTIONPRO_API_KEY"), "{run:?}");
    let run = rewardkit(&["questionpro", "award-points", &points, "--json"], &[], None).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.json()["error"]["class"], "RewardkitError");
    // Usage errors are clap's: exit 2.
    let run = rewardkit(&["questionpro", "award-points", &points, "--datacenter", "uk"], &[], None).await;
    assert_eq!(run.code, 2, "{run:?}");
    let run = rewardkit(
        &["questionpro", "award-points", &points, "--datacenter", "eu", "--base-url", "https://x.test"],
        &[],
        None,
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    let run = rewardkit(&["questionpro", "award-points", &points, "--batch-size", "0"], &[], None).await;
    assert_eq!(run.code, 2, "{run:?}");
    // An empty file has nothing to send.
    let run = rewardkit(&["questionpro", "award-points", &dir.file("e.csv", ""), "--api-key", "k"], &[], None).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no rows"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_command_prints_its_url_and_keys_then_serves() {
    let mut child = Command::new(BIN)
        .args(["sandbox", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let first = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
        .await
        .expect("the sandbox prints its URL promptly")
        .unwrap()
        .expect("one line");
    let v: Value = serde_json::from_str(&first).unwrap();
    let url = v["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");
    assert_eq!(v["questionpro_api_key"], "sandbox-questionpro-key");
    assert_eq!(v["splio_api_key"], "sandbox-splio-key");

    let dir = TempDir::new();
    let file = dir.file("p.csv", GOOD_CSV);
    let run = rewardkit(
        &["questionpro", "award-points", &file, "--base-url", &url],
        &[("QUESTIONPRO_API_KEY", "sandbox-questionpro-key")],
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");

    // The control API shows the ledger.
    let body = http_get(&url, "/_sandbox/ledger").await;
    let ledger: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ledger["ledger"]["1002"], 250, "{body}");
    assert_eq!(ledger["total_points"], 330, "{body}");

    child.start_kill().unwrap();
    let _ = child.wait().await;
}

/// A tiny HTTP/1.0 GET, so the test needs no HTTP client of its own.
async fn http_get(base: &str, path: &str) -> String {
    use tokio::io::AsyncReadExt;
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or(text)
}
