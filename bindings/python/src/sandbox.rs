//! `Sandbox`: the core's offline server for both APIs, run on the shared tokio runtime, with
//! fault injection and read-back, for tests (the way moto serves boto3 users).

use crate::convert;
use crate::errors::{self, IntoPyResult};
use crate::options::seconds;
use crate::runtime;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyRange, PyString, PyTuple, PyType};
use rewardkit::sandbox::{self as core, Fault, FaultAction, Members, Route, SandboxConfig};
use rewardkit::RateLimit;
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

fn route(name: &str) -> PyResult<Route> {
    Route::ALL.into_iter().find(|r| r.as_str() == name).ok_or_else(|| {
        let all: Vec<_> = Route::ALL.iter().map(|r| r.as_str()).collect();
        PyValueError::new_err(format!("unknown route {name:?}: expected one of {}", all.join(", ")))
    })
}

fn members(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Members> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else { return Ok(Members::default()) };
    if let Ok(s) = obj.cast::<PyString>() {
        if s.to_cow()? == "all" {
            return Ok(Members::All);
        }
        return Err(PyValueError::new_err("members must be None, \"all\", a range or an iterable of ids"));
    }
    if let Ok(r) = obj.cast::<PyRange>() {
        let (start, stop, step): (i64, i64, i64) =
            (r.getattr("start")?.extract()?, r.getattr("stop")?.extract()?, r.getattr("step")?.extract()?);
        if step == 1 {
            return Ok(Members::Range(start, stop.saturating_sub(1)));
        }
    }
    let mut ids = HashSet::new();
    for id in obj
        .try_iter()
        .map_err(|_| PyTypeError::new_err("members must be None, \"all\", a range or an iterable of ids"))?
    {
        ids.insert(id?.extract::<i64>()?);
    }
    Ok(Members::Set(ids))
}

fn headers(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, String)>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else { return Ok(Vec::new()) };
    let pairs = match obj.cast::<PyDict>() {
        Ok(d) => d.items().into_any(),
        Err(_) => obj.clone(),
    };
    let mut out = Vec::new();
    for item in pairs.try_iter()? {
        let (k, v): (String, String) = item?.extract().map_err(|_| {
            PyTypeError::new_err("headers must be a dict of str to str, or a list of (name, value) pairs")
        })?;
        out.push((k, v));
    }
    Ok(out)
}

/// An offline server that emulates QuestionPro's award-points endpoint and Splio's
/// authenticate, create-reward and get-reward endpoints on 127.0.0.1, with their keys,
/// validation rules and error shapes, a ledger of what was awarded, and injectable faults.
///
/// ``Sandbox(*, token_ttl=3600.0, rate_limits=False, members=None)``. Use it as a context
/// manager (``with rewardkit.Sandbox() as sb:``) or call ``start()`` and ``close()``.
/// ``members`` is ``None`` (ids 1 to 99,999,999 exist), ``"all"``, a ``range`` or a set of
/// ids; awards to other ids come back skipped. ``rate_limits=True`` enforces the vendors'
/// published limits.
#[pyclass(module = "rewardkit", name = "Sandbox", frozen)]
pub struct Sandbox {
    config: SandboxConfig,
    server: Mutex<Option<core::Sandbox>>,
}

impl Sandbox {
    fn lock(&self) -> MutexGuard<'_, Option<core::Sandbox>> {
        self.server.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the running server, with the GIL released (the server's state locks are
    /// never waited on while holding the GIL).
    fn with<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&core::Sandbox) -> T + Send) -> PyResult<T> {
        let out = py.detach(|| self.lock().as_ref().map(f));
        out.ok_or_else(|| errors::config(py, "the sandbox is not running: call start() or use it in a with block"))
    }

    fn client<'py>(
        slf: &Bound<'py, Self>,
        class: Bound<'py, PyType>,
        key: fn(&core::Sandbox) -> String,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let (url, key) = slf.get().with(py, |s| (s.url(), key(s)))?;
        let kw = PyDict::new(py);
        kw.set_item("api_key", key)?;
        kw.set_item("base_url", url)?;
        kw.set_item("rate_limit", false)?;
        if let Some(extra) = kwargs {
            kw.update(extra.as_mapping())?;
        }
        class.call((), Some(&kw))
    }
}

#[pymethods]
impl Sandbox {
    #[new]
    #[pyo3(signature = (*, token_ttl=3600.0, rate_limits=false, members=None))]
    fn new(token_ttl: f64, rate_limits: bool, members: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let mut config = SandboxConfig { token_ttl: seconds("token_ttl", token_ttl)?, ..SandboxConfig::default() };
        config.members = self::members(members)?;
        if rate_limits {
            config.questionpro_rate_limit = Some(RateLimit::QUESTIONPRO);
            config.splio_rate_limit = Some(RateLimit::SPLIO);
        }
        Ok(Sandbox { config, server: Mutex::new(None) })
    }

    /// Starts the server on a free loopback port (does nothing if it is running); returns
    /// the sandbox.
    fn start(slf: &Bound<'_, Self>) -> PyResult<Py<Self>> {
        let py = slf.py();
        let this = slf.get();
        if py.detach(|| this.lock().is_some()) {
            return Ok(slf.clone().unbind());
        }
        let config = this.config.clone();
        let started = runtime::wait(py, async move { core::Sandbox::start_with(config).await })?.or_raise(py)?;
        // Another thread may have started it meanwhile: then this second server is dropped.
        let _extra = py.detach(|| {
            let mut slot = this.lock();
            match *slot {
                None => slot.replace(started),
                Some(_) => Some(started),
            }
        });
        Ok(slf.clone().unbind())
    }

    /// Stops the server, letting requests in flight finish (for up to 5 seconds).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let server = py.detach(|| self.lock().take());
        if let Some(s) = server {
            runtime::wait(py, s.shutdown())?;
        }
        Ok(())
    }

    fn __enter__(slf: &Bound<'_, Self>) -> PyResult<Py<Self>> {
        Self::start(slf)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    /// Whether the server is running.
    #[getter]
    fn running(&self, py: Python<'_>) -> bool {
        py.detach(|| self.lock().is_some())
    }

    /// The base URL, ``http://127.0.0.1:PORT``.
    #[getter]
    fn url(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |s| s.url())
    }

    /// The QuestionPro API key the sandbox accepts.
    #[getter]
    fn questionpro_api_key(&self) -> String {
        self.config.questionpro_api_key.clone()
    }

    /// The Splio API key the sandbox accepts.
    #[getter]
    fn splio_api_key(&self) -> String {
        self.config.splio_api_key.clone()
    }

    /// A ``QuestionPro`` client for this sandbox (its key and URL, pacing off); keyword
    /// arguments are passed on to ``QuestionPro``.
    #[pyo3(signature = (**kwargs))]
    fn questionpro<'py>(slf: &Bound<'py, Self>, kwargs: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
        let class = slf.py().get_type::<crate::questionpro::QuestionPro>();
        Self::client(slf, class, |s| s.questionpro_api_key().to_string(), kwargs)
    }

    /// An ``AsyncQuestionPro`` client for this sandbox (pacing off).
    #[pyo3(signature = (**kwargs))]
    fn async_questionpro<'py>(
        slf: &Bound<'py, Self>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let class = slf.py().get_type::<crate::questionpro::AsyncQuestionPro>();
        Self::client(slf, class, |s| s.questionpro_api_key().to_string(), kwargs)
    }

    /// A ``Splio`` client for this sandbox (its key and URL, pacing off); keyword arguments
    /// are passed on to ``Splio``.
    #[pyo3(signature = (**kwargs))]
    fn splio<'py>(slf: &Bound<'py, Self>, kwargs: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
        let class = slf.py().get_type::<crate::splio::Splio>();
        Self::client(slf, class, |s| s.splio_api_key().to_string(), kwargs)
    }

    /// An ``AsyncSplio`` client for this sandbox (pacing off).
    #[pyo3(signature = (**kwargs))]
    fn async_splio<'py>(slf: &Bound<'py, Self>, kwargs: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
        let class = slf.py().get_type::<crate::splio::AsyncSplio>();
        Self::client(slf, class, |s| s.splio_api_key().to_string(), kwargs)
    }

    /// Queues a fault for the next ``times`` requests to ``route`` (``"questionpro_points"``,
    /// ``"splio_authenticate"``, ``"splio_create_reward"`` or ``"splio_get_reward"``).
    ///
    /// ``status`` answers with that status and, unless ``body`` is given, the vendor's usual
    /// error body; ``headers`` (a dict or (name, value) pairs) and ``retry_after`` (seconds)
    /// add response headers; ``delay`` (seconds) waits before answering (a delay alone
    /// answers normally); ``action`` is ``"respond"``, ``"drop_connection"`` or
    /// ``"unreadable_body"``; ``process=True`` applies the request before answering with the
    /// fault.
    #[pyo3(signature = (route, *, status=None, body=None, headers=None, retry_after=None, delay=None,
        action="respond", process=false, times=1))]
    #[allow(clippy::too_many_arguments)]
    fn inject(
        &self,
        py: Python<'_>,
        route: &str,
        status: Option<u16>,
        body: Option<String>,
        headers: Option<&Bound<'_, PyAny>>,
        retry_after: Option<u64>,
        delay: Option<f64>,
        action: &str,
        process: bool,
        times: u32,
    ) -> PyResult<()> {
        let route = self::route(route)?;
        if let Some(s) = status {
            if !(100..=999).contains(&s) {
                return Err(PyValueError::new_err(format!("status must be between 100 and 999, not {s}")));
            }
        }
        let action = match action {
            "respond" => FaultAction::Respond,
            "drop_connection" => FaultAction::DropConnection,
            "unreadable_body" => FaultAction::UnreadableBody,
            other => {
                return Err(PyValueError::new_err(format!(
                    "action must be \"respond\", \"drop_connection\" or \"unreadable_body\", not {other:?}"
                )))
            }
        };
        let delay_ms = match delay {
            None => None,
            Some(0.0) => Some(0),
            Some(d) => Some(u64::try_from(seconds("delay", d)?.as_millis()).unwrap_or(u64::MAX)),
        };
        let fault = Fault {
            status,
            body,
            headers: self::headers(headers)?,
            retry_after,
            delay_ms,
            action,
            process,
            times: times.max(1),
        };
        self.with(py, |s| s.inject(route, fault))
    }

    /// Removes every queued fault.
    fn clear_faults(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |s| s.clear_faults())
    }

    /// How many requests ``route`` received (faulted ones included) since start or reset.
    fn request_count(&self, py: Python<'_>, route: &str) -> PyResult<u64> {
        let route = self::route(route)?;
        self.with(py, |s| s.request_count(route))
    }

    /// The recent requests to ``route``, oldest first, as dicts with ``method``, ``path``,
    /// ``headers`` (a list of (name, value) pairs) and ``body``. Keys and tokens are redacted.
    fn requests<'py>(&self, py: Python<'py>, route: &str) -> PyResult<Bound<'py, PyList>> {
        let route = self::route(route)?;
        let reqs = self.with(py, |s| s.requests(route))?;
        let out = PyList::empty(py);
        for r in reqs {
            let d = PyDict::new(py);
            d.set_item("method", r.method)?;
            d.set_item("path", r.path)?;
            d.set_item("headers", r.headers)?;
            d.set_item("body", r.body)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// Total points credited per panel member id: ``{member_id: points}``.
    fn ledger<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let ledger = self.with(py, |s| s.ledger())?;
        let d = PyDict::new(py);
        for (id, points) in ledger {
            d.set_item(id, points)?;
        }
        Ok(d)
    }

    /// Every credited row, in order, as dicts with ``panel_member_id``, ``points``,
    /// ``comments`` and ``request_id``.
    fn awards<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let awards = self.with(py, |s| s.awards())?;
        let out = PyList::empty(py);
        for a in awards {
            let d = PyDict::new(py);
            d.set_item("panel_member_id", a.panel_member_id)?;
            d.set_item("points", a.points)?;
            d.set_item("comments", a.comments)?;
            d.set_item("request_id", a.request_id)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// Every reward created, as Splio echoed it back, in creation order.
    fn rewards<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rewards = self.with(py, |s| s.rewards())?;
        convert::to_py(py, &serde_json::Value::Array(rewards))
    }

    /// Invalidates every Splio token issued so far: the next loyalty call answers 401 (and
    /// the client authenticates again by itself).
    fn revoke_tokens(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |s| s.revoke_tokens())
    }

    /// Clears the ledger, awards, rewards, faults, recorded requests and counters.
    fn reset(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |s| s.reset())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match py.detach(|| self.lock().as_ref().map(|s| s.url())) {
            Some(url) => format!("Sandbox(url={})", convert::repr(py, url)),
            None => "Sandbox(not running)".to_string(),
        }
    }
}
