//! A tiny HTTP/1.1 server on a loopback port for webhook stages to call: it
//! records every request and answers from a fixed script of routes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

pub struct Target {
    pub url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Target {
    /// Routes:
    /// - `/ok`: 200 with `{"id": "abc-123", "status": "done"}`
    /// - `/bad`: 400
    /// - `/flaky`: 503 the first time, then 200
    /// - `POST /job`: 202 with `{"statusUrl": URL/job/status}`
    /// - `/job/status`: `{"state": "RUNNING"}` twice, then `{"state": "SUCCEEDED"}`
    pub fn start() -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let (shared, base) = (requests.clone(), url.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (shared, base) = (shared.clone(), base.clone());
                std::thread::spawn(move || serve(stream, &shared, &base));
            }
        });
        Target { url, requests }
    }

    /// The requests received for `path`, oldest first.
    pub fn requests(&self, path: &str) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

fn serve(stream: TcpStream, requests: &Mutex<Vec<Request>>, base: &str) {
    let Some(request) = read_request(&stream) else {
        return;
    };
    let seen = {
        let mut all = requests.lock().unwrap();
        all.push(request.clone());
        all.iter().filter(|r| r.path == request.path).count()
    };
    let (status, body) = match request.path.as_str() {
        "/ok" => (200, r#"{"id": "abc-123", "status": "done"}"#.to_owned()),
        "/bad" => (400, r#"{"error": "the target refuses"}"#.to_owned()),
        "/flaky" if seen == 1 => (503, r#"{"error": "try again"}"#.to_owned()),
        "/flaky" => (200, r#"{"ok": true}"#.to_owned()),
        "/job" => (202, format!(r#"{{"statusUrl": "{base}/job/status"}}"#)),
        "/job/status" if seen <= 2 => (200, r#"{"state": "RUNNING"}"#.to_owned()),
        "/job/status" => (200, r#"{"state": "SUCCEEDED"}"#.to_owned()),
        _ => (404, r#"{"error": "no such route"}"#.to_owned()),
    };
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        503 => "Service Unavailable",
        _ => "Not Found",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(response.as_bytes());
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
