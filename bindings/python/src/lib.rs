//! Python bindings of rewardkit: the native module `rewardkit._native`.
//!
//! The bindings translate only: rows and payloads go from Python objects into the core's
//! types, and results and errors come back as Python objects. Validation, retries, pacing and
//! the vendors' rules all stay in the core.
//!
//! - `questionpro` / `splio`: the sync and async clients and their result types;
//! - `bulk`: `bulk_award` (the core's bulk engine fed from Python rows) and its report;
//! - `rows`: points rows read from Python objects into the core's cells;
//! - `convert`: Python values to JSON and back;
//! - `errors`: the one module that maps core errors to the Python exception classes;
//! - `runtime`: the shared tokio runtime and the interruptible sync wait;
//! - `sandbox`: the offline server; `logging`: the request log into Python's `logging`.

use pyo3::prelude::*;

mod bulk;
mod convert;
mod errors;
mod logging;
mod options;
mod questionpro;
mod rows;
mod runtime;
mod sandbox;
mod splio;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logging::install();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<questionpro::QuestionPro>()?;
    m.add_class::<questionpro::AsyncQuestionPro>()?;
    m.add_class::<questionpro::AwardResult>()?;
    m.add_class::<questionpro::SkippedItem>()?;
    m.add_class::<bulk::BulkReport>()?;
    m.add_class::<bulk::ChunkReport>()?;
    m.add_class::<bulk::RowOutcome>()?;
    m.add_class::<bulk::Totals>()?;
    m.add_class::<bulk::Progress>()?;
    m.add_class::<bulk::AsyncBulkJob>()?;
    m.add_class::<splio::Splio>()?;
    m.add_class::<splio::AsyncSplio>()?;
    m.add_class::<splio::Reward>()?;
    m.add_class::<splio::CustomField>()?;
    m.add_class::<sandbox::Sandbox>()?;
    m.add_function(wrap_pyfunction!(questionpro::validate_rows, m)?)?;
    m.add_function(wrap_pyfunction!(splio::validate_reward, m)?)?;
    Ok(())
}
