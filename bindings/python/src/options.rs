//! The transport keywords both clients take (timeouts, retries, backoff, pacing), read from
//! Python and checked, so a bad value is a `ValueError` or `TypeError` and never a panic.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyTuple};
use rewardkit::RateLimit;
use std::time::Duration;

/// `rate_limit=`: `True` for the vendor's published limit, `None`/`False` for no pacing, or
/// `(calls, per_seconds)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pacing {
    Vendor,
    Off,
    Custom(RateLimit),
}

impl<'a, 'py> FromPyObject<'a, 'py> for Pacing {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if obj.is_none() {
            return Ok(Pacing::Off);
        }
        if let Ok(b) = obj.cast::<PyBool>() {
            return Ok(if b.is_true() { Pacing::Vendor } else { Pacing::Off });
        }
        let bad = || PyTypeError::new_err("rate_limit must be True, False, None or a tuple (calls, per_seconds)");
        let t = obj.cast::<PyTuple>().map_err(|_| bad())?;
        if t.len() != 2 {
            return Err(bad());
        }
        let calls: u32 = t.get_item(0)?.extract().map_err(|_| bad())?;
        let per: f64 = t.get_item(1)?.extract().map_err(|_| bad())?;
        if calls == 0 {
            return Err(PyValueError::new_err("rate_limit: calls must be at least 1"));
        }
        Ok(Pacing::Custom(RateLimit::new(calls, seconds("rate_limit per_seconds", per)?)))
    }
}

/// A positive, finite number of seconds.
pub fn seconds(name: &str, secs: f64) -> PyResult<Duration> {
    if !(secs.is_finite() && secs > 0.0) {
        return Err(PyValueError::new_err(format!("{name} must be a positive number of seconds, not {secs}")));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| PyValueError::new_err(format!("{name} is too large: {secs}")))
}

/// The transport keywords of a client.
#[derive(Clone, Debug)]
pub struct Transport {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_retries: u32,
    pub max_retry_wait: Duration,
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub pacing: Pacing,
}

impl Transport {
    #[allow(clippy::too_many_arguments)]
    pub fn read(
        timeout: f64,
        connect_timeout: f64,
        max_retries: i64,
        max_retry_wait: f64,
        backoff: f64,
        max_backoff: f64,
        pacing: Pacing,
    ) -> PyResult<Transport> {
        let max_retries = u32::try_from(max_retries).ok().filter(|n| *n <= 100).ok_or_else(|| {
            PyValueError::new_err(format!("max_retries must be between 0 and 100, not {max_retries}"))
        })?;
        Ok(Transport {
            timeout: seconds("timeout", timeout)?,
            connect_timeout: seconds("connect_timeout", connect_timeout)?,
            max_retries,
            max_retry_wait: seconds("max_retry_wait", max_retry_wait)?,
            backoff: seconds("backoff", backoff)?,
            max_backoff: seconds("max_backoff", max_backoff)?,
            pacing,
        })
    }
}

/// Applies [`Transport`] to a core client builder (both builders share these setters).
macro_rules! apply_transport {
    ($builder:expr, $t:expr) => {{
        let t = &$t;
        let b = $builder
            .timeout(t.timeout)
            .connect_timeout(t.connect_timeout)
            .max_retries(t.max_retries)
            .max_retry_wait(t.max_retry_wait)
            .backoff(t.backoff, t.max_backoff);
        match t.pacing {
            $crate::options::Pacing::Vendor => b,
            $crate::options::Pacing::Off => b.rate_limit(None),
            $crate::options::Pacing::Custom(r) => b.rate_limit(Some(r)),
        }
    }};
}
pub(crate) use apply_transport;
