//! The bulk engine: rows stream in from a [`RowSource`], are validated, cut into chunks and
//! sent several at a time through the client's shared pacer, and every row ends with exactly
//! one [`Outcome`]. With a journal, a killed job resumes without re-sending what went out.
//!
//! Memory stays flat however long the input is: rows are read in blocks, at most
//! `concurrency` chunks are held at once, a one-shot source is spooled to a temporary file for
//! the validation pass, and the report keeps per-chunk states plus only the rows that have an
//! outcome of their own (invalid, skipped, ...).

use super::journal::{ChunkState, Journal};
use super::{answer_exceptions, is_fatal, Outcome, RowOutcome, Stop, Totals};
use crate::error::{Error, FieldError};
use crate::questionpro::{DuplicateCheck, PointsAward, QuestionPro};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
pub use tokio_util::sync::CancellationToken;

/// One row as a source read it: the typed row, or its field errors.
pub type RowRead = Result<PointsAward, Vec<FieldError>>;

/// Where a job's rows come from. Reading may block (a file, a Python iterator); the engine
/// calls it from a blocking thread.
pub trait RowSource: Send {
    /// Appends up to `max` rows to `out`; returns `false` once the source is exhausted.
    fn read(&mut self, max: usize, out: &mut Vec<RowRead>) -> Result<bool, Error>;

    /// Goes back to the first row for a second pass; `false` when the source cannot, in
    /// which case the engine spools the validated rows to a temporary file instead.
    fn rewind(&mut self) -> Result<bool, Error> {
        Ok(false)
    }

    /// The number of rows, when known before reading them (for progress).
    fn len_hint(&self) -> Option<usize> {
        None
    }
}

/// A source over rows in memory.
pub struct VecSource {
    rows: Vec<RowRead>,
    next: usize,
}

impl VecSource {
    /// Typed rows.
    pub fn new(rows: Vec<PointsAward>) -> Self {
        VecSource { rows: rows.into_iter().map(Ok).collect(), next: 0 }
    }

    /// Untyped rows, read with [`PointsAward::from_value`].
    pub fn from_values(values: &[Value]) -> Self {
        VecSource { rows: values.iter().map(PointsAward::from_value).collect(), next: 0 }
    }
}

impl RowSource for VecSource {
    fn read(&mut self, max: usize, out: &mut Vec<RowRead>) -> Result<bool, Error> {
        let end = (self.next + max).min(self.rows.len());
        out.extend(self.rows[self.next..end].iter().cloned());
        self.next = end;
        Ok(self.next < self.rows.len())
    }
    fn rewind(&mut self) -> Result<bool, Error> {
        self.next = 0;
        Ok(true)
    }
    fn len_hint(&self) -> Option<usize> {
        Some(self.rows.len())
    }
}

/// A one-shot source over any iterator of rows.
pub struct IterSource<I>(pub I);

impl<I: Iterator<Item = RowRead> + Send> RowSource for IterSource<I> {
    fn read(&mut self, max: usize, out: &mut Vec<RowRead>) -> Result<bool, Error> {
        for _ in 0..max {
            match self.0.next() {
                Some(r) => out.push(r),
                None => return Ok(false),
            }
        }
        Ok(true)
    }
}

/// What to do when some rows are invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnInvalid {
    /// Validate every row first; if any is invalid, send nothing.
    #[default]
    Stop,
    /// Send the valid rows as they are read; report the invalid ones.
    SendValid,
}

/// Settings of a bulk job.
#[derive(Debug, Clone)]
pub struct BulkOptions {
    /// Rows per request. Default 500.
    pub batch_size: usize,
    /// Requests in flight at once. Default 4.
    pub concurrency: usize,
    pub on_invalid: OnInvalid,
    /// Allow one member id on several rows. Default: an error.
    pub allow_duplicates: bool,
    /// An SQLite file recording each chunk's state, for resuming.
    pub journal: Option<PathBuf>,
    /// Re-send chunks an earlier run left unknown (they may be awarded twice).
    pub resend_unknown: bool,
}

impl Default for BulkOptions {
    fn default() -> Self {
        BulkOptions {
            batch_size: 500,
            concurrency: 4,
            on_invalid: OnInvalid::Stop,
            allow_duplicates: false,
            journal: None,
            resend_unknown: false,
        }
    }
}

/// Where a job stands, given to the progress callback after each chunk.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// Rows with an outcome so far.
    pub rows_done: usize,
    /// Rows in all, when known.
    pub rows_total: Option<usize>,
    pub requests: usize,
    pub elapsed: Duration,
    /// Rows per second in this run.
    pub rate: f64,
    /// Estimated time left, when the total is known.
    pub eta: Option<Duration>,
    pub totals: Totals,
    /// The chunk whose outcome was just recorded (sent, read from the journal, or not sent);
    /// `None` on the last call, made when the job ends.
    pub chunk: Option<ChunkReport>,
}

/// The fate of one chunk of rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChunkReport {
    pub chunk: usize,
    /// Input index of its first and last row (invalid rows between them are not part of it).
    pub first_row: usize,
    pub last_row: usize,
    pub rows: usize,
    /// The outcome of its rows that have none of their own (see `BulkReport::exceptions`).
    pub outcome: Outcome,
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Points of its awarded rows.
    pub points_awarded: i64,
    /// Its outcome was recorded by an earlier run (read from the journal).
    pub from_journal: bool,
}

/// The result of a bulk job: every input row has exactly one outcome, given by its chunk or
/// by its own entry in `exceptions`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BulkReport {
    pub totals: Totals,
    /// Requests sent in this run.
    pub requests: usize,
    /// Chunks in order.
    pub chunks: Vec<ChunkReport>,
    /// Rows with an outcome of their own (invalid, skipped, unknown by an inconsistent count),
    /// in row order.
    pub exceptions: Vec<RowOutcome>,
    /// Rows read from the source.
    pub rows_read: usize,
    /// Chunks whose outcome came from the journal.
    pub resumed_chunks: usize,
    pub stopped_by: Option<Stop>,
    pub elapsed: Duration,
}

/// One row of a [`BulkReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowView<'a> {
    pub row: usize,
    pub outcome: Outcome,
    pub request_id: Option<&'a str>,
    pub message: Option<&'a str>,
}

impl BulkReport {
    /// True when every row was awarded or skipped by the vendor.
    pub fn is_complete(&self) -> bool {
        let t = &self.totals;
        t.invalid + t.rejected + t.failed + t.unknown == 0
    }

    /// Chunks whose rows may or may not have been awarded.
    pub fn unknown_chunks(&self) -> impl Iterator<Item = &ChunkReport> {
        self.chunks.iter().filter(|c| c.outcome == Outcome::Unknown)
    }

    /// Every row's outcome, in row order.
    pub fn rows(&self) -> impl Iterator<Item = RowView<'_>> + '_ {
        let mut ex = self.exceptions.iter().peekable();
        let mut chunk = 0usize;
        (0..self.rows_read).filter_map(move |row| {
            while ex.peek().is_some_and(|e| e.row < row) {
                ex.next();
            }
            if let Some(e) = ex.peek().filter(|e| e.row == row) {
                return Some(RowView {
                    row,
                    outcome: e.outcome,
                    request_id: e.request_id.as_deref(),
                    message: e.message.as_deref(),
                });
            }
            while self.chunks.get(chunk).is_some_and(|c| c.last_row < row) {
                chunk += 1;
            }
            let c = self.chunks.get(chunk).filter(|c| c.first_row <= row)?;
            Some(RowView {
                row,
                outcome: c.outcome,
                request_id: c.request_id.as_deref(),
                message: c.message.as_deref(),
            })
        })
    }

    fn compute_totals(&mut self) {
        let mut t = Totals { rows: self.rows_read, ..Totals::default() };
        let mut own: HashMap<usize, usize> = HashMap::new();
        for e in &self.exceptions {
            bump(&mut t, e.outcome, 1);
            if e.outcome != Outcome::Invalid {
                if let Some(c) = self.chunk_of(e.row) {
                    *own.entry(c).or_default() += 1;
                }
            }
        }
        for (i, c) in self.chunks.iter().enumerate() {
            bump(&mut t, c.outcome, c.rows - own.get(&i).copied().unwrap_or(0));
            t.points_awarded += c.points_awarded;
        }
        self.totals = t;
    }

    fn chunk_of(&self, row: usize) -> Option<usize> {
        let i = self.chunks.partition_point(|c| c.last_row < row);
        self.chunks.get(i).filter(|c| c.first_row <= row).map(|_| i)
    }
}

fn bump(t: &mut Totals, o: Outcome, n: usize) {
    match o {
        Outcome::Awarded => t.awarded += n,
        Outcome::Skipped => t.skipped += n,
        Outcome::Invalid => t.invalid += n,
        Outcome::Rejected => t.rejected += n,
        Outcome::Failed => t.failed += n,
        Outcome::Unknown => t.unknown += n,
    }
}

/// A job that stopped on an error, with what it had done by then.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct JobError {
    pub error: Error,
    pub report: Box<BulkReport>,
}

type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// A bulk job, set up and ready to run. See [`QuestionPro::bulk_award`] for the short form.
pub struct BulkJob {
    qp: QuestionPro,
    opts: BulkOptions,
    progress: Option<ProgressFn>,
    cancel: CancellationToken,
    /// Cancelling it cancels `cancel` too (it is its child).
    abort: CancellationToken,
}

impl QuestionPro {
    /// Awards points to every row of `source` (see [`BulkJob`]).
    pub async fn bulk_award(
        &self,
        source: impl RowSource + 'static,
        opts: BulkOptions,
    ) -> Result<BulkReport, JobError> {
        BulkJob::new(self, opts).run(source).await
    }
}

/// A chunk ready to send: its rows, their input indices, its content hash, and its request
/// body when it was encoded ahead (see [`Chunker::held`]).
struct Chunk {
    id: usize,
    rows: Vec<PointsAward>,
    index: Vec<usize>,
    hash: String,
    body: Option<bytes::Bytes>,
}

enum Produced {
    /// Stop mode: the validation pass is over.
    Validated {
        total: usize,
        invalid: Vec<RowOutcome>,
        fingerprint: String,
    },
    Invalid(RowOutcome),
    Chunk(Chunk),
    End {
        rows_read: usize,
    },
    Failed(Error),
}

const READ_BLOCK: usize = 2048;
/// Up to this many rows (about 30 MB), a source of known size keeps its validated rows in
/// memory, as encoded chunks, between the validation and the sending pass instead of being
/// read twice.
pub const IN_MEMORY_ROWS: usize = 250_000;

impl BulkJob {
    /// A job for `qp` with `opts`.
    pub fn new(qp: &QuestionPro, opts: BulkOptions) -> Self {
        let abort = CancellationToken::new();
        BulkJob { qp: qp.clone(), opts, progress: None, cancel: abort.child_token(), abort }
    }

    /// Calls `f` after each chunk with where the job stands.
    pub fn on_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// A token that stops the job cleanly when cancelled: chunks in flight finish and are
    /// recorded, nothing more is sent.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// A token that stops the job at once when cancelled (a second Ctrl-C): nothing more is
    /// sent and requests in flight are abandoned. Their chunks are reported `unknown` (the
    /// request went out: it may or may not have been applied; a journal keeps them unknown
    /// too) or `failed` when their request had not gone out yet. Cancelling it also cancels
    /// [`BulkJob::cancel_token`].
    pub fn abort_token(&self) -> CancellationToken {
        self.abort.clone()
    }

    /// Runs the job to the end (or to a fatal error, or a cancel).
    pub async fn run(self, source: impl RowSource + 'static) -> Result<BulkReport, JobError> {
        let started = Instant::now();
        let opts = self.opts.clone();
        let mut report = BulkReport::default();
        let journal = match &opts.journal {
            None => None,
            Some(path) => match open_journal(path, &opts, &self.qp) {
                Ok(j) => Some(Arc::new(j)),
                Err(error) => return Err(JobError { error, report: Box::new(report) }),
            },
        };
        let len_hint = source.len_hint();
        let (tx, mut rx) = mpsc::channel::<Produced>(opts.concurrency.max(1));
        let stop_reading = Arc::new(AtomicBool::new(false));
        let producer = {
            let stop = stop_reading.clone();
            let opts = opts.clone();
            tokio::task::spawn_blocking(move || produce(source, &opts, &tx, &stop))
        };

        let mut state = Dispatch {
            qp: self.qp.clone(),
            journal,
            opts: opts.clone(),
            in_flight: JoinSet::new(),
            total: len_hint,
            started,
            progress: self.progress.clone(),
            fatal: None,
            done_rows: 0,
            totals: Totals::default(),
            abort: self.abort.clone(),
            flying: HashMap::new(),
        };
        let mut error: Option<Error> = None;
        loop {
            let msg = tokio::select! {
                biased;
                _ = self.cancel.cancelled(), if report.stopped_by.is_none() => {
                    report.stopped_by = Some(Stop::interrupted("the job was cancelled"));
                    stop_reading.store(true, Ordering::Relaxed);
                    break;
                }
                m = rx.recv() => m,
            };
            let Some(msg) = msg else { break };
            match msg {
                Produced::Validated { total, invalid, fingerprint } => {
                    state.total = Some(total);
                    // One record a chunk, reserved at once: growing by doubling would hold the
                    // old and the new array together, a third more memory on a long job.
                    report.chunks.reserve_exact(total.div_ceil(opts.batch_size.max(1)));
                    if !invalid.is_empty() {
                        // Nothing is sent: report the invalid rows and raise them all at once.
                        // (Checked before the journal, which an input that sends nothing must
                        // not claim.)
                        let errs = invalid.iter().flat_map(|r| r.errors.iter().cloned()).collect();
                        report.done_rows_invalid(invalid);
                        report.rows_read = total;
                        error = Some(Error::Validation(errs));
                        stop_reading.store(true, Ordering::Relaxed);
                        break;
                    }
                    if let Some(j) = &state.journal {
                        if let Err(e) = check_fingerprint(j, &fingerprint) {
                            error = Some(e);
                            stop_reading.store(true, Ordering::Relaxed);
                            break;
                        }
                    }
                }
                Produced::Invalid(r) => {
                    state.done_rows += 1;
                    bump(&mut state.totals, Outcome::Invalid, 1);
                    report.exceptions.push(r);
                }
                Produced::Chunk(chunk) => {
                    let mut aborted = false;
                    while state.in_flight.len() >= opts.concurrency.max(1) {
                        if !state.collect_one(&mut report).await {
                            aborted = true;
                            break;
                        }
                    }
                    // A cancel that came while waiting for room: this chunk is not sent.
                    if aborted || self.cancel.is_cancelled() {
                        report.stopped_by.get_or_insert_with(|| Stop::interrupted("the job was cancelled"));
                        stop_reading.store(true, Ordering::Relaxed);
                        break;
                    }
                    state.start(chunk, &mut report);
                }
                Produced::End { rows_read } => report.rows_read = rows_read,
                Produced::Failed(e) => {
                    error = Some(e);
                    stop_reading.store(true, Ordering::Relaxed);
                    break;
                }
            }
            if report.stopped_by.is_none() {
                if let Some(e) = &state.fatal {
                    // From now on chunks are recorded as not sent, so every row still gets its outcome.
                    report.stopped_by = Some(Stop::from_error(e));
                }
            }
        }
        while !state.in_flight.is_empty() {
            if !state.collect_one(&mut report).await {
                state.abandon(&mut report).await;
                if let Some(s) = report.stopped_by.as_mut().filter(|s| s.class == "Interrupted") {
                    s.message = "the job was stopped at once; requests in flight were abandoned".into();
                }
            }
        }
        drop(rx);
        let _ = producer.await;
        if report.stopped_by.is_none() {
            if let Some(e) = &state.fatal {
                report.stopped_by = Some(Stop::from_error(e));
            }
        }
        report.chunks.sort_by_key(|c| c.chunk);
        report.exceptions.sort_by_key(|e| e.row);
        if report.rows_read == 0 {
            report.rows_read = report
                .chunks
                .last()
                .map_or(0, |c| c.last_row + 1)
                .max(report.exceptions.last().map_or(0, |e| e.row + 1));
        }
        report.compute_totals();
        report.elapsed = started.elapsed();
        state.report_progress(&report, None);
        match error.or(state.fatal) {
            Some(error) => Err(JobError { error, report: Box::new(report) }),
            None => Ok(report),
        }
    }
}

impl BulkReport {
    fn done_rows_invalid(&mut self, invalid: Vec<RowOutcome>) {
        self.exceptions.extend(invalid);
    }
}

fn open_journal(path: &std::path::Path, opts: &BulkOptions, qp: &QuestionPro) -> Result<Journal, Error> {
    Journal::open(
        path,
        &[
            ("endpoint", qp.base_url()),
            ("batch_size", opts.batch_size.max(1).to_string()),
            ("on_invalid", format!("{:?}", opts.on_invalid)),
            ("allow_duplicates", opts.allow_duplicates.to_string()),
        ],
    )
}

fn check_fingerprint(j: &Journal, fingerprint: &str) -> Result<(), Error> {
    match j.meta("fingerprint")? {
        Some(old) if old == fingerprint => Ok(()),
        // A journal that records no chunk never sent anything: it can take the new input.
        Some(_) if j.chunk_count()? > 0 => Err(Error::Config(
            "the journal was written for a different input; use a new journal file for a new job".into(),
        )),
        _ => j.set_meta("fingerprint", fingerprint),
    }
}

/// The state of the sending side.
struct Dispatch {
    qp: QuestionPro,
    journal: Option<Arc<Journal>>,
    opts: BulkOptions,
    in_flight: JoinSet<(Chunk, ChunkResult)>,
    total: Option<usize>,
    started: Instant,
    progress: Option<ProgressFn>,
    fatal: Option<Error>,
    done_rows: usize,
    /// Running totals for progress, so a long job never re-counts its report.
    totals: Totals,
    /// Cancelled to abandon the requests in flight.
    abort: CancellationToken,
    /// What is needed to report a chunk in flight whose task is abandoned, by task id.
    flying: HashMap<tokio::task::Id, Flying>,
}

/// A chunk in flight, as far as reporting it without its task goes.
struct Flying {
    id: usize,
    first_row: usize,
    last_row: usize,
    rows: usize,
    went_out: Arc<AtomicBool>,
}

enum ChunkResult {
    Sent { result: Result<crate::questionpro::AwardResult, Error>, went_out: bool },
    Fatal(Error),
}

impl Dispatch {
    /// Decides what to do with a chunk: take its outcome from the journal, record it as not
    /// sent (after a fatal error), or send it.
    fn start(&mut self, chunk: Chunk, report: &mut BulkReport) {
        if let Some(e) = &self.fatal {
            let msg = format!("not sent: the job stopped ({}: {e})", e.class_name());
            let c = chunk_report(&chunk, Outcome::Failed, None, Some(msg), Vec::new(), 0, false);
            return self.record(report, c, Vec::new());
        }
        if let Some(j) = &self.journal {
            match j.chunk(chunk.id) {
                Err(e) => {
                    self.fatal = Some(e);
                    return self.start(chunk, report);
                }
                Ok(Some(prev)) if prev.hash != chunk.hash => {
                    self.fatal = Some(Error::Config(format!(
                        "the journal was written for a different input (chunk {} differs); use a new journal file",
                        chunk.id
                    )));
                    return self.start(chunk, report);
                }
                Ok(Some(prev)) => match prev.state {
                    ChunkState::Done => {
                        let own = j.row_outcomes(chunk.id).unwrap_or_default();
                        let points = awarded_points(&chunk, &own);
                        let c = chunk_report(&chunk, Outcome::Awarded, prev.request_id, None, Vec::new(), points, true);
                        report.resumed_chunks += 1;
                        return self.record(report, c, own);
                    }
                    ChunkState::Sending | ChunkState::Unknown if !self.opts.resend_unknown => {
                        let msg = "an earlier run sent this chunk and got no definitive answer: it may or may not have been awarded (resend_unknown sends it again)";
                        let msg = Some(prev.message.unwrap_or_else(|| msg.to_string()));
                        let c = chunk_report(&chunk, Outcome::Unknown, prev.request_id, msg, Vec::new(), 0, true);
                        report.resumed_chunks += 1;
                        return self.record(report, c, Vec::new());
                    }
                    // Rejected or failed chunks were not applied: send them again.
                    _ => {}
                },
                Ok(None) => {}
            }
        }
        let qp = self.qp.clone();
        let journal = self.journal.clone();
        let went_out = Arc::new(AtomicBool::new(false));
        let flying = Flying {
            id: chunk.id,
            first_row: chunk.index.first().copied().unwrap_or(0),
            last_row: chunk.index.last().copied().unwrap_or(0),
            rows: chunk.rows.len(),
            went_out: went_out.clone(),
        };
        let handle = self.in_flight.spawn(async move {
            let journal_error = Arc::new(std::sync::Mutex::new(None));
            let hook = {
                let went_out = went_out.clone();
                let journal_error = journal_error.clone();
                let journal = journal.clone();
                let (id, first, last, n, hash) =
                    (chunk.id, chunk.index[0], *chunk.index.last().unwrap_or(&0), chunk.rows.len(), chunk.hash.clone());
                move || {
                    if !went_out.swap(true, Ordering::SeqCst) {
                        if let Some(j) = &journal {
                            if let Err(e) = j.mark_sending(id, first, last, n, &hash) {
                                *journal_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            }
                        }
                    }
                }
            };
            let body = chunk.body.clone().unwrap_or_else(|| crate::questionpro::encode_rows(&chunk.rows).into());
            let result = qp.send_points_encoded(&chunk.rows, body, &hook).await;
            if let Some(e) = journal_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return (chunk, ChunkResult::Fatal(e));
            }
            let went_out = went_out.load(Ordering::SeqCst);
            (chunk, ChunkResult::Sent { result, went_out })
        });
        self.flying.insert(handle.id(), flying);
    }

    /// Waits for one chunk in flight and records its outcome; `false` (with nothing
    /// collected) when the job is aborted first.
    async fn collect_one(&mut self, report: &mut BulkReport) -> bool {
        let joined = tokio::select! {
            biased;
            _ = self.abort.cancelled() => return false,
            j = self.in_flight.join_next_with_id() => j,
        };
        if let Some(joined) = joined {
            self.collected(joined, report);
        }
        true
    }

    /// Abandons every chunk in flight: each ends `unknown` when its request went out,
    /// `failed` when it had not (or with its real outcome when it finished meanwhile).
    async fn abandon(&mut self, report: &mut BulkReport) {
        self.in_flight.abort_all();
        // Waiting for the aborted tasks to end makes `went_out` final: a request that had not
        // gone out by then never will.
        while let Some(joined) = self.in_flight.join_next_with_id().await {
            self.collected(joined, report);
        }
    }

    fn collected(
        &mut self,
        joined: Result<(tokio::task::Id, (Chunk, ChunkResult)), tokio::task::JoinError>,
        report: &mut BulkReport,
    ) {
        match joined {
            Ok((id, (chunk, res))) => {
                self.flying.remove(&id);
                self.finish_chunk(chunk, res, report);
            }
            Err(e) => {
                if e.is_panic() {
                    self.fatal.get_or_insert(Error::Config(format!("a send task failed: {e}")));
                }
                let Some(f) = self.flying.remove(&e.id()) else { return };
                let (outcome, msg) = if f.went_out.load(Ordering::SeqCst) {
                    let msg =
                        "the job stopped while this chunk's request was in flight: it may or may not have been awarded";
                    if let Some(j) = &self.journal {
                        if let Err(e) = j.finish(f.id, ChunkState::Unknown, None, Some(msg), &[]) {
                            self.fatal.get_or_insert(e);
                        }
                    }
                    (Outcome::Unknown, msg)
                } else {
                    (Outcome::Failed, "not sent: the job stopped before this chunk's request went out")
                };
                let c = ChunkReport {
                    chunk: f.id,
                    first_row: f.first_row,
                    last_row: f.last_row,
                    rows: f.rows,
                    outcome,
                    request_id: None,
                    message: Some(msg.to_string()),
                    errors: Vec::new(),
                    points_awarded: 0,
                    from_journal: false,
                };
                self.record(report, c, Vec::new());
            }
        }
    }

    /// Records the outcome of a chunk whose task ended.
    fn finish_chunk(&mut self, chunk: Chunk, res: ChunkResult, report: &mut BulkReport) {
        let (result, went_out) = match res {
            ChunkResult::Fatal(e) => {
                self.fatal.get_or_insert(e);
                let msg = Some("sent, but the journal could not record the outcome".to_string());
                let c = chunk_report(&chunk, Outcome::Unknown, None, msg, Vec::new(), 0, false);
                return self.record(report, c, Vec::new());
            }
            ChunkResult::Sent { result, went_out } => (result, went_out),
        };
        report.requests += usize::from(went_out);
        let (outcome, request_id, message, errors, state) = match &result {
            Ok(r) => (Outcome::Awarded, r.request_id.clone(), None, Vec::new(), ChunkState::Done),
            Err(e) => {
                let o = Outcome::of_error(e);
                let state = match o {
                    Outcome::Unknown => ChunkState::Unknown,
                    Outcome::Rejected => ChunkState::Rejected,
                    _ => ChunkState::Failed,
                };
                (o, e.request_id().map(str::to_string), Some(e.to_string()), e.field_errors().to_vec(), state)
            }
        };
        // Rows whose outcome differs from the chunk's (skipped rows, unknown by a count mismatch);
        // a failed request's rows all share its outcome.
        let mut own = match &result {
            Ok(r) => answer_exceptions(&chunk.rows, r),
            Err(_) => Vec::new(),
        };
        for o in &mut own {
            o.row = chunk.index[o.row];
        }
        let points = if outcome == Outcome::Awarded { awarded_points(&chunk, &own) } else { 0 };
        if let (Some(j), true) = (&self.journal, went_out) {
            if let Err(e) = j.finish(chunk.id, state, request_id.as_deref(), message.as_deref(), &own) {
                self.fatal.get_or_insert(e);
            }
        }
        if let Err(e) = &result {
            if is_fatal(e) {
                self.fatal.get_or_insert_with(|| clone_error(e));
            }
        }
        let c = chunk_report(&chunk, outcome, request_id, message, errors, points, false);
        self.record(report, c, own);
    }

    /// Records a finished chunk and the rows of it that have an outcome of their own, keeps
    /// the running totals, and reports progress.
    fn record(&mut self, report: &mut BulkReport, c: ChunkReport, own: Vec<RowOutcome>) {
        self.done_rows += c.rows;
        bump(&mut self.totals, c.outcome, c.rows.saturating_sub(own.len()));
        for o in &own {
            bump(&mut self.totals, o.outcome, 1);
        }
        self.totals.points_awarded += c.points_awarded;
        let shown = self.progress.as_ref().map(|_| c.clone());
        report.chunks.push(c);
        report.exceptions.extend(own);
        self.report_progress(report, shown);
    }

    fn report_progress(&self, report: &BulkReport, chunk: Option<ChunkReport>) {
        let Some(f) = &self.progress else { return };
        let elapsed = self.started.elapsed();
        let rate = if elapsed.as_secs_f64() > 0.0 { self.done_rows as f64 / elapsed.as_secs_f64() } else { 0.0 };
        let eta = self
            .total
            .filter(|_| rate > 0.0)
            .map(|t| Duration::from_secs_f64(t.saturating_sub(self.done_rows) as f64 / rate));
        f(&Progress {
            rows_done: self.done_rows,
            rows_total: self.total,
            requests: report.requests,
            elapsed,
            rate,
            eta,
            totals: Totals { rows: self.done_rows, ..self.totals },
            chunk,
        });
    }
}

/// Points of a chunk's rows that have no outcome of their own (the awarded ones).
fn awarded_points(chunk: &Chunk, own: &[RowOutcome]) -> i64 {
    if own.is_empty() {
        return chunk.rows.iter().map(|r| r.points).sum();
    }
    let own: std::collections::HashSet<usize> = own.iter().map(|o| o.row).collect();
    chunk.rows.iter().zip(&chunk.index).filter(|(_, i)| !own.contains(i)).map(|(r, _)| r.points).sum()
}

fn chunk_report(
    chunk: &Chunk,
    outcome: Outcome,
    request_id: Option<String>,
    message: Option<String>,
    errors: Vec<FieldError>,
    points_awarded: i64,
    from_journal: bool,
) -> ChunkReport {
    ChunkReport {
        chunk: chunk.id,
        first_row: chunk.index.first().copied().unwrap_or(0),
        last_row: chunk.index.last().copied().unwrap_or(0),
        rows: chunk.rows.len(),
        outcome,
        request_id,
        message,
        errors,
        points_awarded,
        from_journal,
    }
}

/// A copy of a fatal error to keep while the original goes into the chunk's report.
fn clone_error(e: &Error) -> Error {
    match e {
        Error::Authentication(a) => Error::Authentication(a.clone()),
        Error::PermissionDenied(a) => Error::PermissionDenied(a.clone()),
        Error::RateLimit(a) => Error::RateLimit(a.clone()),
        Error::Config(m) => Error::Config(m.clone()),
        other => Error::Config(other.to_string()),
    }
}

/// A content hash for the journal: stable across Rust versions and platforms (a journal on
/// disk needs that), and fast (a word at a time, in the manner of FxHash). It detects a
/// changed input; it is not meant to resist a forger.
#[derive(Clone, Copy)]
struct RowHash(u64);

impl RowHash {
    fn new() -> Self {
        RowHash(0x243f_6a88_85a3_08d3)
    }
    fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.word(b.len() as u64);
        let mut words = b.chunks_exact(8);
        for w in &mut words {
            self.word(u64::from_le_bytes(w.try_into().unwrap_or_default()));
        }
        let mut tail = [0u8; 8];
        tail[..words.remainder().len()].copy_from_slice(words.remainder());
        self.word(u64::from_le_bytes(tail));
    }
    fn row(&mut self, index: usize, r: &PointsAward) {
        self.word(index as u64);
        self.word(r.panel_member_id as u64);
        self.word(r.points as u64);
        match &r.comments {
            Some(c) => self.bytes(c.as_bytes()),
            None => self.word(u64::MAX),
        }
    }
    fn hex(self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Builds chunks from valid rows and hands them to the dispatcher.
struct Chunker<'a> {
    batch: usize,
    next_id: usize,
    cur: Chunk,
    tx: &'a mpsc::Sender<Produced>,
    /// Chunk hashes are for the journal only.
    hash: bool,
    /// Stop mode, small input: chunks made during the validation pass wait here until every
    /// row is known to be good. Their bodies are encoded meanwhile by tasks on the runtime,
    /// whose workers are otherwise idle while the (single-threaded) validation pass runs.
    held: Option<Vec<oneshot::Receiver<Chunk>>>,
}

impl<'a> Chunker<'a> {
    fn new(batch: usize, tx: &'a mpsc::Sender<Produced>, hash: bool) -> Self {
        Chunker { batch, next_id: 0, cur: empty_chunk(0, batch), tx, hash, held: None }
    }

    fn held(batch: usize, tx: &'a mpsc::Sender<Produced>, hash: bool) -> Self {
        Chunker { held: Some(Vec::new()), ..Self::new(batch, tx, hash) }
    }

    /// Hands the held chunks to the dispatcher, in order; false when the job stopped.
    fn release(mut self, stop: &AtomicBool) -> bool {
        self.flush();
        for rx in self.held.take().unwrap_or_default() {
            // An encoding task only ends without its chunk when the runtime is shutting down.
            let Ok(chunk) = rx.blocking_recv() else { return false };
            if stop.load(Ordering::Relaxed) || self.tx.blocking_send(Produced::Chunk(chunk)).is_err() {
                return false;
            }
        }
        true
    }

    /// Adds a row; false when the receiver is gone (the job stopped).
    fn push(&mut self, index: usize, row: PointsAward) -> bool {
        self.cur.rows.push(row);
        self.cur.index.push(index);
        if self.cur.rows.len() >= self.batch {
            return self.flush();
        }
        true
    }

    fn flush(&mut self) -> bool {
        if self.cur.rows.is_empty() {
            return true;
        }
        self.next_id += 1;
        let mut chunk = std::mem::replace(&mut self.cur, empty_chunk(self.next_id, self.batch));
        if self.hash {
            let mut h = RowHash::new();
            for (r, i) in chunk.rows.iter().zip(&chunk.index) {
                h.row(*i, r);
            }
            chunk.hash = h.hex();
        }
        if let Some(held) = self.held.as_mut() {
            let (done, rx) = oneshot::channel();
            tokio::runtime::Handle::current().spawn(async move {
                chunk.body = Some(crate::questionpro::encode_rows(&chunk.rows).into());
                let _ = done.send(chunk);
            });
            held.push(rx);
            return true;
        }
        self.tx.blocking_send(Produced::Chunk(chunk)).is_ok()
    }
}

fn empty_chunk(id: usize, batch: usize) -> Chunk {
    Chunk { id, rows: Vec::with_capacity(batch), index: Vec::with_capacity(batch), hash: String::new(), body: None }
}

fn invalid_row(row: usize, errors: Vec<FieldError>) -> RowOutcome {
    let errors: Vec<FieldError> = errors.into_iter().map(|e| e.at_row(row)).collect();
    RowOutcome {
        row,
        panel_member_id: None,
        points: None,
        outcome: Outcome::Invalid,
        request_id: None,
        message: Some("not sent: the row is invalid".into()),
        errors,
        skipped: None,
    }
}

/// The reading side, on a blocking thread: validation pass (in Stop mode), then chunks.
fn produce(mut source: impl RowSource, opts: &BulkOptions, tx: &mpsc::Sender<Produced>, stop: &AtomicBool) {
    if let Err(e) = produce_inner(&mut source, opts, tx, stop) {
        let _ = tx.blocking_send(Produced::Failed(e));
    }
}

fn produce_inner(
    source: &mut impl RowSource,
    opts: &BulkOptions,
    tx: &mpsc::Sender<Produced>,
    stop: &AtomicBool,
) -> Result<(), Error> {
    let batch = opts.batch_size.max(1);
    let mut dups = DuplicateCheck::default();
    let mut check = |index: usize, read: RowRead| -> RowRead {
        let row = read?;
        if !opts.allow_duplicates {
            if let Some(e) = dups.check(row.panel_member_id, index) {
                return Err(vec![e]);
            }
        }
        Ok(row)
    };
    let hash = opts.journal.is_some();

    if opts.on_invalid == OnInvalid::SendValid {
        let mut chunker = Chunker::new(batch, tx, hash);
        let mut rows_read = 0;
        let read_all = read_ahead(source, stop, |index, read| {
            rows_read = index + 1;
            Ok(match check(index, read) {
                Ok(row) => chunker.push(index, row),
                Err(errs) => tx.blocking_send(Produced::Invalid(invalid_row(index, errs))).is_ok(),
            })
        })?;
        if read_all && chunker.flush() {
            let _ = tx.blocking_send(Produced::End { rows_read });
        }
        return Ok(());
    }

    // Stop mode: a full validation pass before anything is sent. The valid rows are kept for
    // the sending pass: in memory when the source is known to be small, else by reading the
    // source again, else (a one-shot source) in a temporary spool file.
    let mut held = match source.len_hint() {
        Some(n) if n <= IN_MEMORY_ROWS => Some(Chunker::held(batch, tx, hash)),
        _ => None,
    };
    let mut spool = if held.is_none() && !source.rewind()? { Some(Spool::create()?) } else { None };
    let mut invalid = Vec::new();
    let mut fp = RowHash::new();
    fp.word(batch as u64);
    let mut total = 0;
    let read_all = read_ahead(source, stop, |index, read| {
        total = index + 1;
        match check(index, read) {
            Ok(row) => {
                if hash {
                    fp.row(index, &row);
                }
                if let Some(s) = spool.as_mut() {
                    s.write(index, &row)?;
                } else if let Some(h) = held.as_mut() {
                    h.push(index, row);
                }
            }
            Err(errs) => {
                fp.word(index as u64);
                fp.bytes(b"invalid");
                invalid.push(invalid_row(index, errs));
            }
        }
        Ok(true)
    })?;
    // The duplicate check's bitmaps (megabytes over millions of rows) are not needed to send.
    drop(dups);
    let any_invalid = !invalid.is_empty();
    if !read_all
        || tx.blocking_send(Produced::Validated { total, invalid, fingerprint: fp.hex() }).is_err()
        || any_invalid
    {
        return Ok(());
    }
    if let Some(h) = held.take() {
        if h.release(stop) {
            let _ = tx.blocking_send(Produced::End { rows_read: total });
        }
        return Ok(());
    }
    let mut chunker = Chunker::new(batch, tx, hash);
    if let Some(s) = spool.take() {
        let mut reader = s.into_reader()?;
        while let Some((i, row)) = reader.next()? {
            if stop.load(Ordering::Relaxed) || !chunker.push(i, row) {
                return Ok(());
            }
        }
    } else {
        source.rewind()?;
        let read_all = read_ahead(source, stop, |index, read| {
            // The rows were all valid in the first pass; a source that changed between passes
            // is an error rather than a silent difference.
            let row = read.map_err(|_| {
                Error::Config(format!("row {index} changed between the validation pass and the sending pass"))
            })?;
            Ok(chunker.push(index, row))
        })?;
        if !read_all {
            return Ok(());
        }
    }
    if chunker.flush() {
        let _ = tx.blocking_send(Produced::End { rows_read: total });
    }
    Ok(())
}

/// Reads `source` from where it is to its end on a thread of its own, a block ahead, and
/// hands each row with its input index to `each` on this thread: reading a row (a binding's
/// conversion, under Python's GIL for instance) and checking and chunking it run side by side.
/// Returns `false` when it stopped early: `each` said so, or `stop` was set.
fn read_ahead<S: RowSource>(
    source: &mut S,
    stop: &AtomicBool,
    mut each: impl FnMut(usize, RowRead) -> Result<bool, Error>,
) -> Result<bool, Error> {
    // Sources may use the runtime (a binding's channel, for one), as they could on the
    // engine's own blocking thread.
    let runtime = tokio::runtime::Handle::try_current().ok();
    std::thread::scope(|scope| {
        let (blocks, rx) = std::sync::mpsc::sync_channel::<Result<Vec<RowRead>, Error>>(2);
        scope.spawn(move || {
            let _in_runtime = runtime.as_ref().map(tokio::runtime::Handle::enter);
            while !stop.load(Ordering::Relaxed) {
                let mut buf = Vec::with_capacity(READ_BLOCK);
                let res = source.read(READ_BLOCK, &mut buf);
                let more = matches!(res, Ok(true));
                // A failed send means the consumer stopped: so does the reader.
                if blocks.send(res.map(|_| buf)).is_err() || !more {
                    return;
                }
            }
        });
        let mut index = 0;
        // Ends when the reader is done; returning early drops `rx`, which stops the reader.
        for block in rx {
            if stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            for read in block? {
                if !each(index, read)? {
                    return Ok(false);
                }
                index += 1;
            }
        }
        Ok(!stop.load(Ordering::Relaxed))
    })
}

/// Valid rows written to a temporary file during the validation pass, for sources that
/// cannot be read twice. Removed when dropped.
struct Spool {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
}

impl Spool {
    fn create() -> Result<Spool, Error> {
        let path =
            std::env::temp_dir().join(format!("rewardkit-spool-{}-{:016x}", std::process::id(), fastrand::u64(..)));
        let file =
            std::fs::File::create(&path).map_err(|e| Error::Config(format!("cannot create a spool file: {e}")))?;
        Ok(Spool { path, out: BufWriter::new(file) })
    }

    fn write(&mut self, index: usize, r: &PointsAward) -> Result<(), Error> {
        let io = |e: std::io::Error| Error::Config(format!("spool file: {e}"));
        self.out.write_all(&(index as u64).to_le_bytes()).map_err(io)?;
        self.out.write_all(&r.panel_member_id.to_le_bytes()).map_err(io)?;
        self.out.write_all(&r.points.to_le_bytes()).map_err(io)?;
        match &r.comments {
            Some(c) => {
                self.out.write_all(&(c.len() as u32).to_le_bytes()).map_err(io)?;
                self.out.write_all(c.as_bytes()).map_err(io)?;
            }
            None => self.out.write_all(&u32::MAX.to_le_bytes()).map_err(io)?,
        }
        Ok(())
    }

    fn into_reader(mut self) -> Result<SpoolReader, Error> {
        self.out.flush().map_err(|e| Error::Config(format!("spool file: {e}")))?;
        let file = std::fs::File::open(&self.path).map_err(|e| Error::Config(format!("spool file: {e}")))?;
        Ok(SpoolReader { input: BufReader::new(file), _spool: self })
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

struct SpoolReader {
    input: BufReader<std::fs::File>,
    _spool: Spool,
}

impl SpoolReader {
    fn next(&mut self) -> Result<Option<(usize, PointsAward)>, Error> {
        let io = |e: std::io::Error| Error::Config(format!("spool file: {e}"));
        let mut head = [0u8; 28];
        match self.input.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(io(e)),
        }
        let u64_at = |i: usize| u64::from_le_bytes(head[i..i + 8].try_into().unwrap_or_default());
        let index = u64_at(0) as usize;
        let id = u64_at(8) as i64;
        let points = u64_at(16) as i64;
        let len = u32::from_le_bytes(head[24..28].try_into().unwrap_or_default());
        let comments = if len == u32::MAX {
            None
        } else {
            let mut s = vec![0u8; len as usize];
            self.input.read_exact(&mut s).map_err(io)?;
            Some(String::from_utf8_lossy(&s).into_owned())
        };
        Ok(Some((index, PointsAward { panel_member_id: id, points, comments })))
    }
}
