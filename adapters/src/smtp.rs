//! [`EmailSender`] over SMTP with `lettre`: a text body with an HTML alternative when
//! there is one, and attachments. One connection per message (no pool): the outbox worker
//! sends few e-mails and retries itself, so a broken pooled connection never lingers.
//!
//! Outcomes: connection failures, timeouts, TLS failures and `4xx` replies are
//! [`SendError::Temporary`]; `5xx` replies about this message (bad or unknown recipient,
//! rejected content, too large) are [`SendError::Permanent`]. Other `5xx` replies (failed
//! authentication, unsupported command) come from the server's configuration, which an
//! operator can fix, so they are temporary too. Errors keep the reply code only: servers
//! echo the recipient's address in their text.

use std::time::Duration;

use async_trait::async_trait;
use domain::ports::{EmailMessage, EmailSender, SendError};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

/// How e-mail is sent (`email.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailMode {
    /// Messages are stored in `sandbox_emails`.
    Sandbox,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain text (a local relay only).
    None,
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// The `[email]` settings: part of the server's configuration (`api::config::Config`),
/// kept here beside the client that reads them.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    pub mode: EmailMode,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    /// SMTP AUTH user; no authentication when empty.
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender mailbox, e.g. `NCR <no-reply@example.ir>`.
    pub from: String,
    /// Bound on one SMTP conversation.
    pub timeout_seconds: u64,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            mode: EmailMode::Sandbox,
            smtp_host: "127.0.0.1".into(),
            smtp_port: 587,
            smtp_tls: SmtpTls::Starttls,
            username: None,
            password: None,
            from: "NCR <no-reply@ncr.local>".into(),
            timeout_seconds: 20,
        }
    }
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("mode", &self.mode)
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_tls", &self.smtp_tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

pub struct SmtpEmail {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The domain of our Message-IDs (the sender's).
    id_domain: String,
}

impl std::fmt::Debug for SmtpEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpEmail").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl SmtpEmail {
    pub fn new(config: &EmailConfig) -> Result<Self, String> {
        let from: Mailbox = config.from.parse().map_err(|e| format!("email.from is not a mailbox: {e}"))?;
        let host = config.smtp_host.clone();
        let tls = match config.smtp_tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls_parameters(&host)?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters(&host)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(config.smtp_port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(config.timeout_seconds.max(1))));
        if let Some(username) = config.username.as_ref().filter(|u| !u.is_empty()) {
            builder =
                builder.credentials(Credentials::new(username.clone(), config.password.clone().unwrap_or_default()));
        }
        let id_domain = from.email.domain().to_owned();
        Ok(Self { transport: builder.build(), from, id_domain })
    }

    /// The MIME message, with our own Message-ID (returned as the provider id).
    fn build(&self, m: &EmailMessage, message_id: &str) -> Result<Message, SendError> {
        let to: Mailbox = m.to.parse().map_err(|_| SendError::Permanent("invalid recipient address".into()))?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .message_id(Some(message_id.to_owned()));
        let alternative = m.html.as_ref().map(|html| MultiPart::alternative_plain_html(m.text.clone(), html.clone()));
        let built = match (alternative, m.attachments.is_empty()) {
            (None, true) => builder.singlepart(SinglePart::plain(m.text.clone())),
            (Some(alternative), true) => builder.multipart(alternative),
            (alternative, false) => {
                let mut mixed = match alternative {
                    Some(alternative) => MultiPart::mixed().multipart(alternative),
                    None => MultiPart::mixed().singlepart(SinglePart::plain(m.text.clone())),
                };
                for a in &m.attachments {
                    let kind = ContentType::parse(&a.content_type)
                        .unwrap_or_else(|_| ContentType::parse("application/octet-stream").expect("a valid type"));
                    mixed = mixed.singlepart(Attachment::new(a.filename.clone()).body(a.bytes.clone(), kind));
                }
                builder.multipart(mixed)
            }
        };
        built.map_err(|e| SendError::Permanent(format!("cannot build the message: {e}")))
    }
}

fn tls_parameters(host: &str) -> Result<TlsParameters, String> {
    TlsParameters::new(host.to_owned()).map_err(|e| format!("email TLS settings: {e}"))
}

/// SMTP reply codes that reject this message for good.
fn permanent_code(code: u16) -> bool {
    matches!(code, 501 | 550..=555)
}

fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    match e.status().map(u16::from) {
        Some(code) if permanent_code(code) => SendError::Permanent(format!("smtp {code}: message rejected")),
        Some(code) => SendError::Temporary(format!("smtp {code}")),
        None if e.is_timeout() => SendError::Temporary("smtp timeout".into()),
        None if e.is_tls() => SendError::Temporary("smtp tls failure".into()),
        // Connection refused or reset, DNS: the server's address, not the recipient's.
        None => SendError::Temporary(format!("smtp connection: {e}")),
    }
}

#[async_trait]
impl EmailSender for SmtpEmail {
    async fn send(&self, message: &EmailMessage) -> Result<String, SendError> {
        let message_id = format!("<{}@{}>", uuid::Uuid::now_v7(), self.id_domain);
        let mime = self.build(message, &message_id)?;
        match self.transport.send(mime).await {
            Ok(_) => Ok(message_id),
            Err(e) => {
                let err = classify(&e);
                tracing::warn!(error = %err, "e-mail not handed to the SMTP server");
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> SmtpEmail {
        SmtpEmail::new(&EmailConfig { from: "NCR <no-reply@ncr.example>".into(), ..EmailConfig::default() }).unwrap()
    }

    #[test]
    fn permanent_codes_are_about_the_message() {
        for code in [501, 550, 551, 552, 553, 554] {
            assert!(permanent_code(code), "{code}");
        }
        for code in [421, 450, 451, 452, 500, 502, 530, 535] {
            assert!(!permanent_code(code), "{code}");
        }
    }

    #[test]
    fn a_message_with_html_and_an_attachment() {
        let m = EmailMessage {
            to: "maryam@example.com".into(),
            subject: "رسید ثبت نام".into(),
            text: "متن".into(),
            html: Some("<p>متن</p>".into()),
            attachments: vec![domain::ports::Attachment {
                filename: "receipt.pdf".into(),
                content_type: "application/pdf".into(),
                bytes: b"%PDF-1.7".to_vec(),
            }],
        };
        let raw = String::from_utf8(sender().build(&m, "<x@ncr.example>").unwrap().formatted()).unwrap();
        assert!(raw.contains("multipart/mixed") && raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/html") && raw.contains("filename=\"receipt.pdf\""), "{raw}");
        assert!(raw.contains("Message-ID: <x@ncr.example>"), "{raw}");
    }

    #[test]
    fn a_bad_address_is_permanent() {
        let m = EmailMessage {
            to: "not an address".into(),
            subject: "s".into(),
            text: "t".into(),
            html: None,
            attachments: vec![],
        };
        assert!(matches!(sender().build(&m, "<x@y>"), Err(SendError::Permanent(_))));
    }
}
