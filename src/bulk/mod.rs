//! Running many points rows through the API and accounting for every row.
//!
//! Each input row ends in exactly one [`Outcome`]. [`award_sequential`] sends batches one
//! after another from rows in memory; [`BulkJob`] (`QuestionPro::bulk_award`) is the engine:
//! streaming input, chunks in flight at once, shared pacing, and a journal for resuming.

mod engine;
mod journal;

pub use engine::{
    BulkJob, BulkOptions, BulkReport, CancellationToken, ChunkReport, IterSource, JobError, OnInvalid, Progress,
    RowRead, RowSource, RowView, VecSource, IN_MEMORY_ROWS,
};
pub use journal::{ChunkState, Journal};

use crate::error::{Error, FieldError};
use crate::questionpro::{AwardResult, PointsAward, QuestionPro};
use serde::{Deserialize, Serialize};

/// What became of one input row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The vendor counted it.
    Awarded,
    /// The vendor said it skipped it (e.g. the member is not in the panel).
    Skipped,
    /// Rejected before sending.
    Invalid,
    /// The vendor refused the request with a 4xx answer; nothing was applied.
    Rejected,
    /// A 5xx answer, or the request could not be sent at all (or was not sent because the
    /// job stopped); nothing was applied.
    Failed,
    /// The request was sent and no definitive answer came: it may or may not have been applied.
    Unknown,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 6] =
        [Outcome::Awarded, Outcome::Skipped, Outcome::Invalid, Outcome::Rejected, Outcome::Failed, Outcome::Unknown];

    /// The outcome's name (`awarded`, `skipped`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Awarded => "awarded",
            Outcome::Skipped => "skipped",
            Outcome::Invalid => "invalid",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
        }
    }

    /// The outcome of every row of a request that ended in `err`.
    pub fn of_error(err: &Error) -> Outcome {
        match err {
            Error::Validation(_) => Outcome::Invalid,
            Error::OutcomeUnknown(_) => Outcome::Unknown,
            Error::InternalServer(_) | Error::Connection(_) | Error::Timeout(_) | Error::Config(_) => Outcome::Failed,
            Error::BadRequest(_)
            | Error::Authentication(_)
            | Error::PermissionDenied(_)
            | Error::NotFound(_)
            | Error::RateLimit(_)
            | Error::Api(_) => Outcome::Rejected,
        }
    }
}

/// Whether an error must stop a job: no later request could succeed either (bad key, no
/// permission, spent quota or a rate limit that retries did not get past, bad configuration).
pub fn is_fatal(err: &Error) -> bool {
    matches!(err, Error::Authentication(_) | Error::PermissionDenied(_) | Error::RateLimit(_) | Error::Config(_))
}

/// The outcome of one input row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowOutcome {
    /// Index of the row in the input (0-based).
    pub row: usize,
    pub panel_member_id: Option<i64>,
    pub points: Option<i64>,
    pub outcome: Outcome,
    /// The request id of the request that carried the row.
    pub request_id: Option<String>,
    /// Why the row was not awarded, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Field errors for invalid rows, or the vendor's for rejected ones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The vendor's `skipped` item for skipped rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<serde_json::Value>,
}

/// Counts per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub rows: usize,
    pub awarded: usize,
    pub skipped: usize,
    pub invalid: usize,
    pub rejected: usize,
    pub failed: usize,
    pub unknown: usize,
    /// Points of the awarded rows, added up.
    pub points_awarded: i64,
}

/// The result of a job: one outcome per input row, in input order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub rows: Vec<RowOutcome>,
    /// Requests sent.
    pub requests: usize,
    /// What stopped the job early, if anything did.
    pub stopped_by: Option<Stop>,
}

/// Why a job stopped before sending every row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stop {
    /// The error class (`AuthenticationError`, ...), or `Interrupted`.
    pub class: String,
    pub message: String,
    pub status: Option<u16>,
    pub request_id: Option<String>,
}

impl Stop {
    /// The stop caused by `err`.
    pub fn from_error(err: &Error) -> Stop {
        Stop {
            class: err.class_name().to_string(),
            message: err.to_string(),
            status: err.status(),
            request_id: err.request_id().map(str::to_string),
        }
    }

    /// A stop asked for by the user (Ctrl-C, a signal, a cancel).
    pub fn interrupted(message: impl Into<String>) -> Stop {
        Stop { class: "Interrupted".into(), message: message.into(), status: None, request_id: None }
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.class, self.message)
    }
}

impl Report {
    /// Counts per outcome.
    pub fn totals(&self) -> Totals {
        let mut t = Totals { rows: self.rows.len(), ..Totals::default() };
        for r in &self.rows {
            match r.outcome {
                Outcome::Awarded => {
                    t.awarded += 1;
                    t.points_awarded += r.points.unwrap_or(0);
                }
                Outcome::Skipped => t.skipped += 1,
                Outcome::Invalid => t.invalid += 1,
                Outcome::Rejected => t.rejected += 1,
                Outcome::Failed => t.failed += 1,
                Outcome::Unknown => t.unknown += 1,
            }
        }
        t
    }

    /// True when every row was awarded or skipped by the vendor.
    pub fn is_complete(&self) -> bool {
        self.rows.iter().all(|r| matches!(r.outcome, Outcome::Awarded | Outcome::Skipped))
    }
}

/// The outcomes of one batch of rows (`first` is the input index of `rows[0]`) from the
/// result of its request.
pub fn batch_outcomes(first: usize, rows: &[PointsAward], result: &Result<AwardResult, Error>) -> Vec<RowOutcome> {
    let base = |i: usize, r: &PointsAward, outcome: Outcome| RowOutcome {
        row: first + i,
        panel_member_id: Some(r.panel_member_id),
        points: Some(r.points),
        outcome,
        request_id: None,
        message: None,
        errors: Vec::new(),
        skipped: None,
    };
    match result {
        Ok(res) => {
            let mut own = answer_exceptions(rows, res).into_iter().peekable();
            let mut out = Vec::with_capacity(rows.len());
            for (i, r) in rows.iter().enumerate() {
                match own.next_if(|o| o.row == i) {
                    Some(o) => out.push(RowOutcome { row: first + i, ..o }),
                    None => out.push(RowOutcome { request_id: res.request_id.clone(), ..base(i, r, Outcome::Awarded) }),
                }
            }
            out
        }
        Err(err) => {
            let outcome = Outcome::of_error(err);
            let errors = err.field_errors().to_vec();
            rows.iter()
                .enumerate()
                .map(|(i, r)| RowOutcome {
                    request_id: err.request_id().map(str::to_string),
                    message: Some(err.to_string()),
                    errors: errors.clone(),
                    ..base(i, r, outcome)
                })
                .collect()
        }
    }
}

/// The rows of a successful answer that were not simply awarded, in order (`row` is the index
/// in `rows`): the skipped ones, and, when the answer's counts do not add up, every other row
/// as `unknown`. Most answers have none, so a bulk job builds no outcome for awarded rows.
pub(crate) fn answer_exceptions(rows: &[PointsAward], res: &AwardResult) -> Vec<RowOutcome> {
    let mut skipped: Vec<Option<&serde_json::Value>> = Vec::new();
    let mut mapped = 0usize;
    for item in &res.skipped {
        if let Some(i) = item.row {
            if skipped.is_empty() {
                skipped.resize(rows.len(), None);
            }
            if skipped[i].is_none() {
                skipped[i] = Some(&item.raw);
                mapped += 1;
            }
        }
    }
    let consistent = mapped == res.skipped.len() && res.success_count as usize + mapped == rows.len();
    if consistent && mapped == 0 {
        return Vec::new();
    }
    let unknown = (!consistent).then(|| {
        format!(
            "the answer counted {} awarded and {} skipped for {} rows sent; this row's fate is not stated",
            res.success_count,
            res.skipped.len(),
            rows.len()
        )
    });
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let raw = skipped.get(i).copied().flatten();
        // The answer does not say which rows it counted: claiming them awarded could hide a
        // lost row, claiming them failed could cause a double award.
        let (outcome, message) = match (raw, &unknown) {
            (Some(_), _) => (Outcome::Skipped, None),
            (None, Some(msg)) => (Outcome::Unknown, Some(msg.clone())),
            (None, None) => continue,
        };
        out.push(RowOutcome {
            row: i,
            panel_member_id: Some(r.panel_member_id),
            points: Some(r.points),
            outcome,
            request_id: res.request_id.clone(),
            message,
            errors: Vec::new(),
            skipped: raw.cloned(),
        });
    }
    out
}

/// Sends `rows` (already validated) in batches of `batch_size`, one after another, calling
/// `on_batch` after each. Stops at the first fatal error; rows not sent then are `failed`.
pub async fn award_sequential(
    qp: &QuestionPro,
    rows: &[PointsAward],
    batch_size: usize,
    mut on_batch: impl FnMut(&[RowOutcome]),
) -> Report {
    let batch_size = batch_size.max(1);
    let mut report = Report { rows: Vec::with_capacity(rows.len()), ..Report::default() };
    for (b, chunk) in rows.chunks(batch_size).enumerate() {
        let first = b * batch_size;
        if let Some(why) = &report.stopped_by {
            let msg = format!("not sent: the job stopped ({why})");
            report.rows.extend(chunk.iter().enumerate().map(|(i, r)| RowOutcome {
                row: first + i,
                panel_member_id: Some(r.panel_member_id),
                points: Some(r.points),
                outcome: Outcome::Failed,
                request_id: None,
                message: Some(msg.clone()),
                errors: Vec::new(),
                skipped: None,
            }));
            continue;
        }
        let result = qp.send_points(chunk).await;
        report.requests += 1;
        let outcomes = batch_outcomes(first, chunk, &result);
        on_batch(&outcomes);
        if let Err(e) = &result {
            if is_fatal(e) {
                report.stopped_by = Some(Stop::from_error(e));
            }
        }
        report.rows.extend(outcomes);
    }
    report
}
