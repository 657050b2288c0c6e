//! `qp.bulkAward`: the core's bulk engine, fed from JavaScript.
//!
//! The JavaScript wrapper pulls rows from the caller's array or (async) iterable, encodes them
//! in blocks of JSON text and pushes each block into a [`BulkAwardJob`]. A push resolves once
//! the bounded channel has room for it, so a fast producer waits for the engine (backpressure)
//! and memory stays flat however long the input is. The engine reads the blocks through
//! [`ChannelSource`], a one-shot [`RowSource`]: in `stop` mode the engine keeps the validated
//! rows of an array (its length is the source's `len_hint`) of up to 250,000 rows in memory
//! for its sending pass, and spools any other input to a temporary file. Rows are parsed and
//! validated by the core on the engine's reading thread, never on the event loop.
//!
//! Progress goes to JavaScript through a threadsafe function that lives as long as the job;
//! the report comes back as JSON text in camelCase, with the error payload of
//! [`crate::errors`] when the job failed.

use crate::convert::Options;
use crate::errors;
use napi::bindgen_prelude::PromiseRaw;
use napi::bindgen_prelude::Unknown;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;
use rewardkit::bulk::{
    BulkJob, BulkOptions, BulkReport, CancellationToken, ChunkReport, JobError, OnInvalid, Outcome, Progress,
    RowOutcome, RowRead, RowSource, Totals,
};
use rewardkit::questionpro::{Cell, PointsAward, QuestionPro, COMMENTS_KEYS, MEMBER_ID_KEYS};
use rewardkit::{Error, FieldError};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;

/// Blocks of rows waiting between the wrapper and the engine's reading thread.
const CHANNEL_BLOCKS: usize = 4;

/// The progress callback: called with the JSON text of one progress object (the wrapper parses
/// it), its return value ignored.
pub type ProgressFn = ThreadsafeFunction<String, Unknown<'static>, String, Status, false>;

/// What the wrapper sends down the channel.
enum Msg {
    /// JSON text of an array of rows.
    Rows(String),
    /// The caller's iterable threw: the job stops with this message.
    Fail(String),
    /// No more rows.
    End,
}

/// The message of the error a failing iterable stops the job with; the wrapper rethrows the
/// iterable's own error instead.
pub const SOURCE_FAILED: &str = "the rows' iterable threw: ";

/// The rows pushed from JavaScript, as the engine reads them. It cannot be read twice.
struct ChannelSource {
    rx: mpsc::Receiver<Msg>,
    rows: std::vec::IntoIter<RowRead>,
    ended: bool,
    /// Cancelled when the job is cancelled, so a read waiting for a slow iterable returns.
    stop: CancellationToken,
    len_hint: Option<usize>,
}

impl ChannelSource {
    fn next_msg(&mut self) -> Result<Msg, Error> {
        let (rx, stop) = (&mut self.rx, &self.stop);
        // The engine reads on a thread of its own that has entered the runtime, where waiting
        // is allowed.
        let got = tokio::runtime::Handle::current().block_on(async {
            tokio::select! {
                biased;
                _ = stop.cancelled() => None,
                m = rx.recv() => Some(m),
            }
        });
        match got {
            None => Err(Error::Config("the job was cancelled".into())),
            Some(Some(m)) => Ok(m),
            Some(None) => Err(Error::Config("the rows' source went away before its end".into())),
        }
    }
}

/// The rows of one block (JSON text of an array), each read by the core's own rules.
fn parse_block(text: &str) -> Result<Vec<RowRead>, Error> {
    let rows: Vec<JsonRow> =
        serde_json::from_str(text).map_err(|e| Error::Config(format!("rewardkit: bad JSON from the wrapper: {e}")))?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// One row read from JSON straight into the core's [`Cell`]s, with no `Value` map in between
/// (that took 40 ms per 100,000 rows, more than encoding them in JavaScript). It reads exactly
/// as [`PointsAward::from_value`] does: the member id is the first of `panelMemberID`,
/// `panel_member_id` and `panelMemberId` that is present (a `null` one counts, as missing),
/// `comments` comes before `comment`, a key given twice keeps its last value, and anything but
/// an object is not a row. The core's [`PointsAward::from_cells`] applies every rule.
struct JsonRow(RowRead);

/// A field value, as far as [`Cell`] needs it.
enum JsonCell<'de> {
    Missing,
    Int(i64),
    BigInt,
    Str(Cow<'de, str>),
    Other(&'static str),
}

impl JsonCell<'_> {
    fn cell(&self) -> Cell<'_> {
        match self {
            JsonCell::Missing => Cell::Missing,
            JsonCell::Int(n) => Cell::Int(*n),
            JsonCell::BigInt => Cell::BigInt,
            JsonCell::Str(s) => Cell::Str(s),
            JsonCell::Other(t) => Cell::Other(t),
        }
    }
}

/// The cell of the first spelling given, in the order of precedence.
fn first_given<'a>(slots: &'a [Option<JsonCell<'_>>]) -> Cell<'a> {
    slots.iter().flatten().next().map_or(Cell::Missing, JsonCell::cell)
}

enum Key {
    Id(usize),
    Points,
    Comments(usize),
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, k: &str) -> Result<Key, E> {
                Ok(if let Some(i) = MEMBER_ID_KEYS.iter().position(|n| *n == k) {
                    Key::Id(i)
                } else if k == "points" {
                    Key::Points
                } else if let Some(i) = COMMENTS_KEYS.iter().position(|n| *n == k) {
                    Key::Comments(i)
                } else {
                    Key::Other
                })
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for JsonCell<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonCell<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(JsonCell::Missing)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(JsonCell::Missing)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(JsonCell::Other("bool"))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
                Ok(JsonCell::Int(n))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(n).map_or(JsonCell::BigInt, JsonCell::Int))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(JsonCell::Other("float"))
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(JsonCell::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(JsonCell::Str(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(JsonCell::Str(Cow::Owned(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(JsonCell::Other("array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(JsonCell::Other("object"))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for JsonRow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonRow;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a row")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonRow, A::Error> {
                let mut id: [Option<JsonCell<'de>>; 3] = [None, None, None];
                let mut points: [Option<JsonCell<'de>>; 1] = [None];
                let mut comments: [Option<JsonCell<'de>>; 2] = [None, None];
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Id(i) => id[i] = Some(map.next_value()?),
                        Key::Points => points[0] = Some(map.next_value()?),
                        Key::Comments(i) => comments[i] = Some(map.next_value()?),
                        Key::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(JsonRow(PointsAward::from_cells(first_given(&id), first_given(&points), first_given(&comments))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonRow, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(not_a_row())
            }
            fn visit_unit<E>(self) -> Result<JsonRow, E> {
                Ok(not_a_row())
            }
            fn visit_bool<E>(self, _: bool) -> Result<JsonRow, E> {
                Ok(not_a_row())
            }
            fn visit_i64<E>(self, _: i64) -> Result<JsonRow, E> {
                Ok(not_a_row())
            }
            fn visit_u64<E>(self, _: u64) -> Result<JsonRow, E> {
                Ok(not_a_row())
            }
            fn visit_f64<E>(self, _: f64) -> Result<JsonRow, E> {
                Ok(not_a_row())
            }
            fn visit_str<E>(self, _: &str) -> Result<JsonRow, E> {
                Ok(not_a_row())
            }
        }
        d.deserialize_any(V)
    }
}

/// What the core says of a row that is not an object.
fn not_a_row() -> JsonRow {
    JsonRow(PointsAward::from_value(&Value::Null))
}

impl RowSource for ChannelSource {
    fn read(&mut self, max: usize, out: &mut Vec<RowRead>) -> Result<bool, Error> {
        loop {
            if self.rows.len() > 0 {
                out.extend(self.rows.by_ref().take(max.max(1)));
                return Ok(true);
            }
            if self.ended {
                return Ok(false);
            }
            match self.next_msg()? {
                Msg::Rows(text) => self.rows = parse_block(&text)?.into_iter(),
                Msg::Fail(message) => return Err(Error::Config(format!("{SOURCE_FAILED}{message}"))),
                Msg::End => self.ended = true,
            }
        }
    }

    fn len_hint(&self) -> Option<usize> {
        self.len_hint
    }
}

/// A bulk job made by `QuestionPro.bulkJob`: the wrapper calls `run()` once, pushes blocks of
/// rows, then `end()` (or `fail()`); `cancel()` stops it cleanly.
#[napi]
pub struct BulkAwardJob {
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    cancel: CancellationToken,
    source_stop: CancellationToken,
    pending: Mutex<Option<(BulkJob, ChannelSource)>>,
    progress_calls: Arc<AtomicUsize>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The job's settings from the wrapper's JSON: `{batchSize, concurrency, onInvalid,
/// allowDuplicates, journal, resendUnknown}`.
fn bulk_options(text: &str, client_allows_duplicates: bool) -> napi::Result<BulkOptions> {
    let mut o = Options::parse("bulkAward", text)?;
    let mut opts = BulkOptions { allow_duplicates: client_allows_duplicates, ..BulkOptions::default() };
    if let Some(n) = ranged(&mut o, "batchSize", 100_000)? {
        opts.batch_size = n;
    }
    if let Some(n) = ranged(&mut o, "concurrency", 64)? {
        opts.concurrency = n;
    }
    match o.string("onInvalid")?.as_deref() {
        None | Some("stop") => opts.on_invalid = OnInvalid::Stop,
        Some("send_valid" | "sendValid") => opts.on_invalid = OnInvalid::SendValid,
        Some(_) => return Err(errors::config("bulkAward option `onInvalid` must be 'stop' or 'send_valid'")),
    }
    if let Some(yes) = o.bool("allowDuplicates")? {
        opts.allow_duplicates = yes;
    }
    if let Some(path) = o.string("journal")? {
        if path.is_empty() {
            return Err(errors::config("bulkAward option `journal` must be a file path"));
        }
        opts.journal = Some(PathBuf::from(path));
    }
    if let Some(yes) = o.bool("resendUnknown")? {
        opts.resend_unknown = yes;
    }
    o.finish()?;
    Ok(opts)
}

/// A whole number from 1 to `max`, when given.
fn ranged(o: &mut Options, key: &'static str, max: u64) -> napi::Result<Option<usize>> {
    match o.uint(key) {
        Ok(None) => Ok(None),
        Ok(Some(n)) if (1..=max).contains(&n) => Ok(Some(n as usize)),
        _ => Err(errors::config(format!("bulkAward option `{key}` must be a whole number from 1 to {max}"))),
    }
}

impl BulkAwardJob {
    /// A job for `qp`, not started. `rows_total`: the number of rows when known (an array).
    pub fn new(
        qp: &QuestionPro,
        options: &str,
        client_allows_duplicates: bool,
        rows_total: Option<u32>,
        on_progress: Option<ProgressFn>,
    ) -> napi::Result<BulkAwardJob> {
        let opts = bulk_options(options, client_allows_duplicates)?;
        let (tx, rx) = mpsc::channel(CHANNEL_BLOCKS);
        let source_stop = CancellationToken::new();
        let source = ChannelSource {
            rx,
            rows: Vec::new().into_iter(),
            ended: false,
            stop: source_stop.clone(),
            len_hint: rows_total.map(|n| n as usize),
        };
        let progress_calls = Arc::new(AtomicUsize::new(0));
        let mut job = BulkJob::new(qp, opts);
        if let Some(f) = on_progress {
            let calls = progress_calls.clone();
            // Never blocks the engine: the call is queued for the event loop (unbounded queue,
            // one call per chunk). The function is released when the job ends.
            job = job.on_progress(move |p| {
                if f.call(progress_text(p), ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok {
                    calls.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        let cancel = job.cancel_token();
        Ok(BulkAwardJob {
            tx: Mutex::new(Some(tx)),
            cancel,
            source_stop,
            pending: Mutex::new(Some((job, source))),
            progress_calls,
        })
    }

    /// A promise of whether `tx` took `msg` (`false` when the job no longer reads).
    fn send<'env>(env: &'env Env, tx: Option<mpsc::Sender<Msg>>, msg: Msg) -> napi::Result<PromiseRaw<'env, bool>> {
        env.spawn_future(async move {
            Ok(match tx {
                Some(tx) => tx.send(msg).await.is_ok(),
                None => false,
            })
        })
    }
}

#[napi]
impl BulkAwardJob {
    /// Queues a block of rows (JSON text of an array). Resolves when the channel took it:
    /// `true`, or `false` when the job no longer reads (it ended, stopped or was cancelled).
    // Each method takes what it needs from `self` before its promise: a future must not touch
    // `self`, which a terminated worker frees while the future runs (see `lib.rs`).
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn push<'env>(&self, env: &'env Env, rows: String) -> napi::Result<PromiseRaw<'env, bool>> {
        Self::send(env, lock(&self.tx).clone(), Msg::Rows(rows))
    }

    /// Marks the end of the input, after every block.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn end<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, bool>> {
        Self::send(env, lock(&self.tx).take(), Msg::End)
    }

    /// Stops the job because the caller's iterable threw `message`.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn fail<'env>(&self, env: &'env Env, message: String) -> napi::Result<PromiseRaw<'env, bool>> {
        Self::send(env, lock(&self.tx).take(), Msg::Fail(message))
    }

    /// Stops the job cleanly: requests in flight finish and are recorded, nothing more is sent.
    #[napi]
    pub fn cancel(&self) {
        self.cancel.cancel();
        self.source_stop.cancel();
    }

    /// Runs the job to its end. Resolves with JSON text: `{ok, report, error, progressCalls}`
    /// (`error` is the error payload when the job failed; the report is there either way).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn run<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, String>> {
        let Some((job, source)) = lock(&self.pending).take() else {
            return Err(errors::config("this bulk job has already run"));
        };
        let calls = self.progress_calls.clone();
        env.spawn_future(run_job(job, source, calls))
    }
}

/// Runs a job and encodes its outcome for `BulkAwardJob::run`.
async fn run_job(job: BulkJob, source: ChannelSource, calls: Arc<AtomicUsize>) -> napi::Result<String> {
    let result = job.run(source).await;
    // The job (and with it the progress function) is gone: every call it made is counted.
    let progress_calls = calls.load(Ordering::SeqCst);
    let (report, error) = match &result {
        Ok(report) => (report, None),
        Err(JobError { error, report }) => (&**report, Some(errors::payload(error))),
    };
    let out = RunOut { ok: error.is_none(), report: report_out(report), error, progress_calls };
    let mut text = Vec::with_capacity(report_size_hint(report));
    serde_json::to_writer(&mut text, &out).map_err(|e| errors::config(format!("could not encode the report: {e}")))?;
    String::from_utf8(text).map_err(|e| errors::config(format!("could not encode the report: {e}")))
}

// What JavaScript sees, in camelCase, keys in this order (JSON text, parsed by the wrapper).

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TotalsOut {
    rows: usize,
    awarded: usize,
    skipped: usize,
    invalid: usize,
    rejected: usize,
    failed: usize,
    unknown: usize,
    points_awarded: i64,
}

impl From<&Totals> for TotalsOut {
    fn from(t: &Totals) -> Self {
        TotalsOut {
            rows: t.rows,
            awarded: t.awarded,
            skipped: t.skipped,
            invalid: t.invalid,
            rejected: t.rejected,
            failed: t.failed,
            unknown: t.unknown,
            points_awarded: t.points_awarded,
        }
    }
}

/// A field error as `errors.js` builds them: `{key, code, description, row?}`.
#[derive(Serialize)]
struct FieldErrorOut<'a> {
    key: &'a str,
    code: &'a str,
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    row: Option<usize>,
}

fn field_errors(errs: &[FieldError]) -> Vec<FieldErrorOut<'_>> {
    errs.iter().map(|e| FieldErrorOut { key: &e.key, code: &e.code, description: &e.description, row: e.row }).collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChunkOut<'a> {
    chunk: usize,
    first_row: usize,
    last_row: usize,
    rows: usize,
    outcome: &'static str,
    request_id: Option<&'a str>,
    message: Option<&'a str>,
    errors: Vec<FieldErrorOut<'a>>,
    points_awarded: i64,
    from_journal: bool,
}

impl<'a> From<&'a ChunkReport> for ChunkOut<'a> {
    fn from(c: &'a ChunkReport) -> Self {
        ChunkOut {
            chunk: c.chunk,
            first_row: c.first_row,
            last_row: c.last_row,
            rows: c.rows,
            outcome: c.outcome.as_str(),
            request_id: c.request_id.as_deref(),
            message: c.message.as_deref(),
            errors: field_errors(&c.errors),
            points_awarded: c.points_awarded,
            from_journal: c.from_journal,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RowOut<'a> {
    row: usize,
    outcome: &'static str,
    panel_member_id: Option<i64>,
    points: Option<i64>,
    request_id: Option<&'a str>,
    message: Option<&'a str>,
    errors: Vec<FieldErrorOut<'a>>,
    /// The vendor's `skipped` item, as it sent it.
    skipped: Option<&'a Value>,
}

impl<'a> From<&'a RowOutcome> for RowOut<'a> {
    fn from(r: &'a RowOutcome) -> Self {
        RowOut {
            row: r.row,
            outcome: r.outcome.as_str(),
            panel_member_id: r.panel_member_id,
            points: r.points,
            request_id: r.request_id.as_deref(),
            message: r.message.as_deref(),
            errors: field_errors(&r.errors),
            skipped: r.skipped.as_ref(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StopOut<'a> {
    class: &'a str,
    message: &'a str,
    status_code: Option<u16>,
    request_id: Option<&'a str>,
}

/// A sequence serialized straight from an iterator, with no vector in between.
struct Seq<F>(F);

impl<F, I> Serialize for Seq<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((self.0)())
    }
}

/// A report's chunks, column by column. A long job has many (20,000 for 10,000,000 rows in
/// batches of 500), and one object per chunk in JSON text costs several times the memory of
/// the chunks themselves, twice (the text here, the string in JavaScript). `decodeChunks` in
/// `index.js` rebuilds the objects. Columns: `chunk`, `firstRow`, `lastRow`, `rows`,
/// `pointsAwarded` and `requestId` (one value per chunk); `outcome` (an index in
/// [`Outcome::ALL`], the order `index.js` knows too); `message` (0 for none, else 1 + an index
/// in `messages`, where each distinct message appears once: after a fatal error every chunk
/// not sent has the same one); `errors` (`[chunk index, field errors]` for the chunks that
/// have any); `fromJournal` (the indices of the chunks read from the journal).
struct ChunkColumns<'a>(&'a [ChunkReport]);

impl Serialize for ChunkColumns<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let chunks = self.0;
        let mut messages: Vec<&str> = Vec::new();
        let mut message_ids: HashMap<&str, usize> = HashMap::new();
        for m in chunks.iter().filter_map(|c| c.message.as_deref()) {
            message_ids.entry(m).or_insert_with(|| {
                messages.push(m);
                messages.len()
            });
        }
        let outcome_index = |o: Outcome| Outcome::ALL.iter().position(|x| *x == o).unwrap_or(0);
        let mut m = s.serialize_struct("ChunkColumns", 11)?;
        m.serialize_field("chunk", &Seq(|| chunks.iter().map(|c| c.chunk)))?;
        m.serialize_field("firstRow", &Seq(|| chunks.iter().map(|c| c.first_row)))?;
        m.serialize_field("lastRow", &Seq(|| chunks.iter().map(|c| c.last_row)))?;
        m.serialize_field("rows", &Seq(|| chunks.iter().map(|c| c.rows)))?;
        m.serialize_field("outcome", &Seq(|| chunks.iter().map(|c| outcome_index(c.outcome))))?;
        m.serialize_field("requestId", &Seq(|| chunks.iter().map(|c| c.request_id.as_deref())))?;
        m.serialize_field("messages", &messages)?;
        m.serialize_field(
            "message",
            &Seq(|| {
                chunks.iter().map(|c| c.message.as_deref().map_or(0, |t| message_ids.get(t).copied().unwrap_or(0)))
            }),
        )?;
        m.serialize_field(
            "errors",
            &Seq(|| {
                chunks
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| !c.errors.is_empty())
                    .map(|(i, c)| (i, field_errors(&c.errors)))
            }),
        )?;
        m.serialize_field("pointsAwarded", &Seq(|| chunks.iter().map(|c| c.points_awarded)))?;
        m.serialize_field(
            "fromJournal",
            &Seq(|| chunks.iter().enumerate().filter(|(_, c)| c.from_journal).map(|(i, _)| i)),
        )?;
        m.end()
    }
}

/// The rows with an outcome of their own, one object each (a job has few, unless many rows are
/// invalid or skipped).
struct Exceptions<'a>(&'a [RowOutcome]);

impl Serialize for Exceptions<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(RowOut::from))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReportOut<'a> {
    totals: TotalsOut,
    requests: usize,
    chunks: ChunkColumns<'a>,
    exceptions: Exceptions<'a>,
    rows_read: usize,
    resumed_chunks: usize,
    stopped_by: Option<StopOut<'a>>,
    is_complete: bool,
    elapsed_ms: f64,
}

fn report_out(r: &BulkReport) -> ReportOut<'_> {
    ReportOut {
        totals: (&r.totals).into(),
        requests: r.requests,
        chunks: ChunkColumns(&r.chunks),
        exceptions: Exceptions(&r.exceptions),
        rows_read: r.rows_read,
        resumed_chunks: r.resumed_chunks,
        stopped_by: r.stopped_by.as_ref().map(|s| StopOut {
            class: &s.class,
            message: &s.message,
            status_code: s.status,
            request_id: s.request_id.as_deref(),
        }),
        is_complete: r.is_complete(),
        elapsed_ms: millis(r.elapsed),
    }
}

/// About the length of a report's JSON text, so that it is written into one allocation.
fn report_size_hint(r: &BulkReport) -> usize {
    1024 + r.chunks.len() * 96 + r.exceptions.len() * 320
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunOut<'a> {
    ok: bool,
    report: ReportOut<'a>,
    error: Option<Value>,
    progress_calls: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProgressOut<'a> {
    rows_done: usize,
    rows_total: Option<usize>,
    requests: usize,
    elapsed_ms: f64,
    rate: f64,
    eta_ms: Option<f64>,
    totals: TotalsOut,
    chunk: Option<ChunkOut<'a>>,
}

fn progress_text(p: &Progress) -> String {
    let out = ProgressOut {
        rows_done: p.rows_done,
        rows_total: p.rows_total,
        requests: p.requests,
        elapsed_ms: millis(p.elapsed),
        rate: if p.rate.is_finite() { p.rate } else { 0.0 },
        eta_ms: p.eta.map(millis),
        totals: (&p.totals).into(),
        chunk: p.chunk.as_ref().map(ChunkOut::from),
    };
    serde_json::to_string(&out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_read_and_checked() {
        let o = bulk_options("null", false).unwrap();
        assert_eq!((o.batch_size, o.concurrency, o.on_invalid), (500, 4, OnInvalid::Stop));
        assert!(!o.allow_duplicates);
        assert!(bulk_options("{}", true).unwrap().allow_duplicates);
        let o = bulk_options(
            r#"{"batchSize":100,"concurrency":8,"onInvalid":"send_valid","allowDuplicates":false,"journal":"j.db","resendUnknown":true}"#,
            true,
        )
        .unwrap();
        assert_eq!((o.batch_size, o.concurrency, o.on_invalid), (100, 8, OnInvalid::SendValid));
        assert_eq!(o.journal, Some(PathBuf::from("j.db")));
        assert!(o.resend_unknown && !o.allow_duplicates);
        for bad in [
            r#"{"batchSize":0}"#,
            r#"{"batchSize":100001}"#,
            r#"{"batchSize":1.5}"#,
            r#"{"concurrency":65}"#,
            r#"{"onInvalid":"skip"}"#,
            r#"{"journal":""}"#,
            r#"{"batchsize":10}"#,
        ] {
            assert!(bulk_options(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn blocks_are_read_exactly_as_the_core_reads_values() {
        let block = r#"[
            {"panelMemberId": 5, "points": 2},
            {"panelMemberID": 1, "panel_member_id": 2, "panelMemberId": 3, "points": 4, "comments": "a", "comment": "b"},
            {"panelMemberId": 3, "panel_member_id": null, "points": 1},
            {"panelMemberID": 7, "panelMemberID": 8, "points": 1, "points": -2},
            {"panelMemberId": 9, "points": 1, "comment": "only \"alias\" \u00e9", "extra": {"a": [1, {"b": null}]}},
            {"panelMemberID": "x", "points": 1.0},
            {"panelMemberID": 18446744073709551615, "points": -9223372036854775808},
            {"panelMemberID": 9223372036854775807, "points": 1e3},
            {"panelMemberID": -0, "points": true, "comments": 5},
            {"panelMemberID": [1], "points": {"nonFiniteNumber": "NaN"}, "comments": null},
            {"panelMemberID": 0, "points": 0},
            {},
            7, "row", null, true, [1, 2], 1.5, -3
        ]"#;
        let rows = parse_block(block).unwrap();
        let values: Vec<Value> = serde_json::from_str(block).unwrap();
        assert_eq!(rows.len(), values.len());
        for (i, (row, value)) in rows.iter().zip(&values).enumerate() {
            assert_eq!(row, &PointsAward::from_value(value), "row {i}: {value}");
        }
        assert_eq!(rows[1].as_ref().unwrap(), &PointsAward::new(1, 4).with_comments("a"));
        assert!(rows[2].is_err(), "a null spelling that comes first counts as given");
        assert_eq!(rows[3].as_ref().unwrap(), &PointsAward::new(8, -2));
        assert_eq!(rows[4].as_ref().unwrap().comments.as_deref(), Some("only \"alias\" é"));
        assert!(parse_block("[").is_err());
        assert!(parse_block("{}").is_err());
    }
}
