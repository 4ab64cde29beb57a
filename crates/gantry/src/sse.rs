//! A reader of server-sent events (just what Gantry's event streams use:
//! `event`, `data` and `id` fields, comments ignored).

use anyhow::Context;
use futures::StreamExt;
use futures::stream::BoxStream;

#[derive(Debug, Default)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
    pub id: Option<String>,
}

pub struct EventStream {
    body: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buffer: Vec<u8>,
}

impl EventStream {
    pub fn new(response: reqwest::Response) -> EventStream {
        let body = response
            .bytes_stream()
            .map(|chunk| chunk.map(|b| b.to_vec()))
            .boxed();
        EventStream {
            body,
            buffer: Vec::new(),
        }
    }

    /// The next event, or `None` when the server closed the stream.
    pub async fn next(&mut self) -> anyhow::Result<Option<SseEvent>> {
        loop {
            if let Some(event) = self.parse_one() {
                return Ok(Some(event));
            }
            match self.body.next().await {
                Some(chunk) => self.buffer.extend(chunk.context("the event stream broke")?),
                None => return Ok(None),
            }
        }
    }

    /// Takes one complete event (ending in a blank line) off the buffer.
    fn parse_one(&mut self) -> Option<SseEvent> {
        loop {
            let end = find_blank_line(&self.buffer)?;
            let block: Vec<u8> = self.buffer.drain(..end.1).collect();
            let text = String::from_utf8_lossy(&block[..end.0]);
            let mut event = SseEvent::default();
            let mut data: Vec<&str> = Vec::new();
            for line in text.lines() {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => event.event = value.to_owned(),
                    "data" => data.push(value),
                    "id" => event.id = Some(value.to_owned()),
                    _ => {}
                }
            }
            if data.is_empty() && event.event.is_empty() {
                continue; // a keep-alive comment
            }
            event.data = data.join("\n");
            if event.event.is_empty() {
                event.event = "message".to_owned();
            }
            return Some(event);
        }
    }
}

/// Where the first event ends: (end of its text, end including the blank line).
fn find_blank_line(buffer: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buffer.len() {
        if buffer[i..].starts_with(b"\n\n") {
            return Some((i, i + 2));
        }
        if buffer[i..].starts_with(b"\r\n\r\n") {
            return Some((i, i + 4));
        }
        i += 1;
    }
    None
}
