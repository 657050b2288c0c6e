//! Node bindings of rewardkit (napi-rs).
//!
//! The native layer is thin: it translates options, rows and rewards between JavaScript's
//! camelCase and the core's names, runs the core's futures on napi's one tokio runtime, and
//! hands every core error to JavaScript as a tagged payload (see [`errors`]). The JavaScript
//! wrapper (`index.js`, `errors.js`) turns those payloads into the error classes.
//!
//! No future touches the native object it came from. A method that answers with a promise
//! takes what it needs (a clone of the client, a channel) synchronously and hands the runtime
//! a future that owns it: napi's `async fn(&self)` borrows `self` for the whole future, and
//! terminating a worker frees its objects while their requests are still in flight (a crash
//! seen in `tests/node/workers.test.js`).
//!
//! Values cross from JavaScript as JSON text (made by the wrapper, which writes `Date`s and
//! `BigInt`s the way the core expects), so every integer arrives exactly and the core's own
//! readers (`rows_from_values`, `validate_reward_value`) apply every vendor rule.

// In the unit-test build napi-derive registers no exports, so the exported functions look unused.
#![cfg_attr(test, allow(dead_code))]

mod bulk;
mod convert;
mod errors;
mod questionpro;
mod sandbox;
mod splio;

use std::sync::OnceLock;

/// Logs the core's requests to stderr when `REWARDKIT_LOG` is set (e.g. `REWARDKIT_LOG=debug`
/// or any `tracing` filter such as `rewardkit=debug`). Runs once per process.
pub(crate) fn init_logging() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let Ok(filter) = std::env::var("REWARDKIT_LOG") else { return };
        if filter.trim().is_empty() {
            return;
        }
        let filter = match filter.trim() {
            // A bare level applies to rewardkit only, not to every crate underneath it.
            level @ ("error" | "warn" | "info" | "debug" | "trace") => format!("rewardkit={level}"),
            other => other.to_string(),
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
    });
}
