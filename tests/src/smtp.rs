//! A minimal in-process SMTP server for tests: it speaks just enough SMTP for a client
//! to hand over messages, keeps them in memory, and can be stopped ("killed") and started
//! again on the same port.
//!
//! Recipients whose local part starts with `reject` get `550` (a permanent refusal), and
//! with `busy` get `451` (a temporary one). A message is stored only if the sink is still
//! running when its data ends, and then it is always answered `250`: what the sink holds
//! is exactly what the client was told was accepted.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message (headers and body) with dot-stuffing undone.
    pub data: String,
}

impl ReceivedMail {
    /// A top-level header, unfolded, with RFC 2047 encoded words decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut unfolded: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            match unfolded.last_mut() {
                Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
                _ => unfolded.push(line.to_owned()),
            }
        }
        let prefix = format!("{}:", name.to_ascii_lowercase());
        unfolded
            .iter()
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| decode_words(l[prefix.len()..].trim()))
    }

    /// The file names of the attachments.
    pub fn attachment_names(&self) -> Vec<String> {
        self.data.split("filename=\"").skip(1).filter_map(|rest| rest.split('"').next()).map(str::to_owned).collect()
    }
}

/// Decodes `=?utf-8?b?…?=` and `=?utf-8?q?…?=` words; whitespace between two of them goes.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, tail) = rest.split_at(start);
        let Some((word, after)) = encoded_word(tail) else {
            out.push_str(&rest[..start + 2]);
            rest = &rest[start + 2..];
            after_word = false;
            continue;
        };
        if !(after_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        out.push_str(&word);
        rest = after;
        after_word = true;
    }
    out.push_str(rest);
    out
}

/// One encoded word at the start of `s`: its text and what follows it.
fn encoded_word(s: &str) -> Option<(String, &str)> {
    let inner = s.strip_prefix("=?")?;
    let (_charset, inner) = inner.split_once('?')?;
    let (encoding, inner) = inner.split_once('?')?;
    let (text, after) = inner.split_once("?=")?;
    let bytes = match encoding {
        "b" | "B" => base64::engine::general_purpose::STANDARD.decode(text).ok()?,
        "q" | "Q" => quoted(text),
        _ => return None,
    };
    Some((String::from_utf8(bytes).ok()?, after))
}

fn quoted(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' => out.push(b' '),
            b'=' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[derive(Default)]
struct Shared {
    messages: Vec<ReceivedMail>,
    running: bool,
    /// Stop by itself once it holds this many messages ("killed mid-run").
    stop_at: Option<usize>,
}

/// The sink. Dropping it stops it.
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    accept: Option<JoinHandle<()>>,
}

impl SmtpSink {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the SMTP sink");
        let addr = listener.local_addr().expect("addr");
        let mut sink = Self { addr, shared: Arc::new(Mutex::new(Shared::default())), accept: None };
        sink.serve(listener);
        sink
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Everything accepted so far, in order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.lock().expect("sink lock").messages.clone()
    }

    /// Stops at once: no new connection is accepted, and no message is accepted on the open ones.
    pub fn stop(&mut self) {
        self.shared.lock().expect("sink lock").running = false;
        if let Some(task) = self.accept.take() {
            task.abort();
        }
    }

    /// Stops by itself as soon as it holds `total` messages.
    pub fn stop_after(&self, total: usize) {
        self.shared.lock().expect("sink lock").stop_at = Some(total);
    }

    pub fn is_running(&self) -> bool {
        self.shared.lock().expect("sink lock").running
    }

    /// Starts again on the same port, keeping the messages received so far.
    pub async fn restart(&mut self) {
        self.stop();
        // The aborted accept task releases the port once it has been polled; try a few times.
        let mut listener = None;
        for _ in 0..50 {
            match TcpListener::bind(self.addr).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
        let listener = listener.expect("rebind the SMTP sink's port");
        self.shared.lock().expect("sink lock").stop_at = None;
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        self.shared.lock().expect("sink lock").running = true;
        let shared = self.shared.clone();
        self.accept = Some(tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                if !shared.lock().expect("sink lock").running {
                    return;
                }
                tokio::spawn(session(stream, shared.clone()));
            }
        }));
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

fn running(shared: &Mutex<Shared>) -> bool {
    shared.lock().expect("sink lock").running
}

/// One SMTP conversation. Any I/O error ends it.
async fn session(stream: TcpStream, shared: Arc<Mutex<Shared>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP test sink\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 || !running(&shared) {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if upper.starts_with("RSET") {
            from.clear();
            to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&command["MAIL FROM:".len()..]);
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = address(&command["RCPT TO:".len()..]);
            if rcpt.starts_with("reject") {
                b"550 5.1.1 No such user here\r\n"
            } else if rcpt.starts_with("busy") {
                b"451 4.3.0 Try again later\r\n"
            } else {
                to.push(rcpt);
                b"250 OK\r\n"
            }
        } else if upper == "DATA" {
            write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            let accepted = {
                let mut s = shared.lock().expect("sink lock");
                if s.running {
                    s.messages.push(ReceivedMail { mail_from: from.clone(), rcpt_to: to.clone(), data });
                    if s.stop_at.is_some_and(|n| s.messages.len() >= n) {
                        // Killed: later commands and connections find it gone.
                        s.running = false;
                    }
                    true
                } else {
                    false
                }
            };
            if !accepted {
                return Ok(());
            }
            to.clear();
            b"250 2.0.0 Ok: queued\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            b"502 5.5.2 Command not recognized\r\n"
        };
        write.write_all(reply).await?;
    }
}

/// `<maryam@example.com> SIZE=123` → `maryam@example.com`.
fn address(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(a), Some(b)) if a < b => arg[a + 1..b].to_owned(),
        _ => arg.split_whitespace().next().unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_are_decoded() {
        assert_eq!(decode_words("=?utf-8?b?2LHYs9uM2K8=?="), "رسید");
        assert_eq!(decode_words("=?utf-8?b?2LHYs9uM2K8=?= =?utf-8?b?2LHYs9uM2K8=?="), "رسیدرسید");
        assert_eq!(decode_words("plain text"), "plain text");
        assert_eq!(decode_words("=?utf-8?q?a_b=3Dc?="), "a b=c");
    }
}
