//! Logging: the global `tracing` subscriber (text or JSON) and the masking every line
//! passes through, which keeps national codes, mobiles, tokens and secret-named fields out
//! of the logs (docs/architecture.md, "Logs and personal data").

use std::borrow::Cow;
use std::io::Write;
use std::sync::LazyLock;

use regex::Regex;

use crate::config::{Config, LogFormat};

static JWT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*").expect("regex"));
static BEARER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+").expect("regex"));
static DIGITS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[0-9۰-۹٠-٩]{8,}").expect("regex"));
static SECRET_FIELDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)("?(?:password|new_password|client_secret|secret|otp|reset_code|serial|captcha_answer|access_token|token)"?\s*[:=]\s*"?)[^"&,\s}]+"#)
        .expect("regex")
});

/// Masks anything that looks like a national code or mobile (8+ digits in any script),
/// a JWT, a bearer token or a secret-named field. Used on every log line.
pub fn mask_text(input: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(input);
    if input.contains("eyJ") {
        out = Cow::Owned(JWT.replace_all(&out, "eyJ***").into_owned());
    }
    if out.to_ascii_lowercase().contains("bearer") {
        out = Cow::Owned(BEARER.replace_all(&out, "Bearer ***").into_owned());
    }
    if SECRET_FIELDS.is_match(&out) {
        out = Cow::Owned(SECRET_FIELDS.replace_all(&out, "${1}***").into_owned());
    }
    if DIGITS.is_match(&out) {
        let text = out.into_owned();
        let mut masked = String::with_capacity(text.len());
        let mut last = 0;
        for m in DIGITS.find_iter(&text) {
            masked.push_str(&text[last..m.start()]);
            // Digits inside a UUID or hex id (next to '-' or a hex letter) are not personal data.
            let hexish = |c: Option<char>| c.is_some_and(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_digit());
            if hexish(text[..m.start()].chars().next_back()) || hexish(text[m.end()..].chars().next()) {
                masked.push_str(m.as_str());
            } else {
                masked.push_str(&domain::mask::keep_ends(m.as_str(), 2, 2));
            }
            last = m.end();
        }
        masked.push_str(&text[last..]);
        out = Cow::Owned(masked);
    }
    out
}

/// A writer that masks each formatted log line before it reaches stdout.
#[derive(Clone, Copy, Default)]
pub struct MaskingStdout;

impl std::io::Write for MaskingStdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stdout().lock().write_all(mask_text(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MaskingStdout {
    type Writer = MaskingStdout;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// Installs the global subscriber (text or JSON, masked, to stdout). Safe to call more than once.
pub fn init_logging(config: &Config) {
    init_logging_to(config, MaskingStdout);
}

/// Installs the global subscriber writing to `writer` (which should mask; see
/// [`MaskingFile`]). The first call wins.
pub fn init_logging_to<W>(config: &Config, writer: W)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_target(false).with_ansi(false);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Appends masked log lines to a file (used by the test harness to keep the whole run's
/// logs for the personal-data scan).
#[derive(Clone)]
pub struct MaskingFile(pub std::sync::Arc<std::sync::Mutex<std::fs::File>>);

impl std::io::Write for MaskingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let mut f = self.0.lock().map_err(|_| std::io::Error::other("log file lock"))?;
        f.write_all(mask_text(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().map_err(|_| std::io::Error::other("log file lock"))?.flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MaskingFile {
    type Writer = MaskingFile;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Writes to a caller-chosen sink with masking (for tests that scan logs).
pub struct MaskingWriter<W: Write>(pub W);

impl<W: Write> Write for MaskingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(mask_text(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_never_carry_codes_mobiles_or_tokens() {
        let line = r#"GET /api/v1/public/status?national_id=2580200606&mobile=+989145128136 Authorization: Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl ۲۵۸۰۲۰۰۶۰۶ {"password":"Secret123!","otp":"123456"}"#;
        let masked = mask_text(line);
        for secret in ["2580200606", "9145128136", "eyJzdWIiOiJ4In0", "۲۵۸۰۲۰۰۶۰۶", "Secret123!", "123456"] {
            assert!(!masked.contains(secret), "{secret} leaked in {masked}");
        }
        assert!(masked.contains("/api/v1/public/status"));
        assert_eq!(mask_text("latency_us=125 status=200"), "latency_us=125 status=200");
        let id = "request_id=94120602-6a4b-41ad-96b5-c4114fbe389e";
        assert_eq!(mask_text(id), id, "request ids stay searchable");
    }
}
