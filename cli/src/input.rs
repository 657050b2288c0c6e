//! Reading points rows from a CSV file, a JSON array or JSON lines, streaming, and keeping
//! each row's line number in the file.
//!
//! The reader only turns text into JSON values; what a row must hold is decided by the core
//! (`PointsAward::from_value`). So a CSV cell that holds an integer becomes a JSON integer, any
//! other text stays a string (and the core reports it as `wrong_type`), and an empty cell is
//! left out.

use rewardkit::FieldError;
use serde::de::{DeserializeSeed, Deserializer as _, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, Read};
use std::path::Path;
use std::rc::Rc;

/// How the rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonArray,
    JsonLines,
}

/// A problem that concerns the file as a whole rather than one row (a missing header column,
/// broken JSON syntax), at a line when one is known.
#[derive(Debug, Clone)]
pub struct FileProblem {
    pub line: Option<usize>,
    pub error: FieldError,
}

/// What reading found besides the rows.
#[derive(Debug, Default)]
pub struct ReadSummary {
    pub format: Option<Format>,
    /// Problems that are not tied to one row.
    pub problems: Vec<FileProblem>,
    /// CSV columns that are not read.
    pub ignored_columns: Vec<String>,
}

fn format_from_extension(path: &str) -> Option<&'static str> {
    let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "csv" => Some("csv"),
        "json" => Some("json"),
        "jsonl" | "ndjson" => Some("jsonl"),
        _ => None,
    }
}

/// Reads every row of `path`, calling `each(line, value)` for each one in file order; a row
/// that could not be read as JSON comes as a field error. Fails only on I/O errors.
pub fn read_rows(
    path: &str,
    mut reader: Box<dyn BufRead>,
    mut each: impl FnMut(usize, Result<Value, FieldError>),
) -> io::Result<ReadSummary> {
    let mut summary = ReadSummary::default();
    let Some((first, skipped_lines)) = sniff(&mut reader)? else {
        return Ok(summary);
    };
    let format = match (format_from_extension(path), first) {
        (Some("csv"), _) => Format::Csv,
        (_, b'[') => Format::JsonArray,
        (_, b'{') => Format::JsonLines,
        (Some(_), _) => Format::JsonLines,
        (None, _) => Format::Csv,
    };
    summary.format = Some(format);
    match format {
        Format::Csv => read_csv(reader, skipped_lines, &mut each, &mut summary)?,
        Format::JsonLines => read_json_lines(reader, skipped_lines, &mut each)?,
        Format::JsonArray => read_json_array(reader, skipped_lines, &mut each, &mut summary)?,
    }
    Ok(summary)
}

/// Skips a byte-order mark and leading white space; returns the first other byte and how many
/// line breaks were skipped, or `None` for empty input.
fn sniff(r: &mut Box<dyn BufRead>) -> io::Result<Option<(u8, usize)>> {
    let mut lines = 0;
    let mut at_start = true;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        if at_start {
            at_start = false;
            if buf.starts_with(b"\xEF\xBB\xBF") {
                r.consume(3);
                continue;
            }
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let first = buf[i];
                lines += count_newlines(&buf[..i]);
                // Keep the partial line (spaces before the first character) for CSV's sake:
                // only whole blank lines are consumed.
                let keep_from = buf[..i].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
                r.consume(keep_from);
                return Ok(Some((first, lines)));
            }
            None => {
                let n = buf.len();
                lines += count_newlines(buf);
                r.consume(n);
            }
        }
    }
}

fn count_newlines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

// ---------------------------------------------------------------------------------------
// CSV

#[derive(Clone, Copy, PartialEq)]
enum Column {
    Id,
    Points,
    Comments,
    Ignored,
}

fn column_of(header: &str) -> Column {
    let norm: String = header.chars().filter(|c| !matches!(c, '_' | '-' | ' ')).flat_map(char::to_lowercase).collect();
    match norm.as_str() {
        "panelmemberid" => Column::Id,
        "points" => Column::Points,
        "comments" | "comment" => Column::Comments,
        _ => Column::Ignored,
    }
}

fn key_of(c: Column) -> &'static str {
    match c {
        Column::Id => "panelMemberID",
        Column::Points => "points",
        _ => "comments",
    }
}

/// A cell of a number column: an integer when it reads as one, a (non-integer) number when it
/// reads as one, otherwise the text itself.
fn number_cell(raw: &str) -> Value {
    let t = raw.trim();
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = t.parse::<i64>() {
            return Value::Number(n.into());
        }
    }
    let numeric = t.bytes().any(|b| b.is_ascii_digit())
        && t.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    if numeric {
        if let Some(n) = t.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(raw.to_string())
}

/// Where each CSV record starts. The csv crate reports the line a record's parse began on,
/// which is off after blank lines, so the bytes are followed here as they stream by with the
/// same quoting rules (RFC 4180, double quotes, `""` inside quotes).
#[derive(Clone, Copy, PartialEq)]
enum Scan {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    QuoteInQuoted,
}

struct RecordStarts<R> {
    inner: R,
    state: Scan,
    line: usize,
    starts: Rc<RefCell<VecDeque<usize>>>,
}

impl<R: Read> Read for RecordStarts<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if self.state == Scan::StartRecord {
                if b == b'\n' || b == b'\r' {
                    self.line += usize::from(b == b'\n');
                    continue;
                }
                self.starts.borrow_mut().push_back(self.line + 1);
                self.state = Scan::StartField;
            }
            self.state = match (self.state, b) {
                (Scan::InQuoted, b'"') => Scan::QuoteInQuoted,
                (Scan::InQuoted, _) => Scan::InQuoted,
                (Scan::QuoteInQuoted, b'"') | (Scan::StartField, b'"') => Scan::InQuoted,
                (_, b',') => Scan::StartField,
                (_, b'\n' | b'\r') => Scan::StartRecord,
                _ => Scan::InField,
            };
            if b == b'\n' {
                self.line += 1;
            }
        }
        Ok(n)
    }
}

fn read_csv(
    reader: Box<dyn BufRead>,
    offset: usize,
    each: &mut impl FnMut(usize, Result<Value, FieldError>),
    summary: &mut ReadSummary,
) -> io::Result<()> {
    let starts = Rc::new(RefCell::new(VecDeque::new()));
    let scanner = RecordStarts { inner: reader, state: Scan::StartRecord, line: 0, starts: starts.clone() };
    let mut rdr = csv::ReaderBuilder::new().flexible(true).has_headers(true).from_reader(scanner);
    let next_line = || offset + starts.borrow_mut().pop_front().unwrap_or(0);
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            return csv_problem(e, offset, summary);
        }
    };
    let header_line = next_line();
    let columns: Vec<Column> = headers.iter().map(|h| column_of(h.trim().trim_start_matches('\u{feff}'))).collect();
    summary.ignored_columns = headers
        .iter()
        .zip(&columns)
        .filter(|(h, c)| **c == Column::Ignored && !h.trim().is_empty())
        .map(|(h, _)| h.trim().to_string())
        .collect();
    let has = |c: Column| columns.contains(&c);
    if !has(Column::Id) || !has(Column::Points) {
        let found: Vec<&str> = headers.iter().map(str::trim).collect();
        summary.problems.push(FileProblem {
            line: Some(header_line),
            error: FieldError::new(
                "header",
                "is_missing",
                format!(
                    "the first line must name the columns panelMemberID (or panel_member_id) and points, \
                     and optionally comments; found: {}",
                    found.join(",")
                ),
            ),
        });
        return Ok(());
    }
    let width = headers.len();
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = next_line();
                if record.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                if record.iter().skip(width).any(|c| !c.trim().is_empty()) {
                    each(
                        line,
                        Err(FieldError::new(
                            "row",
                            "wrong_value",
                            format!("this line has {} cells; the header names {width} columns", record.len()),
                        )),
                    );
                    continue;
                }
                let mut obj = Map::new();
                for (cell, col) in record.iter().zip(&columns) {
                    match col {
                        Column::Ignored => {}
                        _ if cell.trim().is_empty() => {}
                        Column::Comments => {
                            obj.insert(key_of(*col).into(), Value::String(cell.to_string()));
                        }
                        _ => {
                            obj.insert(key_of(*col).into(), number_cell(cell));
                        }
                    }
                }
                each(line, Ok(Value::Object(obj)));
            }
            Err(e) => {
                let line = next_line();
                match e.into_kind() {
                    csv::ErrorKind::Io(e) => return Err(e),
                    csv::ErrorKind::Utf8 { .. } => {
                        each(line, Err(FieldError::new("row", "wrong_value", "this line is not valid UTF-8 text")))
                    }
                    other => each(
                        line,
                        Err(FieldError::new("row", "wrong_value", format!("this line could not be read: {other:?}"))),
                    ),
                }
            }
        }
    }
    Ok(())
}

fn csv_problem(e: csv::Error, offset: usize, summary: &mut ReadSummary) -> io::Result<()> {
    let line = e.position().map(|p| offset + p.line() as usize).or(Some(offset + 1));
    match e.into_kind() {
        csv::ErrorKind::Io(e) => Err(e),
        kind => {
            summary.problems.push(FileProblem {
                line,
                error: FieldError::new("header", "wrong_value", format!("the header could not be read: {kind:?}")),
            });
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------
// JSON lines

fn read_json_lines(
    mut reader: Box<dyn BufRead>,
    offset: usize,
    each: &mut impl FnMut(usize, Result<Value, FieldError>),
) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut line = offset;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        line += 1;
        let text = buf.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Value>(text) {
            Ok(v) => each(line, Ok(v)),
            Err(e) => each(
                line,
                Err(FieldError::new(
                    "row",
                    "invalid_json",
                    format!("this line is not valid JSON: {e} (column {})", e.column()),
                )),
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// JSON array, element by element, with the line each element starts on

/// Counts the line breaks that went through it.
struct Counting<R> {
    inner: R,
    newlines: Rc<Cell<usize>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.newlines.set(self.newlines.get() + count_newlines(&buf[..n]));
        Ok(n)
    }
}

/// Reads one element and notes how many line breaks came before it. serde_json reads its
/// input one byte at a time, and has consumed exactly the white space before an element when
/// it hands the element to this seed.
struct LineSeed(Rc<Cell<usize>>);

impl<'de> DeserializeSeed<'de> for LineSeed {
    type Value = (usize, Value);
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let before = self.0.get();
        let v = <Value as serde::Deserialize>::deserialize(d)?;
        Ok((before, v))
    }
}

struct Elements<'a, F> {
    each: &'a mut F,
    newlines: Rc<Cell<usize>>,
    offset: usize,
}

impl<'de, F: FnMut(usize, Result<Value, FieldError>)> Visitor<'de> for Elements<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of rows")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some((before, v)) = seq.next_element_seed(LineSeed(self.newlines.clone()))? {
            (self.each)(self.offset + before + 1, Ok(v));
        }
        Ok(())
    }
}

fn read_json_array(
    reader: Box<dyn BufRead>,
    offset: usize,
    each: &mut impl FnMut(usize, Result<Value, FieldError>),
    summary: &mut ReadSummary,
) -> io::Result<()> {
    let newlines = Rc::new(Cell::new(0));
    let counting = Counting { inner: reader, newlines: newlines.clone() };
    let mut de = serde_json::Deserializer::from_reader(counting);
    let result = (&mut de).deserialize_seq(Elements { each, newlines, offset }).and_then(|()| de.end());
    if let Err(e) = result {
        if e.is_io() {
            return Err(io::Error::other(e.to_string()));
        }
        summary.problems.push(FileProblem {
            line: Some(offset + e.line()),
            error: FieldError::new("file", "invalid_json", format!("the file is not a valid JSON array: {e}")),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type Rows = Vec<(usize, Result<Value, FieldError>)>;

    fn read(path: &str, text: &str) -> (Rows, ReadSummary) {
        let mut rows = Vec::new();
        let reader: Box<dyn BufRead> = Box::new(io::Cursor::new(text.as_bytes().to_vec()));
        let summary = read_rows(path, reader, |line, v| rows.push((line, v))).unwrap();
        (rows, summary)
    }

    #[test]
    fn csv_keeps_physical_lines_and_types() {
        let text = "\u{feff}panel_member_id,points,comments\n1,10,hi\n\n2, x ,\"two\nlines\"\n3,007,42\n4,1.5,\n , \n";
        let (rows, s) = read("p.csv", text);
        assert_eq!(s.format, Some(Format::Csv));
        let lines: Vec<usize> = rows.iter().map(|r| r.0).collect();
        assert_eq!(lines, [2, 4, 6, 7]);
        assert_eq!(rows[0].1.as_ref().unwrap(), &json!({"panelMemberID": 1, "points": 10, "comments": "hi"}));
        assert_eq!(
            rows[1].1.as_ref().unwrap(),
            &json!({"panelMemberID": 2, "points": " x ", "comments": "two\nlines"})
        );
        assert_eq!(rows[2].1.as_ref().unwrap(), &json!({"panelMemberID": 3, "points": 7, "comments": "42"}));
        assert_eq!(rows[3].1.as_ref().unwrap(), &json!({"panelMemberID": 4, "points": 1.5}));
    }

    #[test]
    fn csv_lines_survive_crlf_blank_lines_and_stray_quotes() {
        let text = "\n\npanelMemberID,points\r\n\r\n1,2\r\n\"3\",\"4\"\r\n\r\n\r\n5,a\"b\n6,\"x\"\"\n\ny\"\n7,7";
        let (rows, _) = read("p.csv", text);
        let lines: Vec<usize> = rows.iter().map(|r| r.0).collect();
        assert_eq!(lines, [5, 6, 9, 10, 13]);
        assert_eq!(rows[1].1.as_ref().unwrap(), &json!({"panelMemberID": 3, "points": 4}));
        assert_eq!(rows[2].1.as_ref().unwrap(), &json!({"panelMemberID": 5, "points": "a\"b"}));
    }

    #[test]
    fn csv_without_the_needed_columns_is_one_problem() {
        let (rows, s) = read("-", "id,point\n1,2\n");
        assert!(rows.is_empty());
        assert_eq!(s.problems.len(), 1);
        assert_eq!(s.problems[0].line, Some(1));
    }

    #[test]
    fn json_array_elements_know_their_lines() {
        let text = "\n[\n  {\"panelMemberID\": 1, \"points\": 2},\n\n  {\n    \"panelMemberID\": 3,\n    \"points\": 4\n  }, 7\n]\n";
        let (rows, s) = read("-", text);
        assert_eq!(s.format, Some(Format::JsonArray));
        let lines: Vec<usize> = rows.iter().map(|r| r.0).collect();
        assert_eq!(lines, [3, 5, 8]);
        assert!(s.problems.is_empty());
    }

    #[test]
    fn broken_json_array_is_a_problem_at_its_line() {
        let (rows, s) = read("x.json", "[\n{\"panelMemberID\": 1, \"points\": 2},\n{oops}\n]");
        assert_eq!(rows.len(), 1);
        assert_eq!(s.problems[0].line, Some(3));
    }

    #[test]
    fn json_lines_report_bad_lines() {
        let (rows, s) = read("x.jsonl", "{\"panelMemberID\": 1, \"points\": 2}\n\nnot json\n{\"points\": 1}\n");
        assert_eq!(s.format, Some(Format::JsonLines));
        let lines: Vec<usize> = rows.iter().map(|r| r.0).collect();
        assert_eq!(lines, [1, 3, 4]);
        assert!(rows[1].1.is_err());
    }

    #[test]
    fn empty_input_has_no_rows() {
        let (rows, s) = read("-", " \n\n ");
        assert!(rows.is_empty());
        assert_eq!(s.format, None);
    }
}
