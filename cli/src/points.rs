//! `rewardkit questionpro award-points`: the input file streams through the core's bulk engine
//! (every row validated, then sent in batches, several at a time, paced, optionally journaled),
//! and every row is accounted for.
//!
//! Memory stays flat: the engine holds a few batches at a time, line numbers are kept as runs,
//! and the rows the results list (not awarded) are read again from the input at the end
//! rather than kept.

use crate::input::Format;
use crate::output::{self, err, field_error_json, out, scrub};
use crate::progress::Ui;
use crate::source::{read_all, FileSource, FirstPass, Input, OnFirstPass, ReadState};
use crate::{AwardArgs, OnInvalidArg, Signals};
use rewardkit::bulk::{
    BulkJob, BulkOptions, BulkReport, CancellationToken, ChunkReport, JobError, OnInvalid, Outcome, RowOutcome,
    RowRead, Stop, Totals,
};
use rewardkit::questionpro::QuestionPro;
use rewardkit::{Error, FieldError};
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many rows of each outcome the human summary lists.
const LIST_LIMIT: usize = 20;
/// How many unknown batches the human summary lists.
const UNKNOWN_BATCHES_LISTED: usize = 10;
/// Exit code of a job stopped by a signal.
const EXIT_INTERRUPTED: u8 = 130;

/// One problem found before sending, where it is in the file.
struct BadRow {
    line: Option<usize>,
    row: Option<usize>,
    error: FieldError,
}

pub async fn run(args: AwardArgs) -> ExitCode {
    let json_mode = args.json;
    if let Some(k) = &args.api_key {
        output::add_secret(k);
    }

    let mut builder = QuestionPro::builder().allow_duplicates(args.allow_duplicates);
    if let Some(k) = &args.api_key {
        builder = builder.api_key(k.clone());
    }
    if let Some(dc) = args.datacenter {
        builder = builder.datacenter(dc);
    }
    if let Some(url) = &args.base_url {
        builder = builder.base_url(url.clone());
    }
    if let Some(t) = args.timeout {
        builder = builder.timeout(Duration::from_secs_f64(t));
    }
    if let Some(n) = args.max_retries {
        builder = builder.max_retries(n);
    }
    if args.no_pacing {
        builder = builder.rate_limit(None);
    }
    let qp = match builder.build() {
        Ok(qp) => qp,
        Err(e) => return output::report_error(&e, json_mode),
    };

    if args.file != "-" {
        if let Err(e) = std::fs::File::open(&args.file) {
            return output::report_failure(&format!("cannot read {}: {e}", args.file), json_mode);
        }
    }
    if let Some(msg) = clashing_paths(&args) {
        return output::report_failure(&msg, json_mode);
    }
    let input = match Input::new(&args.file) {
        Ok(i) => Arc::new(i),
        Err(e) => return output::report_failure(&format!("cannot copy standard input: {e}"), json_mode),
    };
    // Open the file for failed rows before sending: finding out it cannot be written after the
    // points were sent would be too late.
    let mut failed_csv = match &args.failed_csv {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Some(csv::Writer::from_writer(f)),
            Err(e) => return output::report_failure(&format!("cannot write {}: {e}", path.display()), json_mode),
        },
        None => None,
    };
    let signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => return output::report_failure(&format!("cannot listen for Ctrl-C: {e}"), json_mode),
    };

    let batch_size = args.batch_size as usize;
    let concurrency = args.concurrency as usize;
    let on_invalid = match args.on_invalid {
        OnInvalidArg::Stop => OnInvalid::Stop,
        OnInvalidArg::SendValid => OnInvalid::SendValid,
    };
    let opts = BulkOptions {
        batch_size,
        concurrency,
        on_invalid,
        allow_duplicates: args.allow_duplicates,
        journal: args.journal.clone(),
        resend_unknown: args.resend_unknown,
    };
    let ui = Ui::new(json_mode, batch_size);
    let read_state = Arc::new(Mutex::new(ReadState::default()));
    let job = BulkJob::new(&qp, opts);
    let cancel = job.cancel_token();
    let abort = job.abort_token();
    let plan = Plan {
        file: input.display().to_string(),
        url: qp.base_url(),
        batch_size,
        concurrency,
        journal: args.journal.as_ref().map(|p| p.display().to_string()),
    };
    let on_first_pass: Option<OnFirstPass> = (!json_mode).then(|| {
        let ui = ui.clone();
        let plan = plan.clone();
        let stop_mode = on_invalid == OnInvalid::Stop;
        Box::new(move |st: &FirstPass| {
            if !st.ignored_columns.is_empty() {
                ui.note(format!(
                    "note: ignoring column{} {}",
                    plural(st.ignored_columns.len()),
                    st.ignored_columns.join(", ")
                ));
            }
            if stop_mode && st.invalid == 0 && !st.problem {
                ui.note(plan.read_line(st.rows, st.format));
            }
        }) as OnFirstPass
    });
    let source =
        FileSource::new(input.clone(), args.allow_duplicates, read_state.clone(), cancel.clone(), on_first_pass);
    let job = {
        let (ui, rs) = (ui.clone(), read_state.clone());
        job.on_progress(move |p| ui.progress(p, &rs))
    };
    if !json_mode && on_invalid == OnInvalid::SendValid {
        ui.note(plan.send_valid_line());
    }

    let interrupted = Arc::new(AtomicU8::new(0));
    let watcher = tokio::spawn(watch_signals(signals, cancel, abort, ui.clone(), interrupted.clone()));
    let started = Instant::now();
    let result = job.run(source).await;
    watcher.abort();
    ui.finish();
    let elapsed = started.elapsed();
    let interrupted = interrupted.load(Ordering::SeqCst);
    let read = std::mem::take(&mut *read_state.lock().unwrap_or_else(|p| p.into_inner()));

    let (mut report, error) = match result {
        Ok(r) => (r, None),
        Err(JobError { error, report }) => (*report, Some(error)),
    };
    if report.chunks.is_empty() && report.requests == 0 {
        // Nothing was sent: invalid rows (or an input that cannot be used), or a job that
        // could not start (a journal of another job, an unreadable file).
        match &error {
            Some(Error::Validation(_)) => return report_invalid(&report, &read, json_mode),
            None if report.totals.invalid > 0 && interrupted == 0 => return report_invalid(&report, &read, json_mode),
            Some(e) if interrupted == 0 => return output::report_error(e, json_mode),
            _ => {}
        }
    }
    if interrupted > 0 {
        let why = if interrupted > 1 {
            "interrupted twice by a signal (Ctrl-C or SIGTERM): requests in flight were abandoned, nothing more was sent"
        } else {
            "interrupted by a signal (Ctrl-C or SIGTERM): requests in flight were finished, nothing more was sent"
        };
        report.stopped_by = Some(Stop::interrupted(why));
    }
    if report.stopped_by.is_none() {
        if let Some(e) = &error {
            report.stopped_by = Some(Stop::from_error(e));
        }
    }

    let ctx = Ctx { args: &args, report: &report, read: &read, input: &input, elapsed };
    let (totals, failed_written) =
        if json_mode { print_json(&ctx, failed_csv.as_mut()) } else { print_human(&ctx, failed_csv.as_mut()) };
    let complete = totals.invalid + totals.rejected + totals.failed + totals.unknown == 0 && read.problem.is_none();
    let mut code = if complete {
        ExitCode::SUCCESS
    } else if interrupted > 0 {
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        ExitCode::FAILURE
    };
    if let (Some(result), Some(path)) = (failed_written, &args.failed_csv) {
        match result {
            Ok(n) => {
                if !json_mode {
                    err(format!("Wrote {n} row{} that were not applied to {}.", plural(n), path.display()));
                }
            }
            Err(e) => {
                err(format!("error: RewardkitError: could not write {}: {e}", path.display()));
                if complete {
                    code = ExitCode::FAILURE;
                }
            }
        }
    }
    code
}

/// First signal: stop cleanly (requests in flight finish and are recorded). Second: stop at once.
async fn watch_signals(
    mut signals: Signals,
    cancel: CancellationToken,
    abort: CancellationToken,
    ui: Arc<Ui>,
    interrupted: Arc<AtomicU8>,
) {
    signals.next().await;
    interrupted.store(1, Ordering::SeqCst);
    cancel.cancel();
    ui.note(
        "Stopping: nothing more will be sent; waiting for the requests in flight to finish \
         (press Ctrl-C again to stop at once).",
    );
    signals.next().await;
    interrupted.store(2, Ordering::SeqCst);
    abort.cancel();
    ui.note("Stopping at once: the requests in flight are abandoned and their rows reported as unknown.");
}

/// The job's settings, for the lines printed before sending.
#[derive(Clone)]
struct Plan {
    file: String,
    url: String,
    batch_size: usize,
    concurrency: usize,
    journal: Option<String>,
}

impl Plan {
    fn tail(&self) -> String {
        let mut s = format!(", {} at a time", self.concurrency);
        if let Some(j) = &self.journal {
            s.push_str(&format!(", journal {j}"));
        }
        s
    }

    fn read_line(&self, total: usize, format: Option<Format>) -> String {
        let batches = total.div_ceil(self.batch_size.max(1));
        format!(
            "Read {total} valid row{} from {} ({}). Sending {} to {} in {batches} batch{} of up to {}{}...",
            plural(total),
            self.file,
            format_name(format),
            if total == 1 { "it" } else { "them" },
            self.url,
            if batches == 1 { "" } else { "es" },
            self.batch_size,
            self.tail()
        )
    }

    fn send_valid_line(&self) -> String {
        format!(
            "Sending the valid rows of {} to {} in batches of up to {}{}; invalid rows are listed at the end...",
            self.file,
            self.url,
            self.batch_size,
            self.tail()
        )
    }
}

fn format_name(format: Option<Format>) -> &'static str {
    match format {
        Some(Format::Csv) => "CSV",
        Some(Format::JsonArray) => "JSON array",
        Some(Format::JsonLines) => "JSON lines",
        None => "empty",
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The journal and the failed-rows file must not be the input (which is read again at the
/// end), nor each other.
fn clashing_paths(args: &AwardArgs) -> Option<String> {
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    };
    let input = (args.file != "-").then(|| Path::new(&args.file));
    if let (Some(input), Some(j)) = (input, &args.journal) {
        if same(input, j) {
            return Some(format!("--journal {} is the input file; give the journal a file of its own", j.display()));
        }
    }
    if let Some(f) = &args.failed_csv {
        if input.is_some_and(|i| same(i, f)) {
            return Some(format!("--failed-csv {} is the input file; write failed rows to another file", f.display()));
        }
        if args.journal.as_deref().is_some_and(|j| same(j, f)) {
            return Some(format!("--failed-csv {} is the journal file", f.display()));
        }
    }
    None
}

/// Every invalid row (and the problem with the input as a whole, if any), in today's form:
/// nothing was sent.
fn report_invalid(report: &BulkReport, read: &ReadState, json_mode: bool) -> ExitCode {
    let mut problems: Vec<BadRow> = Vec::new();
    let mut bad_rows = 0usize;
    for e in report.exceptions.iter().filter(|e| e.outcome == Outcome::Invalid) {
        let line = read.line(e.row);
        let whole_input = read.is_problem(e.row);
        bad_rows += usize::from(!whole_input);
        for f in &e.errors {
            let mut error = f.clone();
            if whole_input {
                error.row = None;
            }
            problems.push(BadRow { line, row: (!whole_input).then_some(e.row), error });
        }
    }
    // By line; at one line, a problem with the input before a row's.
    problems.sort_by_key(|b| (b.line.unwrap_or(0), b.row.is_some()));
    let rows = read.rows();
    let n = problems.len();
    let message = if bad_rows > 0 {
        format!(
            "{bad_rows} of {rows} row{} {} invalid ({n} problem{}); nothing was sent",
            plural(rows),
            if bad_rows == 1 { "is" } else { "are" },
            plural(n)
        )
    } else {
        format!("the input cannot be used ({n} problem{}); nothing was sent", plural(n))
    };
    if json_mode {
        let errors: Vec<Value> = problems.iter().map(|b| field_error_json(&b.error, b.line, b.row)).collect();
        output::out_json(&json!({"ok": false, "error": {
            "class": "ValidationError", "message": message, "status": null, "request_id": null,
            "error_id": null, "errors": errors,
        }}));
    } else {
        err(format!("error: ValidationError: {message}"));
        for b in &problems {
            let text = output::field_error_text(&b.error);
            match b.line {
                Some(line) => err(format!("line {line}: {text}")),
                None => err(text),
            }
        }
    }
    ExitCode::FAILURE
}

// ---------------------------------------------------------------------------------------
// Every row that was not awarded, read again from the input

/// What the results need.
struct Ctx<'a> {
    args: &'a AwardArgs,
    report: &'a BulkReport,
    read: &'a ReadState,
    input: &'a Input,
    elapsed: Duration,
}

/// One row that was not awarded, as the summary, the JSON and the failed-rows CSV show it.
struct Listed {
    row: usize,
    line: Option<usize>,
    panel_member_id: Option<i64>,
    points: Option<i64>,
    comments: Option<String>,
    outcome: Outcome,
    request_id: Option<String>,
    message: Option<String>,
    errors: Vec<FieldError>,
    skipped: Option<Value>,
}

/// The report's word on each row, asked in row order.
struct Verdicts<'a> {
    chunks: &'a [ChunkReport],
    exceptions: &'a [RowOutcome],
    ci: usize,
    ei: usize,
}

enum Verdict<'a> {
    Own(&'a RowOutcome),
    Chunk(&'a ChunkReport),
    /// The row has no outcome: the job stopped before sending it.
    None,
}

impl<'a> Verdicts<'a> {
    fn new(r: &'a BulkReport) -> Self {
        Verdicts { chunks: &r.chunks, exceptions: &r.exceptions, ci: 0, ei: 0 }
    }

    fn at(&mut self, row: usize) -> Verdict<'a> {
        while self.exceptions.get(self.ei).is_some_and(|e| e.row < row) {
            self.ei += 1;
        }
        if let Some(e) = self.exceptions.get(self.ei).filter(|e| e.row == row) {
            return Verdict::Own(e);
        }
        while self.chunks.get(self.ci).is_some_and(|c| c.last_row < row) {
            self.ci += 1;
        }
        match self.chunks.get(self.ci).filter(|c| c.first_row <= row) {
            Some(c) => Verdict::Chunk(c),
            None => Verdict::None,
        }
    }
}

/// The row `row` as listed, or `None` when it was awarded. `data` is the row as read again.
fn listed(row: usize, line: Option<usize>, v: Verdict<'_>, data: Option<&RowRead>, not_sent: &str) -> Option<Listed> {
    let award = data.and_then(|d| d.as_ref().ok());
    let base = |outcome: Outcome| Listed {
        row,
        line,
        panel_member_id: award.map(|a| a.panel_member_id),
        points: award.map(|a| a.points),
        comments: award.and_then(|a| a.comments.clone()),
        outcome,
        request_id: None,
        message: None,
        errors: Vec::new(),
        skipped: None,
    };
    match v {
        Verdict::Own(e) if e.outcome == Outcome::Awarded => None,
        Verdict::Own(e) => {
            let mut l = base(e.outcome);
            l.panel_member_id = e.panel_member_id.or(l.panel_member_id);
            l.points = e.points.or(l.points);
            l.request_id = e.request_id.clone();
            l.message = e.message.clone();
            l.errors = e.errors.clone();
            l.skipped = e.skipped.clone();
            Some(l)
        }
        Verdict::Chunk(c) if c.outcome == Outcome::Awarded => None,
        Verdict::Chunk(c) => {
            let mut l = base(c.outcome);
            l.request_id = c.request_id.clone();
            l.message = c.message.clone();
            l.errors = c.errors.clone();
            Some(l)
        }
        Verdict::None => match data {
            Some(Err(errors)) => {
                let mut l = base(Outcome::Invalid);
                l.message = Some("not sent: the row is invalid".into());
                l.errors = errors.iter().cloned().map(|e| e.at_row(row)).collect();
                Some(l)
            }
            _ => {
                let mut l = base(Outcome::Failed);
                l.message = Some(not_sent.to_string());
                Some(l)
            }
        },
    }
}

/// What listing the rows gives besides the rows themselves.
struct Walked {
    totals: Totals,
    /// Rows that have no outcome in the report (listed as failed: not sent).
    not_sent: usize,
}

/// Lists every row that was not awarded, in row order, to `emit`: the input is read again
/// for the rows' contents; if it cannot be, the rows are listed from the report alone. A
/// problem with the input as a whole is not a row: it is shown on its own.
fn walk(ctx: &Ctx<'_>, mut emit: impl FnMut(Listed)) -> Walked {
    let report = ctx.report;
    let read = ctx.read;
    let not_sent = match &report.stopped_by {
        Some(s) if s.class == "Interrupted" => "not sent: the job was interrupted".to_string(),
        Some(s) => format!("not sent: the job stopped ({s})"),
        None => "not sent".to_string(),
    };
    // Engine totals, with the input problem taken out (it is not a row) and the rows the
    // engine never gave an outcome added below.
    let mut t = report.totals;
    t.rows = t.awarded + t.skipped + t.invalid + t.rejected + t.failed + t.unknown;
    let problem_row = read.problem.as_ref().map(|p| p.row);
    let problem_in_report = problem_row.is_some_and(|r| report.exceptions.iter().any(|e| e.row == r));
    if problem_in_report {
        t.rows -= 1;
        t.invalid -= 1;
    }
    let everything_awarded = read.complete && read.problem.is_none() && t.awarded == read.rows();
    let mut walked = Walked { totals: t, not_sent: 0 };
    if everything_awarded {
        return walked;
    }

    let mut verdicts = Verdicts::new(report);
    let mut row = 0usize;
    let stop = Arc::new(AtomicBool::new(false));
    // Read without the duplicate check, so a repeated row still shows its member and points
    // (the report says it is invalid).
    let reread = read_all(ctx.input, true, stop, |line, data| {
        let this = row;
        row += 1;
        if Some(this) == problem_row {
            // Only if the input grew since: the problem is listed on its own below.
            return;
        }
        let v = verdicts.at(this);
        let none = matches!(v, Verdict::None);
        if let Some(l) = listed(this, Some(line), v, Some(&data), &not_sent) {
            if none {
                count_unseen(&l, &mut walked);
            }
            emit(l);
        }
    });
    if let Err(e) = reread {
        err(format!(
            "warning: could not read {} again to list its rows ({e}); listing them by line only",
            ctx.input.display()
        ));
        // The rest, from the report alone.
        let covered =
            report.chunks.last().map_or(0, |c| c.last_row + 1).max(report.exceptions.last().map_or(0, |e| e.row + 1));
        let end = read.rows().max(covered);
        while row < end {
            if Some(row) != problem_row {
                let v = verdicts.at(row);
                let none = matches!(v, Verdict::None);
                if let Some(l) = listed(row, read.line(row), v, None, &not_sent) {
                    if none {
                        count_unseen(&l, &mut walked);
                    }
                    emit(l);
                }
            }
            row += 1;
        }
    }
    walked
}

/// Counts a row the engine gave no outcome (not sent, or invalid but never reached).
fn count_unseen(l: &Listed, w: &mut Walked) {
    w.totals.rows += 1;
    match l.outcome {
        Outcome::Invalid => w.totals.invalid += 1,
        _ => {
            w.totals.failed += 1;
            w.not_sent += 1;
        }
    }
}

/// The failed-rows CSV (rejected, failed or not sent, unknown).
struct FailedCsv<'a> {
    w: &'a mut csv::Writer<std::fs::File>,
    n: usize,
    error: Option<csv::Error>,
}

impl<'a> FailedCsv<'a> {
    fn new(w: &'a mut csv::Writer<std::fs::File>) -> Self {
        let error =
            w.write_record(["line", "panelMemberID", "points", "comments", "outcome", "request_id", "message"]).err();
        FailedCsv { w, n: 0, error }
    }

    fn add(&mut self, l: &Listed) {
        if self.error.is_some() || !matches!(l.outcome, Outcome::Rejected | Outcome::Failed | Outcome::Unknown) {
            return;
        }
        self.n += 1;
        let r = self.w.write_record([
            l.line.map(|v| v.to_string()).unwrap_or_default(),
            l.panel_member_id.map(|v| v.to_string()).unwrap_or_default(),
            l.points.map(|v| v.to_string()).unwrap_or_default(),
            l.comments.clone().unwrap_or_default(),
            l.outcome.as_str().to_string(),
            l.request_id.clone().unwrap_or_default(),
            scrub(l.message.as_deref().unwrap_or("")),
        ]);
        if let Err(e) = r {
            self.error = Some(e);
        }
    }

    fn finish(self) -> Result<usize, csv::Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.w.flush()?;
        Ok(self.n)
    }
}

fn request_ids(report: &BulkReport) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for id in report.chunks.iter().filter_map(|c| c.request_id.as_ref()) {
        if seen.insert(id.as_str()) {
            ids.push(id.clone());
        }
    }
    ids
}

fn unknown_chunks_json(report: &BulkReport, read: &ReadState) -> Vec<Value> {
    report
        .unknown_chunks()
        .map(|c| {
            json!({
                "chunk": c.chunk,
                "rows": c.rows,
                "first_row": c.first_row,
                "last_row": c.last_row,
                "first_line": read.line(c.first_row),
                "last_line": read.line(c.last_row),
                "request_id": c.request_id,
                "message": c.message,
                "from_journal": c.from_journal,
            })
        })
        .collect()
}

fn listed_json(l: &Listed) -> Value {
    let mut v = json!({
        "row": l.row,
        "line": l.line,
        "panel_member_id": l.panel_member_id,
        "points": l.points,
        "outcome": l.outcome,
        "request_id": l.request_id,
    });
    if let Some(c) = &l.comments {
        v["comments"] = json!(c);
    }
    if let Some(m) = &l.message {
        v["message"] = json!(m);
    }
    if !l.errors.is_empty() {
        v["errors"] = json!(l.errors);
    }
    if let Some(s) = &l.skipped {
        v["skipped"] = s.clone();
    }
    v
}

/// One JSON object on one line of stdout; its rows are written as they are listed.
fn print_json(
    ctx: &Ctx<'_>,
    failed: Option<&mut csv::Writer<std::fs::File>>,
) -> (Totals, Option<Result<usize, csv::Error>>) {
    let stdout = std::io::stdout();
    let mut o = std::io::BufWriter::new(stdout.lock());
    // A closed stdout (`| head`) is not an error: the job has run either way.
    let _ = o.write_all(b"{\"rows\":[");
    let mut first = true;
    let mut csv = failed.map(FailedCsv::new);
    let walked = walk(ctx, |l| {
        if let Some(c) = csv.as_mut() {
            c.add(&l);
        }
        let text = scrub(&serde_json::to_string(&listed_json(&l)).unwrap_or_else(|_| "null".into()));
        let _ = o.write_all(if first { b"" } else { b"," });
        let _ = o.write_all(text.as_bytes());
        first = false;
    });
    let report = ctx.report;
    let t = walked.totals;
    let ok = t.invalid + t.rejected + t.failed + t.unknown == 0 && ctx.read.problem.is_none();
    let rest = json!({
        "ok": ok,
        "totals": t,
        "requests": report.requests,
        "request_ids": request_ids(report),
        "stopped_by": report.stopped_by,
        "resumed_chunks": report.resumed_chunks,
        "unknown_chunks": unknown_chunks_json(report, ctx.read),
        "journal": ctx.args.journal.as_ref().map(|p| p.display().to_string()),
        "not_sent": walked.not_sent,
        "input_problem": ctx.read.problem.as_ref().map(|p| field_error_json(&p.error, p.line, None)),
        "elapsed_s": ctx.elapsed.as_secs_f64(),
    });
    let rest = serde_json::to_string(&rest).unwrap_or_else(|_| "{}".into());
    // `{"ok":...}` joined on as the rest of the same object.
    let _ = o.write_all(b"],");
    let _ = o.write_all(scrub(&rest[1..]).as_bytes());
    let _ = o.write_all(b"\n");
    let _ = o.flush();
    (t, csv.map(FailedCsv::finish))
}

/// Rows of one outcome, for the human summary.
struct Group {
    shown: Vec<String>,
    count: usize,
    reasons: Vec<String>,
    more_reasons: bool,
}

fn print_human(
    ctx: &Ctx<'_>,
    failed: Option<&mut csv::Writer<std::fs::File>>,
) -> (Totals, Option<Result<usize, csv::Error>>) {
    const ORDER: [Outcome; 5] =
        [Outcome::Skipped, Outcome::Invalid, Outcome::Rejected, Outcome::Failed, Outcome::Unknown];
    let mut groups: Vec<Group> =
        ORDER.iter().map(|_| Group { shown: Vec::new(), count: 0, reasons: Vec::new(), more_reasons: false }).collect();
    let mut csv = failed.map(FailedCsv::new);
    let walked = walk(ctx, |l| {
        if let Some(c) = csv.as_mut() {
            c.add(&l);
        }
        let Some(i) = ORDER.iter().position(|o| *o == l.outcome) else { return };
        let g = &mut groups[i];
        g.count += 1;
        if g.shown.len() < LIST_LIMIT {
            g.shown.push(row_text(&l));
        }
        if let Some(m) = l.message.as_deref() {
            if !g.reasons.iter().any(|r| r == m) {
                if g.reasons.len() < 5 {
                    g.reasons.push(m.to_string());
                } else {
                    g.more_reasons = true;
                }
            }
        }
    });
    let report = ctx.report;
    let t = walked.totals;
    let complete = t.invalid + t.rejected + t.failed + t.unknown == 0 && ctx.read.problem.is_none();

    out("");
    out(format!(
        "{} {} of {} row{} awarded ({} points) in {} request{} ({:.1} s).",
        if complete { "Done:" } else { "Finished with problems:" },
        t.awarded,
        t.rows,
        plural(t.rows),
        thousands(t.points_awarded),
        report.requests,
        plural(report.requests),
        ctx.elapsed.as_secs_f64()
    ));
    for (name, n) in [
        ("awarded", t.awarded),
        ("skipped", t.skipped),
        ("invalid", t.invalid),
        ("rejected", t.rejected),
        ("failed", t.failed),
        ("unknown", t.unknown),
    ] {
        if n > 0 || matches!(name, "awarded" | "skipped" | "failed" | "unknown") {
            out(format!("  {name:<9}{n:>8}"));
        }
    }
    let ids = request_ids(report);
    if !ids.is_empty() {
        let shown: Vec<&str> = ids.iter().take(10).map(String::as_str).collect();
        let more = if ids.len() > 10 { format!(" ... and {} more", ids.len() - 10) } else { String::new() };
        out(format!("Request id{}: {}{more}", plural(ids.len()), shown.join(", ")));
    }
    if let Some(j) = &ctx.args.journal {
        let n = report.resumed_chunks;
        if n > 0 {
            out(format!(
                "Journal {}: {n} batch{} recorded by an earlier run {} not sent again.",
                j.display(),
                if n == 1 { "" } else { "es" },
                if n == 1 { "was" } else { "were" }
            ));
        } else {
            out(format!("Journal {}: every batch's state is recorded there.", j.display()));
        }
    }
    if let Some(why) = &report.stopped_by {
        out(format!("The job stopped early: {why}"));
        if walked.not_sent > 0 || report.chunks.iter().any(|c| c.outcome == Outcome::Failed && c.request_id.is_none()) {
            out("  Rows after that point were not sent; they are listed as failed.");
        }
    }
    if let Some(p) = ctx.read.problem.as_ref() {
        let at = p.line.map(|l| format!(" at line {l}")).unwrap_or_default();
        out(format!("The input could not be read past a problem{at}: {}", output::field_error_text(&p.error)));
    }

    for (i, (label, explanation)) in [
        ("Skipped by QuestionPro", "not awarded, e.g. not a member of the panel."),
        ("Invalid", "not sent."),
        ("Rejected by QuestionPro", "nothing was applied; fix the cause before sending them again."),
        ("Failed", "nothing was applied; they can be sent again."),
        (
            "UNKNOWN",
            "these rows were sent but no definitive answer came back. They may or may not have been \
             awarded — do not resend blindly; check the members' balances in QuestionPro first.",
        ),
    ]
    .iter()
    .enumerate()
    {
        let g = &groups[i];
        if g.count == 0 {
            continue;
        }
        out("");
        out(format!("{label} ({}): {explanation}", g.count));
        for s in &g.shown {
            out(format!("  {s}"));
        }
        if g.count > g.shown.len() {
            out(format!("  ... and {} more", g.count - g.shown.len()));
        }
        for m in &g.reasons {
            out(format!("  reason: {m}"));
        }
        if g.more_reasons {
            out("  ... and other reasons");
        }
        if ORDER[i] == Outcome::Unknown {
            let unknown: Vec<String> = report
                .unknown_chunks()
                .map(|c| {
                    let span = match (ctx.read.line(c.first_row), ctx.read.line(c.last_row)) {
                        (Some(a), Some(b)) if a == b => format!("line {a}"),
                        (Some(a), Some(b)) => format!("lines {a}-{b}"),
                        _ => format!("rows {}-{}", c.first_row, c.last_row),
                    };
                    let earlier = if c.from_journal { ", by an earlier run" } else { "" };
                    match &c.request_id {
                        Some(id) => format!("{span} [request id {id}{earlier}]"),
                        None if earlier.is_empty() => span,
                        None => format!("{span} [{}]", &earlier[2..]),
                    }
                })
                .collect();
            if !unknown.is_empty() {
                let more = if unknown.len() > UNKNOWN_BATCHES_LISTED {
                    format!(" ... and {} more", unknown.len() - UNKNOWN_BATCHES_LISTED)
                } else {
                    String::new()
                };
                let shown: Vec<&str> = unknown.iter().take(UNKNOWN_BATCHES_LISTED).map(String::as_str).collect();
                out(format!(
                    "  unknown batch{}: {}{more}",
                    if unknown.len() == 1 { "" } else { "es" },
                    shown.join(", ")
                ));
            }
        }
    }

    if !complete {
        out("");
        if ctx.args.journal.is_some() {
            out("To resume, run the same command again: batches the journal confirms are not sent again, \
                 failed and unsent ones are, and unknown ones are listed, not sent \
                 (--resend-unknown sends them again, which may award them twice).");
        } else if t.awarded + t.unknown > 0 {
            out("Running the same command again would send every row again. Keep the rows that were not \
                 applied with --failed-csv, or use --journal to make a job resumable.");
        }
        if let Some(why) = &report.stopped_by {
            err(format!("error: the job stopped early: {why}"));
        } else {
            err(format!(
                "error: {} of {} rows were not confirmed as awarded or skipped ({} invalid, {} rejected, {} failed, {} unknown)",
                t.rejected + t.failed + t.unknown + t.invalid,
                t.rows,
                t.invalid,
                t.rejected,
                t.failed,
                t.unknown
            ));
        }
    }
    (t, csv.map(FailedCsv::finish))
}

fn row_text(l: &Listed) -> String {
    let mut s = match l.line {
        Some(line) => format!("line {line}: "),
        None => format!("row {}: ", l.row),
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(id) = l.panel_member_id {
        let mut p = format!("panelMemberID {id}");
        if let Some(points) = l.points {
            p.push_str(&format!(", {points} points"));
        }
        if let Some(id) = &l.request_id {
            p.push_str(&format!(" [request id {id}]"));
        }
        if let Some(raw) = &l.skipped {
            if !(raw.is_object() && raw.as_object().is_some_and(|o| o.len() == 1)) {
                p.push_str(&format!(" — {raw}"));
            }
        }
        parts.push(p);
    }
    for e in &l.errors {
        parts.push(output::field_error_text(e));
    }
    s.push_str(&parts.join("; "));
    s
}

fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234), "1,234");
        assert_eq!(thousands(-1234567), "-1,234,567");
        assert_eq!(thousands(999), "999");
    }
}
