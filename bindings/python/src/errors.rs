//! The one place where core errors become Python exceptions.
//!
//! The exception classes are plain Python classes in `rewardkit/errors.py` (under abi3 an
//! exception cannot be a Rust class, and Python classes pickle without help). The class is
//! chosen by [`Error::class_name`], so the mapping cannot drift from the core.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyModule};
use rewardkit::{Error, FieldError, UnknownCause};

static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    ERRORS_MODULE
        .get_or_try_init(py, || PyModule::import(py, "rewardkit.errors").map(Bound::unbind))
        .map(|m| m.bind(py))
}

/// The class `name` of `rewardkit.errors`.
pub fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    module(py)?.getattr(name)
}

static FIELD_ERROR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A list of `rewardkit.FieldError`.
pub fn field_errors<'py>(py: Python<'py>, errs: &[FieldError]) -> PyResult<Bound<'py, PyList>> {
    let cls = FIELD_ERROR.get_or_try_init(py, || class(py, "FieldError").map(Bound::unbind))?.bind(py);
    let list = PyList::empty(py);
    for e in errs {
        list.append(cls.call1((e.key.as_str(), e.code.as_str(), e.description.as_str(), e.row))?)?;
    }
    Ok(list)
}

fn cause_name(c: UnknownCause) -> &'static str {
    match c {
        UnknownCause::Timeout => "timeout",
        UnknownCause::ConnectionLost => "connection_lost",
        UnknownCause::Gateway => "gateway",
        UnknownCause::UnreadableBody => "unreadable_body",
    }
}

fn build(py: Python<'_>, e: &Error) -> PyResult<PyErr> {
    let cls = class(py, e.class_name())?;
    let kw = PyDict::new(py);
    match e {
        Error::Validation(errs) => kw.set_item("errors", field_errors(py, errs)?)?,
        Error::OutcomeUnknown(u) => {
            kw.set_item("cause", cause_name(u.cause))?;
            kw.set_item("status_code", u.status)?;
            kw.set_item("request_id", u.request_id.as_deref())?;
            kw.set_item("body", u.body.as_deref())?;
        }
        _ => {
            if let Some(a) = e.api_error() {
                kw.set_item("message", a.message.as_str())?;
                kw.set_item("status_code", a.status)?;
                kw.set_item("request_id", a.request_id.as_deref())?;
                kw.set_item("error_id", a.error_id.as_deref())?;
                kw.set_item("name", a.name.as_deref())?;
                kw.set_item("docs", a.docs.as_deref())?;
                kw.set_item("errors", field_errors(py, &a.errors)?)?;
                kw.set_item("body", a.body.as_str())?;
                kw.set_item("retry_after", a.retry_after.map(|d| d.as_secs_f64()))?;
                let vendor = match a.vendor {
                    rewardkit::Vendor::QuestionPro => "questionpro",
                    rewardkit::Vendor::Splio => "splio",
                };
                kw.set_item("vendor", vendor)?;
            }
        }
    }
    let exc = cls.call((e.to_string(),), Some(&kw))?;
    Ok(PyErr::from_value(exc))
}

/// The Python exception for a core error. Never fails: if the exception cannot be built,
/// the error that prevented it is returned instead.
pub fn to_pyerr(py: Python<'_>, e: &Error) -> PyErr {
    build(py, e).unwrap_or_else(|err| err)
}

/// A `ValidationError` holding these field errors.
pub fn validation(py: Python<'_>, errs: Vec<FieldError>) -> PyErr {
    to_pyerr(py, &Error::Validation(errs))
}

/// A `RewardkitError` for a misconfiguration.
pub fn config(py: Python<'_>, message: impl Into<String>) -> PyErr {
    to_pyerr(py, &Error::Config(message.into()))
}

/// Turns a core result into a Python one.
pub trait IntoPyResult<T> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_pyerr(py, &e))
    }
}
