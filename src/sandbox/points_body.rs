//! The points request body read by hand: a bulk job sends hundreds of thousands of rows, and
//! serde_json's typed parse of a 500-row body cost the sandbox more than everything else it
//! does per request. The fast path takes only the plain shape every client sends (the three
//! known keys once each, integer ids and points, comments without escapes, or null); anything
//! else returns `None`, and the caller parses with serde_json as before, so every answer is
//! serde's own.

use super::questionpro::Item;
use std::borrow::Cow;

/// The rows of a plain body, or `None` when it is not plain (the caller falls back to serde).
pub(crate) fn parse(body: &[u8]) -> Option<Vec<Item<'_>>> {
    let mut p = Cursor { b: body, i: 0 };
    p.expect(b'[')?;
    let mut items = Vec::with_capacity(body.len() / 48);
    if p.peek_ws() == Some(b']') {
        p.i += 1;
        return p.at_end().then_some(items);
    }
    loop {
        items.push(p.item()?);
        match p.next_ws()? {
            b',' => {}
            b']' => return p.at_end().then_some(items),
            _ => return None,
        }
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek_ws(&mut self) -> Option<u8> {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(c);
            }
            self.i += 1;
        }
        None
    }

    fn next_ws(&mut self) -> Option<u8> {
        let c = self.peek_ws()?;
        self.i += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next_ws()? == c).then_some(())
    }

    fn at_end(&mut self) -> bool {
        self.peek_ws().is_none()
    }

    fn item(&mut self) -> Option<Item<'a>> {
        self.expect(b'{')?;
        let (mut id, mut points, mut comments) = (None, None, None);
        loop {
            self.expect(b'"')?;
            let key = self.plain_bytes()?;
            self.expect(b':')?;
            let slot_taken = match key {
                b"panelMemberID" => id.replace(self.int()?).is_some(),
                b"points" => points.replace(self.int()?).is_some(),
                b"comments" => {
                    let value = if self.peek_ws()? == b'"' {
                        self.i += 1;
                        Some(std::str::from_utf8(self.plain_bytes()?).ok()?)
                    } else {
                        self.literal(b"null")?;
                        None
                    };
                    comments.replace(value).is_some()
                }
                _ => return None,
            };
            if slot_taken {
                return None; // a repeated key: serde's error to give
            }
            match self.next_ws()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
        Some(Item { panel_member_id: id?, points: points?, comments: comments.flatten().map(Cow::Borrowed) })
    }

    /// The bytes of the rest of a string whose opening quote was read; `None` for escapes and
    /// control characters (serde's to handle or refuse).
    fn plain_bytes(&mut self) -> Option<&'a [u8]> {
        let rest = &self.b[self.i..];
        let len = rest.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if rest[len] != b'"' {
            return None;
        }
        self.i += len + 1;
        Some(&rest[..len])
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.peek_ws()?;
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A JSON integer in the i64 range; `None` for fractions, exponents, leading zeros,
    /// overflow and `-0` (which serde_json reads as a float).
    fn int(&mut self) -> Option<i64> {
        self.peek_ws()?;
        let neg = self.b[self.i] == b'-';
        if neg {
            self.i += 1;
        }
        let start = self.i;
        let mut n: i64 = 0;
        while let Some(&c) = self.b.get(self.i).filter(|c| c.is_ascii_digit()) {
            let d = i64::from(c - b'0');
            n = n.checked_mul(10)?;
            n = if neg { n.checked_sub(d)? } else { n.checked_add(d)? };
            self.i += 1;
        }
        let digits = self.i - start;
        let leading_zero = digits > 1 && self.b[start] == b'0';
        let fraction = matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E'));
        let negative_zero = neg && n == 0;
        (digits > 0 && !leading_zero && !fraction && !negative_zero).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde(body: &str) -> Option<Vec<(i64, i64, Option<String>)>> {
        let items: Vec<Item> = serde_json::from_str(body).ok()?;
        Some(items.into_iter().map(|i| (i.panel_member_id, i.points, i.comments.map(|c| c.into_owned()))).collect())
    }

    #[test]
    fn plain_bodies_read_as_serde_reads_them() {
        let plain = [
            r#"[{"panelMemberID":1,"points":5,"comments":"Thanks"},{"panelMemberID":2,"points":-3}]"#,
            " [ { \"points\" : 7 , \"comments\" : null , \"panelMemberID\" : 9223372036854775807 } ] \n",
            r#"[{"panelMemberID":-9223372036854775808,"points":0,"comments":"é 漢 🎉"}]"#,
            "[]",
            "[ ]",
            r#"[{"panelMemberID":1,"points":1,"comments":""}]"#,
        ];
        for body in plain {
            let items = parse(body.as_bytes()).unwrap_or_else(|| panic!("not read: {body}"));
            let fast: Vec<_> =
                items.into_iter().map(|i| (i.panel_member_id, i.points, i.comments.map(|c| c.into_owned()))).collect();
            assert_eq!(Some(fast), serde(body), "{body}");
        }
    }

    #[test]
    fn anything_else_is_left_to_serde() {
        let not_plain = [
            r#"[{"panelMemberID":1,"points":5,"comments":"a \"quote\""}]"#,
            "[{\"panelMemberID\":1,\"points\":5,\"comments\":\"tab\there\"}]",
            r#"[{"panelMemberID":1,"points":5,"extra":true}]"#,
            r#"[{"panelMemberID":1,"points":5,"points":6}]"#,
            r#"[{"panelMemberID":1}]"#,
            r#"[{"panelMemberID":1.0,"points":5}]"#,
            r#"[{"panelMemberID":1e3,"points":5}]"#,
            r#"[{"panelMemberID":01,"points":5}]"#,
            r#"[{"panelMemberID":9223372036854775808,"points":5}]"#,
            r#"[{"panelMemberID":-,"points":5}]"#,
            r#"[{"panelMemberID":-0,"points":5}]"#,
            r#"[{"panelMemberID":"1","points":5}]"#,
            r#"[{"panelMemberID":1,"points":5,"comments":7}]"#,
            r#"[{"panelMemberID":1,"points":5}"#,
            r#"[{"panelMemberID":1,"points":5}] x"#,
            r#"[{"panelMemberID":1,"points":5},]"#,
            r#"[{}]"#,
            r#"{"panelMemberID":1,"points":5}"#,
            "",
        ];
        for body in not_plain {
            assert!(parse(body.as_bytes()).is_none(), "{body}");
        }
        assert!(parse(b"[{\"panelMemberID\":1,\"points\":5,\"comments\":\"\xff\"}]").is_none());
    }
}
