//! Redis glob patterns (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET): `*`, `?`, `[abc]`,
//! `[^a-z]`, `\x`. The semantics are Redis's `stringmatchlen`, quirks included, which no
//! general glob crate reproduces (they treat `/` specially or lack `[^...]`):
//! - an empty string matches only the empty pattern (`*` does not match `""`);
//! - a class is read as Redis reads it: `]` right after `[` closes it (empty class),
//!   `a-]` is a range, an unclosed class takes the rest of the pattern, an escape inside
//!   a class compares case-sensitively even for `nocase`, and range bounds are signed
//!   chars (as on x86, where bytes >= 0x80 sort below ASCII);
//! - a lone trailing `\` is a literal backslash;
//! - more than 1000 nested `*` never match (Redis's guard against abusive patterns).
//!
//! Redis recurses on `*` (with an early exit so it stays polynomial); this matcher keeps
//! one backtrack point, the last `*`, which gives the same answers in O(pattern × string)
//! time and no recursion, so a pattern like `*a*a*a*a*b` costs milliseconds, not ages.

/// Redis's nesting guard: a `*` group beyond this many, followed by more pattern, fails.
const MAX_NESTING: usize = 1000;

/// True when `s` matches `pat` (Redis's `stringmatchlen`).
pub fn matches(pat: &[u8], s: &[u8], nocase: bool) -> bool {
    if s.is_empty() {
        return pat.is_empty();
    }
    if too_deep(pat) {
        return false;
    }
    let (mut p, mut i) = (0usize, 0usize);
    // The last `*` seen: the pattern after it, and where in `s` its match ends.
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() {
            if pat[p] == b'*' {
                while p < pat.len() && pat[p] == b'*' {
                    p += 1;
                }
                if p == pat.len() {
                    return true;
                }
                star = Some((p, i));
                continue;
            }
            if let Some(next) = step(pat, p, s[i], nocase) {
                p = next;
                i += 1;
                continue;
            }
        }
        match star {
            Some((sp, si)) => {
                p = sp;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Matches the one-character token at `pat[p]` (not `*`) against `c`: the index after
/// the token when it matches.
fn step(pat: &[u8], p: usize, c: u8, nocase: bool) -> Option<usize> {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    match pat[p] {
        b'?' => Some(p + 1),
        b'[' => {
            let (hit, next) = class(pat, p, Some(c), nocase);
            hit.then_some(next)
        }
        b'\\' if p + 1 < pat.len() => eq(pat[p + 1], c).then_some(p + 2),
        other => eq(other, c).then_some(p + 1),
    }
}

/// Reads the class at `pat[p] == '['` as Redis does: whether `c` is in it (false when
/// `c` is `None`: only the extent is wanted) and the index after it.
fn class(pat: &[u8], p: usize, c: Option<u8>, nocase: bool) -> (bool, usize) {
    // C's `char` is signed on x86 and `tolower` folds only A-Z.
    let signed = |b: u8| b as i8 as i32;
    let lower = |v: i32| {
        if (b'A' as i32..=b'Z' as i32).contains(&v) {
            v + 32
        } else {
            v
        }
    };
    let mut j = p + 1;
    let negate = pat.get(j) == Some(&b'^');
    if negate {
        j += 1;
    }
    let mut hit = false;
    loop {
        let left = pat.len() - j;
        if left >= 2 && pat[j] == b'\\' {
            j += 1;
            hit |= c == Some(pat[j]);
        } else if left >= 1 && pat[j] == b']' {
            break;
        } else if left == 0 {
            // Unclosed: the class took the rest of the pattern.
            return (c.is_some() && hit != negate, pat.len());
        } else if left >= 3 && pat[j + 1] == b'-' {
            if let Some(c) = c {
                let (mut lo, mut hi) = (signed(pat[j]), signed(pat[j + 2]));
                if lo > hi {
                    std::mem::swap(&mut lo, &mut hi);
                }
                let mut v = signed(c);
                if nocase {
                    (lo, hi, v) = (lower(lo), lower(hi), lower(v));
                }
                hit |= lo <= v && v <= hi;
            }
            j += 2;
        } else if let Some(c) = c {
            hit |= if nocase {
                pat[j].eq_ignore_ascii_case(&c)
            } else {
                pat[j] == c
            };
        }
        j += 1;
    }
    (c.is_some() && hit != negate, j + 1)
}

/// True when Redis's nesting guard makes the pattern match nothing: a 1001st `*` group
/// that is not the pattern's end is reached only past nesting 1000.
fn too_deep(pat: &[u8]) -> bool {
    if pat.iter().filter(|&&b| b == b'*').count() <= MAX_NESTING {
        return false;
    }
    let (mut p, mut groups, mut last_star) = (0, 0, false);
    while p < pat.len() {
        last_star = pat[p] == b'*';
        p = match pat[p] {
            b'*' => {
                groups += 1;
                p + pat[p..].iter().take_while(|&&b| b == b'*').count()
            }
            b'[' => class(pat, p, None, false).1,
            b'\\' if p + 1 < pat.len() => p + 2,
            _ => p + 1,
        };
    }
    groups > MAX_NESTING + 1 || (groups == MAX_NESTING + 1 && !last_star)
}
#[cfg(test)]
mod tests {
    use super::{MAX_NESTING, matches, step};

    #[test]
    fn redis_glob() {
        let m = |p: &str, s: &str| matches(p.as_bytes(), s.as_bytes(), false);
        assert!(m("*", "anything"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("user:*:name", "user:42:name"));
        assert!(!m("user:*:name", "user:42:age"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("*a*a*a*", "xaxaxax"));
        assert!(!m("*a*a*a*b", &"a".repeat(60)));
        assert!(matches(b"ABC*", b"abcdef", true));
    }

    #[test]
    fn redis_quirks() {
        let m = |p: &[u8], s: &[u8]| matches(p, s, false);
        assert!(!m(b"*", b""), "Redis: `*` does not match the empty string");
        assert!(m(b"", b""));
        assert!(
            !m(b"[]a]", b"a"),
            "`]` right after `[` closes an empty class"
        );
        assert!(!m(b"[]a]", b"]a]"), "an empty class matches nothing");
        assert!(m(b"[^]a]", b"xa]"), "... and its negation anything");
        assert!(
            m(b"[abc", b"b"),
            "an unclosed class takes the rest of the pattern"
        );
        assert!(!m(b"[", b"["));
        assert!(
            m(b"[^", b"x"),
            "an unclosed negated empty class matches anything"
        );
        assert!(m(b"[a-]", b"^"), "`a-]` is the range `]`..`a`");
        assert!(m(b"a\\", b"a\\"));
        assert!(m(b"ab\\", b"ab\\"), "a trailing backslash is literal");
        assert!(
            !matches(b"[\\A]", b"a", true),
            "an escape in a class is case-sensitive"
        );
        assert!(matches(b"[A]", b"a", true));
        assert!(m(b"[a-\xff]", b"\x10"), "range bounds are signed chars");
        assert!(!m(b"[a-\xff]", b"b"));
    }

    #[test]
    fn nesting_guard() {
        let many = "*a".repeat(1001);
        assert!(!matches(
            many.as_bytes(),
            "a".repeat(2000).as_bytes(),
            false
        ));
        let ok = format!("{}*", "a*".repeat(1000));
        assert!(matches(ok.as_bytes(), "a".repeat(1000).as_bytes(), false));
        let escaped = "\\*a".repeat(1100);
        assert!(matches(
            escaped.as_bytes(),
            "*a".repeat(1100).as_bytes(),
            false
        ));
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let pat = format!("{}b", "*a".repeat(12));
        let key = "a".repeat(100_000);
        let t = std::time::Instant::now();
        assert!(!matches(pat.as_bytes(), key.as_bytes(), false));
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            t.elapsed()
        );
    }

    /// Redis's recursive algorithm, written plainly (no early exits): the oracle.
    fn oracle(p: &[u8], s: &[u8], nocase: bool) -> bool {
        !s.is_empty() && oracle_at(p, s, nocase, 0) || s.is_empty() && p.is_empty()
    }

    fn oracle_at(p: &[u8], s: &[u8], nocase: bool, depth: usize) -> bool {
        if depth > MAX_NESTING {
            return false;
        }
        if s.is_empty() {
            return p.iter().all(|&b| b == b'*');
        }
        if p.is_empty() {
            return false;
        }
        if p[0] == b'*' {
            let q = p.iter().take_while(|&&b| b == b'*').count();
            if q == p.len() {
                return true;
            }
            return (0..s.len()).any(|k| oracle_at(&p[q..], &s[k..], nocase, depth + 1));
        }
        match step(p, 0, s[0], nocase) {
            Some(next) => oracle_at(&p[next..], &s[1..], nocase, depth),
            None => false,
        }
    }

    #[test]
    fn agrees_with_the_recursive_definition() {
        let alphabet = b"ab*?[]^-\\A";
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..200_000 {
            let p: Vec<u8> = (0..next(8))
                .map(|_| alphabet[next(alphabet.len())])
                .collect();
            let s: Vec<u8> = (0..next(7)).map(|_| b"abA]-"[next(5)]).collect();
            let nocase = next(2) == 1;
            assert_eq!(
                matches(&p, &s, nocase),
                oracle(&p, &s, nocase),
                "{:?} vs {:?} nocase={nocase}",
                String::from_utf8_lossy(&p),
                String::from_utf8_lossy(&s)
            );
        }
    }
}
