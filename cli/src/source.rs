//! The points input as a stream of rows for the bulk engine: a [`RowSource`] over a file (or
//! standard input) that reads on its own thread, keeps each row's line number compactly, and
//! can be read again from the start (a file is reopened; standard input is copied to a
//! temporary file as it is read, so it can be too).
//!
//! Memory stays flat: rows pass through a small bounded channel, line numbers are kept as runs
//! (a new run only where the step between two rows' lines changes), and duplicate checks use
//! the core's compact [`DuplicateCheck`].

use crate::input::{self, Format};
use rewardkit::bulk::{CancellationToken, RowRead, RowSource};
use rewardkit::questionpro::{DuplicateCheck, PointsAward};
use rewardkit::{Error, FieldError};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Rows per message from the reading thread.
const BLOCK: usize = 1024;
/// Messages in flight between the reading thread and the engine.
const CHANNEL: usize = 4;
/// How many first sightings of a member id are remembered by line, to name it in a duplicate's message.
const FIRST_LINES_KEPT: usize = 65_536;

/// The line of each row, kept as runs: from row `row` on, row `row + k` is on line
/// `line + k * step`. A CSV or JSON-lines file without blank lines is one run, and so is a
/// JSON array whose elements all take the same number of lines.
#[derive(Debug, Default, Clone)]
pub struct LineMap {
    runs: Vec<Run>,
    rows: usize,
    last_line: usize,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    row: usize,
    line: usize,
    /// `None` while the run has one row.
    step: Option<usize>,
}

impl LineMap {
    /// Records the line of the next row (rows come in order, lines never decrease).
    pub fn push(&mut self, line: usize) {
        let row = self.rows;
        self.rows += 1;
        let delta = line.saturating_sub(self.last_line);
        self.last_line = line;
        match self.runs.last_mut() {
            Some(r) if r.step.is_none() => r.step = Some(delta),
            Some(r) if r.step == Some(delta) => {}
            _ => self.runs.push(Run { row, line, step: None }),
        }
    }

    /// The line of `row`, when it was recorded.
    pub fn line(&self, row: usize) -> Option<usize> {
        if row >= self.rows {
            return None;
        }
        let i = self.runs.partition_point(|r| r.row <= row).checked_sub(1)?;
        let r = self.runs[i];
        Some(r.line + (row - r.row) * r.step.unwrap_or(0))
    }

    /// Rows recorded.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Runs kept (for tests of compactness).
    #[cfg(test)]
    pub fn runs(&self) -> usize {
        self.runs.len()
    }
}

/// A problem with the input as a whole (a missing header, broken JSON, no rows at all). It is
/// handed to the engine as one last invalid "row", so the engine's validation stops the job
/// (or, sending the valid rows, reports it) like any bad row.
#[derive(Debug, Clone)]
pub struct InputProblem {
    /// The index the engine knows it by (one past the last real row).
    pub row: usize,
    pub line: Option<usize>,
    pub error: FieldError,
}

/// What the first pass over the input found, for printing the results.
#[derive(Debug, Default)]
pub struct ReadState {
    pub lines: LineMap,
    pub format: Option<Format>,
    pub ignored_columns: Vec<String>,
    /// The first pass read the input to its end.
    pub complete: bool,
    /// Rows of the first pass that were invalid (duplicates included).
    pub invalid: usize,
    pub problem: Option<InputProblem>,
}

impl ReadState {
    /// Real rows read in the first pass (the problem "row" not counted).
    pub fn rows(&self) -> usize {
        self.lines.len()
    }

    /// The line of an engine row index.
    pub fn line(&self, row: usize) -> Option<usize> {
        match &self.problem {
            Some(p) if p.row == row => p.line,
            _ => self.lines.line(row),
        }
    }

    /// Whether an engine row index is the input problem rather than a row.
    pub fn is_problem(&self, row: usize) -> bool {
        self.problem.as_ref().is_some_and(|p| p.row == row)
    }
}

/// Where the rows are: a file, or standard input copied to a temporary file as it is read.
pub struct Input {
    /// As given on the command line (`-` for standard input).
    pub arg: String,
    stdin_copy: Option<StdinCopy>,
}

struct StdinCopy {
    path: PathBuf,
    started: AtomicBool,
}

impl Input {
    pub fn new(arg: &str) -> io::Result<Input> {
        let stdin_copy = if arg == "-" {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            let path = std::env::temp_dir().join(format!("rewardkit-stdin-{}-{nanos}", std::process::id()));
            File::create(&path)?;
            Some(StdinCopy { path, started: AtomicBool::new(false) })
        } else {
            None
        };
        Ok(Input { arg: arg.to_string(), stdin_copy })
    }

    /// The input's name for messages.
    pub fn display(&self) -> &str {
        if self.arg == "-" {
            "standard input"
        } else {
            &self.arg
        }
    }

    /// Opens the input from its start. Standard input is read (and copied) the first time,
    /// its copy every time after. Reading fails once `stop` is set.
    pub fn open(&self, stop: Arc<AtomicBool>) -> io::Result<Box<dyn BufRead + Send>> {
        let raw: Box<dyn Read + Send> = match &self.stdin_copy {
            None => Box::new(File::open(&self.arg)?),
            Some(c) if !c.started.swap(true, Ordering::SeqCst) => {
                Box::new(Tee { inner: io::stdin(), copy: File::create(&c.path)? })
            }
            Some(c) => Box::new(File::open(&c.path)?),
        };
        Ok(Box::new(BufReader::with_capacity(64 * 1024, Stoppable { inner: raw, stop })))
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        if let Some(c) = &self.stdin_copy {
            let _ = std::fs::remove_file(&c.path);
        }
    }
}

/// Copies what it reads to a file (unbuffered: what was read is in the file at once).
struct Tee<R> {
    inner: R,
    copy: File,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// A reader that fails once told to stop, so a reading thread nobody listens to ends.
struct Stoppable<R> {
    inner: R,
    stop: Arc<AtomicBool>,
}

impl<R: Read> Read for Stoppable<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("stopped"));
        }
        self.inner.read(buf)
    }
}

/// Reads every row of `input` in order, as the engine will see it: `each(line, read)` per
/// row, with the field errors of invalid rows and of repeated member ids. Returns what the
/// reader found besides rows.
pub fn read_all(
    input: &Input,
    allow_duplicates: bool,
    stop: Arc<AtomicBool>,
    mut each: impl FnMut(usize, RowRead),
) -> io::Result<input::ReadSummary> {
    let reader = input.open(stop)?;
    let mut dups = Duplicates::new(allow_duplicates);
    let mut row = 0usize;
    input::read_rows(&input.arg, reader, |line, value| {
        let read = dups.check(row, line, to_row(value));
        row += 1;
        each(line, read);
    })
}

fn to_row(value: Result<Value, FieldError>) -> RowRead {
    match value {
        Ok(v) => PointsAward::from_value(&v),
        Err(e) => Err(vec![e]),
    }
}

/// The duplicate check, with the first line of a member id in the message.
struct Duplicates {
    check: Option<DuplicateCheck>,
    first_line: HashMap<i64, usize>,
}

impl Duplicates {
    fn new(allow: bool) -> Self {
        Duplicates { check: (!allow).then(DuplicateCheck::default), first_line: HashMap::new() }
    }

    fn check(&mut self, row: usize, line: usize, read: RowRead) -> RowRead {
        let (Some(check), Ok(award)) = (self.check.as_mut(), &read) else { return read };
        let id = award.panel_member_id;
        match check.check(id, row) {
            None => {
                if self.first_line.len() < FIRST_LINES_KEPT {
                    self.first_line.insert(id, line);
                }
                read
            }
            Some(mut e) => {
                e.description = match self.first_line.get(&id) {
                    Some(first) => format!(
                        "panelMemberID {id} already appears on line {first}; pass --allow-duplicates to award it twice."
                    ),
                    None => format!(
                        "panelMemberID {id} appears on an earlier line too; pass --allow-duplicates to award it twice."
                    ),
                };
                Err(vec![e])
            }
        }
    }
}

enum Msg {
    Rows(Vec<(usize, RowRead)>),
    End(io::Result<input::ReadSummary>),
}

/// What the first pass over the input found, for the notes printed before sending.
pub struct FirstPass {
    pub rows: usize,
    pub invalid: usize,
    pub format: Option<Format>,
    pub ignored_columns: Vec<String>,
    pub problem: bool,
}

/// Called once the first pass is over (with no lock held).
pub type OnFirstPass = Box<dyn Fn(&FirstPass) + Send>;

/// The engine's view of the input file.
pub struct FileSource {
    input: Arc<Input>,
    allow_duplicates: bool,
    state: Arc<Mutex<ReadState>>,
    cancel: CancellationToken,
    on_first_pass: Option<OnFirstPass>,
    /// Passes started.
    passes: usize,
    pass: Option<Pass>,
}

struct Pass {
    rx: Receiver<Msg>,
    stop: Arc<AtomicBool>,
    buf: VecDeque<(usize, RowRead)>,
    rows: usize,
    ended: bool,
}

impl Drop for Pass {
    fn drop(&mut self) {
        // The thread stops at its next read; it is not waited for (standard input may block).
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl FileSource {
    pub fn new(
        input: Arc<Input>,
        allow_duplicates: bool,
        state: Arc<Mutex<ReadState>>,
        cancel: CancellationToken,
        on_first_pass: Option<OnFirstPass>,
    ) -> Self {
        FileSource { input, allow_duplicates, state, cancel, on_first_pass, passes: 0, pass: None }
    }

    fn start_pass(&mut self) -> &mut Pass {
        let (tx, rx) = sync_channel(CHANNEL);
        let stop = Arc::new(AtomicBool::new(false));
        let (input, allow, stop2) = (self.input.clone(), self.allow_duplicates, stop.clone());
        std::thread::spawn(move || read_thread(&input, allow, stop2, &tx));
        self.passes += 1;
        self.pass.insert(Pass { rx, stop, buf: VecDeque::new(), rows: 0, ended: false })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReadState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The end of a pass: the input problem, if any, as one last invalid row.
    fn end_pass(&mut self, summary: input::ReadSummary, out: &mut Vec<RowRead>) {
        let first = self.passes == 1;
        let rows = self.pass.as_ref().map_or(0, |p| p.rows);
        let problem = match summary.problems.into_iter().next() {
            Some(p) => Some(InputProblem { row: rows, line: p.line, error: p.error }),
            None if rows == 0 => Some(InputProblem {
                row: 0,
                line: None,
                error: FieldError::new("rows", "is_blank", "There are no rows to send: the input is empty."),
            }),
            None => None,
        };
        if let Some(p) = &problem {
            out.push(Err(vec![p.error.clone()]));
        }
        if first {
            let mut st = self.lock();
            st.format = summary.format;
            st.ignored_columns = summary.ignored_columns;
            st.complete = true;
            st.problem = problem;
            let seen = FirstPass {
                rows: st.rows(),
                invalid: st.invalid,
                format: st.format,
                ignored_columns: st.ignored_columns.clone(),
                problem: st.problem.is_some(),
            };
            drop(st);
            if let Some(f) = self.on_first_pass.take() {
                f(&seen);
            }
        }
    }
}

fn read_thread(input: &Input, allow_duplicates: bool, stop: Arc<AtomicBool>, tx: &SyncSender<Msg>) {
    let mut block = Vec::with_capacity(BLOCK);
    let gone = AtomicBool::new(false);
    let result = read_all(input, allow_duplicates, stop.clone(), |line, read| {
        if gone.load(Ordering::Relaxed) {
            return;
        }
        block.push((line, read));
        if block.len() >= BLOCK && tx.send(Msg::Rows(std::mem::replace(&mut block, Vec::with_capacity(BLOCK)))).is_err()
        {
            // Nobody reads any more: stop reading the input too.
            gone.store(true, Ordering::Relaxed);
            stop.store(true, Ordering::Relaxed);
        }
    });
    if gone.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
        return;
    }
    if !block.is_empty() && tx.send(Msg::Rows(block)).is_err() {
        return;
    }
    let _ = tx.send(Msg::End(result));
}

impl RowSource for FileSource {
    fn read(&mut self, max: usize, out: &mut Vec<RowRead>) -> Result<bool, Error> {
        if self.pass.is_none() {
            self.start_pass();
        }
        let first = self.passes == 1;
        let start = out.len();
        let summary = loop {
            let pass = self.pass.as_mut().expect("a pass is under way");
            while out.len() - start < max {
                let Some((line, read)) = pass.buf.pop_front() else { break };
                if first {
                    let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                    st.lines.push(line);
                    st.invalid += usize::from(read.is_err());
                }
                pass.rows += 1;
                out.push(read);
            }
            if out.len() - start >= max {
                return Ok(true);
            }
            if pass.ended {
                return Ok(false);
            }
            // Wait for more, giving up when the job is cancelled (the input may be a pipe
            // that never ends).
            let msg = loop {
                if self.cancel.is_cancelled() {
                    pass.ended = true;
                    return Ok(false);
                }
                match pass.rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(m) => break Some(m),
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break None,
                }
            };
            pass.ended = matches!(msg, Some(Msg::End(_)) | None);
            match msg {
                Some(Msg::Rows(rows)) => pass.buf.extend(rows),
                Some(Msg::End(Ok(summary))) => break summary,
                Some(Msg::End(Err(e))) => {
                    return Err(Error::Config(format!("cannot read {}: {e}", self.input.display())));
                }
                None => {
                    return Err(Error::Config(format!("cannot read {}: the reader stopped", self.input.display())));
                }
            }
        };
        self.end_pass(summary, out);
        Ok(false)
    }

    fn rewind(&mut self) -> Result<bool, Error> {
        // Before anything was read, there is nothing to do; otherwise the next read starts over.
        if self.pass.as_ref().is_some_and(|p| p.rows > 0 || p.ended) {
            self.pass = None;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_runs_stay_few_and_answer_every_row() {
        let mut m = LineMap::default();
        // A CSV with a header, a blank line after row 2 and a two-line quoted cell at row 5.
        let lines = [2, 3, 4, 6, 7, 8, 10, 11, 12, 13];
        for l in lines {
            m.push(l);
        }
        for (row, l) in lines.iter().enumerate() {
            assert_eq!(m.line(row), Some(*l), "row {row}");
        }
        assert_eq!(m.line(lines.len()), None);
        assert!(m.runs() <= 3, "{m:?}");

        // A million rows, one a line: one run. A one-line JSON array: one run too.
        let mut big = LineMap::default();
        for i in 0..1_000_000 {
            big.push(i + 2);
        }
        assert_eq!((big.runs(), big.line(999_999)), (1, Some(1_000_001)));
        let mut flat = LineMap::default();
        for _ in 0..1000 {
            flat.push(1);
        }
        assert_eq!((flat.runs(), flat.line(999)), (1, Some(1)));
        // Elements of five lines each.
        let mut pretty = LineMap::default();
        for i in 0..1000 {
            pretty.push(2 + 5 * i);
        }
        assert_eq!((pretty.runs(), pretty.line(10)), (1, Some(52)));
    }

    fn source_over(text: &str, name: &str) -> (FileSource, Arc<Mutex<ReadState>>, PathBuf) {
        let path = std::env::temp_dir().join(format!("rewardkit-source-test-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let input = Arc::new(Input::new(path.to_str().unwrap()).unwrap());
        let state = Arc::new(Mutex::new(ReadState::default()));
        let src = FileSource::new(input, false, state.clone(), CancellationToken::new(), None);
        (src, state, path)
    }

    fn drain(src: &mut FileSource, max: usize) -> Vec<RowRead> {
        let mut out = Vec::new();
        while src.read(max, &mut out).unwrap() {}
        out
    }

    #[test]
    fn reads_rows_with_lines_and_reads_them_again_after_a_rewind() {
        let (mut src, state, path) = source_over("panelMemberID,points\n1,1\n\n2,x\n1,5\n3,3\n", "a.csv");
        assert!(src.rewind().unwrap());
        let first = drain(&mut src, 2);
        assert_eq!(first.len(), 4);
        assert!(first[0].is_ok() && first[3].is_ok());
        assert_eq!(first[1].as_ref().unwrap_err()[0].code, "wrong_type");
        let dup = &first[2].as_ref().unwrap_err()[0];
        assert_eq!(dup.code, "duplicate");
        assert!(dup.description.contains("already appears on line 2"), "{dup:?}");
        {
            let st = state.lock().unwrap();
            assert_eq!((st.rows(), st.invalid, st.complete), (4, 2, true));
            let lines: Vec<_> = (0..4).map(|r| st.line(r).unwrap()).collect();
            assert_eq!(lines, [2, 4, 5, 6]);
        }
        assert!(src.rewind().unwrap());
        let second = drain(&mut src, 1000);
        assert_eq!(first, second);
        assert_eq!(state.lock().unwrap().rows(), 4, "lines are recorded once");
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_problem_with_the_whole_input_is_one_last_invalid_row() {
        let (mut src, state, path) = source_over("[\n{\"panelMemberID\": 1, \"points\": 2},\n{oops}\n]", "b.json");
        let rows = drain(&mut src, 10);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].as_ref().unwrap_err()[0].code, "invalid_json");
        let st = state.lock().unwrap();
        let p = st.problem.as_ref().unwrap();
        assert_eq!((p.row, p.line, st.rows()), (1, Some(3), 1));
        assert!(st.is_problem(1) && !st.is_problem(0));
        drop(st);
        let _ = std::fs::remove_file(path);

        let (mut src, state, path) = source_over("\n\n", "c.csv");
        let rows = drain(&mut src, 10);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].as_ref().unwrap_err()[0].code, "is_blank");
        assert_eq!(state.lock().unwrap().rows(), 0);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_cancelled_job_ends_the_stream() {
        let (mut src, _state, path) = source_over("panelMemberID,points\n1,1\n2,2\n", "d.csv");
        src.cancel.cancel();
        let mut out = Vec::new();
        assert!(!src.read(10, &mut out).unwrap());
        let _ = std::fs::remove_file(path);
    }
}
