//! Python values to JSON values and back, for reward payloads and the data the vendors return.

use crate::errors;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple, PyType};
use pyo3::BoundObject;
use rewardkit::FieldError;
use serde_json::{Map, Number, Value};

/// Containers nested deeper than this are refused (and a list that contains itself cannot
/// recurse forever).
const MAX_DEPTH: usize = 64;

/// A JSON value as a Python object: dicts, lists, str, int, float, bool and None.
pub fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, item) in o {
                d.set_item(k, to_py(py, item)?)?;
            }
            d.into_any()
        }
    })
}

/// Python's `repr` of a Rust value (`'text'`, `None`, `True`, `12`), for `__repr__`.
pub fn repr<'py, T: IntoPyObject<'py>>(py: Python<'py>, v: T) -> String {
    match v.into_pyobject(py) {
        Ok(obj) => obj.into_any().into_bound().repr().map(|r| r.to_string()).unwrap_or_default(),
        Err(_) => "?".to_string(),
    }
}

/// The Python name of an object's type, for messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "object".into())
}

static DATETIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `datetime.datetime`, imported on first use.
fn datetime_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    DATETIME.import(py, "datetime", "datetime")
}

/// A `datetime` as the vendor's `YYYY-MM-DD HH:MM:SS` (its wall-clock time; a time zone, if
/// any, is not converted). `None` when `obj` is not a datetime.
pub fn datetime_string(obj: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    if !obj.is_instance(datetime_type(obj.py())?)? {
        return Ok(None);
    }
    Ok(Some(obj.call_method1("strftime", ("%Y-%m-%d %H:%M:%S",))?.extract::<String>()?))
}

/// A Python value as JSON. `path` names the value in messages (`custom_fields[0].value`).
/// A value JSON cannot carry raises `TypeError`; a float that is not finite raises
/// `ValidationError` (it is the right type with an impossible value).
pub fn from_py(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Value> {
    from_py_at(obj, path, 0)
}

fn from_py_at(obj: &Bound<'_, PyAny>, path: &str, depth: usize) -> PyResult<Value> {
    let py = obj.py();
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        // Larger than JSON integers go: sent as a float, which fails an integer field's check.
        return match obj.extract::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Ok(Value::Number(n)),
            None => {
                Err(errors::validation(py, vec![FieldError::new(path, "wrong_value", "This number is too large.")]))
            }
        };
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return match Number::from_f64(f.value()) {
            Some(n) => Ok(Value::Number(n)),
            None => Err(errors::validation(
                py,
                vec![FieldError::new(path, "wrong_value", "This value should be a finite number.")],
            )),
        };
    }
    if depth >= MAX_DEPTH {
        return Err(PyTypeError::new_err(format!("{path}: nested more than {MAX_DEPTH} levels deep")));
    }
    if let Ok(cf) = obj.cast::<crate::splio::CustomField>() {
        return Ok(cf.get().to_value());
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut out = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key = dict_key(&k, path)?;
            let child = child_path(path, &key);
            out.insert(key, from_py_at(&v, &child, depth + 1)?);
        }
        return Ok(Value::Object(out));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for (i, item) in obj.try_iter()?.enumerate() {
            out.push(from_py_at(&item?, &format!("{path}[{i}]"), depth + 1)?);
        }
        return Ok(Value::Array(out));
    }
    if let Ok(m) = obj.cast::<PyMapping>() {
        let mut out = Map::new();
        for item in m.items()?.iter() {
            let (k, v) = item.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()?;
            let key = dict_key(&k, path)?;
            let child = child_path(path, &key);
            out.insert(key, from_py_at(&v, &child, depth + 1)?);
        }
        return Ok(Value::Object(out));
    }
    let what = if path.is_empty() { "value".to_string() } else { path.to_string() };
    Err(PyTypeError::new_err(format!(
        "{what}: a {} cannot be sent; use str, int, float, bool, None, a list or a dict",
        type_name(obj)
    )))
}

fn dict_key(k: &Bound<'_, PyAny>, path: &str) -> PyResult<String> {
    match k.cast::<PyString>() {
        Ok(s) => Ok(s.to_cow()?.into_owned()),
        Err(_) => {
            let what = if path.is_empty() { "the payload" } else { path };
            Err(PyTypeError::new_err(format!("{what}: keys must be str, not {}", type_name(k))))
        }
    }
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
