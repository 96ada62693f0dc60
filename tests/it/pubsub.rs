//! Pub/sub over raw sockets: exact RESP2 and RESP3 wire forms, pattern delivery, the
//! RESP2 subscribed-mode rules, introspection and clean-up on disconnect.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::util::{TestServer, read_n, run};

fn send(s: &mut std::net::TcpStream, req: &str, want: &str) {
    s.write_all(req.as_bytes()).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&read_n(s, want.len())),
        want,
        "reply to {req:?}"
    );
}

#[tokio::test]
async fn messages_reach_channel_and_pattern_subscribers_in_their_protocol() {
    let s = TestServer::start();
    let mut sub2 = s.raw();
    send(
        &mut sub2,
        "SUBSCRIBE news\r\n",
        "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n",
    );
    let mut psub = s.raw();
    send(
        &mut psub,
        "PSUBSCRIBE n*\r\n",
        "*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:1\r\n",
    );
    let mut sub3 = s.raw();
    sub3.write_all(b"HELLO 3\r\n").unwrap();
    // Skip HELLO's map: a PING reply marks its end.
    sub3.write_all(b"PING\r\n").unwrap();
    let mut seen = Vec::new();
    while !seen.ends_with(b"+PONG\r\n") {
        seen.extend(read_n(&mut sub3, 1));
    }
    send(
        &mut sub3,
        "SUBSCRIBE news\r\n",
        ">3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n",
    );
    // RESP3 clients may run any command while subscribed.
    send(&mut sub3, "GET nothing\r\n", "_\r\n");

    let mut c = s.conn().await;
    let n: i64 = run(&mut c, ("PUBLISH", "news", "hello")).await;
    assert_eq!(n, 3, "two channel subscribers and one pattern subscriber");
    assert_eq!(
        String::from_utf8_lossy(&read_n(&mut sub2, 33)),
        "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&read_n(&mut sub3, 33)),
        ">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&read_n(&mut psub, 42)),
        "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
    );
    let n: i64 = run(&mut c, ("PUBLISH", "other", "x")).await;
    assert_eq!(n, 0);

    // Introspection.
    let chans: Vec<String> = run(&mut c, ("PUBSUB", "CHANNELS")).await;
    assert_eq!(chans, vec!["news"]);
    let numsub: (String, i64, String, i64) = run(&mut c, ("PUBSUB", "NUMSUB", "news", "x")).await;
    assert_eq!(numsub, ("news".into(), 2, "x".into(), 0));
    let numpat: i64 = run(&mut c, ("PUBSUB", "NUMPAT")).await;
    assert_eq!(numpat, 1);
    let list: String = run(&mut c, ("CLIENT", "LIST")).await;
    assert_eq!(
        list.lines().filter(|l| l.contains(" sub=1 ")).count(),
        2,
        "{list}"
    );
    assert_eq!(
        list.lines().filter(|l| l.contains(" psub=1 ")).count(),
        1,
        "{list}"
    );
    assert!(list.lines().any(|l| l.contains("flags=P")), "{list}");

    // Disconnecting unsubscribes.
    drop(sub2);
    drop(sub3);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let numsub: (String, i64) = run(&mut c, ("PUBSUB", "NUMSUB", "news")).await;
        if numsub.1 == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "subscriptions survived disconnect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn resp2_subscribed_mode_allows_only_pubsub_commands() {
    let s = TestServer::start();
    let mut t = s.raw();
    send(
        &mut t,
        "SUBSCRIBE a b\r\nGET x\r\nPING\r\nPING hi\r\nUNSUBSCRIBE\r\nGET x\r\nUNSUBSCRIBE\r\n",
        concat!(
            "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n",
            "*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n",
            "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
            "*2\r\n$4\r\npong\r\n$0\r\n\r\n",
            "*2\r\n$4\r\npong\r\n$2\r\nhi\r\n",
            "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n",
            "*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n",
            "$-1\r\n",
            "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n",
        ),
    );
    // RESET leaves subscribed mode too.
    send(
        &mut t,
        "PSUBSCRIBE p*\r\nRESET\r\nGET x\r\n",
        "*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:1\r\n+RESET\r\n$-1\r\n",
    );
    let mut c = s.conn().await;
    let numpat: i64 = run(&mut c, ("PUBSUB", "NUMPAT")).await;
    assert_eq!(numpat, 0);
}
