//! The core's request log (`tracing`, target `rewardkit`) sent to Python's `logging`, logger
//! `rewardkit`: `logging.basicConfig(level=logging.DEBUG)` shows each request, attempt and
//! status.
//!
//! Events of other targets are never looked at. For ours, the logger is asked first whether
//! it is enabled for the level (Python caches that answer), and only then is a message built.
//! The core never puts a key or token in these events.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn is_ours(meta: &Metadata<'_>) -> bool {
    let t = meta.target();
    t == "rewardkit" || t.starts_with("rewardkit::")
}

fn py_level(level: &Level) -> u8 {
    match *level {
        Level::TRACE => 5,
        Level::DEBUG => 10,
        Level::INFO => 20,
        Level::WARN => 30,
        Level::ERROR => 40,
    }
}

/// Builds `message key=value ...` from an event's fields.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else if !value.is_empty() {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

struct PythonLogging;

impl<S: Subscriber> Layer<S> for PythonLogging {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if is_ours(meta) {
            // Whether Python wants it can change at any time: ask for each event.
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        is_ours(meta)
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = py_level(event.metadata().level());
        // Not attached during interpreter shutdown: the event is dropped.
        let _ = Python::try_attach(|py| -> PyResult<()> {
            let logger = LOGGER
                .get_or_try_init(py, || {
                    py.import("logging")?.call_method1("getLogger", ("rewardkit",)).map(Bound::unbind)
                })?
                .bind(py);
            if !logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
                return Ok(());
            }
            let mut line = Line::default();
            event.record(&mut line);
            logger.call_method1("log", (level, format!("{}{}", line.message, line.fields)))?;
            Ok(())
        });
    }
}

/// Routes the core's events to Python's `logging`. Called once, at import; cheap (the logger
/// is looked up on the first event). If this library's global subscriber was already set,
/// the existing one is kept.
pub fn install() {
    let subscriber = tracing_subscriber::registry().with(PythonLogging);
    let _ = tracing::subscriber::set_global_default(subscriber);
}
