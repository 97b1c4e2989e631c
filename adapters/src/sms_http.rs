//! [`SmsSender`] over Kavenegar's REST API.
//!
//! # Protocol
//!
//! ```text
//! POST {base_url}/v1/{api_key}/sms/send.json
//! Content-Type: application/x-www-form-urlencoded
//!
//! receptor=09xxxxxxxxx&message=…&sender=… (sender only when configured)
//! ```
//!
//! Answer: `{"return":{"status":200,"message":"تایید شد"},"entries":[{"messageid":8792343,…}]}`.
//! Kavenegar also mirrors `return.status` as the HTTP status; we trust the body's status
//! when there is one and fall back to the HTTP status otherwise.
//!
//! One attempt per call: the outbox worker owns retries, so the configured `retries` is
//! ignored here (timeout and breaker still apply). See [`classify`] for the status mapping.
//!
//! The API key sits in the URL path, so the URL is never logged or put in an error; neither
//! are the message text (it may hold a one-time code) or the full number.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use domain::ids::Mobile;
use domain::ports::{SendError, SmsSender};
use serde::{Deserialize, Serialize};

use super::resilience::{BuildError, Failure, HttpReply, Resilience, ResilienceConfig, http_client, parse_base_url};

pub const KAVENEGAR_BASE_URL: &str = "https://api.kavenegar.com";

fn default_base_url() -> String {
    KAVENEGAR_BASE_URL.to_owned()
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsHttpConfig {
    #[serde(default = "default_base_url")]
    pub base_url: String,
    pub api_key: String,
    /// The sending line; `None` uses the account's default line.
    #[serde(default)]
    pub sender: Option<String>,
    #[serde(default)]
    pub resilience: ResilienceConfig,
}

impl SmsHttpConfig {
    /// Kavenegar's public endpoint, the account's default line and default resilience.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self { base_url: default_base_url(), api_key: api_key.into(), sender: None, resilience: Default::default() }
    }
}

impl fmt::Debug for SmsHttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsHttpConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .field("sender", &self.sender)
            .field("resilience", &self.resilience)
            .finish()
    }
}

pub struct KavenegarSms {
    client: reqwest::Client,
    /// Holds the API key: never log it (hence the hand-written `Debug`).
    send_url: reqwest::Url,
    config: SmsHttpConfig,
    policy: Arc<Resilience>,
}

impl fmt::Debug for KavenegarSms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KavenegarSms").field("config", &self.config).field("policy", &self.policy).finish()
    }
}

impl KavenegarSms {
    pub fn new(config: SmsHttpConfig) -> Result<Self, BuildError> {
        // The outbox retries; retrying here too would multiply attempts (and duplicate texts).
        let policy = Arc::new(Resilience::new(ResilienceConfig { retries: 0, ..config.resilience }));
        Self::with_policy(config, policy)
    }

    /// With a policy built elsewhere (e.g. one with a test clock); its `retries` is used as given.
    pub fn with_policy(config: SmsHttpConfig, policy: Arc<Resilience>) -> Result<Self, BuildError> {
        let mut send_url = parse_base_url(&config.base_url)?;
        send_url.path_segments_mut().expect("checked in parse_base_url").pop_if_empty().extend([
            "v1",
            config.api_key.as_str(),
            "sms",
            "send.json",
        ]);
        Ok(Self { client: http_client(&config.resilience)?, send_url, config, policy })
    }
}

#[derive(Deserialize)]
struct KavenegarReply {
    #[serde(rename = "return")]
    ret: ReturnDto,
    #[serde(default)]
    entries: Option<Vec<EntryDto>>,
}

#[derive(Deserialize)]
struct ReturnDto {
    status: u16,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct EntryDto {
    messageid: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Sent,
    Temporary,
    Permanent,
}

/// Kavenegar `return.status` → what the outbox should do.
///
/// * `200` sent.
/// * **Temporary** — the same request may succeed later:
///   `409` (server cannot answer now), `418` (insufficient credit), `429`/`451` (rate limits,
///   too many repeats to one receptor), `402` (unspecified failure), `5xx` except `501`;
///   and account/configuration faults that operators can fix without the message changing:
///   `401` (account disabled), `403` (bad API key), `404`/`405` (wrong endpoint),
///   `407` (method not allowed for the account), `416` (caller IP not allowed).
///   Unknown codes too: a bounded retry costs less than a lost message.
/// * **Permanent** — this message can never be sent as is:
///   `400`/`406` (bad or missing parameters), `411` (invalid receptor), `412` (invalid sender),
///   `413` (message empty or too long), `414` (too many receptors), `415`, `417` (bad date),
///   `419`, `420` (links not allowed), `422` (invalid characters), `424` (template not found),
///   `426`/`427`/`428`/`431`/`432` (plan, line or template constraints), `501` (a test account
///   may only text its owner).
fn classify(status: u16) -> Verdict {
    match status {
        200 => Verdict::Sent,
        400 | 406 | 411..=415 | 417 | 419 | 420 | 422 | 424 | 426..=428 | 431 | 432 | 501 => Verdict::Permanent,
        _ => Verdict::Temporary,
    }
}

fn interpret(reply: &HttpReply) -> Result<String, SendError> {
    let parsed = serde_json::from_slice::<KavenegarReply>(&reply.body).ok();
    let status = parsed.as_ref().map_or(reply.status.as_u16(), |p| p.ret.status);
    let verdict = match parsed {
        // A 5xx without Kavenegar's body comes from something in between (a proxy, a load
        // balancer): an outage, whatever the code would mean in Kavenegar's table.
        None if reply.status.is_server_error() => Verdict::Temporary,
        _ => classify(status),
    };
    let detail = |kind: &str| {
        let message = parsed.as_ref().map_or("", |p| p.ret.message.as_str());
        format!("kavenegar {kind} {status}: {message}").trim_end_matches([' ', ':']).to_owned()
    };
    match verdict {
        Verdict::Sent => {
            let id = parsed.as_ref().and_then(|p| p.entries.as_deref()).and_then(<[_]>::first).map(|e| e.messageid);
            // "Sent" without an id is a contract break: whether it went out is unknown, and
            // the outbox delivers at least once, so ask for a retry.
            id.map(|id| id.to_string()).ok_or_else(|| SendError::Temporary(detail("answer without a message id to")))
        }
        Verdict::Temporary => Err(SendError::Temporary(detail("status"))),
        Verdict::Permanent => Err(SendError::Permanent(detail("status"))),
    }
}

#[async_trait]
impl SmsSender for KavenegarSms {
    /// Down while the circuit breaker is open (the provider failed repeatedly).
    fn marked_down(&self) -> bool {
        self.policy.breaker().state() == super::resilience::BreakerState::Open
    }

    async fn send(&self, to: &Mobile, text: &str) -> Result<String, SendError> {
        self.post(to, text, None).await
    }

    /// With `localid`: Kavenegar sends a message with a `localid` it has seen once, and
    /// answers a repeat with the first message's entry instead of a second SMS.
    async fn send_once(&self, to: &Mobile, text: &str, local_id: &str) -> Result<String, SendError> {
        self.post(to, text, Some(local_id)).await
    }
}

impl KavenegarSms {
    async fn post(&self, to: &Mobile, text: &str, local_id: Option<&str>) -> Result<String, SendError> {
        let mut form = vec![("receptor", to.as_str()), ("message", text)];
        if let Some(sender) = &self.config.sender {
            form.push(("sender", sender.as_str()));
        }
        if let Some(id) = local_id {
            form.push(("localid", id));
        }
        let outcome = self.policy.execute(|| self.client.post(self.send_url.clone()).form(&form)).await;
        let result = match outcome {
            // 5xx and 429 replies still go through the table: Kavenegar's body may say more.
            Ok(reply) | Err(Failure::Status(reply)) => interpret(&reply),
            // The service is down, slow or the breaker is open: the outbox will try again.
            Err(failure @ (Failure::CircuitOpen | Failure::Timeout | Failure::Transport(_))) => {
                Err(SendError::Temporary(failure.to_string()))
            }
            Err(failure @ Failure::Invalid(_)) => Err(SendError::Permanent(failure.to_string())),
        };
        match &result {
            Ok(id) => tracing::info!(receptor = %to.masked(), message_id = %id, "sms handed to kavenegar"),
            Err(e) => tracing::warn!(receptor = %to.masked(), error = %e, "sms not handed to kavenegar"),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use wiremock::matchers::{body_string, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    const SEND_PATH: &str = "/v1/test-key/sms/send.json";

    fn config(server: &MockServer, sender: Option<&str>, resilience: ResilienceConfig) -> SmsHttpConfig {
        SmsHttpConfig {
            base_url: server.uri(),
            api_key: "test-key".into(),
            sender: sender.map(str::to_owned),
            resilience,
        }
    }

    fn resilience(retries: u32, breaker_failures: u32, breaker_cooldown_ms: u64) -> ResilienceConfig {
        ResilienceConfig { timeout_ms: 1_000, retries, backoff_base_ms: 1, breaker_failures, breaker_cooldown_ms }
    }

    fn sms(server: &MockServer, resilience: ResilienceConfig) -> KavenegarSms {
        KavenegarSms::new(config(server, Some("10004346"), resilience)).unwrap()
    }

    fn to() -> Mobile {
        Mobile::parse("09145128136").unwrap()
    }

    fn kavenegar(status: u16, message: &str) -> ResponseTemplate {
        let entries = if status == 200 {
            json!([{ "messageid": 8792343, "message": "x", "status": 1, "receptor": "09145128136" }])
        } else {
            serde_json::Value::Null
        };
        ResponseTemplate::new(status)
            .set_body_json(json!({ "return": { "status": status, "message": message }, "entries": entries }))
    }

    async fn requests(server: &MockServer) -> usize {
        server.received_requests().await.unwrap().len()
    }

    async fn answer(server: &MockServer, response: ResponseTemplate) {
        Mock::given(method("POST")).and(path(SEND_PATH)).respond_with(response).mount(server).await;
    }

    #[tokio::test]
    async fn sends_a_form_encoded_request_and_returns_the_message_id() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(body_string("receptor=09145128136&message=Your+code%3A+123456&sender=10004346"))
            .respond_with(kavenegar(200, "تایید شد"))
            .mount(&server)
            .await;
        let id = sms(&server, resilience(2, 5, 30_000)).send(&to(), "Your code: 123456").await;
        assert_eq!(id, Ok("8792343".to_owned()));
        assert_eq!(requests(&server).await, 1);
    }

    #[tokio::test]
    async fn a_message_carries_its_local_id_so_a_resend_is_one_sms() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .and(body_string("receptor=09145128136&message=hi&sender=10004346&localid=4242"))
            .respond_with(kavenegar(200, "تایید شد"))
            .mount(&server)
            .await;
        let sms = sms(&server, resilience(0, 5, 30_000));
        assert_eq!(sms.send_once(&to(), "hi", "4242").await, Ok("8792343".to_owned()));
        assert_eq!(requests(&server).await, 1);
    }

    #[tokio::test]
    async fn the_sender_is_optional_and_persian_text_is_encoded() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .and(body_string("receptor=09145128136&message=%DA%A9%D8%AF"))
            .respond_with(kavenegar(200, "تایید شد"))
            .mount(&server)
            .await;
        let sms = KavenegarSms::new(config(&server, None, resilience(0, 5, 30_000))).unwrap();
        assert_eq!(sms.send(&to(), "کد").await, Ok("8792343".to_owned()));
    }

    #[tokio::test]
    async fn permanent_statuses() {
        for status in [411, 412, 413, 414, 424] {
            let server = MockServer::start().await;
            answer(&server, kavenegar(status, "نامعتبر")).await;
            let outcome = sms(&server, resilience(2, 10, 30_000)).send(&to(), "hello").await;
            assert!(matches!(&outcome, Err(SendError::Permanent(m)) if m.contains(&status.to_string())), "{outcome:?}");
            assert_eq!(requests(&server).await, 1, "4xx is never retried");
        }
    }

    #[tokio::test]
    async fn temporary_statuses_are_tried_once() {
        for status in [418, 409, 429, 500, 503] {
            let server = MockServer::start().await;
            answer(&server, kavenegar(status, "")).await;
            let outcome = sms(&server, resilience(2, 10, 30_000)).send(&to(), "hello").await;
            assert!(matches!(outcome, Err(SendError::Temporary(_))), "{status}: {outcome:?}");
            assert_eq!(requests(&server).await, 1, "{status}: the outbox retries, not the client");
        }
    }

    #[tokio::test]
    async fn the_body_status_wins_over_the_http_status() {
        let server = MockServer::start().await;
        answer(
            &server,
            ResponseTemplate::new(200)
                .set_body_json(json!({ "return": { "status": 411, "message": "گیرنده نامعتبر" }, "entries": null })),
        )
        .await;
        let outcome = sms(&server, resilience(0, 10, 30_000)).send(&to(), "hello").await;
        assert!(matches!(outcome, Err(SendError::Permanent(_))), "{outcome:?}");
    }

    #[tokio::test]
    async fn unparseable_answers_are_temporary() {
        for response in [
            ResponseTemplate::new(200).set_body_string("not json"),
            ResponseTemplate::new(200).set_body_json(json!({ "return": { "status": 200, "message": "ok" } })),
            ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"),
        ] {
            let server = MockServer::start().await;
            answer(&server, response).await;
            let outcome = sms(&server, resilience(0, 10, 30_000)).send(&to(), "hello").await;
            assert!(matches!(outcome, Err(SendError::Temporary(_))), "{outcome:?}");
        }
    }

    #[tokio::test]
    async fn a_timeout_is_temporary() {
        let server = MockServer::start().await;
        answer(&server, kavenegar(200, "").set_delay(Duration::from_secs(3))).await;
        let outcome = sms(&server, resilience(2, 10, 30_000)).send(&to(), "hello").await;
        assert_eq!(outcome, Err(SendError::Temporary("timed out".into())));
    }

    #[tokio::test]
    async fn the_breaker_fails_fast_then_lets_a_trial_through() {
        let server = MockServer::start().await;
        answer(&server, kavenegar(503, "")).await;
        let sms = sms(&server, resilience(2, 2, 300));
        for _ in 0..2 {
            assert!(matches!(sms.send(&to(), "hello").await, Err(SendError::Temporary(_))));
        }
        assert_eq!(requests(&server).await, 2);
        assert_eq!(sms.send(&to(), "hello").await, Err(SendError::Temporary("circuit open".into())));
        assert_eq!(requests(&server).await, 2, "an open breaker does not reach the server");

        server.reset().await;
        answer(&server, kavenegar(200, "تایید شد")).await;
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(sms.send(&to(), "hello").await, Ok("8792343".to_owned()));
        assert_eq!(requests(&server).await, 1);
    }

    #[test]
    fn the_status_table() {
        assert_eq!(classify(200), Verdict::Sent);
        for permanent in [400, 406, 411, 412, 413, 414, 422, 424, 501] {
            assert_eq!(classify(permanent), Verdict::Permanent, "{permanent}");
        }
        for temporary in [401, 402, 403, 409, 416, 418, 429, 451, 500, 502, 503, 599, 999] {
            assert_eq!(classify(temporary), Verdict::Temporary, "{temporary}");
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let config = SmsHttpConfig { sender: Some("10004346".into()), ..SmsHttpConfig::new("super-secret-key") };
        assert_eq!(config.base_url, KAVENEGAR_BASE_URL);
        assert!(!format!("{config:?}").contains("super-secret-key"));
        let sms = KavenegarSms::new(config).unwrap();
        assert!(!format!("{sms:?}").contains("super-secret-key"));
    }
}
