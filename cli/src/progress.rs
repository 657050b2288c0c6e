//! Progress of a points job on stderr: a bar when stderr is a terminal, plain lines otherwise
//! (one per batch for small jobs; for large ones one per 5 % plus one per batch that had a
//! problem). Nothing in JSON mode.

use crate::output::{err, scrub};
use crate::source::ReadState;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rewardkit::bulk::{ChunkReport, Outcome, Progress, Totals};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Up to this many batches, the plain output has a line per batch.
const LINE_PER_BATCH_UP_TO: usize = 100;

/// Where progress and notes go.
pub struct Ui {
    quiet: bool,
    tty: bool,
    batch_size: usize,
    state: Mutex<UiState>,
}

#[derive(Default)]
struct UiState {
    bar: Option<ProgressBar>,
    last: Totals,
    last_step: usize,
    batches_seen: usize,
}

impl Ui {
    /// `quiet` (JSON mode) prints no progress at all.
    pub fn new(quiet: bool, batch_size: usize) -> Arc<Ui> {
        Arc::new(Ui { quiet, tty: std::io::stderr().is_terminal(), batch_size, state: Mutex::new(UiState::default()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, UiState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Prints a line on stderr, above the bar when there is one. Printed in JSON mode too
    /// (stdout holds the JSON).
    pub fn note(&self, text: impl AsRef<str>) {
        let st = self.lock();
        match &st.bar {
            Some(bar) => bar.println(scrub(text.as_ref())),
            None => err(text),
        }
    }

    /// Removes the bar (before the summary is printed).
    pub fn finish(&self) {
        if let Some(bar) = self.lock().bar.take() {
            bar.finish_and_clear();
        }
    }

    /// Shows where the job stands after a chunk.
    pub fn progress(&self, p: &Progress, read: &Mutex<ReadState>) {
        if self.quiet {
            return;
        }
        let Some(chunk) = &p.chunk else { return };
        let mut st = self.lock();
        // This chunk's rows by outcome: the change in the running totals (invalid rows, which
        // belong to no chunk, left out).
        let delta = [
            (Outcome::Awarded, p.totals.awarded.saturating_sub(st.last.awarded)),
            (Outcome::Skipped, p.totals.skipped.saturating_sub(st.last.skipped)),
            (Outcome::Rejected, p.totals.rejected.saturating_sub(st.last.rejected)),
            (Outcome::Failed, p.totals.failed.saturating_sub(st.last.failed)),
            (Outcome::Unknown, p.totals.unknown.saturating_sub(st.last.unknown)),
        ];
        st.last = p.totals;
        st.batches_seen += 1;
        // The total is known after a validation pass, which left only valid rows.
        let batches = p.rows_total.map(|t| t.div_ceil(self.batch_size.max(1)));
        let problem = matches!(chunk.outcome, Outcome::Rejected | Outcome::Failed | Outcome::Unknown);
        let line = || {
            let read = read.lock().unwrap_or_else(|p| p.into_inner());
            batch_line(chunk, batches, &delta, &read)
        };

        if self.tty {
            if st.bar.is_none() {
                st.bar = Some(new_bar(p.rows_total));
            }
            let bar = st.bar.as_ref().expect("just made");
            if let Some(t) = p.rows_total {
                bar.set_length(t as u64);
            }
            bar.set_position(p.rows_done as u64);
            let counts = counts_text(&p.totals);
            let sep = if counts.is_empty() { "" } else { ", " };
            bar.set_message(format!("{:.0} rows/s{sep}{counts}", p.rate));
            if problem {
                bar.println(scrub(&line()));
            }
            return;
        }

        let per_batch = batches.is_some_and(|b| b <= LINE_PER_BATCH_UP_TO);
        if per_batch || problem {
            err(line());
        }
        if !per_batch {
            // One line per 5 % when the total is known, per 50 batches when it is not.
            let step = match p.rows_total {
                Some(t) if t > 0 => p.rows_done * 20 / t,
                _ => st.batches_seen / 50,
            };
            if step > st.last_step {
                st.last_step = step;
                err(progress_line(p));
            }
        }
    }
}

fn new_bar(total: Option<usize>) -> ProgressBar {
    let bar = match total {
        Some(t) => ProgressBar::new(t as u64),
        None => ProgressBar::no_length(),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows ({eta} left) {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// `12 skipped, 1 failed` — the outcomes other than awarded that occurred so far.
fn counts_text(t: &Totals) -> String {
    let parts: Vec<String> = [
        ("skipped", t.skipped),
        ("invalid", t.invalid),
        ("rejected", t.rejected),
        ("failed", t.failed),
        ("unknown", t.unknown),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(k, n)| format!("{n} {k}"))
    .collect();
    parts.join(", ")
}

/// `batch 3/20: lines 202-301: 99 awarded, 1 skipped [request id X]: message`
pub fn batch_line(c: &ChunkReport, batches: Option<usize>, delta: &[(Outcome, usize)], read: &ReadState) -> String {
    let no = c.chunk + 1;
    let head = match batches {
        Some(b) => format!("batch {no}/{b}"),
        None => format!("batch {no}"),
    };
    let span = match (read.line(c.first_row), read.line(c.last_row)) {
        (Some(a), Some(b)) if a == b => format!("line {a}"),
        (Some(a), Some(b)) => format!("lines {a}-{b}"),
        _ => format!("rows {}-{}", c.first_row, c.last_row),
    };
    let counts: Vec<String> =
        delta.iter().filter(|(_, n)| *n > 0).map(|(o, n)| format!("{n} {}", o.as_str())).collect();
    let mut s = format!("{head}: {span}: {}", counts.join(", "));
    if c.from_journal {
        s.push_str(" (recorded by an earlier run; not sent again)");
    }
    if let Some(id) = &c.request_id {
        s.push_str(&format!(" [request id {id}]"));
    }
    if let Some(msg) = &c.message {
        s.push_str(&format!(": {msg}"));
    }
    s
}

/// `progress: 45% (4,500 of 10,000 rows, 45 requests, 1,234 rows/s, about 5 s left)`
fn progress_line(p: &Progress) -> String {
    let mut s = match p.rows_total {
        Some(t) if t > 0 => format!("progress: {}% ({} of {t} rows", p.rows_done * 100 / t, p.rows_done),
        _ => format!("progress: {} rows", p.rows_done),
    };
    s.push_str(&format!(", {} requests, {:.0} rows/s", p.requests, p.rate));
    if let Some(eta) = p.eta {
        s.push_str(&format!(", about {} s left", eta.as_secs()));
    }
    s.push(')');
    let counts = counts_text(&p.totals);
    if !counts.is_empty() {
        s.push_str(&format!(": {counts}"));
    }
    s
}
