//! The request path up to the store: the RESP/inline request decoder over arbitrary
//! bytes with small limits, fed in arbitrary splits (incremental decoding must give the
//! same requests and the same error as decoding the whole input at once), then every
//! request through command lookup, arity and argument parsing, and executed by the real
//! dispatcher against fresh in-process server state; the reply is encoded in RESP2 and
//! RESP3.
//!
//! Input: byte 0 seeds the read splits (its top bit: the client has not authenticated);
//! the rest is what a client sent.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use terrace::command::{CommandId, Flags};
use terrace::protocol::Proto;
use terrace::protocol::codec::{Decoder, FrameLimits, ProtocolError};
use terrace::server::Client;
use terrace::server::dispatch::{self, BatchClock};

/// Small limits, so the fuzzer reaches them; with `unauthenticated`, Redis 7's limits for
/// a client that has not authenticated (10 elements, 16 KB bulks) on top.
fn limits(unauthenticated: bool) -> FrameLimits {
    FrameLimits {
        max_bulk: 512,
        max_multibulk: 32,
        unauthenticated,
    }
}

/// Every request framed from `input` read in chunks of `splits` bytes (one chunk: the
/// whole input at once), and the protocol error that ended the stream, if any.
fn decode(
    input: &[u8],
    splits: &[usize],
    limits: &FrameLimits,
) -> (Vec<Vec<Vec<u8>>>, Option<ProtocolError>) {
    let mut d = Decoder::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut at = 0;
    for &n in splits {
        buf.extend_from_slice(&input[at..at + n]);
        at += n;
        loop {
            match d.decode(&buf, limits) {
                Ok(Some(frame)) => {
                    let args: Vec<Vec<u8>> = frame.args(&buf).iter().map(|a| a.to_vec()).collect();
                    assert!(frame.len > 0 && frame.len <= buf.len(), "frame length");
                    let _ = buf.split_to(frame.len);
                    out.push(args);
                }
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

/// Commands the dispatcher does not finish by itself: the connection waits for them
/// (blocking pops, WAIT), or they end the process's role (SHUTDOWN, FAILOVER).
fn runs_to_completion(id: CommandId) -> bool {
    !id.spec().flags.has(Flags::BLOCKING)
        && !matches!(
            id,
            CommandId::Wait | CommandId::Shutdown | CommandId::Failover
        )
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let limits = limits(seed & 0x80 != 0);
    let (whole, whole_err) = decode(input, &[input.len()], &limits);
    let (parts, parts_err) = decode(
        input,
        &terrace_fuzz::splits(u64::from(seed) + 1, input.len()),
        &limits,
    );
    assert_eq!(whole, parts, "incremental decoding framed other requests");
    assert_eq!(whole_err, parts_err, "incremental decoding ended otherwise");

    let shared = terrace_fuzz::shared();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    let _in_runtime = rt.enter();
    let addr = "127.0.0.1:1".parse().expect("address");
    let mut client = Client::new(shared.clients.register(addr, addr), &shared.acl);
    let mut clock = BatchClock::start();
    for args in &whole {
        let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        if argv.is_empty() {
            continue;
        }
        // Parsing alone must never panic, whatever the arguments.
        let parsed = terrace::command::parse_request(&argv);
        let runs = match terrace::command::resolve(&argv) {
            Ok((id, _)) => runs_to_completion(id),
            Err(_) => {
                assert!(parsed.is_err(), "an unresolved request parsed");
                true
            }
        };
        drop(parsed);
        if !runs {
            continue;
        }
        let reply = dispatch::execute(&shared, &mut client, &argv, &mut clock);
        let mut out = BytesMut::new();
        reply.clone().encode(Proto::Resp2, &mut out);
        reply.encode(Proto::Resp3, &mut out);
        if client.close {
            break;
        }
    }
});
