//! Points rows read straight from Python objects into the core's [`Cell`]s (no JSON round
//! trip), then checked by the core's own rules ([`PointsAward::from_cells`], [`DuplicateCheck`]).
//!
//! A row is a dict (or any mapping) with the wire names (`panelMemberID`, `points`,
//! `comments`), snake_case (`panel_member_id`) or camelCase (`panelMemberId`); or a tuple
//! `(panel_member_id, points[, comments])`. Rows come in a list or any iterable (a generator,
//! a pandas DataFrame). Every problem of every row is collected, with its row index.

use crate::convert::type_name;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple};
use pyo3::{intern, Borrowed};
use rewardkit::bulk::RowRead;
use rewardkit::questionpro::{Cell, DuplicateCheck, PointsAward, COMMENTS_KEYS, MEMBER_ID_KEYS};
use rewardkit::FieldError;

const NOT_A_ROW: &str =
    "A row must be a dict (panelMemberID or panel_member_id, points, comments) or a tuple (panel_member_id, points[, comments]).";

/// The text of the last string read in one column, kept with the string object itself: a
/// column that repeats one string (a job's usual comment) is converted to UTF-8 once, not
/// once a row. Holding the object keeps its address from being reused by another string.
#[derive(Default)]
pub(crate) struct StrCache {
    obj: Option<Py<PyAny>>,
    text: String,
}

impl StrCache {
    fn read(&mut self, s: &Bound<'_, PyString>) -> PyResult<()> {
        if self.obj.as_ref().is_some_and(|o| o.as_ptr() == s.as_ptr()) {
            return Ok(());
        }
        self.text.clear();
        self.text.push_str(&s.to_cow()?);
        self.obj = Some(s.clone().into_any().unbind());
        Ok(())
    }
}

/// One cache a field: id, points, comments.
pub(crate) type Caches = [StrCache; 3];

/// A cell's value, owned while the row is read.
pub(crate) enum Owned {
    Missing,
    Int(i64),
    /// A string; its text is in the column's [`StrCache`].
    Str,
    BigInt,
    Other(String),
}

impl Owned {
    pub(crate) fn cell<'a>(&'a self, cache: &'a StrCache) -> Cell<'a> {
        match self {
            Owned::Missing => Cell::Missing,
            Owned::Int(n) => Cell::Int(*n),
            Owned::Str => Cell::Str(&cache.text),
            Owned::BigInt => Cell::BigInt,
            Owned::Other(t) => Cell::Other(t),
        }
    }
}

/// The core's reading of a row's three cells.
pub(crate) fn from_owned(cells: &[Owned; 3], caches: &Caches) -> RowRead {
    PointsAward::from_cells(cells[0].cell(&caches[0]), cells[1].cell(&caches[1]), cells[2].cell(&caches[2]))
}

/// Reads one field value. `None`, a float NaN and pandas' `NA` are missing.
pub(crate) fn owned(v: Option<Borrowed<'_, '_, PyAny>>, cache: &mut StrCache) -> PyResult<Owned> {
    let Some(v) = v else { return Ok(Owned::Missing) };
    if v.is_exact_instance_of::<PyInt>() {
        return Ok(int_value(v));
    }
    if let Ok(s) = v.cast::<PyString>() {
        cache.read(&s)?;
        return Ok(Owned::Str);
    }
    if v.is_none() {
        return Ok(Owned::Missing);
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return Ok(if f.value().is_nan() { Owned::Missing } else { Owned::Other("float".into()) });
    }
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Ok(Owned::Other("bool".into()));
    }
    if v.is_instance_of::<PyInt>() {
        return Ok(int_value(v));
    }
    // Integers of other libraries (numpy.int64, ...) are integers through `__index__`.
    if v.hasattr(intern!(v.py(), "__index__"))? {
        if let Ok(i) = v.call_method0(intern!(v.py(), "__index__")) {
            if i.is_instance_of::<PyInt>() && !i.is_instance_of::<pyo3::types::PyBool>() {
                return Ok(int_value(i.as_borrowed()));
            }
        }
    }
    let name = type_name(&v);
    // pandas' missing value in nullable columns (`Int64`, `string`) is missing, like NaN.
    if name == "NAType" {
        return Ok(Owned::Missing);
    }
    Ok(Owned::Other(name))
}

fn int_value(v: Borrowed<'_, '_, PyAny>) -> Owned {
    match v.extract::<i64>() {
        Ok(n) => Owned::Int(n),
        Err(_) => Owned::BigInt,
    }
}

/// The interned key names, looked up once per call.
pub(crate) struct Keys<'py> {
    id: [Bound<'py, PyString>; 3],
    points: Bound<'py, PyString>,
    comments: [Bound<'py, PyString>; 2],
}

impl<'py> Keys<'py> {
    pub(crate) fn new(py: Python<'py>) -> Self {
        Keys {
            id: MEMBER_ID_KEYS.map(|k| PyString::intern(py, k)),
            points: intern!(py, "points").clone(),
            comments: COMMENTS_KEYS.map(|k| PyString::intern(py, k)),
        }
    }
}

/// The first of `keys` present in the dict (its value may be None), as the core does.
fn dict_first<'py>(d: &Bound<'py, PyDict>, keys: &[Bound<'py, PyString>]) -> PyResult<Option<Bound<'py, PyAny>>> {
    for k in keys {
        if let Some(v) = d.get_item(k)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

fn mapping_first<'py>(m: &Bound<'py, PyMapping>, keys: &[Bound<'py, PyString>]) -> PyResult<Option<Bound<'py, PyAny>>> {
    for k in keys {
        if m.contains(k)? {
            return Ok(Some(m.get_item(k)?));
        }
    }
    Ok(None)
}

/// The three cells of a row, or `None` when the object is not a row.
fn row_cells(row: &Bound<'_, PyAny>, keys: &Keys<'_>, caches: &mut Caches) -> PyResult<Option<[Owned; 3]>> {
    let [c0, c1, c2] = caches;
    let b = |v: Option<Bound<'_, PyAny>>, c: &mut StrCache| owned(v.as_ref().map(|v| v.as_borrowed()), c);
    if let Ok(d) = row.cast::<PyDict>() {
        let id = dict_first(d, &keys.id)?;
        let points = d.get_item(&keys.points)?;
        let comments = dict_first(d, &keys.comments)?;
        return Ok(Some([b(id, c0)?, b(points, c1)?, b(comments, c2)?]));
    }
    if let Ok(t) = row.cast::<PyTuple>() {
        if !(2..=3).contains(&t.len()) {
            return Ok(None);
        }
        let comments = if t.len() == 3 { Some(t.get_item(2)?) } else { None };
        return Ok(Some([b(Some(t.get_item(0)?), c0)?, b(Some(t.get_item(1)?), c1)?, b(comments, c2)?]));
    }
    // Lists, strings and numbers are not rows (a JSON array row is refused the same way).
    if row.is_instance_of::<PyList>() || row.is_instance_of::<PyString>() || row.is_none() {
        return Ok(None);
    }
    if let Ok(m) = row.cast::<PyMapping>() {
        let id = mapping_first(m, &keys.id)?;
        let points = mapping_first(m, std::slice::from_ref(&keys.points))?;
        let comments = mapping_first(m, &keys.comments)?;
        return Ok(Some([b(id, c0)?, b(points, c1)?, b(comments, c2)?]));
    }
    Ok(None)
}

/// One row read into the core's form for a bulk job: the typed row, or its field errors
/// (an object that is not a row is one `wrong_type` error). Duplicates are the engine's to check.
pub(crate) fn read_one(row: &Bound<'_, PyAny>, keys: &Keys<'_>, caches: &mut Caches) -> PyResult<RowRead> {
    Ok(match row_cells(row, keys, caches)? {
        Some(cells) => from_owned(&cells, caches),
        None => Err(vec![FieldError::new("row", "wrong_type", NOT_A_ROW)]),
    })
}

/// Turns the `rows` argument into an iterator, refusing what is surely a mistake (one dict,
/// a string) and reading a pandas DataFrame by its records.
fn iterate<'py>(rows: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = rows.py();
    if rows.is_instance_of::<PyList>() || rows.is_instance_of::<PyTuple>() {
        return Ok(rows.clone());
    }
    if rows.is_instance_of::<PyString>() || rows.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err("rows must be a list (or any iterable) of rows, not a string"));
    }
    if rows.is_instance_of::<PyDict>() || rows.cast::<PyMapping>().is_ok() {
        return Err(PyTypeError::new_err("rows must be a list (or any iterable) of rows, not one row: pass [row]"));
    }
    if rows.hasattr(intern!(py, "columns"))? && rows.hasattr(intern!(py, "to_dict"))? {
        return rows.call_method1(intern!(py, "to_dict"), ("records",));
    }
    if rows.try_iter().is_err() {
        return Err(PyTypeError::new_err(format!(
            "rows must be a list (or any iterable) of dicts or tuples, not {}",
            type_name(rows)
        )));
    }
    Ok(rows.clone())
}

/// Reads and checks every row: the rows (when `keep` and all are good) and every problem.
pub fn read(
    rows: &Bound<'_, PyAny>,
    allow_duplicates: bool,
    keep: bool,
) -> PyResult<(Vec<PointsAward>, Vec<FieldError>)> {
    let py = rows.py();
    let keys = Keys::new(py);
    let rows = iterate(rows)?;
    let mut out = Vec::with_capacity(if keep { rows.len().unwrap_or(0) } else { 0 });
    let mut errs = Vec::new();
    let mut dups = DuplicateCheck::default();
    let mut caches = Caches::default();
    let mut each = |i: usize, row: &Bound<'_, PyAny>| -> PyResult<()> {
        let Some(cells) = row_cells(row, &keys, &mut caches)? else {
            errs.push(FieldError::new("row", "wrong_type", NOT_A_ROW).at_row(i));
            return Ok(());
        };
        let id = cells[0].cell(&caches[0]);
        match from_owned(&cells, &caches) {
            Ok(r) if keep && errs.is_empty() => out.push(r),
            Ok(_) => {}
            Err(e) => errs.extend(e.into_iter().map(|e| e.at_row(i))),
        }
        // Checked for bad rows too, as the core does, so a repeat is reported the same way.
        if let Cell::Int(id) = id {
            if id > 0 && !allow_duplicates {
                errs.extend(dups.check(id, i));
            }
        }
        Ok(())
    };
    if let Ok(list) = rows.cast::<PyList>() {
        for (i, row) in list.iter().enumerate() {
            each(i, &row)?;
        }
    } else {
        for (i, row) in rows.try_iter()?.enumerate() {
            each(i, &row?)?;
        }
    }
    Ok((out, errs))
}

/// Reads the rows to send: every row good, or a `ValidationError` with every problem.
pub fn to_send(rows: &Bound<'_, PyAny>, allow_duplicates: bool) -> PyResult<Vec<PointsAward>> {
    let py = rows.py();
    let (rows, errs) = read(rows, allow_duplicates, true)?;
    if errs.is_empty() {
        Ok(rows)
    } else {
        Err(crate::errors::validation(py, errs))
    }
}
