//! RESP3 through HELLO, pipelining, inline commands.

use std::io::Write;

use redis::{Value, cmd};

use crate::util::{TestServer, read_n};

#[tokio::test]
async fn hello_3_switches_to_resp3() {
    let s = TestServer::start();
    let mut c = s.conn3().await;
    let hello: Value = cmd("HELLO").arg(3).query_async(&mut c).await.unwrap();
    let Value::Map(m) = hello else {
        panic!("HELLO 3 must answer a map, got {hello:?}")
    };
    let get = |k: &str| {
        m.iter()
            .find(|(a, _)| *a == Value::BulkString(k.as_bytes().to_vec()))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("server"), Some(Value::BulkString(b"redis".to_vec())));
    assert_eq!(get("version"), Some(Value::BulkString(b"7.4.0".to_vec())));
    assert_eq!(get("proto"), Some(Value::Int(3)));
    assert!(matches!(get("id"), Some(Value::Int(i)) if i > 0));
    // RESP3 native types: nil, map (CONFIG GET), double-free commands still typed.
    let nil: Value = cmd("GET").arg("missing").query_async(&mut c).await.unwrap();
    assert_eq!(nil, Value::Nil);
    let cfg: Value = cmd("CONFIG")
        .arg("GET")
        .arg("maxclients")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        matches!(cfg, Value::Map(ref kv) if kv.len() == 1),
        "{cfg:?}"
    );
    let _: () = cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut c)
        .await
        .unwrap();
    let v: String = cmd("GET").arg("k").query_async(&mut c).await.unwrap();
    assert_eq!(v, "v");
    let info: String = cmd("INFO").arg("server").query_async(&mut c).await.unwrap();
    assert!(info.contains("redis_version:7.4.0"));
}

#[test]
fn hello_on_the_wire() {
    let s = TestServer::start();
    let mut raw = s.raw();
    raw.write_all(b"HELLO 3 SETNAME app\r\nGET nope\r\nHELLO 4\r\nHELLO x\r\nCLIENT GETNAME\r\nHELLO 2\r\nGET nope\r\n").unwrap();
    let out = String::from_utf8_lossy(&read_n(&mut raw, 140)).to_string();
    assert!(
        out.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"),
        "{out}"
    );
    assert!(out.contains("$5\r\nproto\r\n:3\r\n"));
    let tail = out.split("*0\r\n").nth(1).unwrap_or_default();
    assert!(tail.starts_with("_\r\n-NOPROTO unsupported protocol version\r\n-ERR Protocol version is not an integer or out of range\r\n$3\r\napp\r\n*14\r\n"), "{tail:?}");
    assert!(
        out.ends_with("$-1\r\n"),
        "RESP2 again after HELLO 2: {out:?}"
    );
}

#[tokio::test]
async fn pipeline_of_10000_commands_in_one_batch() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let mut p = redis::pipe();
    for i in 0..5000 {
        p.cmd("SET").arg(format!("p:{i}")).arg(i);
        p.cmd("INCR").arg(format!("p:{i}"));
    }
    let replies: Vec<Value> = p.query_async(&mut c).await.unwrap();
    assert_eq!(replies.len(), 10_000);
    for (i, pair) in replies.chunks(2).enumerate() {
        assert_eq!(pair[0], Value::Okay);
        assert_eq!(pair[1], Value::Int(i as i64 + 1));
    }
    let n: i64 = cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert_eq!(n, 5000);
}

#[test]
fn raw_pipeline_with_a_split_frame() {
    let s = TestServer::start();
    let mut raw = s.raw();
    // Two complete commands and the first half of a third in one write: the complete ones
    // are answered without waiting for the rest.
    raw.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1").unwrap();
    assert_eq!(read_n(&mut raw, 12), b"+OK\r\n$1\r\n1\r\n");
    raw.write_all(b"\r\na\r\n").unwrap();
    assert_eq!(read_n(&mut raw, 7), b"$1\r\n1\r\n");
}

#[test]
fn inline_commands_like_telnet() {
    let s = TestServer::start();
    let mut raw = s.raw();
    raw.write_all(
        b"SET greeting \"hello world\"\r\nGET greeting\r\n\r\nPING\nEXISTS greeting nope\r\n",
    )
    .unwrap();
    let out = read_n(&mut raw, 5 + 17 + 7 + 4);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "+OK\r\n$11\r\nhello world\r\n+PONG\r\n:1\r\n"
    );
}
