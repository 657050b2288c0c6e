//! Points rows: the typed [`PointsAward`], reading rows from untyped JSON, and validation.

use crate::error::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// One award: `points` (negative deducts) to panel member `panel_member_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsAward {
    #[serde(rename = "panelMemberID")]
    pub panel_member_id: i64,
    pub points: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
}

impl PointsAward {
    /// An award without a comment.
    pub fn new(panel_member_id: i64, points: i64) -> Self {
        PointsAward { panel_member_id, points, comments: None }
    }

    /// The same award with a comment.
    pub fn with_comments(mut self, comments: impl Into<String>) -> Self {
        self.comments = Some(comments.into());
        self
    }

    /// This row's own problems (not duplicates, which need the whole submission).
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        check_member_id(self.panel_member_id, &mut errs);
        check_points(self.points, &mut errs);
        errs
    }

    /// Reads one row from untyped JSON. Accepts the wire names (`panelMemberID`), snake_case
    /// (`panel_member_id`) and camelCase (`panelMemberId`); a wrong JSON type is a
    /// `wrong_type` field error, never a panic.
    pub fn from_value(v: &Value) -> Result<PointsAward, Vec<FieldError>> {
        let Some(obj) = v.as_object() else {
            return Err(vec![FieldError::new("row", "wrong_type", "A row must be an object.")]);
        };
        Self::from_map(obj)
    }

    /// [`PointsAward::from_value`] for an object already in hand.
    pub fn from_map(obj: &Map<String, Value>) -> Result<PointsAward, Vec<FieldError>> {
        let get = |names: &[&str]| names.iter().find_map(|n| obj.get(*n));
        Self::from_cells(Cell::of(get(&MEMBER_ID_KEYS)), Cell::of(get(&["points"])), Cell::of(get(&COMMENTS_KEYS)))
    }

    /// Reads one row from its three field values, however the caller found them (a JSON
    /// object, a Python dict, a DataFrame column). Every rule of a row is applied here.
    pub fn from_cells(id: Cell<'_>, points: Cell<'_>, comments: Cell<'_>) -> Result<PointsAward, Vec<FieldError>> {
        let mut errs = Vec::new();
        let id = int_cell(id, KEY_ID, "panelMemberID is required.", &mut errs);
        let points = int_cell(points, KEY_POINTS, "points is required.", &mut errs);
        let comments = match comments {
            Cell::Missing => None,
            Cell::Str(s) => Some(s.to_string()),
            _ => {
                errs.push(FieldError::new(KEY_COMMENTS, "wrong_type", "This value should be of type string."));
                None
            }
        };
        if let Some(id) = id {
            check_member_id(id, &mut errs);
        }
        if let Some(p) = points {
            check_points(p, &mut errs);
        }
        match (id, points) {
            (Some(panel_member_id), Some(points)) if errs.is_empty() => {
                Ok(PointsAward { panel_member_id, points, comments })
            }
            _ => Err(errs),
        }
    }
}

/// One field value of an untyped row, as a binding or reader found it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// Absent, or null / None.
    Missing,
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A string.
    Str(&'a str),
    /// An integer too large for 64 bits.
    BigInt,
    /// Any other value; the name of its type (`float`, `bool`, ...).
    Other(&'a str),
}

impl<'a> Cell<'a> {
    /// The cell of a JSON value.
    pub fn of(v: Option<&'a Value>) -> Cell<'a> {
        match v {
            None | Some(Value::Null) => Cell::Missing,
            Some(Value::String(s)) => Cell::Str(s),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Cell::Int(i),
                None if n.is_u64() => Cell::BigInt,
                None => Cell::Other("float"),
            },
            Some(Value::Bool(_)) => Cell::Other("bool"),
            Some(Value::Array(_)) => Cell::Other("array"),
            Some(Value::Object(_)) => Cell::Other("object"),
        }
    }
}

fn int_cell(cell: Cell<'_>, key: &str, missing: &str, errs: &mut Vec<FieldError>) -> Option<i64> {
    match cell {
        Cell::Int(n) => Some(n),
        Cell::Missing => {
            errs.push(FieldError::new(key, "is_missing", missing));
            None
        }
        Cell::BigInt => {
            errs.push(FieldError::new(key, "wrong_type", "This value should be an integer within the 64-bit range."));
            None
        }
        Cell::Str(_) | Cell::Other(_) => {
            errs.push(FieldError::new(key, "wrong_type", "This value should be of type int."));
            None
        }
    }
}

const KEY_ID: &str = "panelMemberID";

/// The spellings a row's member id may take (wire, snake_case, camelCase), in the order they
/// are looked up. Bindings that read rows themselves use these, so every reader agrees.
pub const MEMBER_ID_KEYS: [&str; 3] = ["panelMemberID", "panel_member_id", "panelMemberId"];
/// The spellings of a row's comment, in the order they are looked up.
pub const COMMENTS_KEYS: [&str; 2] = ["comments", "comment"];

/// The member id of an untyped row, when it has a readable one.
pub(crate) fn member_id_of(v: &Value) -> Option<i64> {
    let o = v.as_object()?;
    MEMBER_ID_KEYS.iter().find_map(|k| o.get(*k)).and_then(Value::as_i64)
}
const KEY_POINTS: &str = "points";
const KEY_COMMENTS: &str = "comments";

fn check_member_id(id: i64, errs: &mut Vec<FieldError>) {
    if id <= 0 {
        errs.push(FieldError::new(KEY_ID, "wrong_value", "panelMemberID must be a positive integer."));
    }
}

fn check_points(points: i64, errs: &mut Vec<FieldError>) {
    if points == 0 {
        errs.push(FieldError::new(
            KEY_POINTS,
            "wrong_value",
            "points must not be zero (use a negative number to deduct).",
        ));
    }
}

/// The JSON body of a points request: the same bytes as `serde_json::to_vec(rows)`, written
/// directly, because a bulk job encodes every row once and serde's derive costs about three
/// times as much for this shape.
pub(crate) fn encode_rows(rows: &[PointsAward]) -> Vec<u8> {
    let size: usize = rows.iter().map(|r| 48 + r.comments.as_ref().map_or(0, |c| c.len() + 14)).sum();
    let mut out = Vec::with_capacity(size + 2);
    let mut ints = itoa::Buffer::new();
    out.push(b'[');
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"panelMemberID\":");
        out.extend_from_slice(ints.format(r.panel_member_id).as_bytes());
        out.extend_from_slice(b",\"points\":");
        out.extend_from_slice(ints.format(r.points).as_bytes());
        if let Some(c) = &r.comments {
            out.extend_from_slice(b",\"comments\":");
            if c.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
                // Rare: let serde_json escape it (writing to a Vec cannot fail).
                let _ = serde_json::to_writer(&mut out, c);
            } else {
                out.push(b'"');
                out.extend_from_slice(c.as_bytes());
                out.push(b'"');
            }
        }
        out.push(b'}');
    }
    out.push(b']');
    out
}

/// A hasher for member ids in memory (a multiply, as FxHash does): ids are not chosen by an
/// attacker here, and SipHash cost as much as the rest of reading a row.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn write_i64(&mut self, n: i64) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type IdBuild = std::hash::BuildHasherDefault<IdHasher>;

/// Finds member ids that appear more than once; each repeat is reported on its own row.
/// Keeps its state across calls so a stream can be checked chunk by chunk. Membership is a
/// compressed bitmap (a few bytes per id even over millions of rows); the row of a first
/// sighting is remembered for the first ids only, to name it in the message.
#[derive(Debug, Default)]
pub struct DuplicateCheck {
    /// Ids that fit in 32 bits (nearly all): a plain bitmap, cheaper than the treemap.
    seen: roaring::RoaringBitmap,
    seen_wide: roaring::RoaringTreemap,
    first_row: HashMap<i64, usize, IdBuild>,
}

/// How many first sightings are remembered by row.
const FIRST_ROWS_KEPT: usize = 65_536;

impl DuplicateCheck {
    /// Records `id` at `row`; returns the field error when it was seen before.
    pub fn check(&mut self, id: i64, row: usize) -> Option<FieldError> {
        // Negative ids are invalid rows and never reach here; the cast keeps them apart anyway.
        let new = match u32::try_from(id) {
            Ok(small) => self.seen.insert(small),
            Err(_) => self.seen_wide.insert(id as u64),
        };
        if new {
            if self.first_row.len() < FIRST_ROWS_KEPT {
                self.first_row.insert(id, row);
            }
            return None;
        }
        let where_ = match self.first_row.get(&id) {
            Some(first) => format!("already appears in row {first}"),
            None => "appears in an earlier row too".to_string(),
        };
        Some(
            FieldError::new(
                KEY_ID,
                "duplicate",
                format!("panelMemberID {id} {where_}; pass allow_duplicates to award it twice."),
            )
            .at_row(row),
        )
    }
}

/// Validates typed rows: every problem of every row, with its row index.
pub fn validate_rows(rows: &[PointsAward], allow_duplicates: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut dups = DuplicateCheck::default();
    for (i, row) in rows.iter().enumerate() {
        errs.extend(row.validate().into_iter().map(|e| e.at_row(i)));
        if !allow_duplicates && row.panel_member_id > 0 {
            errs.extend(dups.check(row.panel_member_id, i));
        }
    }
    errs
}

/// Reads and validates untyped rows: the typed rows when all are good, else every problem of
/// every row, with its row index.
pub fn rows_from_values(values: &[Value], allow_duplicates: bool) -> Result<Vec<PointsAward>, Vec<FieldError>> {
    let mut rows = Vec::with_capacity(values.len());
    let mut errs = Vec::new();
    let mut dups = DuplicateCheck::default();
    for (i, v) in values.iter().enumerate() {
        match PointsAward::from_value(v) {
            Ok(row) => rows.push(row),
            Err(e) => errs.extend(e.into_iter().map(|e| e.at_row(i))),
        }
        // Checked for bad rows too, so a repeat of a bad row is reported like on typed rows.
        if let Some(id) = member_id_of(v).filter(|id| *id > 0 && !allow_duplicates) {
            errs.extend(dups.check(id, i));
        }
    }
    if errs.is_empty() {
        Ok(rows)
    } else {
        Err(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encoded_rows_are_serde_json_bytes() {
        let rows = vec![
            PointsAward::new(1, 5),
            PointsAward::new(i64::MAX, -7).with_comments("Thanks"),
            PointsAward::new(3, i64::MIN).with_comments("quote \" back \\ tab \t nl \n ctl \u{1} é 漢 🎉"),
            PointsAward::new(4, 1).with_comments(""),
        ];
        assert_eq!(encode_rows(&rows), serde_json::to_vec(&rows).unwrap());
        assert_eq!(encode_rows(&[]), b"[]");
    }

    #[test]
    fn reads_every_spelling_and_reports_every_problem() {
        let ok = PointsAward::from_value(&json!({"panel_member_id": 5, "points": -3, "comments": "x"})).unwrap();
        assert_eq!(ok, PointsAward::new(5, -3).with_comments("x"));
        let ok = PointsAward::from_value(&json!({"panelMemberId": 5, "points": 1})).unwrap();
        assert_eq!(ok.comments, None);
        let errs = PointsAward::from_value(&json!({"panelMemberID": "5", "points": 0, "comments": 3})).unwrap_err();
        let codes: Vec<_> = errs.iter().map(|e| (e.key.as_str(), e.code.as_str())).collect();
        assert_eq!(codes, [("panelMemberID", "wrong_type"), ("comments", "wrong_type"), ("points", "wrong_value")]);
        let errs = PointsAward::from_value(&json!([1, 2])).unwrap_err();
        assert_eq!(errs[0].code, "wrong_type");
    }

    #[test]
    fn duplicates_are_errors_unless_allowed() {
        let rows = vec![PointsAward::new(1, 1), PointsAward::new(2, 1), PointsAward::new(1, 5)];
        let errs = validate_rows(&rows, false);
        assert_eq!(errs.len(), 1);
        assert_eq!((errs[0].row, errs[0].code.as_str()), (Some(2), "duplicate"));
        assert!(validate_rows(&rows, true).is_empty());
    }

    #[test]
    fn duplicate_check_tells_ids_apart_beyond_32_bits() {
        let mut d = DuplicateCheck::default();
        let wide = i64::from(u32::MAX) + 1;
        for (i, id) in [1, wide, i64::from(u32::MAX), wide + 1, i64::MAX].into_iter().enumerate() {
            assert!(d.check(id, i).is_none(), "{id}");
        }
        let e = d.check(wide, 9).unwrap();
        assert!(e.description.contains("already appears in row 1"), "{}", e.description);
        assert!(d.check(i64::MAX, 10).is_some());
        assert!(d.check(1, 11).is_some());
    }
}
