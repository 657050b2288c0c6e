//! `rewardkit questionpro award-points`: read, validate every row, send in batches, account
//! for every row.

use crate::input::{self, FileProblem, Format};
use crate::output::{self, err, field_error_json, out, out_json};
use crate::AwardArgs;
use rewardkit::bulk::{award_sequential, Outcome, Report, RowOutcome};
use rewardkit::questionpro::{DuplicateCheck, PointsAward, QuestionPro};
use rewardkit::FieldError;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How many rows of each outcome the human summary lists.
const LIST_LIMIT: usize = 20;

/// One problem found before sending, where it is in the file.
struct BadRow {
    line: Option<usize>,
    row: Option<usize>,
    error: FieldError,
}

/// The rows of the file, all valid, and the line each came from.
struct Rows {
    awards: Vec<PointsAward>,
    lines: Vec<usize>,
    format: Option<Format>,
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

    let rows = match read_and_validate(&args) {
        Ok(rows) => rows,
        Err(code) => return code,
    };

    // Open the file for failed rows before sending: finding out it cannot be written after the
    // points were sent would be too late. (After reading: it may be the input file itself.)
    let mut failed_csv = match &args.failed_csv {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Some(csv::Writer::from_writer(f)),
            Err(e) => return output::report_failure(&format!("cannot write {}: {e}", path.display()), json_mode),
        },
        None => None,
    };

    let total = rows.awards.len();
    let batch_size = args.batch_size as usize;
    let batches = total.div_ceil(batch_size);
    if !json_mode {
        let format = match rows.format {
            Some(Format::Csv) => "CSV",
            Some(Format::JsonArray) => "JSON array",
            Some(Format::JsonLines) => "JSON lines",
            None => "empty",
        };
        err(format!(
            "Read {total} valid row{} from {} ({format}). Sending {} to {} in {batches} batch{} of up to {batch_size}...",
            plural(total),
            display_path(&args.file),
            if total == 1 { "it" } else { "them" },
            qp.base_url(),
            if batches == 1 { "" } else { "es" }
        ));
    }
    let started = Instant::now();
    let mut batch_no = 0usize;
    let mut done: Vec<RowOutcome> = Vec::new();
    let lines = &rows.lines;
    let finished = {
        let job = award_sequential(&qp, &rows.awards, batch_size, |outcomes: &[RowOutcome]| {
            batch_no += 1;
            done.extend_from_slice(outcomes);
            if !json_mode {
                err(batch_line(batch_no, batches, outcomes, lines));
            }
        });
        tokio::select! {
            report = job => Some(report),
            () = crate::stop_signal() => None,
        }
    };
    // Interrupted (Ctrl-C, SIGTERM): account for every row all the same.
    let report = finished.unwrap_or_else(|| interrupted_report(done, &rows.awards, batch_size, batch_no));
    let elapsed = started.elapsed();

    if json_mode {
        out_json(&summary_json(&report, &rows));
    } else {
        print_summary(&report, &rows, elapsed);
        if let Some(why) = &report.stopped_by {
            err(format!("error: the job stopped early: {why}"));
        } else if !report.is_complete() {
            let t = report.totals();
            err(format!(
                "error: {} of {} rows were not confirmed as awarded or skipped ({} rejected, {} failed, {} unknown)",
                t.rejected + t.failed + t.unknown + t.invalid,
                t.rows,
                t.rejected,
                t.failed,
                t.unknown
            ));
        }
    }

    let mut code = if report.is_complete() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    if let (Some(w), Some(path)) = (failed_csv.as_mut(), &args.failed_csv) {
        match write_failed(w, &report, &rows) {
            Ok(n) => {
                if !json_mode {
                    err(format!("Wrote {n} row{} that were not applied to {}.", plural(n), path.display()));
                }
            }
            Err(e) => {
                err(format!("error: RewardkitError: could not write {}: {e}", path.display()));
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}

/// The report of a job stopped by a signal: the finished batches as they ended, the batch
/// whose request may have been in flight `unknown`, the rest `failed` (never sent).
fn interrupted_report(done: Vec<RowOutcome>, awards: &[PointsAward], batch_size: usize, batches_done: usize) -> Report {
    let first_open = done.len();
    let in_flight_end = (first_open + batch_size).min(awards.len());
    let mut rows = done;
    for (i, a) in awards.iter().enumerate().skip(first_open) {
        let unknown = i < in_flight_end;
        rows.push(RowOutcome {
            row: i,
            panel_member_id: Some(a.panel_member_id),
            points: Some(a.points),
            outcome: if unknown { Outcome::Unknown } else { Outcome::Failed },
            request_id: None,
            message: Some(if unknown {
                "interrupted while this batch's request may have been in flight: it may or may not have been applied"
                    .to_string()
            } else {
                "not sent: the job was interrupted".to_string()
            }),
            errors: Vec::new(),
            skipped: None,
        });
    }
    Report {
        rows,
        requests: batches_done + usize::from(in_flight_end > first_open),
        stopped_by: Some(rewardkit::bulk::Stop::interrupted("interrupted by a signal (Ctrl-C or SIGTERM)")),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Reads the file and validates every row; on any problem prints them all and gives the exit
/// code (nothing is sent then).
fn read_and_validate(args: &AwardArgs) -> Result<Rows, ExitCode> {
    let json_mode = args.json;
    let path = args.file.as_str();
    let reader = input::open(path)
        .map_err(|e| output::report_failure(&format!("cannot read {}: {e}", display_path(path)), json_mode))?;

    let mut awards = Vec::new();
    let mut lines = Vec::new();
    let mut bad: Vec<BadRow> = Vec::new();
    let mut bad_rows = 0usize;
    let mut dups = DuplicateCheck::default();
    let mut first_line: HashMap<i64, usize> = HashMap::new();
    let mut row = 0usize;
    let summary = input::read_rows(path, reader, |line, value| {
        let this = row;
        row += 1;
        let errors = match value {
            Err(e) => vec![e],
            Ok(v) => match PointsAward::from_value(&v) {
                Ok(award) => {
                    let mut errors = Vec::new();
                    if !args.allow_duplicates {
                        if let Some(mut e) = dups.check(award.panel_member_id, this) {
                            if let Some(first) = first_line.get(&award.panel_member_id) {
                                e.description = format!(
                                    "panelMemberID {} already appears on line {first}; pass --allow-duplicates to award it twice.",
                                    award.panel_member_id
                                );
                            }
                            errors.push(e);
                        } else {
                            first_line.insert(award.panel_member_id, line);
                        }
                    }
                    awards.push(award);
                    lines.push(line);
                    errors
                }
                Err(errors) => errors,
            },
        };
        if !errors.is_empty() {
            bad_rows += 1;
        }
        bad.extend(errors.into_iter().map(|error| BadRow { line: Some(line), row: Some(this), error }));
    })
    .map_err(|e| output::report_failure(&format!("cannot read {}: {e}", display_path(path)), json_mode))?;

    if !json_mode && !summary.ignored_columns.is_empty() {
        err(format!(
            "note: ignoring column{} {}",
            plural(summary.ignored_columns.len()),
            summary.ignored_columns.join(", ")
        ));
    }
    let mut problems: Vec<BadRow> =
        summary.problems.into_iter().map(|FileProblem { line, error }| BadRow { line, row: None, error }).collect();
    if row == 0 && problems.is_empty() {
        problems.push(BadRow {
            line: None,
            row: None,
            error: FieldError::new("rows", "is_blank", "There are no rows to send: the input is empty."),
        });
    }
    if bad.is_empty() && problems.is_empty() {
        return Ok(Rows { awards, lines, format: summary.format });
    }
    problems.extend(bad);
    problems.sort_by_key(|b| b.line.unwrap_or(0));
    Err(report_invalid(&problems, bad_rows, row, json_mode))
}

fn display_path(path: &str) -> &str {
    if path == "-" {
        "standard input"
    } else {
        path
    }
}

fn report_invalid(problems: &[BadRow], bad_rows: usize, rows: usize, json_mode: bool) -> ExitCode {
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
        out_json(&json!({"ok": false, "error": {
            "class": "ValidationError", "message": message, "status": null, "request_id": null,
            "error_id": null, "errors": errors,
        }}));
    } else {
        err(format!("error: ValidationError: {message}"));
        for b in problems {
            let text = output::field_error_text(&b.error);
            match b.line {
                Some(line) => err(format!("line {line}: {text}")),
                None => err(text),
            }
        }
    }
    ExitCode::FAILURE
}

fn batch_line(no: usize, batches: usize, outcomes: &[RowOutcome], lines: &[usize]) -> String {
    let (Some(first), Some(last)) = (outcomes.first(), outcomes.last()) else {
        return format!("batch {no}/{batches}: empty");
    };
    let mut counts: Vec<String> = Vec::new();
    for o in Outcome::ALL {
        let n = outcomes.iter().filter(|r| r.outcome == o).count();
        if n > 0 {
            counts.push(format!("{n} {}", o.as_str()));
        }
    }
    let (from, to) = (lines.get(first.row).copied().unwrap_or(0), lines.get(last.row).copied().unwrap_or(0));
    let span = if from == to { format!("line {from}") } else { format!("lines {from}-{to}") };
    let mut s = format!("batch {no}/{batches}: {span}: {}", counts.join(", "));
    if let Some(id) = &first.request_id {
        s.push_str(&format!(" [request id {id}]"));
    }
    if let Some(msg) = outcomes.iter().find(|r| r.outcome != Outcome::Skipped).and_then(|r| r.message.as_deref()) {
        s.push_str(&format!(": {msg}"));
    }
    s
}

fn request_ids(report: &Report) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for r in &report.rows {
        if let Some(id) = &r.request_id {
            if ids.last() != Some(id) && !ids.contains(id) {
                ids.push(id.clone());
            }
        }
    }
    ids
}

fn row_json(r: &RowOutcome, rows: &Rows) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    v["line"] = json!(rows.lines.get(r.row));
    if let Some(c) = rows.awards.get(r.row).and_then(|a| a.comments.as_ref()) {
        v["comments"] = json!(c);
    }
    v
}

fn summary_json(report: &Report, rows: &Rows) -> Value {
    let not_awarded: Vec<Value> =
        report.rows.iter().filter(|r| r.outcome != Outcome::Awarded).map(|r| row_json(r, rows)).collect();
    json!({
        "ok": report.is_complete(),
        "totals": report.totals(),
        "rows": not_awarded,
        "requests": report.requests,
        "request_ids": request_ids(report),
        "stopped_by": report.stopped_by,
    })
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

fn print_summary(report: &Report, rows: &Rows, elapsed: Duration) {
    let t = report.totals();
    out("");
    out(format!(
        "{} {} of {} row{} awarded ({} points) in {} request{} ({:.1} s).",
        if report.is_complete() { "Done:" } else { "Finished with problems:" },
        t.awarded,
        t.rows,
        plural(t.rows),
        thousands(t.points_awarded),
        report.requests,
        plural(report.requests),
        elapsed.as_secs_f64()
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
    if let Some(why) = &report.stopped_by {
        out(format!("The job stopped early: {why}"));
        if report.rows.iter().any(|r| r.outcome == Outcome::Failed && r.request_id.is_none()) {
            out("  Rows after that point were not sent; they are listed as failed.");
        }
    }

    for (outcome, label, explanation) in [
        (Outcome::Skipped, "Skipped by QuestionPro", "not awarded, e.g. not a member of the panel."),
        (Outcome::Invalid, "Invalid", "not sent."),
        (Outcome::Rejected, "Rejected by QuestionPro", "nothing was applied; fix the cause before sending them again."),
        (Outcome::Failed, "Failed", "nothing was applied; they can be sent again."),
        (
            Outcome::Unknown,
            "UNKNOWN",
            "these rows were sent but no definitive answer came back. They may or may not have been \
             awarded — do not resend blindly; check the members' balances in QuestionPro first.",
        ),
    ] {
        let group: Vec<&RowOutcome> = report.rows.iter().filter(|r| r.outcome == outcome).collect();
        if group.is_empty() {
            continue;
        }
        out("");
        out(format!("{label} ({}): {explanation}", group.len()));
        for r in group.iter().take(LIST_LIMIT) {
            out(format!("  {}", row_text(r, rows)));
        }
        if group.len() > LIST_LIMIT {
            out(format!("  ... and {} more", group.len() - LIST_LIMIT));
        }
        let mut reasons: Vec<&str> = Vec::new();
        for r in &group {
            if let Some(m) = r.message.as_deref() {
                if !reasons.contains(&m) {
                    reasons.push(m);
                }
            }
        }
        for m in reasons.iter().take(5) {
            out(format!("  reason: {m}"));
        }
        if reasons.len() > 5 {
            out(format!("  ... and {} other reasons", reasons.len() - 5));
        }
    }
}

fn row_text(r: &RowOutcome, rows: &Rows) -> String {
    let mut s = match rows.lines.get(r.row) {
        Some(line) => format!("line {line}: "),
        None => format!("row {}: ", r.row),
    };
    if let Some(id) = r.panel_member_id {
        s.push_str(&format!("panelMemberID {id}"));
    }
    if let Some(p) = r.points {
        s.push_str(&format!(", {p} points"));
    }
    if let Some(id) = &r.request_id {
        s.push_str(&format!(" [request id {id}]"));
    }
    if let Some(raw) = &r.skipped {
        if !(raw.is_object() && raw.as_object().is_some_and(|o| o.len() == 1)) {
            s.push_str(&format!(" — {raw}"));
        }
    }
    for e in &r.errors {
        s.push_str(&format!("; {}", output::field_error_text(e)));
    }
    s
}

/// Writes the rows that were not applied or may have been (rejected, failed, unknown).
fn write_failed(w: &mut csv::Writer<std::fs::File>, report: &Report, rows: &Rows) -> Result<usize, csv::Error> {
    w.write_record(["line", "panelMemberID", "points", "comments", "outcome", "request_id", "message"])?;
    let mut n = 0;
    for r in &report.rows {
        if !matches!(r.outcome, Outcome::Rejected | Outcome::Failed | Outcome::Unknown) {
            continue;
        }
        n += 1;
        let award = rows.awards.get(r.row);
        w.write_record([
            rows.lines.get(r.row).map(|l| l.to_string()).unwrap_or_default(),
            r.panel_member_id.map(|v| v.to_string()).unwrap_or_default(),
            r.points.map(|v| v.to_string()).unwrap_or_default(),
            award.and_then(|a| a.comments.clone()).unwrap_or_default(),
            r.outcome.as_str().to_string(),
            r.request_id.clone().unwrap_or_default(),
            output::scrub(r.message.as_deref().unwrap_or("")),
        ])?;
    }
    w.flush()?;
    Ok(n)
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
