//! Just enough HTTP/1.1 for a scraper: one request per connection (the
//! answer says `Connection: close`), its request line and `Accept` header
//! read with a size cap and a time limit, so that a slow or hostile client
//! costs the metrics thread a few seconds at most and never a reactor.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long a client may take to send its request or read the answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The most a request head may take.
const MAX_HEAD: usize = 16 * 1024;

/// The parts of a request the endpoint looks at.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub accept: Option<String>,
}

/// Reads one request head. `Ok(None)`: not HTTP, or too long.
pub fn read_request(stream: &mut TcpStream) -> io::Result<Option<Request>> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(parse_head(&head))
}

fn parse_head(head: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target, version) = (first.next()?, first.next()?, first.next()?);
    if !version.starts_with("HTTP/1.") || first.next().is_some() {
        return None;
    }
    let path = target.split('?').next().unwrap_or(target);
    let accept = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("accept"))
        .map(|(_, value)| value.trim().to_string());
    Some(Request {
        method: method.to_string(),
        path: path.to_string(),
        accept,
    })
}

/// Writes a whole answer and closes the exchange.
pub fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    with_body: bool,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if with_body {
        stream.write_all(body)?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_request_is_read() {
        let head = b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n";
        assert_eq!(
            parse_head(head),
            Some(Request {
                method: "GET".into(),
                path: "/metrics".into(),
                accept: Some("application/openmetrics-text;version=1.0.0".into()),
            })
        );
        let plain = parse_head(b"HEAD / HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!((plain.method.as_str(), plain.accept), ("HEAD", None));
    }

    #[test]
    fn what_is_not_http_is_refused() {
        for bad in [
            &b"get foo\r\n\r\n"[..],
            b"GET /metrics\r\n\r\n",
            b"GET /metrics SPDY/3\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
        ] {
            assert_eq!(parse_head(bad), None, "{bad:?}");
        }
    }
}
