//! Replies as values, encoded for the client's protocol (RESP2 or RESP3) with redis-protocol.
//!
//! Commands build a [`Reply`] that says what they mean (a map, a double, a nil), and
//! [`Reply::encode`] picks the wire form: RESP3 has native maps, sets, doubles, booleans
//! and nulls; RESP2 gets Redis's fallbacks (flat arrays, bulk strings, integers, `$-1`/`*-1`).

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::types::BytesFrame as F2;
use redis_protocol::resp3::types::{BytesFrame as F3, FrameMap, FrameSet, VerbatimStringFormat};

/// The protocol a connection speaks (`HELLO 2|3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Proto {
    /// RESP2, the default.
    #[default]
    Resp2,
    /// RESP3.
    Resp3,
}

impl Proto {
    /// 2 or 3.
    pub fn version(self) -> i64 {
        match self {
            Proto::Resp2 => 2,
            Proto::Resp3 => 3,
        }
    }
}

/// A reply to one command.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// A status line such as `+PONG` or `+string`.
    Status(Cow<'static, str>),
    /// An error line; the text includes its prefix (`ERR ...`, `WRONGTYPE ...`).
    Error(Cow<'static, str>),
    /// An integer.
    Int(i64),
    /// A bulk string.
    Bulk(Bytes),
    /// A null (`$-1` in RESP2).
    Nil,
    /// A null array (`*-1` in RESP2).
    NilArray,
    /// An array.
    Array(Vec<Reply>),
    /// A map (a flat array of key, value, ... in RESP2).
    Map(Vec<(Reply, Reply)>),
    /// A set (an array in RESP2).
    Set(Vec<Reply>),
    /// A double (a bulk string in RESP2).
    Double(f64),
    /// A boolean (the integer 1 or 0 in RESP2).
    Bool(bool),
    /// Text meant for humans, like INFO (a verbatim `txt` string in RESP3).
    Verbatim(Bytes),
    /// Nothing is written (SHUTDOWN closes the connection without a reply).
    NoReply,
    /// Out-of-band data (pub/sub messages, invalidations): a RESP3 push, an array in RESP2.
    Push(Vec<Reply>),
    /// Several replies to one command, written back to back (SUBSCRIBE a b).
    Many(Vec<Reply>),
    /// A reply already encoded in the client's protocol (relayed from the server that
    /// owns the key): written as it is.
    Raw(Bytes),
}

impl Reply {
    /// A bulk string copied from a slice.
    pub fn bulk(b: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(b.as_ref()))
    }

    /// A status line.
    pub fn status(s: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Status(s.into())
    }

    /// An array of bulk strings.
    pub fn bulks<I: IntoIterator<Item = Bytes>>(items: I) -> Reply {
        Reply::Array(items.into_iter().map(Reply::Bulk).collect())
    }

    /// An optional bulk string: `None` is a nil.
    pub fn opt_bulk(v: Option<Bytes>) -> Reply {
        v.map_or(Reply::Nil, Reply::Bulk)
    }

    /// True for error replies.
    pub fn is_error(&self) -> bool {
        match self {
            Reply::Error(_) => true,
            Reply::Raw(b) => b.first() == Some(&b'-'),
            _ => false,
        }
    }

    /// About how many bytes the reply takes on the wire, without encoding it: what an
    /// out-of-band reply adds to its client's pending output (`client-output-buffer-limit`).
    pub fn wire_size(&self) -> usize {
        match self {
            Reply::NoReply => 0,
            Reply::Ok | Reply::Nil | Reply::NilArray => 5,
            Reply::Status(s) | Reply::Error(s) => s.len() + 3,
            Reply::Int(_) | Reply::Double(_) | Reply::Bool(_) => 24,
            Reply::Bulk(b) | Reply::Verbatim(b) => b.len() + 16,
            Reply::Raw(b) => b.len(),
            Reply::Array(v) | Reply::Set(v) | Reply::Push(v) | Reply::Many(v) => {
                16 + v.iter().map(Reply::wire_size).sum::<usize>()
            }
            Reply::Map(kv) => {
                16 + kv
                    .iter()
                    .map(|(k, v)| k.wire_size() + v.wire_size())
                    .sum::<usize>()
            }
        }
    }

    /// Appends the wire form of this reply to `out`.
    pub fn encode(self, proto: Proto, out: &mut BytesMut) {
        // The replies of the hot commands (GET, SET, INCR, DEL) are written directly: they
        // are the bulk of all replies, and building a frame for them costs more than
        // the bytes themselves. Everything else goes through redis-protocol.
        match (&self, proto) {
            (Reply::NoReply, _) => return,
            (Reply::Raw(b), _) => return out.extend_from_slice(b),
            // An array holding a null array (EXEC of BLPOP or LPOP key count): the resp2
            // frame type cannot say `*-1` inside an array, so it is written here.
            (Reply::Array(v), Proto::Resp2) if v.iter().any(|r| matches!(r, Reply::NilArray)) => {
                put_line(out, b'*', v.len() as i64);
                if let Reply::Array(v) = self {
                    for r in v {
                        r.encode(proto, out);
                    }
                }
                return;
            }
            (Reply::Many(_), _) => {
                if let Reply::Many(v) = self {
                    for r in v {
                        r.encode(proto, out);
                    }
                }
                return;
            }
            (Reply::Ok, _) => return out.extend_from_slice(b"+OK\r\n"),
            (Reply::Int(i), _) => return put_line(out, b':', *i),
            (Reply::Bulk(b), _) => {
                put_line(out, b'$', b.len() as i64);
                out.extend_from_slice(b);
                return out.extend_from_slice(b"\r\n");
            }
            (Reply::Nil, Proto::Resp2) => return out.extend_from_slice(b"$-1\r\n"),
            (Reply::Nil, Proto::Resp3) => return out.extend_from_slice(b"_\r\n"),
            // The resp2 frame type has no null array; EXEC's abort reply needs `*-1`.
            (Reply::NilArray, Proto::Resp2) => return out.extend_from_slice(b"*-1\r\n"),
            // Doubles in Redis's own text (redis-protocol prints them without exponent);
            // arrays and sets are written here so the doubles inside them are too.
            (Reply::Double(d), Proto::Resp3) => {
                out.extend_from_slice(b",");
                out.extend_from_slice(format_double(*d).as_bytes());
                return out.extend_from_slice(b"\r\n");
            }
            (Reply::Array(v), _) | (Reply::Set(v), Proto::Resp2) => {
                put_line(out, b'*', v.len() as i64);
                if let Reply::Array(v) | Reply::Set(v) = self {
                    for r in v {
                        r.encode(proto, out);
                    }
                }
                return;
            }
            (Reply::Set(v), Proto::Resp3) => {
                put_line(out, b'~', v.len() as i64);
                if let Reply::Set(v) = self {
                    for r in v {
                        r.encode(proto, out);
                    }
                }
                return;
            }
            _ => {}
        }
        let res = match proto {
            Proto::Resp2 => {
                redis_protocol::resp2::encode::extend_encode(out, &self.into_resp2(), false)
            }
            Proto::Resp3 => redis_protocol::resp3::encode::complete::extend_encode(
                out,
                &self.into_resp3(),
                false,
            ),
        };
        if let Err(e) = res {
            // Only a malformed frame can fail to encode; say so rather than send garbage.
            tracing::error!("reply encoding failed: {e:?}");
            out.extend_from_slice(b"-ERR internal error encoding the reply\r\n");
        }
    }

    fn into_resp2(self) -> F2 {
        match self {
            Reply::Ok => F2::SimpleString(Bytes::from_static(b"OK")),
            Reply::Status(s) => F2::SimpleString(cow_bytes(sanitize(s))),
            Reply::Error(e) => F2::Error(str_of(sanitize(e))),
            Reply::Int(i) => F2::Integer(i),
            // Raw replies are written before conversion; never nested.
            Reply::Bulk(b) | Reply::Verbatim(b) | Reply::Raw(b) => F2::BulkString(b),
            Reply::Nil | Reply::NoReply => F2::Null,
            Reply::NilArray => F2::Null,
            Reply::Array(v) | Reply::Set(v) | Reply::Push(v) | Reply::Many(v) => {
                F2::Array(v.into_iter().map(Reply::into_resp2).collect())
            }
            Reply::Map(kv) => F2::Array(
                kv.into_iter()
                    .flat_map(|(k, v)| [k.into_resp2(), v.into_resp2()])
                    .collect(),
            ),
            Reply::Double(d) => F2::BulkString(Bytes::from(format_double(d))),
            Reply::Bool(b) => F2::Integer(i64::from(b)),
        }
    }

    fn into_resp3(self) -> F3 {
        match self {
            Reply::Ok => F3::SimpleString {
                data: Bytes::from_static(b"OK"),
                attributes: None,
            },
            Reply::Status(s) => F3::SimpleString {
                data: cow_bytes(sanitize(s)),
                attributes: None,
            },
            Reply::Error(e) => F3::SimpleError {
                data: str_of(sanitize(e)),
                attributes: None,
            },
            Reply::Int(i) => F3::Number {
                data: i,
                attributes: None,
            },
            Reply::Bulk(b) | Reply::Raw(b) => F3::BlobString {
                data: b,
                attributes: None,
            },
            Reply::Verbatim(b) => F3::VerbatimString {
                data: b,
                format: VerbatimStringFormat::Text,
                attributes: None,
            },
            Reply::Nil | Reply::NilArray | Reply::NoReply => F3::Null,
            Reply::Array(v) | Reply::Many(v) => F3::Array {
                data: v.into_iter().map(Reply::into_resp3).collect(),
                attributes: None,
            },
            Reply::Push(v) => F3::Push {
                data: v.into_iter().map(Reply::into_resp3).collect(),
                attributes: None,
            },
            Reply::Set(v) => F3::Set {
                data: v
                    .into_iter()
                    .map(Reply::into_resp3)
                    .collect::<FrameSet<F3>>(),
                attributes: None,
            },
            Reply::Map(kv) => F3::Map {
                data: kv
                    .into_iter()
                    .map(|(k, v)| (k.into_resp3(), v.into_resp3()))
                    .collect::<FrameMap<F3, F3>>(),
                attributes: None,
            },
            Reply::Double(d) => F3::Double {
                data: d,
                attributes: None,
            },
            Reply::Bool(b) => F3::Boolean {
                data: b,
                attributes: None,
            },
        }
    }
}

/// Writes `<prefix><n>\r\n`.
fn put_line(out: &mut BytesMut, prefix: u8, n: i64) {
    let mut buf = itoa::Buffer::new();
    out.reserve(24);
    out.extend_from_slice(&[prefix]);
    out.extend_from_slice(buf.format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Status and error lines cannot hold CR or LF; Redis replaces them with spaces.
fn sanitize(s: Cow<'static, str>) -> Cow<'static, str> {
    if s.contains(['\r', '\n']) {
        Cow::Owned(s.replace(['\r', '\n'], " "))
    } else {
        s
    }
}

fn cow_bytes(s: Cow<'static, str>) -> Bytes {
    match s {
        Cow::Borrowed(b) => Bytes::from_static(b.as_bytes()),
        Cow::Owned(o) => Bytes::from(o),
    }
}

/// redis-protocol's error frames hold a `bytes_utils::Str`.
fn str_of(s: Cow<'static, str>) -> bytes_utils::Str {
    match s {
        Cow::Borrowed(b) => bytes_utils::Str::from_static(b),
        Cow::Owned(o) => bytes_utils::Str::from(o),
    }
}

/// Formats a double the way Redis 7.4 replies do (`d2string`), for RESP2 bulk strings and
/// RESP3 doubles alike: `inf`, `-inf`, `nan`, `0`/`-0`; an integral value within ±2^62 as
/// an integer; anything else as the shortest digits that read back to the same value,
/// laid out as Redis's `fpconv_dtoa` does (plain up to 21 integer digits or 6 leading
/// zeros after the point, else `d.ddde+XX`).
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".to_string();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Redis's double2ll: the integer path for integral values within ±LLONG_MAX/2.
    const HALF: f64 = (i64::MAX / 2) as f64;
    if (-HALF..=HALF).contains(&d) && d.fract() == 0.0 {
        return (d as i64).to_string();
    }
    // Shortest round-trip digits and the decimal exponent, from Rust's `{:e}`.
    let sci = format!("{:e}", d.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let exp10: i64 = exp.parse().unwrap_or(0);
    let nd = digits.len() as i64;
    // fpconv's K: the value is digits × 10^K.
    let k = exp10 - (nd - 1);
    let mut out = String::with_capacity(24);
    if d < 0.0 {
        out.push('-');
    }
    let e = (k + nd - 1).abs();
    if k >= 0 && e < nd + 7 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', k as usize));
    } else if k < 0 && (k > -7 || e < 4) {
        let offset = nd + k;
        if offset <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-offset) as usize));
            out.push_str(&digits);
        } else {
            out.push_str(&digits[..offset as usize]);
            out.push('.');
            out.push_str(&digits[offset as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if nd > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp10 < 0 { '-' } else { '+' });
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(r: Reply, p: Proto) -> String {
        let mut out = BytesMut::new();
        r.encode(p, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn resp2_fallbacks() {
        assert_eq!(wire(Reply::Ok, Proto::Resp2), "+OK\r\n");
        assert_eq!(wire(Reply::Nil, Proto::Resp2), "$-1\r\n");
        assert_eq!(wire(Reply::NilArray, Proto::Resp2), "*-1\r\n");
        assert_eq!(
            wire(
                Reply::Array(vec![Reply::NilArray, Reply::Nil, Reply::Int(1)]),
                Proto::Resp2
            ),
            "*3\r\n*-1\r\n$-1\r\n:1\r\n"
        );
        assert_eq!(wire(Reply::Bool(true), Proto::Resp2), ":1\r\n");
        assert_eq!(wire(Reply::Double(1.5), Proto::Resp2), "$3\r\n1.5\r\n");
        assert_eq!(
            wire(
                Reply::Map(vec![(Reply::bulk("a"), Reply::Int(1))]),
                Proto::Resp2
            ),
            "*2\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(
            wire(Reply::Error("ERR a\r\nb".into()), Proto::Resp2),
            "-ERR a  b\r\n"
        );
    }

    #[test]
    fn resp3_native_types() {
        assert_eq!(wire(Reply::Nil, Proto::Resp3), "_\r\n");
        assert_eq!(wire(Reply::Bool(false), Proto::Resp3), "#f\r\n");
        assert_eq!(
            wire(
                Reply::Map(vec![(Reply::bulk("a"), Reply::Int(1))]),
                Proto::Resp3
            ),
            "%1\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(
            wire(Reply::Verbatim(Bytes::from("x")), Proto::Resp3),
            "=5\r\ntxt:x\r\n"
        );
        assert_eq!(wire(Reply::NoReply, Proto::Resp3), "");
        let push = || Reply::Push(vec![Reply::bulk("message"), Reply::Int(1)]);
        assert_eq!(wire(push(), Proto::Resp3), ">2\r\n$7\r\nmessage\r\n:1\r\n");
        assert_eq!(wire(push(), Proto::Resp2), "*2\r\n$7\r\nmessage\r\n:1\r\n");
        assert_eq!(
            wire(Reply::Many(vec![Reply::Ok, Reply::Int(2)]), Proto::Resp2),
            "+OK\r\n:2\r\n"
        );
        assert_eq!(wire(Reply::Int(-12), Proto::Resp3), ":-12\r\n");
        assert_eq!(wire(Reply::bulk("ab"), Proto::Resp3), "$2\r\nab\r\n");
        assert_eq!(wire(Reply::bulk(""), Proto::Resp2), "$0\r\n\r\n");
    }

    #[test]
    fn doubles_format_like_redis() {
        // Expected texts are Redis 7.4's ZSCORE replies for the same scores.
        for (d, text) in [
            (10.0, "10"),
            (10.6, "10.6"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1.0 / 3.0, "0.3333333333333333"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0"),
            (-0.0, "-0"),
            (1e17, "100000000000000000"),
            (4611686018427387904.0, "4611686018427387904"),
            (9223372036854775808.0, "9223372036854776000"),
            (1e19, "1e+19"),
            (1.5e300, "1.5e+300"),
            (-1e-7, "-1e-07"),
            (1.25e-5, "1.25e-05"),
            (0.000123, "0.000123"),
            (123456.789, "123456.789"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
        ] {
            assert_eq!(format_double(d), text, "{d:e}");
        }
    }

    #[test]
    fn resp3_doubles_use_redis_text() {
        assert_eq!(wire(Reply::Double(1e-7), Proto::Resp3), ",1e-07\r\n");
        assert_eq!(wire(Reply::Double(1e-7), Proto::Resp2), "$5\r\n1e-07\r\n");
        assert_eq!(
            wire(
                Reply::Array(vec![Reply::Array(vec![
                    Reply::bulk("m"),
                    Reply::Double(1.5)
                ])]),
                Proto::Resp3
            ),
            "*1\r\n*2\r\n$1\r\nm\r\n,1.5\r\n"
        );
        assert_eq!(
            wire(Reply::Set(vec![Reply::Double(2.0)]), Proto::Resp3),
            "~1\r\n,2\r\n"
        );
        assert_eq!(
            wire(Reply::Set(vec![Reply::Double(2.0)]), Proto::Resp2),
            "*1\r\n$1\r\n2\r\n"
        );
    }
}
