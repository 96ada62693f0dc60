//! Request framing: turns the bytes a client sent into argument vectors.
//!
//! A request is either a RESP array of bulk strings (what every client library sends, in
//! RESP2 and RESP3 alike) or an inline command (`SET k v\r\n`, typed into nc or telnet).
//! Complete arrays are decoded by `redis_protocol::resp2::decode::decode_range`, which yields
//! ranges into the read buffer: [`Decoder::decode`] frames a request without consuming
//! it, and the connection runs it on arguments borrowed from the buffer ([`Frame::args`]),
//! advancing the buffer once per batch.
//!
//! When a frame is incomplete, a small incremental [`Scan`] remembers how far the headers are
//! valid. It enforces `proto-max-bulk-len` and the multibulk limit as soon as a header
//! arrives (as Redis does, before the body is buffered). It also knows when the frame is
//! complete, so a large frame arriving over many reads is not re-decoded on every read.

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::decode::decode_range;
use redis_protocol::resp2::types::RangeFrame;
use smallvec::SmallVec;

/// Longest inline command or header line without a newline (Redis's PROTO_INLINE_MAX_SIZE).
pub const INLINE_MAX: usize = 64 * 1024;

/// Limits applied while framing (from the `limits:` config section).
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    /// `proto-max-bulk-len`: largest bulk string.
    pub max_bulk: usize,
    /// Most elements in one request array.
    pub max_multibulk: usize,
    /// Auth is required and the client has not authenticated: Redis then allows at most
    /// [`UNAUTH_MULTIBULK`] elements and [`UNAUTH_BULK`]-byte bulks, so a stranger cannot
    /// make the server reserve memory for a huge request.
    pub unauthenticated: bool,
}

/// Most elements in a request from an unauthenticated client (Redis's).
pub const UNAUTH_MULTIBULK: usize = 10;
/// Largest bulk from an unauthenticated client (Redis's).
pub const UNAUTH_BULK: usize = 16384;

impl FrameLimits {
    /// Checks an array's element count.
    fn multibulk(&self, n: u64) -> Result<(), ProtocolError> {
        if n > i32::MAX as u64 {
            return perr("invalid multibulk length");
        }
        if self.unauthenticated && n > UNAUTH_MULTIBULK as u64 {
            return perr("unauthenticated multibulk length");
        }
        if n > self.max_multibulk as u64 {
            return perr("invalid multibulk length");
        }
        Ok(())
    }

    /// Checks a bulk's length.
    fn bulk(&self, len: u64) -> Result<(), ProtocolError> {
        if len > self.max_bulk as u64 {
            return perr("invalid bulk length");
        }
        if self.unauthenticated && len > UNAUTH_BULK as u64 {
            return perr("unauthenticated bulk length");
        }
        Ok(())
    }
}

/// A framing error. The client gets `-ERR Protocol error: <msg>` and the connection closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Protocol error: {0}")]
pub struct ProtocolError(pub String);

fn perr<T>(msg: impl Into<String>) -> Result<T, ProtocolError> {
    Err(ProtocolError(msg.into()))
}

/// Progress through an incomplete array frame.
#[derive(Debug, Clone, Copy, Default)]
struct Scan {
    /// Offset of the next unverified element header.
    pos: usize,
    /// Elements whose header has not been verified yet.
    left: usize,
}

/// Per-connection request decoder.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Set while the frame at the front of the buffer is an incomplete array.
    scan: Option<Scan>,
}

/// One request framed at the front of a buffer.
#[derive(Debug)]
pub struct Frame {
    /// Bytes of the buffer the request occupies.
    pub len: usize,
    args: FrameArgs,
}

#[derive(Debug)]
enum FrameArgs {
    /// A RESP array: argument ranges within the frame.
    Ranges(SmallVec<[(usize, usize); 8]>),
    /// An inline command: its arguments after unquoting.
    Inline(Vec<Vec<u8>>),
}

/// A request's arguments, borrowed from the read buffer (or from an inline frame).
pub type Argv<'a> = SmallVec<[&'a [u8]; 8]>;

impl Frame {
    /// The arguments; `buf` is the buffer `decode` was given. Empty for an empty array
    /// or a blank inline line, which Redis skips.
    pub fn args<'a>(&'a self, buf: &'a [u8]) -> Argv<'a> {
        match &self.args {
            FrameArgs::Ranges(r) => r.iter().map(|&(s, e)| &buf[s..e]).collect(),
            FrameArgs::Inline(v) => v.iter().map(Vec::as_slice).collect(),
        }
    }
}

impl Decoder {
    /// Frames the next request at the front of `buf` without consuming anything: the
    /// caller runs it on arguments borrowed from `buf`, then skips `Frame::len` bytes.
    ///
    /// `Ok(None)`: more bytes are needed.
    pub fn decode(
        &mut self,
        buf: &[u8],
        limits: &FrameLimits,
    ) -> Result<Option<Frame>, ProtocolError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        if first == b'*' {
            self.decode_array(buf, limits)
        } else {
            decode_inline(buf)
        }
    }

    /// Takes the next non-empty request off the front of `buf` as owned arguments (for
    /// tools and tests; the server borrows instead).
    pub fn take(
        &mut self,
        buf: &mut BytesMut,
        limits: &FrameLimits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            let Some(frame) = self.decode(buf, limits)? else {
                return Ok(None);
            };
            let args: Vec<Bytes> = frame
                .args(buf)
                .iter()
                .map(|a| Bytes::copy_from_slice(a))
                .collect();
            let _ = buf.split_to(frame.len);
            if !args.is_empty() {
                return Ok(Some(args));
            }
        }
    }

    fn decode_array(
        &mut self,
        buf: &[u8],
        limits: &FrameLimits,
    ) -> Result<Option<Frame>, ProtocolError> {
        let end = match self.scan {
            // Only decode again once the scan says the frame is all here.
            Some(mut scan) => match advance(&mut scan, buf, limits)? {
                Some(end) => {
                    self.scan = None;
                    Some(end)
                }
                None => {
                    self.scan = Some(scan);
                    return Ok(None);
                }
            },
            None => None,
        };
        let region = &buf[..end.unwrap_or(buf.len())];
        match decode_range(region) {
            Ok(Some((frame, amt))) => Ok(Some(Frame {
                len: amt,
                args: FrameArgs::Ranges(frame_args(frame, limits)?),
            })),
            Ok(None) => {
                // Incomplete: check the headers that are here (limits apply now) and
                // remember how far they go.
                if let Some(mut scan) = start(buf, limits)? {
                    if advance(&mut scan, buf, limits)?.is_some() {
                        // The headers are complete but the decoder wants more: the frame's
                        // framing bytes are wrong somewhere.
                        return perr("invalid bulk length");
                    }
                    self.scan = Some(scan);
                }
                Ok(None)
            }
            // The decoder can fail on a header whose line is not all here yet (a bad type
            // byte). Redis reads a header only once its line is complete, and reports the
            // first fault in stream order, limits included: so do we, whether the frame
            // arrives whole or in pieces, and wait while the headers here are sound.
            Err(e) => {
                let Some(mut scan) = start(buf, limits)? else {
                    return Ok(None);
                };
                match advance(&mut scan, buf, limits)? {
                    Some(_) => perr(format!("invalid request ({})", e.details())),
                    None => {
                        self.scan = Some(scan);
                        Ok(None)
                    }
                }
            }
        }
    }
}

/// Checks a decoded frame has Redis's request shape and returns its argument ranges.
fn frame_args(
    frame: RangeFrame,
    limits: &FrameLimits,
) -> Result<SmallVec<[(usize, usize); 8]>, ProtocolError> {
    match frame {
        RangeFrame::Array(items) => {
            limits.multibulk(items.len() as u64)?;
            items
                .into_iter()
                .map(|item| match item {
                    RangeFrame::BulkString((s, e)) => limits.bulk((e - s) as u64).map(|_| (s, e)),
                    RangeFrame::Null => perr("invalid bulk length"),
                    RangeFrame::SimpleString(_) => perr("expected '$', got '+'"),
                    RangeFrame::Error(_) => perr("expected '$', got '-'"),
                    RangeFrame::Integer(_) => perr("expected '$', got ':'"),
                    RangeFrame::Array(_) => perr("expected '$', got '*'"),
                })
                .collect()
        }
        // `*-1\r\n`: a null array carries no command.
        RangeFrame::Null => Ok(SmallVec::new()),
        _ => perr("invalid multibulk length"),
    }
}

/// Reads one `<prefix><integer>\r\n` header at `pos`: `Ok(None)` if the line is not all here.
fn header(buf: &[u8], pos: usize, prefix: u8) -> Result<Option<(i64, usize)>, ProtocolError> {
    let rest = &buf[pos..];
    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
        if rest.len() > INLINE_MAX {
            return perr(if prefix == b'*' {
                "too big mbulk count string"
            } else {
                "too big bulk count string"
            });
        }
        return Ok(None);
    };
    let what = if prefix == b'*' {
        "invalid multibulk length"
    } else {
        "invalid bulk length"
    };
    if rest[0] != prefix {
        return perr(format!(
            "expected '{}', got '{}'",
            prefix as char, rest[0] as char
        ));
    }
    if nl < 2 || rest[nl - 1] != b'\r' {
        return perr(what);
    }
    let n = std::str::from_utf8(&rest[1..nl - 1])
        .ok()
        .and_then(|s| s.parse::<i64>().ok());
    match n {
        Some(n) => Ok(Some((n, pos + nl + 1))),
        None => perr(what),
    }
}

/// Starts scanning an incomplete array at the front of `buf`.
fn start(buf: &[u8], limits: &FrameLimits) -> Result<Option<Scan>, ProtocolError> {
    match header(buf, 0, b'*')? {
        None => Ok(None),
        Some((n, pos)) => {
            if n > 0 {
                limits.multibulk(n as u64)?;
            }
            Ok(Some(Scan {
                pos,
                left: n.max(0) as usize,
            }))
        }
    }
}

/// Verifies element headers as far as the buffer goes; returns the frame's end once complete.
fn advance(
    scan: &mut Scan,
    buf: &[u8],
    limits: &FrameLimits,
) -> Result<Option<usize>, ProtocolError> {
    while scan.left > 0 {
        let Some((len, body)) = header(buf, scan.pos, b'$')? else {
            return Ok(None);
        };
        if len < 0 {
            return perr("invalid bulk length");
        }
        limits.bulk(len as u64)?;
        let end = body + len as usize + 2;
        if end > buf.len() {
            return Ok(None);
        }
        scan.pos = end;
        scan.left -= 1;
    }
    Ok(Some(scan.pos))
}

/// Decodes one inline command line (`SET k "a b"\r\n`).
fn decode_inline(buf: &[u8]) -> Result<Option<Frame>, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > INLINE_MAX {
            return perr("too big inline request");
        }
        return Ok(None);
    };
    let mut body = &buf[..nl];
    if body.last() == Some(&b'\r') {
        body = &body[..body.len() - 1];
    }
    let args =
        split_args(body).ok_or_else(|| ProtocolError("unbalanced quotes in request".into()))?;
    Ok(Some(Frame {
        len: nl + 1,
        args: FrameArgs::Inline(args),
    }))
}

/// Splits a line into arguments like Redis's `sdssplitargs`: white space separates,
/// "double quotes" take `\n \r \t \b \a \\ \" \xHH` escapes, 'single quotes' take `\'`.
/// `None` when quotes are unbalanced or a closing quote is not followed by a space.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            return Some(out);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                let c = *line.get(i)?;
                if c == b'\\' && i + 3 < line.len() && line[i + 1] == b'x' {
                    let hex = std::str::from_utf8(&line[i + 2..i + 4]).ok();
                    if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        cur.push(v);
                        i += 4;
                        continue;
                    }
                }
                if c == b'\\' && i + 1 < line.len() {
                    cur.push(match line[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                    i += 2;
                    continue;
                }
                if c == b'"' {
                    if line.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                        return None;
                    }
                    i += 1;
                    break;
                }
                cur.push(c);
                i += 1;
            } else if in_sq {
                let c = *line.get(i)?;
                if c == b'\\' && line.get(i + 1) == Some(&b'\'') {
                    cur.push(b'\'');
                    i += 2;
                    continue;
                }
                if c == b'\'' {
                    if line.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                        return None;
                    }
                    i += 1;
                    break;
                }
                cur.push(c);
                i += 1;
            } else {
                match line.get(i) {
                    None => break,
                    Some(c) if c.is_ascii_whitespace() => break,
                    Some(b'"') => in_dq = true,
                    Some(b'\'') => in_sq = true,
                    Some(&c) => cur.push(c),
                }
                i += 1;
            }
        }
        out.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: FrameLimits = FrameLimits {
        max_bulk: 1024,
        max_multibulk: 16,
        unauthenticated: false,
    };

    fn all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(a) = d.take(&mut buf, &L)? {
            out.push(a);
        }
        Ok(out)
    }

    #[test]
    fn pipelined_arrays_and_inline() {
        let got = all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nSET k \"a b\"\r\n*0\r\n\r\n*1\r\n$4\r\nPING\r\n")
            .expect("valid");
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], vec![Bytes::from("GET"), Bytes::from("k")]);
        assert_eq!(got[1], vec![Bytes::from("PING")]);
        assert_eq!(
            got[2],
            vec![Bytes::from("SET"), Bytes::from("k"), Bytes::from("a b")]
        );
        assert_eq!(got[3], vec![Bytes::from("PING")]);
    }

    #[test]
    fn incomplete_frame_waits_and_keeps_earlier_ones() {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(&b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$5\r\nab"[..]);
        assert_eq!(d.take(&mut buf, &L).expect("ok").map(|a| a.len()), Some(1));
        assert_eq!(d.take(&mut buf, &L).expect("ok"), None);
        buf.extend_from_slice(b"cde\r");
        assert_eq!(d.take(&mut buf, &L).expect("ok"), None);
        buf.extend_from_slice(b"\n");
        let a = d.take(&mut buf, &L).expect("ok").expect("complete");
        assert_eq!(a[1], Bytes::from("abcde"));
        assert!(buf.is_empty());
    }

    #[test]
    fn byte_at_a_time_matches_whole() {
        let input = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\n0123456789\r\nECHO 'it\\'s'\r\n";
        let mut d = Decoder::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            while let Some(a) = d.take(&mut buf, &L).unwrap_or_else(|e| panic!("{e}")) {
                got.push(a);
            }
        }
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0][2], Bytes::from("0123456789"));
        assert_eq!(got[1], vec![Bytes::from("ECHO"), Bytes::from("it's")]);
    }

    #[test]
    fn limits_apply_before_the_body_arrives() {
        let e = all(b"*2\r\n$3\r\nGET\r\n$2000\r\nxx").expect_err("bulk over limit");
        assert_eq!(e.0, "invalid bulk length");
        let e = all(b"*17\r\n").expect_err("too many elements");
        assert_eq!(e.0, "invalid multibulk length");
    }

    /// Found by the fuzz target `resp`: a frame over the multibulk limit with a bad byte
    /// further on reported the bad byte when it arrived whole, the limit when it arrived in
    /// pieces. Redis reads the count first.
    #[test]
    fn the_first_fault_is_reported_however_the_frame_arrives() {
        let input = b"*17\r\n\xe0\r\n";
        assert_eq!(all(input).expect_err("whole").0, "invalid multibulk length");
        assert_eq!(bytewise(input).as_deref(), Some("invalid multibulk length"));
        let e = all(b"*2\r\n$2000\r\nxx\r\n\xe0\r\n").expect_err("bulk over limit");
        assert_eq!(e.0, "invalid bulk length");
        // A body longer than declared: like Redis, the bytes where its CRLF should be are
        // skipped and the next header read where the count says. The decoder failed on
        // that header's type byte before its line was here, which gave another error when
        // the frame arrived in pieces.
        let input = b"*2\r\n$4\r\nKEYS\xf2\xf5\xdb\xcd\r\n";
        assert_eq!(
            all(input).expect_err("whole").0,
            "expected '$', got '\u{db}'"
        );
        assert_eq!(
            bytewise(input).as_deref(),
            Some("expected '$', got '\u{db}'")
        );
    }

    /// The first error of `input` fed one byte at a time.
    fn bytewise(input: &[u8]) -> Option<String> {
        let mut d = Decoder::default();
        let mut buf = BytesMut::new();
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            loop {
                match d.take(&mut buf, &L) {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => return Some(e.0),
                }
            }
        }
        None
    }

    #[test]
    fn unauthenticated_limits() {
        let u = FrameLimits {
            max_bulk: 1 << 20,
            max_multibulk: 1 << 20,
            unauthenticated: true,
        };
        let mut d = Decoder::default();
        let e = d.decode(b"*11\r\n", &u).expect_err("11 elements");
        assert_eq!(e.0, "unauthenticated multibulk length");
        let e = d.decode(b"*1000000\r\n$3\r\n", &u).expect_err("huge count");
        assert_eq!(e.0, "unauthenticated multibulk length");
        let mut d = Decoder::default();
        let e = d
            .decode(b"*2\r\n$4\r\nAUTH\r\n$16385\r\n", &u)
            .expect_err("bulk");
        assert_eq!(e.0, "unauthenticated bulk length");
        let mut d = Decoder::default();
        let e = d
            .decode(b"*1\r\n$999999999\r\n", &u)
            .expect_err("over max bulk");
        assert_eq!(
            e.0, "invalid bulk length",
            "proto-max-bulk-len is checked first"
        );
        let mut d = Decoder::default();
        let ten = b"*10\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n";
        assert!(d.decode(ten, &u).expect("ten are fine").is_some());
        let big = format!("*2\r\n$4\r\nAUTH\r\n$16384\r\n{}\r\n", "x".repeat(16384));
        assert!(
            d.decode(big.as_bytes(), &u)
                .expect("16 KB is fine")
                .is_some()
        );
        let allowed = FrameLimits {
            unauthenticated: false,
            ..u
        };
        assert!(
            d.decode(b"*11\r\n", &allowed)
                .expect("authenticated")
                .is_none()
        );
    }

    #[test]
    fn malformed_headers() {
        assert_eq!(
            all(b"*1\r\n:5\r\n").expect_err("int").0,
            "expected '$', got ':'"
        );
        assert_eq!(
            all(b"*x\r\n").expect_err("bad count").0,
            "invalid multibulk length"
        );
        assert_eq!(
            all(b"*1\r\n$x\r\n").expect_err("bad len").0,
            "invalid bulk length"
        );
        assert_eq!(
            all(b"*1\r\n$-1\r\n").expect_err("null").0,
            "invalid bulk length"
        );
        assert_eq!(
            all(b"SET k \"abc\r\n").expect_err("quote").0,
            "unbalanced quotes in request"
        );
    }

    #[test]
    fn oversized_inline_is_refused() {
        let long = vec![b'a'; INLINE_MAX + 1];
        assert_eq!(all(&long).expect_err("inline").0, "too big inline request");
    }

    #[test]
    fn split_args_escapes() {
        let a = split_args(br#"set "a\x41\n" 'it\'s' plain"#).expect("balanced");
        assert_eq!(
            a,
            vec![
                b"set".to_vec(),
                b"aA\n".to_vec(),
                b"it's".to_vec(),
                b"plain".to_vec()
            ]
        );
        assert!(split_args(br#""abc"def"#).is_none());
        assert_eq!(split_args(b"   ").map(|v| v.len()), Some(0));
    }
}
