//! `bulk_award`: the core's bulk engine fed from Python rows, and its report as Python objects.
//!
//! The rows are read where the engine asks for them: on a blocking thread, with the GIL taken
//! for one block of rows at a time, by the same cell reader as `award_points`
//! ([`rows::read_one`]). A list or tuple is read by index and can be read twice (the engine's
//! validation pass, then the sending pass); any other iterable is read once, streamed (the
//! engine spools its valid rows to a temporary file for the second pass). A pandas or polars
//! DataFrame is read by column, one slice at a time (`Series.iloc[a:b].tolist()`,
//! `Series.slice(a, n).to_list()`: C-level conversions, no Python loop over rows).

use crate::errors;
use crate::{convert, rows, runtime};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PySlice, PyString, PyTuple};
use pyo3::{intern, IntoPyObjectExt};
use rewardkit::bulk::{self as core, BulkJob, BulkOptions, CancellationToken, OnInvalid, RowRead, RowSource};
use rewardkit::questionpro::QuestionPro as CoreQuestionPro;
use rewardkit::{Error, FieldError};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// A Python exception raised while reading the rows, kept to be raised as itself.
type Failure = Arc<Mutex<Option<PyErr>>>;

/// Where the rows come from.
enum Input {
    /// A list or tuple, read by index.
    Seq(Py<PyAny>),
    /// Any other iterable, read once. `None` once exhausted.
    Iter(Option<Py<PyAny>>),
    /// A DataFrame's columns (id, points, comments; a missing one reads as missing cells).
    Frame { cols: [Option<Column>; 3], polars: bool },
}

/// One DataFrame column, as it is read.
enum Column {
    /// A column of machine integers, as a NumPy array: read as raw native int64 bytes a block
    /// at a time (`cast`: converted block by block, not as a whole-column copy), with no
    /// Python object made per cell.
    Ints { array: Py<PyAny>, cast: bool },
    /// Any other column: a block's values as a Python list (pandas: the `iloc` indexer;
    /// polars: the Series).
    Values(Py<PyAny>),
}

/// A [`RowSource`] over Python rows.
pub struct PySource {
    input: Input,
    pos: usize,
    len: Option<usize>,
    failure: Failure,
    /// The rows of the validation pass, kept for the sending pass (in-memory inputs of at most
    /// [`CACHE_MAX`] rows, in `on_invalid="stop"` mode): the second pass then reads no Python
    /// object again, and sends exactly what was validated.
    cache: Option<Vec<RowRead>>,
    replay: bool,
    caches: rows::Caches,
}

/// Inputs up to this many rows have their first pass kept in memory (about 60 bytes a row).
const CACHE_MAX: usize = 1_000_000;

const ID_COLUMNS: [&str; 3] = ["panel_member_id", "panelMemberID", "panelMemberId"];
const COMMENT_COLUMNS: [&str; 2] = ["comments", "comment"];

/// `pandas` or `polars` when `obj` is one of their DataFrames (by the type's module, so
/// neither library is imported here).
fn frame_kind(obj: &Bound<'_, PyAny>) -> PyResult<Option<bool>> {
    let ty = obj.get_type();
    let name = ty.name()?.to_string();
    if name != "DataFrame" {
        return Ok(None);
    }
    let module = ty.module()?.to_string();
    Ok(if module.starts_with("pandas") {
        Some(false)
    } else if module.starts_with("polars") {
        Some(true)
    } else {
        None
    })
}

impl PySource {
    fn of(input: Input, len: Option<usize>, failure: Failure) -> PySource {
        PySource { input, pos: 0, len, failure, cache: None, replay: false, caches: Default::default() }
    }

    pub fn new(rows: &Bound<'_, PyAny>, failure: Failure) -> PyResult<PySource> {
        let py = rows.py();
        if let Some(polars) = frame_kind(rows)? {
            return Self::frame(rows, polars, failure);
        }
        if rows.is_instance_of::<PyList>() || rows.is_instance_of::<PyTuple>() {
            let len = rows.len()?;
            return Ok(PySource::of(Input::Seq(rows.clone().unbind()), Some(len), failure));
        }
        if rows.is_instance_of::<PyString>() || rows.is_instance_of::<PyBytes>() {
            return Err(PyTypeError::new_err("rows must be a list (or any iterable) of rows, not a string"));
        }
        if rows.is_instance_of::<PyDict>() || rows.cast::<pyo3::types::PyMapping>().is_ok() {
            return Err(PyTypeError::new_err("rows must be a list (or any iterable) of rows, not one row: pass [row]"));
        }
        let Ok(iter) = rows.try_iter() else {
            return Err(PyTypeError::new_err(format!(
                "rows must be a list (or any iterable) of dicts or tuples, or a DataFrame, not {}",
                convert::type_name(rows)
            )));
        };
        // `len()` of a sized iterable, for progress; a generator has none.
        let len = if rows.hasattr(intern!(py, "__len__"))? { rows.len().ok() } else { None };
        Ok(PySource::of(Input::Iter(Some(iter.into_any().unbind())), len, failure))
    }

    fn frame(df: &Bound<'_, PyAny>, polars: bool, failure: Failure) -> PyResult<PySource> {
        let py = df.py();
        let names: Vec<String> = df
            .getattr(intern!(py, "columns"))?
            .try_iter()?
            .filter_map(|c| c.ok().and_then(|c| c.extract::<String>().ok()))
            .collect();
        let find = |wanted: &[&'static str]| wanted.iter().find(|w| names.iter().any(|n| n == *w)).copied();
        let Some(id) = find(&ID_COLUMNS) else {
            return Err(errors::validation(
                py,
                vec![FieldError::new(
                    "panelMemberID",
                    "is_missing",
                    format!(
                        "The DataFrame has no panel_member_id (or panelMemberID) column; its columns are {names:?}."
                    ),
                )],
            ));
        };
        let Some(points) = find(&["points"]) else {
            return Err(errors::validation(
                py,
                vec![FieldError::new(
                    "points",
                    "is_missing",
                    format!("The DataFrame has no points column; its columns are {names:?}."),
                )],
            ));
        };
        let comments = find(&COMMENT_COLUMNS);
        let column = |name: Option<&str>, ints: bool| -> PyResult<Option<Column>> {
            let Some(name) = name else { return Ok(None) };
            let series = df.get_item(name)?;
            if ints {
                if let Some((array, cast)) = int_array(&series) {
                    return Ok(Some(Column::Ints { array: array.unbind(), cast }));
                }
            }
            // pandas: slice with the `iloc` indexer; polars: with `Series.slice`.
            let reader = if polars { series } else { series.getattr(intern!(py, "iloc"))? };
            Ok(Some(Column::Values(reader.unbind())))
        };
        let cols = [column(Some(id), true)?, column(Some(points), true)?, column(comments, false)?];
        let len = df.len()?;
        Ok(PySource::of(Input::Frame { cols, polars }, Some(len), failure))
    }

    /// Keeps the first pass in memory for the second (see [`PySource::cache`]) when the engine
    /// would not keep it itself.
    fn keep_first_pass(&mut self) {
        let in_memory = matches!(self.input, Input::Seq(_) | Input::Frame { .. });
        if in_memory && self.len.is_some_and(|n| n > core::IN_MEMORY_ROWS && n <= CACHE_MAX) {
            self.cache = Some(Vec::with_capacity(self.len.unwrap_or(0)));
        }
    }

    fn fail(&self, e: PyErr) -> Error {
        let msg = format!("reading the rows failed: {e}");
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
        Error::Config(msg)
    }

    fn read_py(&mut self, py: Python<'_>, max: usize, out: &mut Vec<RowRead>) -> PyResult<bool> {
        let keys = rows::Keys::new(py);
        match &mut self.input {
            Input::Seq(seq) => {
                let seq = seq.bind(py);
                let end = (self.pos + max).min(self.len.unwrap_or(0));
                if let Ok(list) = seq.cast::<PyList>() {
                    // A list may change size while it is read: stop at its current end.
                    let end = end.min(list.len());
                    for i in self.pos..end {
                        out.push(rows::read_one(&list.get_item(i)?, &keys, &mut self.caches)?);
                    }
                    self.pos = end;
                    return Ok(end < list.len().min(self.len.unwrap_or(0)));
                }
                let tuple = seq.cast::<PyTuple>()?;
                for i in self.pos..end {
                    out.push(rows::read_one(&tuple.get_item(i)?, &keys, &mut self.caches)?);
                }
                self.pos = end;
                Ok(end < tuple.len())
            }
            Input::Iter(slot) => {
                let Some(iter) = slot.as_ref() else { return Ok(false) };
                let iter = iter.bind(py).clone();
                for _ in 0..max {
                    match iter.call_method0(intern!(py, "__next__")) {
                        Ok(row) => {
                            out.push(rows::read_one(&row, &keys, &mut self.caches)?);
                            self.pos += 1;
                        }
                        Err(e) if e.is_instance_of::<pyo3::exceptions::PyStopIteration>(py) => {
                            *slot = None;
                            return Ok(false);
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(true)
            }
            Input::Frame { cols, polars } => {
                let total = self.len.unwrap_or(0);
                let end = (self.pos + max).min(total);
                let n = end - self.pos;
                let slice = PySlice::new(py, self.pos as isize, end as isize, 1);
                let mut blocks: [Block<'_>; 3] = [Block::Missing, Block::Missing, Block::Missing];
                for (block, col) in blocks.iter_mut().zip(cols.iter()) {
                    *block = match col {
                        None => Block::Missing,
                        Some(Column::Ints { array, cast }) => {
                            let mut part = array.bind(py).get_item(&slice)?;
                            if *cast {
                                part = part.call_method1(intern!(py, "astype"), (intern!(py, "int64"),))?;
                            }
                            let bytes = part.call_method0(intern!(py, "tobytes"))?.cast_into::<PyBytes>()?;
                            Block::Ints(native_ints(bytes.as_bytes(), n)?)
                        }
                        Some(Column::Values(col)) => {
                            let col = col.bind(py);
                            let values = if *polars {
                                col.call_method1(intern!(py, "slice"), (self.pos, n))?
                                    .call_method0(intern!(py, "to_list"))?
                            } else {
                                col.get_item(&slice)?.call_method0(intern!(py, "tolist"))?
                            };
                            Block::List(values.cast_into()?)
                        }
                    };
                }
                let caches = &mut self.caches;
                for i in 0..n {
                    let mut cells = [rows::Owned::Missing, rows::Owned::Missing, rows::Owned::Missing];
                    for ((cell, block), cache) in cells.iter_mut().zip(&blocks).zip(caches.iter_mut()) {
                        *cell = match block {
                            Block::Missing => rows::Owned::Missing,
                            Block::Ints(ints) => rows::Owned::Int(ints[i]),
                            Block::List(list) => rows::owned(Some(list.get_item(i)?.as_borrowed()), cache)?,
                        };
                    }
                    out.push(rows::from_owned(&cells, caches));
                }
                self.pos = end;
                Ok(end < total)
            }
        }
    }
}

/// A block of one DataFrame column.
enum Block<'py> {
    Missing,
    Ints(Vec<i64>),
    List(Bound<'py, PyList>),
}

/// `n` native-endian int64 values from a block's raw bytes.
fn native_ints(bytes: &[u8], n: usize) -> PyResult<Vec<i64>> {
    if bytes.len() != n * 8 {
        return Err(PyValueError::new_err("a DataFrame column changed length while it was read"));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|b| {
            let mut word = [0u8; 8];
            word.copy_from_slice(b);
            i64::from_ne_bytes(word)
        })
        .collect())
}

/// The column as a NumPy array and whether its blocks need converting to native int64, when
/// it holds machine integers with no missing value (pandas `int*` / `uint*` below 64 bits,
/// polars integer columns without nulls). Anything else (nullable, float, object, `uint64`,
/// which may not fit) is read value by value.
fn int_array<'py>(series: &Bound<'py, PyAny>) -> Option<(Bound<'py, PyAny>, bool)> {
    let py = series.py();
    let array = series.call_method0(intern!(py, "to_numpy")).ok()?;
    let dtype = array.getattr(intern!(py, "dtype")).ok()?;
    let kind: String = dtype.getattr(intern!(py, "kind")).ok()?.extract().ok()?;
    let size: usize = dtype.getattr(intern!(py, "itemsize")).ok()?.extract().ok()?;
    let native: bool = dtype.getattr(intern!(py, "isnative")).ok()?.extract().ok()?;
    match (kind.as_str(), size) {
        ("i", 8) if native => Some((array, false)),
        ("i", _) | ("u", 1..=4) => Some((array, true)),
        _ => None,
    }
}

impl RowSource for PySource {
    fn read(&mut self, max: usize, out: &mut Vec<RowRead>) -> Result<bool, Error> {
        if self.replay {
            let cache = self.cache.as_deref().unwrap_or_default();
            let end = (self.pos + max).min(cache.len());
            out.extend_from_slice(&cache[self.pos..end]);
            self.pos = end;
            return Ok(end < cache.len());
        }
        let start = out.len();
        match Python::try_attach(|py| self.read_py(py, max, out)) {
            Some(Ok(more)) => {
                if let Some(cache) = self.cache.as_mut() {
                    cache.extend_from_slice(&out[start..]);
                }
                Ok(more)
            }
            Some(Err(e)) => Err(self.fail(e)),
            None => Err(Error::Config("the interpreter is shutting down".into())),
        }
    }

    fn rewind(&mut self) -> Result<bool, Error> {
        match self.input {
            Input::Seq(_) | Input::Frame { .. } => {
                // Replay the first pass when it was kept whole.
                self.replay = self.pos > 0 && self.cache.as_ref().is_some_and(|c| c.len() == self.pos);
                if !self.replay {
                    self.cache = self.cache.take().filter(|_| self.pos == 0);
                }
                self.pos = 0;
                Ok(true)
            }
            Input::Iter(_) => Ok(false),
        }
    }

    fn len_hint(&self) -> Option<usize> {
        self.len
    }
}

fn secs(d: std::time::Duration) -> f64 {
    d.as_secs_f64()
}

fn outcome_name(o: rewardkit::bulk::Outcome) -> &'static str {
    o.as_str()
}

/// Counts of a job's rows per outcome, and the points awarded.
#[pyclass(module = "rewardkit", name = "Totals", frozen)]
pub struct Totals(core::Totals);

#[pymethods]
impl Totals {
    /// Rows in all (every row has exactly one outcome).
    #[getter]
    fn rows(&self) -> usize {
        self.0.rows
    }
    /// Rows the vendor credited.
    #[getter]
    fn awarded(&self) -> usize {
        self.0.awarded
    }
    /// Rows the vendor skipped (e.g. not a panel member).
    #[getter]
    fn skipped(&self) -> usize {
        self.0.skipped
    }
    /// Rows refused before sending.
    #[getter]
    fn invalid(&self) -> usize {
        self.0.invalid
    }
    /// Rows of requests refused with a 4xx (nothing applied).
    #[getter]
    fn rejected(&self) -> usize {
        self.0.rejected
    }
    /// Rows of requests that failed with a 5xx or were not sent (nothing applied).
    #[getter]
    fn failed(&self) -> usize {
        self.0.failed
    }
    /// Rows whose request got no definitive answer: they may or may not have been credited.
    #[getter]
    fn unknown(&self) -> usize {
        self.0.unknown
    }
    /// Points of the awarded rows, added up.
    #[getter]
    fn points_awarded(&self) -> i64 {
        self.0.points_awarded
    }
    /// The counts as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        totals_dict(py, &self.0)
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Totals>().is_ok_and(|o| o.get().0 == self.0)
    }
    fn __repr__(&self) -> String {
        let t = &self.0;
        format!(
            "Totals(rows={}, awarded={}, skipped={}, invalid={}, rejected={}, failed={}, unknown={}, points_awarded={})",
            t.rows, t.awarded, t.skipped, t.invalid, t.rejected, t.failed, t.unknown, t.points_awarded
        )
    }
}

fn totals_dict<'py>(py: Python<'py>, t: &core::Totals) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("rows", t.rows)?;
    d.set_item("awarded", t.awarded)?;
    d.set_item("skipped", t.skipped)?;
    d.set_item("invalid", t.invalid)?;
    d.set_item("rejected", t.rejected)?;
    d.set_item("failed", t.failed)?;
    d.set_item("unknown", t.unknown)?;
    d.set_item("points_awarded", t.points_awarded)?;
    Ok(d)
}

/// The fate of one chunk (one request) of a bulk job.
#[pyclass(module = "rewardkit", name = "ChunkReport", frozen)]
pub struct ChunkReport(core::ChunkReport);

#[pymethods]
impl ChunkReport {
    /// The chunk's number (0-based, in input order).
    #[getter]
    fn chunk(&self) -> usize {
        self.0.chunk
    }
    /// Input index of its first row.
    #[getter]
    fn first_row(&self) -> usize {
        self.0.first_row
    }
    /// Input index of its last row.
    #[getter]
    fn last_row(&self) -> usize {
        self.0.last_row
    }
    /// How many rows it carried.
    #[getter]
    fn rows(&self) -> usize {
        self.0.rows
    }
    /// The outcome of its rows that have none of their own (see ``BulkReport.exceptions``).
    #[getter]
    fn outcome(&self) -> &'static str {
        outcome_name(self.0.outcome)
    }
    /// The request id of its request, when the vendor gave one.
    #[getter]
    fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }
    /// Why its rows were not awarded, in words.
    #[getter]
    fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }
    /// The vendor's field errors, for a rejected request.
    #[getter]
    fn errors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        errors::field_errors(py, &self.0.errors)
    }
    /// Points of its awarded rows.
    #[getter]
    fn points_awarded(&self) -> i64 {
        self.0.points_awarded
    }
    /// True when its outcome was read from the journal (an earlier run recorded it).
    #[getter]
    #[allow(clippy::wrong_self_convention)] // the Python attribute's name
    fn from_journal(&self) -> bool {
        self.0.from_journal
    }
    /// The chunk as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        chunk_dict(py, &self.0)
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        let c = &self.0;
        format!(
            "ChunkReport(chunk={}, rows={}..={}, outcome='{}', request_id={}{})",
            c.chunk,
            c.first_row,
            c.last_row,
            outcome_name(c.outcome),
            convert::repr(py, c.request_id.as_deref()),
            if c.from_journal { ", from_journal=True" } else { "" }
        )
    }
}

fn chunk_dict<'py>(py: Python<'py>, c: &core::ChunkReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("chunk", c.chunk)?;
    d.set_item("first_row", c.first_row)?;
    d.set_item("last_row", c.last_row)?;
    d.set_item("rows", c.rows)?;
    d.set_item("outcome", outcome_name(c.outcome))?;
    d.set_item("request_id", c.request_id.as_deref())?;
    d.set_item("message", c.message.as_deref())?;
    d.set_item("errors", field_error_dicts(py, &c.errors)?)?;
    d.set_item("points_awarded", c.points_awarded)?;
    d.set_item("from_journal", c.from_journal)?;
    Ok(d)
}

fn field_error_dicts<'py>(py: Python<'py>, errs: &[FieldError]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for e in errors::field_errors(py, errs)?.iter() {
        list.append(e.call_method0(intern!(py, "to_dict"))?)?;
    }
    Ok(list)
}

/// One row with an outcome of its own (invalid, skipped, or unknown where its request's
/// answer did not say), as listed in ``BulkReport.exceptions``.
#[pyclass(module = "rewardkit", name = "RowOutcome", frozen)]
pub struct RowOutcome(rewardkit::bulk::RowOutcome);

#[pymethods]
impl RowOutcome {
    /// Index of the row in the input (0-based).
    #[getter]
    fn row(&self) -> usize {
        self.0.row
    }
    /// The row's member id, when it had a readable one.
    #[getter]
    fn panel_member_id(&self) -> Option<i64> {
        self.0.panel_member_id
    }
    /// The row's points, when readable.
    #[getter]
    fn points(&self) -> Option<i64> {
        self.0.points
    }
    /// ``awarded``, ``skipped``, ``invalid``, ``rejected``, ``failed`` or ``unknown``.
    #[getter]
    fn outcome(&self) -> &'static str {
        outcome_name(self.0.outcome)
    }
    /// The request id of the request that carried the row.
    #[getter]
    fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }
    /// Why the row was not awarded, in words.
    #[getter]
    fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }
    /// The field errors of an invalid row (each with its ``row``).
    #[getter]
    fn errors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        errors::field_errors(py, &self.0.errors)
    }
    /// The vendor's ``skipped`` item, for a skipped row.
    #[getter]
    fn skipped<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.0.skipped {
            Some(v) => convert::to_py(py, v),
            None => Ok(py.None().into_bound(py)),
        }
    }
    /// The row's outcome as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        row_outcome_dict(py, &self.0)
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "RowOutcome(row={}, outcome='{}', panel_member_id={}, message={})",
            self.0.row,
            outcome_name(self.0.outcome),
            convert::repr(py, self.0.panel_member_id),
            convert::repr(py, self.0.message.as_deref())
        )
    }
}

fn row_outcome_dict<'py>(py: Python<'py>, r: &rewardkit::bulk::RowOutcome) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("row", r.row)?;
    d.set_item("panel_member_id", r.panel_member_id)?;
    d.set_item("points", r.points)?;
    d.set_item("outcome", outcome_name(r.outcome))?;
    d.set_item("request_id", r.request_id.as_deref())?;
    d.set_item("message", r.message.as_deref())?;
    d.set_item("errors", field_error_dicts(py, &r.errors)?)?;
    match &r.skipped {
        Some(v) => d.set_item("skipped", convert::to_py(py, v)?)?,
        None => d.set_item("skipped", py.None())?,
    }
    Ok(d)
}

fn stop_dict<'py>(py: Python<'py>, s: &core::Stop) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("class", s.class.as_str())?;
    d.set_item("message", s.message.as_str())?;
    d.set_item("status_code", s.status)?;
    d.set_item("request_id", s.request_id.as_deref())?;
    Ok(d)
}

/// Where a running bulk job stands, given to the ``progress`` callback after each chunk
/// (and once more when the job ends, with ``chunk`` None).
#[pyclass(module = "rewardkit", name = "Progress", frozen)]
pub struct Progress(core::Progress);

#[pymethods]
impl Progress {
    /// Rows with an outcome so far.
    #[getter]
    fn rows_done(&self) -> usize {
        self.0.rows_done
    }
    /// Rows in all, when known (a list, a DataFrame, anything with ``len()``).
    #[getter]
    fn rows_total(&self) -> Option<usize> {
        self.0.rows_total
    }
    /// Requests sent so far.
    #[getter]
    fn requests(&self) -> usize {
        self.0.requests
    }
    /// Seconds since the job started.
    #[getter]
    fn elapsed(&self) -> f64 {
        secs(self.0.elapsed)
    }
    /// Rows per second so far.
    #[getter]
    fn rate(&self) -> f64 {
        self.0.rate
    }
    /// Estimated seconds left, when the total is known.
    #[getter]
    fn eta(&self) -> Option<f64> {
        self.0.eta.map(secs)
    }
    /// Counts per outcome so far.
    #[getter]
    fn totals(&self) -> Totals {
        Totals(self.0.totals)
    }
    /// The chunk whose outcome was just recorded; None on the last call.
    #[getter]
    fn chunk(&self) -> Option<ChunkReport> {
        self.0.chunk.clone().map(ChunkReport)
    }
    fn __repr__(&self) -> String {
        let p = &self.0;
        format!(
            "Progress(rows_done={}, rows_total={}, requests={}, rate={:.0})",
            p.rows_done,
            p.rows_total.map_or_else(|| "None".to_string(), |t| t.to_string()),
            p.requests,
            p.rate
        )
    }
}

/// The result of ``bulk_award``: every input row has exactly one outcome — that of its chunk
/// (``chunks``) or its own (``exceptions``). ``records()`` lists them all.
#[pyclass(module = "rewardkit", name = "BulkReport", frozen)]
pub struct BulkReport(core::BulkReport);

#[pymethods]
impl BulkReport {
    /// Counts per outcome (``rows``, ``awarded``, ``skipped``, ``invalid``, ``rejected``,
    /// ``failed``, ``unknown``, ``points_awarded``).
    #[getter]
    fn totals(&self) -> Totals {
        Totals(self.0.totals)
    }
    /// Requests sent in this run.
    #[getter]
    fn requests(&self) -> usize {
        self.0.requests
    }
    /// Every chunk, in order, as ``ChunkReport``.
    #[getter]
    fn chunks(&self) -> Vec<ChunkReport> {
        self.0.chunks.iter().cloned().map(ChunkReport).collect()
    }
    /// Rows with an outcome of their own (invalid, skipped, ...), in row order, as ``RowOutcome``.
    #[getter]
    fn exceptions(&self) -> Vec<RowOutcome> {
        self.0.exceptions.iter().cloned().map(RowOutcome).collect()
    }
    /// Rows read from the input.
    #[getter]
    fn rows_read(&self) -> usize {
        self.0.rows_read
    }
    /// Chunks whose outcome came from the journal (an earlier run).
    #[getter]
    fn resumed_chunks(&self) -> usize {
        self.0.resumed_chunks
    }
    /// What stopped the job early, or None: a dict with ``class`` (the error class, or
    /// ``Interrupted`` for Ctrl-C), ``message``, ``status_code`` and ``request_id``.
    #[getter]
    fn stopped_by<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.0.stopped_by.as_ref().map(|s| stop_dict(py, s)).transpose()
    }
    /// Chunks whose rows may or may not have been awarded (check before sending them again).
    #[getter]
    fn unknown_chunks(&self) -> Vec<ChunkReport> {
        self.0.unknown_chunks().cloned().map(ChunkReport).collect()
    }
    /// True when every row was awarded or skipped by the vendor.
    #[getter]
    fn is_complete(&self) -> bool {
        self.0.is_complete()
    }
    /// Seconds the job took.
    #[getter]
    fn elapsed(&self) -> f64 {
        secs(self.0.elapsed)
    }
    /// One dict per input row, in order: ``row``, ``outcome``, ``request_id``, ``message``.
    fn records<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let (row, outcome, request_id, message) =
            (intern!(py, "row"), intern!(py, "outcome"), intern!(py, "request_id"), intern!(py, "message"));
        let out = PyList::empty(py);
        for v in self.0.rows() {
            let d = PyDict::new(py);
            d.set_item(row, v.row)?;
            d.set_item(outcome, outcome_name(v.outcome))?;
            d.set_item(request_id, v.request_id)?;
            d.set_item(message, v.message)?;
            out.append(d)?;
        }
        Ok(out)
    }
    /// ``records()`` as a pandas DataFrame (imports pandas, which must be installed).
    fn to_pandas<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let pd = py.import("pandas")?;
        let n = self.0.rows_read;
        let (mut row, mut outcome, mut request_id, mut message) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for v in self.0.rows() {
            row.push(v.row);
            outcome.push(outcome_name(v.outcome));
            request_id.push(v.request_id);
            message.push(v.message);
        }
        let cols = PyDict::new(py);
        cols.set_item("row", row)?;
        cols.set_item("outcome", outcome)?;
        cols.set_item("request_id", request_id)?;
        cols.set_item("message", message)?;
        pd.getattr("DataFrame")?.call1((cols,))
    }
    /// The report as plain data: ``totals``, ``requests``, ``chunks``, ``exceptions`` (lists
    /// of dicts), ``rows_read``, ``resumed_chunks``, ``stopped_by``, ``is_complete``, ``elapsed``.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let r = &self.0;
        let d = PyDict::new(py);
        d.set_item("totals", totals_dict(py, &r.totals)?)?;
        d.set_item("requests", r.requests)?;
        let chunks = PyList::empty(py);
        for c in &r.chunks {
            chunks.append(chunk_dict(py, c)?)?;
        }
        d.set_item("chunks", chunks)?;
        let ex = PyList::empty(py);
        for e in &r.exceptions {
            ex.append(row_outcome_dict(py, e)?)?;
        }
        d.set_item("exceptions", ex)?;
        d.set_item("rows_read", r.rows_read)?;
        d.set_item("resumed_chunks", r.resumed_chunks)?;
        d.set_item("stopped_by", self.stopped_by(py)?)?;
        d.set_item("is_complete", r.is_complete())?;
        d.set_item("elapsed", secs(r.elapsed))?;
        Ok(d)
    }
    fn __len__(&self) -> usize {
        self.0.rows_read
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        let r = &self.0;
        let t = &r.totals;
        let stop = r.stopped_by.as_ref().map_or_else(|| "None".to_string(), |s| convert::repr(py, s.to_string()));
        format!(
            "BulkReport(rows={}, awarded={}, skipped={}, invalid={}, rejected={}, failed={}, unknown={}, \
             points_awarded={}, requests={}, chunks={}, resumed_chunks={}, stopped_by={}, elapsed={:.3}s)",
            t.rows,
            t.awarded,
            t.skipped,
            t.invalid,
            t.rejected,
            t.failed,
            t.unknown,
            t.points_awarded,
            r.requests,
            r.chunks.len(),
            r.resumed_chunks,
            stop,
            secs(r.elapsed)
        )
    }
}

/// A job ready to run, with what is needed to turn its result into Python.
pub struct Prepared {
    job: BulkJob,
    source: PySource,
    failure: Failure,
    /// Called (no arguments) when the job ends: closes a tqdm bar.
    close: Option<Py<PyAny>>,
}

/// Reads `bulk_award`'s arguments and sets the job up.
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    py: Python<'_>,
    client: &CoreQuestionPro,
    client_allows_duplicates: bool,
    rows: &Bound<'_, PyAny>,
    batch_size: i64,
    concurrency: i64,
    on_invalid: &str,
    allow_duplicates: Option<bool>,
    journal: Option<PathBuf>,
    resend_unknown: bool,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<Prepared> {
    let batch_size = usize::try_from(batch_size)
        .ok()
        .filter(|b| *b >= 1)
        .ok_or_else(|| PyValueError::new_err(format!("batch_size must be 1 or more, not {batch_size}")))?;
    let concurrency = usize::try_from(concurrency)
        .ok()
        .filter(|c| *c >= 1)
        .ok_or_else(|| PyValueError::new_err(format!("concurrency must be 1 or more, not {concurrency}")))?;
    let on_invalid = match on_invalid {
        "stop" => OnInvalid::Stop,
        "send_valid" => OnInvalid::SendValid,
        other => {
            return Err(PyValueError::new_err(format!("on_invalid must be \"stop\" or \"send_valid\", not {other:?}")))
        }
    };
    let opts = BulkOptions {
        on_invalid,
        batch_size,
        concurrency,
        allow_duplicates: allow_duplicates.unwrap_or(client_allows_duplicates),
        journal,
        resend_unknown,
    };
    let failure: Failure = Arc::default();
    let mut source = PySource::new(rows, failure.clone())?;
    if on_invalid == OnInvalid::Stop {
        source.keep_first_pass();
    }
    let mut job = BulkJob::new(client, opts);
    let mut close = None;
    if let Some(p) = progress.filter(|p| !p.is_none()) {
        // rewardkit._bulk turns `True` into a tqdm bar and wraps a callable so that its
        // exceptions are logged (logger `rewardkit`) instead of stopping the job.
        let helper = py.import(intern!(py, "rewardkit._bulk"))?;
        let made = helper.call_method1(intern!(py, "make_progress"), (p,))?;
        let (callback, closer): (Option<Py<PyAny>>, Option<Py<PyAny>>) = made.extract()?;
        close = closer;
        if let Some(callback) = callback {
            job = job.on_progress(move |p: &core::Progress| {
                let _ = Python::try_attach(|py| {
                    let cb = callback.bind(py);
                    let res = Progress(p.clone()).into_bound_py_any(py).and_then(|obj| cb.call1((obj,)));
                    if let Err(e) = res {
                        e.write_unraisable(py, Some(cb));
                    }
                });
            });
        }
    }
    Ok(Prepared { job, source, failure, close })
}

/// The Python result of a finished job: the report, or the exception with `.report` set.
fn finish(
    py: Python<'_>,
    res: Result<core::BulkReport, core::JobError>,
    interrupted: Option<PyErr>,
    failure: &Failure,
    close: Option<Py<PyAny>>,
) -> PyResult<BulkReport> {
    if let Some(c) = close {
        if let Err(e) = c.bind(py).call0() {
            e.write_unraisable(py, Some(c.bind(py)));
        }
    }
    let read_error = failure.lock().unwrap_or_else(PoisonError::into_inner).take();
    let (err, report) = match res {
        Ok(report) => match interrupted {
            None => return Ok(BulkReport(report)),
            Some(e) => (e, report),
        },
        Err(core::JobError { error, report }) => {
            let err = interrupted.or(read_error).unwrap_or_else(|| errors::to_pyerr(py, &error));
            (err, *report)
        }
    };
    let report = Bound::new(py, BulkReport(report))?;
    // An exception that takes no attributes (one with __slots__) is raised as it is.
    let _ = err.value(py).setattr(intern!(py, "report"), report);
    Err(err)
}

/// Runs a job to its end with the GIL released. The first Ctrl-C stops it cleanly (chunks in
/// flight finish and are journaled) and raises `KeyboardInterrupt` with `.report`; a second
/// one abandons the requests in flight (their rows are reported unknown).
pub fn run_sync(py: Python<'_>, p: Prepared) -> PyResult<BulkReport> {
    let Prepared { job, source, failure, close } = p;
    let (cancel, abort) = (job.cancel_token(), job.abort_token());
    let (res, interrupted) = runtime::wait_interruptible(py, job.run(source), cancel, abort)?;
    finish(py, res, interrupted, &failure, close)
}

/// Runs a job as an awaitable on the caller's loop: a coroutine of `rewardkit._bulk.run_job`,
/// which starts the job when first awaited and stops it cleanly when its task is cancelled.
pub fn run_async(py: Python<'_>, p: Prepared) -> PyResult<Bound<'_, PyAny>> {
    let job = AsyncBulkJob { cancel: p.job.cancel_token(), abort: p.job.abort_token(), prepared: Mutex::new(Some(p)) };
    let helper = py.import(intern!(py, "rewardkit._bulk"))?;
    helper.call_method1(intern!(py, "run_job"), (Bound::new(py, job)?,))
}

/// A bulk job of `AsyncQuestionPro.bulk_award`, driven by `rewardkit._bulk.run_job`.
#[pyclass(module = "rewardkit._native", name = "_AsyncBulkJob", frozen)]
pub struct AsyncBulkJob {
    prepared: Mutex<Option<Prepared>>,
    cancel: CancellationToken,
    abort: CancellationToken,
}

#[pymethods]
impl AsyncBulkJob {
    /// Starts the job on the shared runtime; returns the asyncio future of its report.
    fn start<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let prepared = self.prepared.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(Prepared { job, source, failure, close }) = prepared else {
            return Err(PyRuntimeError::new_err("this bulk job was started already"));
        };
        // The job is a task of its own, so that when the future below is dropped (its loop
        // closed under it) the job is told to stop cleanly instead of being dropped mid-request.
        let task = runtime::runtime().spawn(job.run(source));
        let cancel = self.cancel.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let stop_if_dropped = cancel.drop_guard();
            let res = task.await;
            stop_if_dropped.disarm();
            let res =
                res.map_err(|e| PyRuntimeError::new_err(format!("rewardkit: the bulk job's task failed: {e}")))?;
            Python::attach(|py| finish(py, res, None, &failure, close))
        })
    }

    /// Stops the job cleanly: nothing more is sent; requests in flight finish and are journaled.
    fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Abandons the requests in flight (their rows are reported unknown).
    fn abort(&self) {
        self.abort.cancel();
    }
}
