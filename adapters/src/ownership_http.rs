//! [`MobileOwnershipCheck`] over HTTP: the operators' "is this SIM registered to this
//! national code" inquiry (شاهکار-style).
//!
//! # Protocol
//!
//! ```text
//! GET {base_url}/ownership?national_id={national_id}&mobile={09xxxxxxxxx}
//! Authorization: Bearer {token}
//! ```
//!
//! `200` with `{"matched": true|false}` → [`Ownership::Matched`] / [`Ownership::NotMatched`].
//! Everything else — timeout, transport error, any other status, a body that is not that
//! JSON, an open breaker — is [`Ownership::Unavailable`]: only an explicit `false` from the
//! service may tell a citizen the number is not theirs.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use domain::ids::{Mobile, NationalId};
use domain::ports::{MobileOwnershipCheck, Ownership};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use super::resilience::{BuildError, Resilience, ResilienceConfig, http_client, parse_base_url};

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnershipHttpConfig {
    pub base_url: String,
    pub token: String,
    #[serde(default)]
    pub resilience: ResilienceConfig,
}

impl fmt::Debug for OwnershipHttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnershipHttpConfig")
            .field("base_url", &self.base_url)
            .field("token", &"<redacted>")
            .field("resilience", &self.resilience)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct HttpOwnershipCheck {
    client: reqwest::Client,
    url: reqwest::Url,
    config: OwnershipHttpConfig,
    policy: Arc<Resilience>,
}

impl HttpOwnershipCheck {
    pub fn new(config: OwnershipHttpConfig) -> Result<Self, BuildError> {
        let policy = Arc::new(Resilience::new(config.resilience));
        Self::with_policy(config, policy)
    }

    /// With a policy built elsewhere (e.g. one with a test clock).
    pub fn with_policy(config: OwnershipHttpConfig, policy: Arc<Resilience>) -> Result<Self, BuildError> {
        let mut url = parse_base_url(&config.base_url)?;
        url.path_segments_mut().expect("checked in parse_base_url").pop_if_empty().push("ownership");
        Ok(Self { client: http_client(&config.resilience)?, url, config, policy })
    }
}

/// `{"matched": bool}` and nothing looser: serde would also read a struct from `[false]`,
/// and a stray `false` must not become "not your number".
fn parse_matched(body: &[u8]) -> Option<bool> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body).ok()?;
    object.get("matched")?.as_bool()
}

#[async_trait]
impl MobileOwnershipCheck for HttpOwnershipCheck {
    async fn check(&self, id: &NationalId, mobile: &Mobile) -> Ownership {
        let query = [("national_id", id.as_str()), ("mobile", mobile.as_str())];
        let outcome = self
            .policy
            .execute(|| self.client.get(self.url.clone()).query(&query).bearer_auth(&self.config.token))
            .await;
        let why = match outcome {
            Ok(reply) if reply.status == StatusCode::OK => match parse_matched(&reply.body) {
                Some(true) => return Ownership::Matched,
                Some(false) => return Ownership::NotMatched,
                None => "unparseable body".to_owned(),
            },
            Ok(reply) => format!("http status {}", reply.status.as_u16()),
            Err(failure) => failure.to_string(),
        };
        tracing::warn!(mobile = %mobile.masked(), reason = %why, "mobile ownership check unavailable");
        Ownership::Unavailable
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use wiremock::matchers::{header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    fn resilience(retries: u32, breaker_failures: u32, breaker_cooldown_ms: u64) -> ResilienceConfig {
        ResilienceConfig { timeout_ms: 1_000, retries, backoff_base_ms: 1, breaker_failures, breaker_cooldown_ms }
    }

    fn checker(server: &MockServer, resilience: ResilienceConfig) -> HttpOwnershipCheck {
        HttpOwnershipCheck::new(OwnershipHttpConfig { base_url: server.uri(), token: "tok".into(), resilience })
            .unwrap()
    }

    async fn check(checker: &HttpOwnershipCheck) -> Ownership {
        checker.check(&NationalId::parse("2580200606").unwrap(), &Mobile::parse("09145128136").unwrap()).await
    }

    async fn requests(server: &MockServer) -> usize {
        server.received_requests().await.unwrap().len()
    }

    async fn answer(server: &MockServer, response: ResponseTemplate) {
        Mock::given(method("GET")).and(path("/ownership")).respond_with(response).mount(server).await;
    }

    #[tokio::test]
    async fn matched() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/ownership"))
            .and(query_param("national_id", "2580200606"))
            .and(query_param("mobile", "09145128136"))
            .and(header("authorization", "Bearer tok"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "matched": true })))
            .mount(&server)
            .await;
        assert_eq!(check(&checker(&server, resilience(2, 5, 30_000))).await, Ownership::Matched);
    }

    #[tokio::test]
    async fn not_matched() {
        let server = MockServer::start().await;
        answer(&server, ResponseTemplate::new(200).set_body_json(json!({ "matched": false }))).await;
        assert_eq!(check(&checker(&server, resilience(2, 5, 30_000))).await, Ownership::NotMatched);
        assert_eq!(requests(&server).await, 1);
    }

    #[tokio::test]
    async fn server_errors_are_retried_then_unavailable() {
        let server = MockServer::start().await;
        answer(&server, ResponseTemplate::new(502)).await;
        assert_eq!(check(&checker(&server, resilience(2, 10, 30_000))).await, Ownership::Unavailable);
        assert_eq!(requests(&server).await, 3);
    }

    #[tokio::test]
    async fn rate_limiting_is_retried() {
        let server = MockServer::start().await;
        answer(&server, ResponseTemplate::new(429)).await;
        assert_eq!(check(&checker(&server, resilience(1, 10, 30_000))).await, Ownership::Unavailable);
        assert_eq!(requests(&server).await, 2);
    }

    #[tokio::test]
    async fn a_timeout_is_unavailable_never_not_matched() {
        let server = MockServer::start().await;
        answer(
            &server,
            ResponseTemplate::new(200).set_body_json(json!({ "matched": false })).set_delay(Duration::from_secs(3)),
        )
        .await;
        assert_eq!(check(&checker(&server, resilience(0, 10, 30_000))).await, Ownership::Unavailable);
    }

    #[tokio::test]
    async fn client_errors_are_unavailable_and_not_retried() {
        let server = MockServer::start().await;
        answer(&server, ResponseTemplate::new(400)).await;
        assert_eq!(check(&checker(&server, resilience(2, 10, 30_000))).await, Ownership::Unavailable);
        assert_eq!(requests(&server).await, 1);
    }

    #[tokio::test]
    async fn a_bad_body_is_unavailable() {
        for body in [json!({ "matched": "no" }), json!({}), json!([false]), json!(false), json!({ "matched": null })] {
            let server = MockServer::start().await;
            answer(&server, ResponseTemplate::new(200).set_body_json(body)).await;
            assert_eq!(check(&checker(&server, resilience(2, 10, 30_000))).await, Ownership::Unavailable);
        }
    }

    #[tokio::test]
    async fn the_breaker_fails_fast_then_lets_a_trial_through() {
        let server = MockServer::start().await;
        answer(&server, ResponseTemplate::new(503)).await;
        let checker = checker(&server, resilience(0, 3, 300));
        for _ in 0..3 {
            assert_eq!(check(&checker).await, Ownership::Unavailable);
        }
        assert_eq!(requests(&server).await, 3);
        assert_eq!(check(&checker).await, Ownership::Unavailable);
        assert_eq!(requests(&server).await, 3, "an open breaker does not reach the server");

        server.reset().await;
        answer(&server, ResponseTemplate::new(200).set_body_json(json!({ "matched": true }))).await;
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(check(&checker).await, Ownership::Matched);
        assert_eq!(requests(&server).await, 1);
    }

    #[test]
    fn debug_redacts_the_token() {
        let config = OwnershipHttpConfig {
            base_url: "https://inquiry.example".into(),
            token: "very-secret".into(),
            resilience: ResilienceConfig::default(),
        };
        assert!(!format!("{config:?}").contains("very-secret"));
    }
}
