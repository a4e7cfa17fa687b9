//! Hostile HTTP against the real server: every malformed, oversized or slow request gets a
//! 4xx or a closed connection, never a 5xx, and the server keeps serving afterwards.
//! Requests are written as raw bytes over TCP, so nothing on the client side tidies them.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::{Ingress, SECRET_ALL};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound for the server to answer or close; generous for a busy machine. A request
/// still open after it means the server holds a hostile connection without limit.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

/// What came back on a connection.
#[derive(Debug)]
enum Outcome {
    /// The status code and body of the first response.
    Answered(u16, String),
    /// Closed (or reset) without a response.
    Closed,
}

impl Outcome {
    fn status(&self) -> Option<u16> {
        match self {
            Outcome::Answered(status, _) => Some(*status),
            Outcome::Closed => None,
        }
    }
}

/// Writes `request` (failures to write count: the server may close early) and reads until
/// the server closes the connection.
async fn raw(addr: SocketAddr, request: &[u8]) -> Outcome {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // A server that refuses mid-upload may reset the connection; what it answered before
    // that is still in our receive buffer.
    let _ = stream.write_all(request).await;
    read_answer(&mut stream).await
}

async fn read_answer(stream: &mut TcpStream) -> Outcome {
    let mut received = Vec::new();
    let read = tokio::time::timeout(ANSWER_WITHIN, async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server neither answered nor closed within {ANSWER_WITHIN:?}"
    );
    parse(&received)
}

fn parse(received: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(received);
    let Some(status) = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
    else {
        return Outcome::Closed;
    };
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Outcome::Answered(status, body)
}

fn post(path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\
         authorization: Bearer {SECRET_ALL}\r\ncontent-type: application/json\r\n\
         idempotency-key: {}\r\ncontent-length: {}\r\n{headers}\r\n",
        uuid::Uuid::new_v4(),
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

fn booking_json(rooms: &str, amount: &str) -> String {
    format!(
        r#"{{"tenant_id":"acme","property_id":"h1","room_type":"DBL","check_in":"2027-01-10","check_out":"2027-01-12","rooms":{rooms},"guests":2,"amount_minor":{amount},"currency":"EUR"}}"#
    )
}

/// A 4xx with a problem document, or a closed connection; anything else fails.
fn assert_refused(case: &str, outcome: &Outcome) {
    match outcome {
        Outcome::Closed => {}
        Outcome::Answered(status, body) => {
            assert!(
                (400..500).contains(status),
                "{case}: expected a 4xx or a closed connection, got {status}: {body}"
            );
        }
    }
}

async fn assert_still_serving(ingress: &Ingress) {
    let outcome = raw(
        ingress.addr,
        &post("/v1/bookings", "", booking_json("1", "25000").as_bytes()),
    )
    .await;
    assert_eq!(
        outcome.status(),
        Some(202),
        "the server stopped serving: {outcome:?}"
    );
}

#[tokio::test]
async fn malformed_bodies_get_a_4xx_and_publish_nothing() {
    let ingress = Ingress::start().await;
    let nested = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "invalid UTF-8",
            b"{\"tenant_id\":\"acme\xff\xfe\"}".to_vec(),
            400,
        ),
        ("deeply nested JSON", nested.into_bytes(), 400),
        (
            "duplicate keys",
            br#"{"tenant_id":"acme","tenant_id":"evil","property_id":"h1","room_type":"DBL","check_in":"2027-01-10","check_out":"2027-01-12","rooms":1,"guests":2,"amount_minor":1,"currency":"EUR"}"#.to_vec(),
            400,
        ),
        (
            "rooms beyond u64",
            booking_json("184467440737095516160", "1").into_bytes(),
            400,
        ),
        (
            "negative amount",
            booking_json("1", "-5").into_bytes(),
            400,
        ),
        (
            "amount as a float",
            booking_json("1", "1e308").into_bytes(),
            400,
        ),
        ("a JSON string, not an object", b"\"booking\"".to_vec(), 400),
        ("truncated JSON", b"{\"tenant_id\":".to_vec(), 400),
        ("NUL bytes", b"\0\0\0\0".to_vec(), 400),
    ];
    for (case, body, expected) in cases {
        let outcome = raw(ingress.addr, &post("/v1/bookings", "", &body)).await;
        assert_refused(case, &outcome);
        let Outcome::Answered(status, problem) = &outcome else {
            panic!("{case}: closed without an answer");
        };
        assert!(
            *status == expected || *status == 422,
            "{case}: {status} {problem}"
        );
        let problem: serde_json::Value = serde_json::from_str(problem)
            .unwrap_or_else(|e| panic!("{case}: not a problem document ({e}): {problem}"));
        assert_eq!(problem["status"], *status, "{case}");
    }
    // Nothing above reached the topic: the next publish is the topic's first record.
    let reply = ingress
        .post("/v1/bookings")
        .json(&serde_json::from_str(&booking_json("1", "25000")).unwrap())
        .await;
    assert_eq!(reply.status.as_u16(), 202);
    assert_eq!(
        reply.json()["offset"],
        0,
        "a malformed request was published"
    );
}

#[tokio::test]
async fn oversized_and_malformed_requests_are_refused_and_the_server_keeps_serving() {
    let ingress = Ingress::start().await;

    let huge_header = post(
        "/v1/bookings",
        &format!("x-pad: {}\r\n", "a".repeat(200_000)),
        b"{}",
    );
    assert_refused("a 200 KB header", &raw(ingress.addr, &huge_header).await);

    let many = (0..500)
        .map(|i| format!("x-h{i}: v\r\n"))
        .collect::<String>();
    let many_headers = post("/v1/bookings", &many, b"{}");
    assert_refused("500 headers", &raw(ingress.addr, &many_headers).await);

    // A chunked body that never ends, well past the body limit (64 KiB by default).
    let mut chunked = format!(
        "POST /v1/bookings HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\
         authorization: Bearer {SECRET_ALL}\r\ncontent-type: application/json\r\n\
         idempotency-key: chunked-1\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..64 {
        chunked.extend_from_slice(format!("{:x}\r\n{}\r\n", 4096, "x".repeat(4096)).as_bytes());
    }
    let outcome = raw(ingress.addr, &chunked).await;
    assert_refused("a 256 KiB chunked body", &outcome);
    if let Some(status) = outcome.status() {
        assert_eq!(status, 413, "{outcome:?}");
    }

    // A content-length far beyond the limit is refused before the body arrives.
    let declared = format!(
        "POST /v1/bookings HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\
         authorization: Bearer {SECRET_ALL}\r\ncontent-type: application/json\r\n\
         idempotency-key: big-1\r\ncontent-length: 10000000000\r\n\r\n{{"
    );
    let outcome = raw(ingress.addr, declared.as_bytes()).await;
    assert_refused("a 10 GB content-length", &outcome);

    for (case, request) in [
        ("not HTTP", b"HELLO\r\n\r\n".to_vec()),
        (
            "invalid UTF-8 in the path",
            b"GET /v1/bookings/\xff\xfe HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n".to_vec(),
        ),
        (
            "invalid bytes in a header value",
            format!(
                "GET /v1/bookings/x HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\
                 authorization: Bearer \u{1}\u{2}{SECRET_ALL}\r\n\r\n"
            )
            .into_bytes(),
        ),
        (
            "both content-length and chunked",
            format!(
                "POST /v1/bookings HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\
                 authorization: Bearer {SECRET_ALL}\r\ncontent-type: application/json\r\n\
                 content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
            )
            .into_bytes(),
        ),
        (
            "a path of 100 KB",
            format!(
                "GET /v1/bookings/{} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
                "a".repeat(100_000)
            )
            .into_bytes(),
        ),
    ] {
        assert_refused(case, &raw(ingress.addr, &request).await);
    }
    assert_still_serving(&ingress).await;
}

#[tokio::test]
async fn a_slow_sender_is_disconnected_while_others_are_served() {
    let ingress = Ingress::spawn(
        &support::create_topic(support::PARTITIONS).await,
        &["--header-read-timeout-ms=1000"],
    );
    ingress.wait_ready().await;
    // Slowloris: a header line trickling in, one byte every 200 ms, never finished.
    let mut slow = TcpStream::connect(ingress.addr).await.unwrap();
    slow.write_all(b"POST /v1/bookings HTTP/1.1\r\nhost: t\r\nx-slow: ")
        .await
        .unwrap();
    let trickle = async {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if slow.write_all(b"a").await.is_err() {
                return true;
            }
        }
        false
    };
    let serve_others = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_still_serving(&ingress).await;
    };
    let (closed_while_writing, ()) = tokio::join!(trickle, serve_others);
    if !closed_while_writing {
        // Writes can still land in the socket buffer after the server stopped reading:
        // the connection must nevertheless be over.
        let outcome = read_answer(&mut slow).await;
        assert_refused("slowloris", &outcome);
    }
}

fn post_xml(body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST /v1/ota HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\
         content-type: text/xml; charset=utf-8\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// Hostile XML on the OpenTravel route, sent without credentials (a SOAP partner's are
/// inside the body, so the body is read before anyone is known): each gets a 4xx whose
/// body is an OpenTravel error, nothing is published, and the server keeps serving.
#[tokio::test]
async fn hostile_xml_gets_a_4xx_ota_error_and_publishes_nothing() {
    let ingress = Ingress::start().await;
    const OTA: &str = r#"xmlns="http://www.opentravel.org/OTA/2003/05" Version="1.0""#;
    let laughs = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">{}]>\
         <OTA_CancelRQ {OTA}>&lol9;</OTA_CancelRQ>",
        (1..10)
            .map(|i| format!(
                "<!ENTITY lol{i} \"{}\">",
                format!("&lol{};", i - 1).repeat(10)
            ))
            .collect::<String>()
            .replace("&lol0;", "&lol;")
    );
    let xxe = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\
         <OTA_CancelRQ {OTA}><UniqueID ID=\"&x;\"/></OTA_CancelRQ>"
    );
    let undeclared = format!("<OTA_CancelRQ {OTA}><UniqueID ID=\"&x;\"/></OTA_CancelRQ>");
    let deep = format!(
        "<OTA_CancelRQ {OTA}>{}{}</OTA_CancelRQ>",
        "<a>".repeat(5_000),
        "</a>".repeat(5_000)
    );
    let huge_attribute = format!(
        "<OTA_CancelRQ {OTA}><UniqueID ID=\"{}\"/></OTA_CancelRQ>",
        "A".repeat(30_000)
    );
    let many = format!(
        "<OTA_CancelRQ {OTA}>{}</OTA_CancelRQ>",
        "<b/>".repeat(6_000)
    );
    let soap12 = format!(
        "<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\"><e:Body>\
         <OTA_CancelRQ {OTA}/></e:Body></e:Envelope>"
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("billion laughs", laughs.into_bytes()),
        ("external entity", xxe.into_bytes()),
        ("undeclared entity", undeclared.into_bytes()),
        ("5,000 levels deep", deep.into_bytes()),
        ("a 30 KB attribute", huge_attribute.into_bytes()),
        ("6,000 elements", many.into_bytes()),
        ("a SOAP 1.2 envelope", soap12.into_bytes()),
        ("not XML", b"{\"tenant_id\": \"acme\"}".to_vec()),
        (
            "truncated",
            format!("<OTA_CancelRQ {OTA}><UniqueID").into_bytes(),
        ),
        (
            "another message",
            format!("<OTA_ReadRQ {OTA}/>").into_bytes(),
        ),
        ("invalid UTF-8", b"<OTA_CancelRQ ID=\"\xff\xfe\"/>".to_vec()),
    ];
    for (case, body) in cases {
        let outcome = raw(ingress.addr, &post_xml(&body)).await;
        assert_refused(case, &outcome);
        let Outcome::Answered(status, answer) = &outcome else {
            panic!("{case}: closed without an answer");
        };
        assert!(
            answer.starts_with("<?xml") && answer.contains("<Error Type="),
            "{case}: {status} is not an OpenTravel error: {answer}"
        );
        assert!(!answer.contains("root:"), "{case}: leaked a file: {answer}");
    }
    let unauthenticated = raw(
        ingress.addr,
        &post_xml(include_bytes!("../../loadtest/ota/OTA_CancelRQ.xml")),
    )
    .await;
    assert_eq!(unauthenticated.status(), Some(401), "{unauthenticated:?}");
    // Nothing above reached the topic: the next publish is the topic's first record.
    let reply = ingress
        .post("/v1/bookings")
        .json(&serde_json::from_str(&booking_json("1", "25000")).unwrap())
        .await;
    assert_eq!(reply.status.as_u16(), 202);
    assert_eq!(reply.json()["offset"], 0, "a hostile message was published");
}
