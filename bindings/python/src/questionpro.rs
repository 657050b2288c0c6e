//! `QuestionPro` and `AsyncQuestionPro`, and the result types of a points request.

use crate::convert;
use crate::errors::{self, IntoPyResult};
use crate::options::{apply_transport, Pacing, Transport};
use crate::{bulk, rows, runtime};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rewardkit::questionpro::{self as core, Datacenter};
use std::path::PathBuf;

/// One item of the answer's `skipped` list: a panel member the vendor did not credit.
///
/// `raw` is the item exactly as QuestionPro sent it (its shape is not documented);
/// `panel_member_id` and `row` (the index of the row you passed) are filled in when the item
/// names a member.
#[pyclass(module = "rewardkit", name = "SkippedItem", frozen)]
pub struct SkippedItem {
    /// The item as QuestionPro sent it.
    #[pyo3(get)]
    raw: Py<PyAny>,
    /// The member the item names, when it names one.
    #[pyo3(get)]
    panel_member_id: Option<i64>,
    /// The index of the row it refers to, when known.
    #[pyo3(get)]
    row: Option<usize>,
}

#[pymethods]
impl SkippedItem {
    /// The item as a plain dict: `raw`, `panel_member_id`, `row`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("raw", self.raw.bind(py))?;
        d.set_item("panel_member_id", self.panel_member_id)?;
        d.set_item("row", self.row)?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "SkippedItem(panel_member_id={}, row={}, raw={})",
            opt(self.panel_member_id),
            opt(self.row),
            self.raw.bind(py).repr()?
        ))
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "None".to_string(), |v| v.to_string())
}

/// The answer to one points request: how many rows QuestionPro credited, the rows it
/// skipped (members not in the panel, ...) and its request id.
#[pyclass(module = "rewardkit", name = "AwardResult", frozen)]
pub struct AwardResult {
    /// How many rows were credited.
    #[pyo3(get)]
    success_count: u64,
    /// The rows QuestionPro skipped, as `SkippedItem`s.
    #[pyo3(get)]
    skipped: Py<PyList>,
    /// QuestionPro's request id, for support.
    #[pyo3(get)]
    request_id: Option<String>,
}

#[pymethods]
impl AwardResult {
    /// The result as plain data: `success_count`, `skipped` (a list of dicts), `request_id`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("success_count", self.success_count)?;
        let skipped = PyList::empty(py);
        for item in self.skipped.bind(py).iter() {
            skipped.append(item.call_method0("to_dict")?)?;
        }
        d.set_item("skipped", skipped)?;
        d.set_item("request_id", self.request_id.as_deref())?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "AwardResult(success_count={}, skipped={}, request_id={})",
            self.success_count,
            self.skipped.bind(py).repr()?,
            convert::repr(py, self.request_id.as_deref())
        ))
    }
}

fn award_result(py: Python<'_>, r: core::AwardResult) -> PyResult<AwardResult> {
    let skipped = PyList::empty(py);
    for s in r.skipped {
        let item =
            SkippedItem { raw: convert::to_py(py, &s.raw)?.unbind(), panel_member_id: s.panel_member_id, row: s.row };
        skipped.append(Bound::new(py, item)?)?;
    }
    Ok(AwardResult { success_count: r.success_count, skipped: skipped.unbind(), request_id: r.request_id })
}

/// What both client classes hold.
struct Client {
    inner: core::QuestionPro,
    allow_duplicates: bool,
}

impl Client {
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        api_key: Option<String>,
        datacenter: &str,
        base_url: Option<String>,
        transport: Transport,
        allow_duplicates: bool,
    ) -> PyResult<Client> {
        let dc: Datacenter = datacenter.parse().or_raise(py)?;
        let mut b = core::QuestionPro::builder().datacenter(dc).allow_duplicates(allow_duplicates);
        if let Some(k) = api_key {
            b = b.api_key(k);
        }
        if let Some(u) = base_url {
            b = b.base_url(u);
        }
        let inner = apply_transport!(b, transport).build().or_raise(py)?;
        Ok(Client { inner, allow_duplicates })
    }

    fn repr(&self, py: Python<'_>, class: &str) -> String {
        format!("{class}(base_url={})", convert::repr(py, self.inner.base_url()))
    }
}

/// The QuestionPro client (blocking calls).
///
/// ``QuestionPro(api_key=None, *, datacenter="com", base_url=None, timeout=30.0,
/// connect_timeout=10.0, max_retries=3, rate_limit=True, allow_duplicates=False,
/// max_retry_wait=120.0, backoff=0.5, max_backoff=30.0)``
///
/// The key comes from ``QUESTIONPRO_API_KEY`` when ``api_key`` is not given. ``datacenter``
/// is one of com, eu, ca, au, ae, sg; ``base_url`` (a proxy, another host, the sandbox) wins
/// over it. Times are in seconds. ``rate_limit`` paces requests: ``True`` for QuestionPro's
/// published limit (300 calls per 60 s per key), ``None``/``False`` for no pacing, or
/// ``(calls, per_seconds)``. ``allow_duplicates`` lets one member appear on several rows.
///
/// Calls release the GIL while they wait, need no asyncio loop (they work in Jupyter), can be
/// interrupted with Ctrl-C, and one client can be shared by threads.
#[pyclass(module = "rewardkit", name = "QuestionPro", frozen)]
pub struct QuestionPro {
    client: Client,
}

/// The QuestionPro client for asyncio: the same options as ``QuestionPro``, and coroutine
/// methods to await on your own event loop.
#[pyclass(module = "rewardkit", name = "AsyncQuestionPro", frozen)]
pub struct AsyncQuestionPro {
    client: Client,
}

#[pymethods]
impl QuestionPro {
    #[new]
    #[pyo3(signature = (api_key=None, *, datacenter="com", base_url=None, timeout=30.0, connect_timeout=10.0,
        max_retries=3, rate_limit=Pacing::Vendor, allow_duplicates=false, max_retry_wait=120.0, backoff=0.5,
        max_backoff=30.0))]
    #[pyo3(
        text_signature = "(api_key=None, *, datacenter='com', base_url=None, timeout=30.0, connect_timeout=10.0, max_retries=3, rate_limit=True, allow_duplicates=False, max_retry_wait=120.0, backoff=0.5, max_backoff=30.0)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        api_key: Option<String>,
        datacenter: &str,
        base_url: Option<String>,
        timeout: f64,
        connect_timeout: f64,
        max_retries: i64,
        rate_limit: Pacing,
        allow_duplicates: bool,
        max_retry_wait: f64,
        backoff: f64,
        max_backoff: f64,
    ) -> PyResult<Self> {
        let t =
            Transport::read(timeout, connect_timeout, max_retries, max_retry_wait, backoff, max_backoff, rate_limit)?;
        Ok(QuestionPro { client: Client::new(py, api_key, datacenter, base_url, t, allow_duplicates)? })
    }

    /// The base URL requests go to.
    #[getter]
    fn base_url(&self) -> String {
        self.client.inner.base_url()
    }

    /// Awards points: sends one request for ``rows`` and returns an ``AwardResult``.
    ///
    /// ``rows`` is a list (or any iterable, or a pandas DataFrame) of dicts with
    /// ``panel_member_id`` (or ``panelMemberID``), ``points`` (negative deducts) and optional
    /// ``comments``, or of tuples ``(panel_member_id, points[, comments])``. Every row is
    /// checked first: if any is bad, ``ValidationError`` lists every problem (with its row
    /// index) and nothing is sent. The request is re-sent only when it provably was not
    /// processed; when that cannot be known, ``OutcomeUnknownError`` is raised.
    fn award_points(&self, py: Python<'_>, rows: &Bound<'_, PyAny>) -> PyResult<AwardResult> {
        let rows = rows::to_send(rows, self.client.allow_duplicates)?;
        let client = self.client.inner.clone();
        let res = runtime::wait(py, async move { client.award_points(&rows).await })?;
        award_result(py, res.or_raise(py)?)
    }

    /// Awards points to every row of ``rows`` in a bulk job, and returns a ``BulkReport``.
    ///
    /// ``bulk_award(rows, *, batch_size=500, concurrency=4, on_invalid="stop",
    /// allow_duplicates=None, journal=None, resend_unknown=False, progress=None)``
    ///
    /// ``rows`` is a list or tuple of rows (dicts or tuples, as ``award_points`` takes), any
    /// iterable (a generator is streamed: memory stays flat however many rows it yields), or a
    /// pandas / polars DataFrame (read by column, with ``panel_member_id`` / ``panelMemberID``
    /// / ``panelMemberId``, ``points`` and optional ``comments`` columns). Rows are cut into
    /// requests of ``batch_size`` rows, ``concurrency`` of them in flight at once, paced by the
    /// client's rate limiter. Every row ends with exactly one outcome: ``awarded``, ``skipped``,
    /// ``invalid``, ``rejected``, ``failed`` or ``unknown`` (sent, no definitive answer: never
    /// re-sent by itself).
    ///
    /// ``on_invalid="stop"`` checks every row first and, if any is bad, raises
    /// ``ValidationError`` (every problem, each with its ``row``) without sending anything;
    /// ``"send_valid"`` sends the good rows and reports the bad ones as ``invalid``.
    /// ``allow_duplicates`` (default: the client's setting) lets one member appear on several
    /// rows. ``journal`` (a path) records each chunk's state in an SQLite file: re-running the
    /// same job with it sends only what was not confirmed; chunks left unknown are reported,
    /// not re-sent, unless ``resend_unknown=True``. A journal of another job is refused.
    /// ``progress`` is ``True`` (a tqdm bar, when tqdm is installed) or a callable given a
    /// ``Progress`` after each chunk (its exceptions are logged to the ``rewardkit`` logger
    /// and the job goes on).
    ///
    /// A fatal error (401, 403, a spent quota, a refused journal) stops the job and raises its
    /// exception class with ``.report``, the partial ``BulkReport``. Ctrl-C stops the job
    /// cleanly (requests in flight finish and are journaled; nothing more is sent) and raises
    /// ``KeyboardInterrupt`` with ``.report`` (``stopped_by["class"] == "Interrupted"``); a
    /// second Ctrl-C abandons the requests in flight (reported ``unknown``). The GIL is
    /// released while the job runs.
    #[pyo3(signature = (rows, *, batch_size=500, concurrency=4, on_invalid="stop", allow_duplicates=None,
        journal=None, resend_unknown=false, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn bulk_award(
        &self,
        py: Python<'_>,
        rows: &Bound<'_, PyAny>,
        batch_size: i64,
        concurrency: i64,
        on_invalid: &str,
        allow_duplicates: Option<bool>,
        journal: Option<PathBuf>,
        resend_unknown: bool,
        progress: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bulk::BulkReport> {
        let job = bulk::prepare(
            py,
            &self.client.inner,
            self.client.allow_duplicates,
            rows,
            batch_size,
            concurrency,
            on_invalid,
            allow_duplicates,
            journal,
            resend_unknown,
            progress,
        )?;
        bulk::run_sync(py, job)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        self.client.repr(py, "QuestionPro")
    }
}

#[pymethods]
impl AsyncQuestionPro {
    #[new]
    #[pyo3(signature = (api_key=None, *, datacenter="com", base_url=None, timeout=30.0, connect_timeout=10.0,
        max_retries=3, rate_limit=Pacing::Vendor, allow_duplicates=false, max_retry_wait=120.0, backoff=0.5,
        max_backoff=30.0))]
    #[pyo3(
        text_signature = "(api_key=None, *, datacenter='com', base_url=None, timeout=30.0, connect_timeout=10.0, max_retries=3, rate_limit=True, allow_duplicates=False, max_retry_wait=120.0, backoff=0.5, max_backoff=30.0)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        api_key: Option<String>,
        datacenter: &str,
        base_url: Option<String>,
        timeout: f64,
        connect_timeout: f64,
        max_retries: i64,
        rate_limit: Pacing,
        allow_duplicates: bool,
        max_retry_wait: f64,
        backoff: f64,
        max_backoff: f64,
    ) -> PyResult<Self> {
        let t =
            Transport::read(timeout, connect_timeout, max_retries, max_retry_wait, backoff, max_backoff, rate_limit)?;
        Ok(AsyncQuestionPro { client: Client::new(py, api_key, datacenter, base_url, t, allow_duplicates)? })
    }

    /// The base URL requests go to.
    #[getter]
    fn base_url(&self) -> String {
        self.client.inner.base_url()
    }

    /// Awards points (awaitable): see ``QuestionPro.award_points``. Errors, including a
    /// ``ValidationError`` for bad rows, are raised when the call is awaited.
    fn award_points<'py>(&self, py: Python<'py>, rows: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let rows = match rows::to_send(rows, self.client.allow_duplicates) {
            Ok(rows) => rows,
            Err(e) => return runtime::failed(py, e),
        };
        let client = self.client.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let res = client.award_points(&rows).await;
            Python::attach(|py| award_result(py, res.or_raise(py)?))
        })
    }

    /// Awards points to every row of ``rows`` in a bulk job (awaitable, on the caller's
    /// loop): the same arguments and report as ``QuestionPro.bulk_award``. The job starts when
    /// the call is awaited; errors, with ``.report``, are raised there. Cancelling the awaiting
    /// task is the async Ctrl-C: nothing more is sent, requests in flight finish and are
    /// journaled, then ``asyncio.CancelledError`` is raised with ``.report``; a second cancel
    /// abandons those requests (reported ``unknown``). The ``progress`` callback is called
    /// from a worker thread (with the GIL), not from the event loop.
    #[pyo3(signature = (rows, *, batch_size=500, concurrency=4, on_invalid="stop", allow_duplicates=None,
        journal=None, resend_unknown=false, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn bulk_award<'py>(
        &self,
        py: Python<'py>,
        rows: &Bound<'py, PyAny>,
        batch_size: i64,
        concurrency: i64,
        on_invalid: &str,
        allow_duplicates: Option<bool>,
        journal: Option<PathBuf>,
        resend_unknown: bool,
        progress: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let job = bulk::prepare(
            py,
            &self.client.inner,
            self.client.allow_duplicates,
            rows,
            batch_size,
            concurrency,
            on_invalid,
            allow_duplicates,
            journal,
            resend_unknown,
            progress,
        );
        match job {
            Ok(job) => bulk::run_async(py, job),
            Err(e) => runtime::failed(py, e),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        self.client.repr(py, "AsyncQuestionPro")
    }
}

/// Checks points rows without sending anything and returns every problem as a list of
/// ``FieldError`` (each with its ``row`` index); an empty list means every row is good.
/// Rows are read exactly as ``QuestionPro.award_points`` reads them.
#[pyfunction]
#[pyo3(signature = (rows, *, allow_duplicates=false))]
pub fn validate_rows<'py>(rows: &Bound<'py, PyAny>, allow_duplicates: bool) -> PyResult<Bound<'py, PyList>> {
    let (_, errs) = rows::read(rows, allow_duplicates, false)?;
    errors::field_errors(rows.py(), &errs)
}
