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

/// Parses a float the way Redis's `string2ld` (C `strtold`) does, as INCRBYFLOAT and
/// HINCRBYFLOAT read numbers: no surrounding spaces; `inf`, `-inf` and hex (`0x10`,
/// `0x1.8p3`) accepted; NaN refused. Computed in f64, where Redis has `long double`.
pub fn parse_f64(b: &[u8]) -> Result<f64, CmdError> {
    let s = std::str::from_utf8(b).map_err(|_| CmdError::NotFloat)?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return Err(CmdError::NotFloat);
    }
    let v = match parse_hex_f64(s) {
        Some(v) => v,
        None => s.parse::<f64>().map_err(|_| CmdError::NotFloat)?,
    };
    if v.is_nan() || beyond_long_double(s.trim_start_matches(['+', '-'])) {
        return Err(CmdError::NotFloat);
    }
    Ok(v)
}

/// True when an unsigned number (already known to parse) is outside C `long double`'s range
/// (x86-64: about 1.19e4932 down to 3.6e-4951): `strtold` then reports ERANGE, which Redis
/// refuses. (Between f64's range and long double's, Redis takes numbers Terrace holds as
/// inf or 0: a known difference.)
fn beyond_long_double(unsigned: &str) -> bool {
    let (hex, body) = match unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        Some(h) => (true, h),
        None => (false, unsigned),
    };
    let exp_mark: &[char] = if hex { &['p', 'P'] } else { &['e', 'E'] };
    let (mantissa, exp) = match body.find(exp_mark) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    if !hex && !mantissa.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return false; // inf, infinity
    }
    let exp: i64 = exp.map_or(0, |e| {
        e.parse::<i64>().unwrap_or(if e.starts_with('-') {
            i64::MIN / 4
        } else {
            i64::MAX / 4
        })
    });
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let int = int.trim_start_matches('0');
    // The power of the base (16 or 10) of the first non-zero digit.
    let lead: i64 = if !int.is_empty() {
        int.len() as i64 - 1
    } else {
        match frac.find(|c| c != '0') {
            Some(i) => -(i as i64) - 1,
            None => return false, // zero
        }
    };
    let (bits_per_digit, max, min) = if hex {
        (4, 16384, -16446)
    } else {
        (1, 4932, -4951)
    };
    let magnitude = lead.saturating_mul(bits_per_digit).saturating_add(exp);
    magnitude > max || magnitude < min
}

/// Parses a float the way Redis's `string2d` (C `strtod`) does, as it reads sorted-set
/// scores and other doubles: like [`parse_f64`], and also refusing a finite number too
/// large or too small for an f64 (strtod's ERANGE: `1e400`, `1e-400`).
pub fn parse_double(b: &[u8]) -> Result<f64, CmdError> {
    let v = parse_f64(b)?;
    let s = std::str::from_utf8(b).map_err(|_| CmdError::NotFloat)?;
    let unsigned = s.trim_start_matches(['+', '-']);
    let inf_literal =
        unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity");
    let overflow = v.is_infinite() && !inf_literal;
    let underflow = v == 0.0 && mantissa_digits(unsigned).any(|d| d != b'0');
    if overflow || underflow {
        return Err(CmdError::NotFloat);
    }
    Ok(v)
}

/// The mantissa's digits (hex or decimal) of an unsigned number, exponent left out.
fn mantissa_digits(unsigned: &str) -> impl Iterator<Item = u8> + '_ {
    let (body, exp) = match unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        Some(hex) => (hex, [b'p', b'P']),
        None => (unsigned, [b'e', b'E']),
    };
    body.bytes()
        .take_while(move |c| !exp.contains(c))
        .filter(u8::is_ascii_hexdigit)
}

/// A C99 hex float (`[sign]0x<hex>[.<hex>][p[sign]<dec>]`), as `strtod` reads it; `None`
/// when `s` is not one.
fn parse_hex_f64(s: &str) -> Option<f64> {
    let (neg, unsigned) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let body = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))?;
    let (mantissa, exp) = match body.find(['p', 'P']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0.0f64;
    for c in int.bytes().chain(frac.bytes()) {
        v = v * 16.0 + f64::from(char::from(c).to_digit(16)?);
    }
    let mut e: i64 = match exp {
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            e.parse::<i64>().unwrap_or(if e.starts_with('-') {
                -100_000
            } else {
                100_000
            })
        }
        None => 0,
    };
    e = e
        .saturating_sub(4 * frac.len() as i64)
        .clamp(-100_000, 100_000);
    // Two steps, so a small mantissa times a tiny power of two is not rounded to zero early.
    let half = (e / 2) as i32;
    let v = v * 2f64.powi(half) * 2f64.powi(e as i32 - half);
    Some(if neg { -v } else { v })
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

    /// What C strtod/strtold take and Redis keeps (found by the differential test).
    #[test]
    fn floats_follow_strtod() {
        for (text, want) in [
            (&b"0x10"[..], 16.0),
            (b"-0x10", -16.0),
            (b"0X1.8p3", 12.0),
            (b"0x.8", 0.5),
            (b"0x1p-2", 0.25),
            (b"+0x1P+4", 16.0),
            (b"0x0", 0.0),
            (b"0e5", 0.0),
            (b"-Infinity", f64::NEG_INFINITY),
            (b"1e-300", 1e-300),
        ] {
            assert!(matches!(parse_f64(text), Ok(v) if v == want), "{text:?}");
            assert!(matches!(parse_double(text), Ok(v) if v == want), "{text:?}");
        }
        for bad in [
            &b"0x"[..],
            b"0x.",
            b"0xg",
            b"0x1p",
            b"0x1p+",
            b"0x1.2.3",
            // Beyond long double's range: strtold's ERANGE.
            b"1e39223372036854775807",
            b"1e5000",
            b"-1e5000",
            b"0.001e4936",
            b"1e-5000",
            b"0x1p20000",
        ] {
            assert!(matches!(parse_f64(bad), Err(CmdError::NotFloat)), "{bad:?}");
        }
        // Out of a double's range: strtod's ERANGE, refused by string2d only (string2ld
        // reads them as long doubles).
        for far in [
            &b"1e400"[..],
            b"-1e400",
            b"1e-400",
            b"0x1p5000",
            b"0x1p-5000",
            b"1e4932",
            b"0.001e4934",
        ] {
            assert!(parse_f64(far).is_ok(), "{far:?}");
            assert!(
                matches!(parse_double(far), Err(CmdError::NotFloat)),
                "{far:?}"
            );
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
