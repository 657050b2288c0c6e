//! The one tokio runtime of the process, and the blocking wait of the sync API.
//!
//! Sync and async calls share pyo3-async-runtimes' tokio runtime (built on first use, not at
//! import). A sync call spawns its future there and waits on a channel with the GIL released,
//! so other Python threads run meanwhile and no asyncio loop is needed or touched: it works
//! inside a running loop (Jupyter). The wait wakes every [`TICK`] to let Python run its signal
//! handlers; when one raises (Ctrl-C), the task is aborted and the exception propagates.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::future::Future;
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::time::Duration;

use rewardkit::bulk::CancellationToken;

/// How often a blocked sync call checks for signals.
const TICK: Duration = Duration::from_millis(50);

/// The shared runtime.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Runs `fut` on the shared runtime and waits for its output with the GIL released.
/// A signal handler that raises (Ctrl-C) aborts the task, and its exception is returned.
pub fn wait<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = sync_channel(1);
    let task = runtime().spawn(async move {
        // The receiver is gone only when the caller was interrupted; nothing is left to tell.
        let _ = tx.send(fut.await);
    });
    py.detach(move || loop {
        match rx.recv_timeout(TICK) {
            Ok(out) => return Ok(out),
            Err(RecvTimeoutError::Timeout) => match Python::try_attach(|py| py.check_signals()) {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    task.abort();
                    return Err(e);
                }
                // The interpreter is shutting down: stop waiting.
                None => {
                    task.abort();
                    return Err(PyRuntimeError::new_err("rewardkit: the interpreter is shutting down"));
                }
            },
            Err(RecvTimeoutError::Disconnected) => {
                return Err(PyRuntimeError::new_err("rewardkit: the background task stopped before it finished"))
            }
        }
    })
}

/// Runs a bulk job's future like [`wait`], but a signal does not abandon it: the first one
/// (Ctrl-C) cancels `cancel`, so the job stops cleanly (chunks in flight finish and are
/// journaled) and its output is still awaited; a second one cancels `abort` (requests in
/// flight are abandoned and reported unknown). Returns the output and the first signal's
/// exception, if one was raised.
pub fn wait_interruptible<F, T>(
    py: Python<'_>,
    fut: F,
    cancel: CancellationToken,
    abort: CancellationToken,
) -> PyResult<(T, Option<PyErr>)>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = sync_channel(1);
    let task = runtime().spawn(async move {
        let _ = tx.send(fut.await);
    });
    py.detach(move || {
        let mut interrupted: Option<PyErr> = None;
        loop {
            match rx.recv_timeout(TICK) {
                Ok(out) => return Ok((out, interrupted)),
                Err(RecvTimeoutError::Timeout) => match Python::try_attach(|py| py.check_signals()) {
                    Some(Ok(())) => {}
                    Some(Err(e)) => {
                        if interrupted.is_none() {
                            cancel.cancel();
                            interrupted = Some(e);
                        } else {
                            abort.cancel();
                        }
                    }
                    None => {
                        task.abort();
                        return Err(PyRuntimeError::new_err("rewardkit: the interpreter is shutting down"));
                    }
                },
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(PyRuntimeError::new_err("rewardkit: the background task stopped before it finished"))
                }
            }
        }
    })
}

/// An awaitable that raises `err` when awaited: async methods report every error at `await`,
/// as an `async def` would.
pub fn failed(py: Python<'_>, err: PyErr) -> PyResult<Bound<'_, PyAny>> {
    pyo3_async_runtimes::tokio::future_into_py(py, async move { Err::<(), PyErr>(err) })
}
