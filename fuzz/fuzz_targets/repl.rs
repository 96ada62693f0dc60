//! What a mirror reads from its active: the handshake answer line (also read as a peer's
//! `PEER` answer to HELLO), then the binary message stream (snapshot records, records with
//! their epoch, heartbeats, standby, takeover), applied by the mirror's own handler to
//! fresh in-process server state, read in arbitrary splits as the socket delivers them.
//!
//! Input: byte 0 seeds the read splits; then the answer line up to `\n`; then the stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use terrace::replication::mirror::{self, Answer};
use terrace::replication::wire::PeerView;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let (line, stream) = match input.iter().position(|&b| b == b'\n') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &[][..]),
    };
    let line = String::from_utf8_lossy(line);
    // The same line as a peer's answer to HELLO: what parses prints back the same.
    if let Ok(v) = PeerView::parse(&line) {
        assert_eq!(
            PeerView::parse(v.line().trim_end()),
            Ok(v),
            "PEER line round trip"
        );
    }
    if Answer::parse(&line).is_err() {
        return;
    }
    let shared = terrace_fuzz::shared();
    let mut buf = Vec::new();
    let mut at = 0;
    for n in terrace_fuzz::splits(u64::from(seed) + 1, stream.len()) {
        buf.extend_from_slice(&stream[at..at + n]);
        at += n;
        match mirror::handle(&shared, "active", &buf) {
            Ok(h) => {
                assert!(h.consumed <= buf.len());
                if h.takeover.is_some() {
                    return;
                }
                buf.drain(..h.consumed);
            }
            // The session ends the link: what the active sent is refused, not obeyed.
            Err(_) => return,
        }
    }
});
