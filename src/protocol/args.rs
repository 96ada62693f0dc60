//! A cursor over a command's arguments with Redis's parsing rules and error replies.

use crate::command::CmdError;

/// The arguments after the command name (and subcommand, for containers): slices of the
/// connection's read buffer, borrowed for the time the command is parsed and run.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    items: &'a [&'a [u8]],
    pos: usize,
}

impl<'a> Args<'a> {
    /// A cursor over `items`.
    pub fn new(items: &'a [&'a [u8]]) -> Args<'a> {
        Args { items, pos: 0 }
    }

    /// Arguments not consumed yet.
    pub fn remaining(&self) -> usize {
        self.items.len() - self.pos
    }

    /// True when every argument has been consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next argument, if any.
    pub fn next_opt(&mut self) -> Option<&'a [u8]> {
        let b = *self.items.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// The next argument; a syntax error when there is none.
    pub fn bytes(&mut self) -> Result<&'a [u8], CmdError> {
        self.next_opt().ok_or(CmdError::Syntax)
    }

    /// The next argument as an integer (`ERR value is not an integer or out of range`).
    pub fn i64(&mut self) -> Result<i64, CmdError> {
        parse_i64(self.bytes()?)
    }

    /// The next argument as a float (`ERR value is not a valid float`).
    pub fn f64(&mut self) -> Result<f64, CmdError> {
        parse_f64(self.bytes()?)
    }

    /// The next argument, upper-cased, for matching options.
    pub fn keyword(&mut self) -> Result<String, CmdError> {
        Ok(String::from_utf8_lossy(self.bytes()?).to_ascii_uppercase())
    }

    /// Consumes the next argument if it equals `kw` (case-insensitive).
    pub fn eat(&mut self, kw: &str) -> bool {
        match self.items.get(self.pos) {
            Some(b) if b.eq_ignore_ascii_case(kw.as_bytes()) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    /// Every remaining argument.
    pub fn rest(&mut self) -> Vec<&'a [u8]> {
        let v = self.items[self.pos..].to_vec();
        self.pos = self.items.len();
        v
    }

    /// A syntax error unless every argument was consumed.
    pub fn end(&self) -> Result<(), CmdError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(CmdError::Syntax)
        }
    }
}

/// Parses a signed 64-bit integer the way Redis's `string2ll` does: no spaces, no `+`,
/// no leading zeros.
pub fn parse_i64(b: &[u8]) -> Result<i64, CmdError> {
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    let ok = !digits.is_empty()
        && b.len() <= 20
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || digits.len() == 1)
        && !(b[0] == b'-' && digits == b"0");
    if !ok {
        return Err(CmdError::NotInteger);
    }
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(CmdError::NotInteger)
}

/// Parses a float the way Redis's `string2ld` does: no surrounding spaces, and `inf`,
/// `-inf` accepted; NaN refused.
pub fn parse_f64(b: &[u8]) -> Result<f64, CmdError> {
    let s = std::str::from_utf8(b).map_err(|_| CmdError::NotFloat)?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return Err(CmdError::NotFloat);
    }
    match s.parse::<f64>() {
        Ok(v) if !v.is_nan() => Ok(v),
        _ => Err(CmdError::NotFloat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_string2ll() {
        assert!(matches!(parse_i64(b"42"), Ok(42)));
        assert!(matches!(parse_i64(b"-7"), Ok(-7)));
        assert!(matches!(parse_i64(b"0"), Ok(0)));
        assert!(matches!(parse_i64(b"-9223372036854775808"), Ok(i64::MIN)));
        for bad in [
            &b""[..],
            b"+1",
            b" 1",
            b"01",
            b"1.0",
            b"9223372036854775808",
            b"-",
            b"-0",
            b"abc",
        ] {
            assert!(
                matches!(parse_i64(bad), Err(CmdError::NotInteger)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn floats() {
        assert!(matches!(parse_f64(b"1.5"), Ok(v) if v == 1.5));
        assert!(matches!(parse_f64(b"5e3"), Ok(v) if v == 5000.0));
        assert!(matches!(parse_f64(b"inf"), Ok(v) if v.is_infinite()));
        for bad in [&b""[..], b" 1", b"nan", b"x"] {
            assert!(matches!(parse_f64(bad), Err(CmdError::NotFloat)), "{bad:?}");
        }
    }

    #[test]
    fn cursor() {
        let items: [&[u8]; 3] = [b"EX", b"10", b"rest"];
        let mut a = Args::new(&items);
        assert!(a.eat("ex"));
        assert!(matches!(a.i64(), Ok(10)));
        assert!(a.end().is_err());
        assert_eq!(a.rest(), vec![b"rest".as_slice()]);
        assert!(a.end().is_ok());
        assert!(matches!(a.bytes(), Err(CmdError::Syntax)));
    }
}
