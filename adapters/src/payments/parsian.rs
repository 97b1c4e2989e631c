//! Parsian (PEC) internet payment gateway, SOAP 1.1 services under `/NewIPGServices`.
//!
//! Flow: `SalePaymentRequest` gives a numeric token → the browser goes to
//! `/NewIPG/?Token=…` → PEC posts `Token`, `OrderId`, `status`, `RRN`, … back →
//! `ConfirmPayment` settles it; `ReversalRequest` gives the money back. PEC reverses an
//! unconfirmed payment by itself after a while.
//!
//! Envelopes are built by hand (every value escaped) and answers read with quick-xml.
//!
//! `ConfirmPayment` status mapping:
//! - `0` (with an RRN) and `-1533` "already confirmed" → `Verified`, so a repeated
//!   confirmation is idempotent. Confirm returns no amount: the amount reported is the
//!   order's, which is sound because PEC bound the token to that amount at the sale request.
//! - `-1540` confirmation failed, `-1507` reversal sent to the switch, `-102` reversed,
//!   `-1551` already reversed → `DebitedNotSettled` (the card was charged, the money goes back).
//! - `-1`, `-32768` (server / unknown error) → `PortError::Unavailable`: the outcome is unknown.
//! - `-1505`, `-1532` ("confirmed by the merchant" — ambiguous wording) and our own
//!   configuration errors (`-100`, `-101`, `-107`, `-126`, `-127`, `-128`, `±1530`) →
//!   `PortError::Protocol`: they say nothing about whether the citizen paid, so they must
//!   not become "not paid".
//! - every other code (`-138` cancelled by user, `-130`/`-131` token expired/invalid,
//!   `-1528` not found, `-1531`/`-17` not successful, issuer codes 1..99) → `NotPaid`:
//!   `-138` as `Cancelled`, the rest `Declined` (an expired token too: the payment's own
//!   time is what makes one `Expired`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use async_trait::async_trait;
use domain::ports::{
    CallbackData, GatewayRedirect, NotPaidReason, PaymentGateway, PaymentOrder, PortError, VerifyOutcome,
};
use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use serde::{Deserialize, Serialize};

use super::{callback_field, http_status_error, transport_error, trim_base};

const BANK: &str = "parsian";

/// One PEC SOAP operation: where it lives and what it is called.
struct Operation {
    path: &'static str,
    namespace: &'static str,
    name: &'static str,
}

const SALE: Operation = Operation {
    path: "/NewIPGServices/Sale/SaleService.asmx",
    namespace: "https://pec.Shaparak.ir/NewIPGServices/Sale/SaleService",
    name: "SalePaymentRequest",
};
const CONFIRM: Operation = Operation {
    path: "/NewIPGServices/Confirm/ConfirmService.asmx",
    namespace: "https://pec.Shaparak.ir/NewIPGServices/Confirm/ConfirmService",
    name: "ConfirmPayment",
};
// PEC's URL says "Reverse" but its namespace says "Reversal".
const REVERSAL: Operation = Operation {
    path: "/NewIPGServices/Reverse/ReversalService.asmx",
    namespace: "https://pec.Shaparak.ir/NewIPGServices/Reversal/ReversalService",
    name: "ReversalRequest",
};

/// Parsian terminal settings.
#[derive(Clone, Serialize, Deserialize)]
pub struct ParsianConfig {
    /// e.g. `https://pec.shaparak.ir`
    pub base_url: String,
    /// The merchant PIN (`LoginAccount`).
    pub pin: String,
    pub timeout_ms: u64,
}

impl std::fmt::Debug for ParsianConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsianConfig")
            .field("base_url", &self.base_url)
            .field("pin", &"<redacted>")
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// The Parsian client.
pub struct ParsianGateway {
    config: ParsianConfig,
    http: reqwest::Client,
}

impl std::fmt::Debug for ParsianGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsianGateway").field("config", &self.config).finish_non_exhaustive()
    }
}

/// A SOAP 1.1 request envelope for `operation` with `fields` inside `requestData`.
fn envelope(operation: &Operation, fields: &[(&str, &str)]) -> String {
    let mut data = String::new();
    for (name, value) in fields {
        // Names are our constants; values may come from anywhere and are escaped.
        let _ = write!(data, "<{name}>{}</{name}>", escape(*value));
    }
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<soap:Envelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" "#,
            r#"xmlns:xsd="http://www.w3.org/2001/XMLSchema" "#,
            r#"xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">"#,
            r#"<soap:Body><{name} xmlns="{namespace}"><requestData>{data}</requestData></{name}></soap:Body>"#,
            r#"</soap:Envelope>"#
        ),
        name = operation.name,
        namespace = escape(operation.namespace),
        data = data,
    )
}

/// What a SOAP answer held.
#[derive(Debug, PartialEq, Eq)]
enum SoapReply {
    /// The leaf children of `<{Operation}Result>`, by local name.
    Result(HashMap<String, String>),
    /// A `soap:Fault`, with its `faultcode`.
    Fault(String),
}

fn malformed() -> PortError {
    PortError::Protocol("parsian: the answer is not well-formed XML".into())
}

/// Reads a SOAP answer with a real XML parser: namespaces prefixes are ignored (only
/// local names matter), entities and CDATA are decoded, and only elements inside
/// `Envelope/Body` count.
fn parse_reply(xml: &str, result_element: &str) -> Result<SoapReply, PortError> {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut fields = HashMap::new();
    let mut found_result = false;
    let mut fault: Option<String> = None;
    let in_body = |path: &[String]| path.len() >= 2 && path[0] == "Envelope" && path[1] == "Body";

    loop {
        match reader.read_event().map_err(|_| malformed())? {
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                if name == "Fault" && in_body(&path) {
                    fault.get_or_insert_with(String::new);
                }
                path.push(name);
                text.clear();
            }
            Event::Empty(empty) => {
                let name = String::from_utf8_lossy(empty.local_name().as_ref()).into_owned();
                if in_body(&path) && path.last().is_some_and(|parent| parent == result_element) {
                    fields.insert(name.clone(), String::new());
                }
                if name == result_element && in_body(&path) {
                    found_result = true;
                }
                if name == "Fault" && in_body(&path) {
                    fault.get_or_insert_with(String::new);
                }
            }
            Event::End(_) => {
                let name = path.pop().ok_or_else(malformed)?;
                if in_body(&path) {
                    if path.last().is_some_and(|parent| parent == result_element) {
                        fields.insert(name.clone(), text.trim().to_owned());
                    }
                    if name == result_element {
                        found_result = true;
                    }
                    if name == "faultcode" && path.last().is_some_and(|parent| parent == "Fault") {
                        fault = Some(text.trim().to_owned());
                    }
                }
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.xml_content().map_err(|_| malformed())?),
            Event::CData(c) => text.push_str(&c.decode().map_err(|_| malformed())?),
            Event::GeneralRef(r) => {
                if let Some(ch) = r.resolve_char_ref().map_err(|_| malformed())? {
                    text.push(ch);
                } else {
                    let entity = r.decode().map_err(|_| malformed())?;
                    text.push_str(resolve_predefined_entity(&entity).ok_or_else(malformed)?);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err(malformed());
    }
    if let Some(code) = fault {
        return Ok(SoapReply::Fault(code));
    }
    if !found_result {
        return Err(PortError::Protocol(format!("parsian: the answer has no {result_element}")));
    }
    Ok(SoapReply::Result(fields))
}

/// `Status` as a number; PEC always sends one.
/// What a code of a payment that was not paid means.
fn not_paid_reason(status: i64) -> NotPaidReason {
    if status == -138 { NotPaidReason::Cancelled } else { NotPaidReason::Declined }
}

fn status_of(fields: &HashMap<String, String>, operation: &str) -> Result<i64, PortError> {
    fields
        .get("Status")
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| PortError::Protocol(format!("parsian: {operation} answer has no numeric Status")))
}

/// A positive number field (`Token`, `RRN`); PEC sends `0` or `-1` when there is none.
fn positive(fields: &HashMap<String, String>, name: &str) -> Option<i64> {
    fields.get(name).and_then(|s| s.parse::<i64>().ok()).filter(|n| *n > 0)
}

/// Codes that mean PEC itself failed: the answer to our question is unknown.
fn is_server_failure(status: i64) -> bool {
    matches!(status, -1 | -32768)
}

fn refused(operation: &str, status: i64, fields: &HashMap<String, String>) -> PortError {
    let message = fields.get("Message").map(String::as_str).unwrap_or_default();
    let text = format!("parsian: {operation} refused with Status {status}: {message}");
    if is_server_failure(status) { PortError::Unavailable(text) } else { PortError::Protocol(text) }
}

impl ParsianGateway {
    pub fn new(config: ParsianConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    fn base(&self) -> &str {
        trim_base(&self.config.base_url)
    }

    /// Posts one SOAP call and returns the fields of its `…Result`.
    async fn call(&self, operation: &Operation, fields: &[(&str, &str)]) -> Result<HashMap<String, String>, PortError> {
        let response = self
            .http
            .post(format!("{}{}", self.base(), operation.path))
            .timeout(Duration::from_millis(self.config.timeout_ms))
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("SOAPAction", format!("\"{}/{}\"", operation.namespace, operation.name))
            .body(envelope(operation, fields))
            .send()
            .await
            .map_err(|e| transport_error(BANK, e))?;
        let status = response.status();
        if !status.is_success() {
            // ASMX reports its faults as HTTP 500 too: a broken server, not an answer.
            return Err(http_status_error(BANK, status));
        }
        let body = response.text().await.map_err(|e| transport_error(BANK, e))?;
        match parse_reply(&body, &format!("{}Result", operation.name))? {
            SoapReply::Result(fields) => Ok(fields),
            SoapReply::Fault(code) => {
                Err(PortError::Unavailable(format!("parsian: {} answered with a SOAP fault ({code})", operation.name)))
            }
        }
    }
}

#[async_trait]
impl PaymentGateway for ParsianGateway {
    fn name(&self) -> &'static str {
        BANK
    }

    async fn request(&self, order: &PaymentOrder) -> Result<GatewayRedirect, PortError> {
        let amount = order.amount.value().to_string();
        let order_id = order.order_id.to_string();
        let fields = self
            .call(
                &SALE,
                &[
                    ("LoginAccount", &self.config.pin),
                    ("Amount", &amount),
                    ("OrderId", &order_id),
                    ("CallBackUrl", &order.callback_url),
                    ("AdditionalData", &order.description),
                ],
            )
            .await?;
        let status = status_of(&fields, SALE.name)?;
        if status != 0 {
            return Err(refused(SALE.name, status, &fields));
        }
        let token = positive(&fields, "Token")
            .ok_or_else(|| PortError::Protocol("parsian: SalePaymentRequest succeeded without a token".into()))?;
        Ok(GatewayRedirect { token: token.to_string(), url: format!("{}/NewIPG/?Token={token}", self.base()) })
    }

    fn parse_callback(&self, fields: &[(String, String)]) -> Result<CallbackData, PortError> {
        let order_id = callback_field(fields, "OrderId")
            .ok_or_else(|| PortError::Protocol("parsian callback: OrderId is missing".into()))?
            .parse::<i64>()
            .map_err(|_| PortError::Protocol("parsian callback: OrderId is not a number".into()))?;
        let status_code = callback_field(fields, "status")
            .ok_or_else(|| PortError::Protocol("parsian callback: status is missing".into()))?
            .to_owned();
        let token = callback_field(fields, "Token").map(str::to_owned);
        // PEC's own rule: a payment went through only if status is 0 *and* there is an RRN.
        let has_rrn = callback_field(fields, "RRN").and_then(|r| r.parse::<i64>().ok()).is_some_and(|r| r > 0);
        let claims_success = status_code == "0" && has_rrn && token.is_some();
        Ok(CallbackData { order_id, token, claims_success, status_code })
    }

    async fn verify(&self, order: &PaymentOrder, token: &str) -> Result<VerifyOutcome, PortError> {
        let fields = self.call(&CONFIRM, &[("LoginAccount", &self.config.pin), ("Token", token)]).await?;
        let status = status_of(&fields, CONFIRM.name)?;
        // An answer about another token must never confirm this one.
        if let Some(answered) = positive(&fields, "Token")
            && answered.to_string() != token.trim()
        {
            return Err(PortError::Protocol("parsian: ConfirmPayment answered for a different token".into()));
        }
        let code = status.to_string();
        match status {
            0 | -1533 => {
                let rrn = positive(&fields, "RRN").map(|r| r.to_string());
                let reference = match (status, rrn) {
                    (_, Some(rrn)) => rrn,
                    // A repeated confirmation may come without the RRN; PEC identifies the
                    // payment by its token, which is spent by now.
                    (-1533, None) => token.trim().to_owned(),
                    _ => return Err(PortError::Protocol("parsian: ConfirmPayment succeeded without an RRN".into())),
                };
                let card_mask = fields.get("CardNumberMasked").filter(|m| !m.is_empty()).cloned();
                Ok(VerifyOutcome::Verified { reference, amount: order.amount, card_mask })
            }
            -1540 | -1507 | -102 | -1551 => Ok(VerifyOutcome::DebitedNotSettled { code }),
            s if is_server_failure(s) => Err(refused(CONFIRM.name, s, &fields)),
            -1505 | -1532 | -100 | -101 | -107 | -126 | -127 | -128 | -1530 | 1530 => {
                Err(refused(CONFIRM.name, status, &fields))
            }
            _ => Ok(VerifyOutcome::NotPaid { reason: not_paid_reason(status), code }),
        }
    }

    fn not_paid_reason(&self, code: &str) -> NotPaidReason {
        code.trim().parse().map_or(NotPaidReason::Declined, not_paid_reason)
    }

    async fn reverse(&self, _order: &PaymentOrder, token: &str) -> Result<(), PortError> {
        let fields = self.call(&REVERSAL, &[("LoginAccount", &self.config.pin), ("Token", token)]).await?;
        match status_of(&fields, REVERSAL.name)? {
            // -102 "reverse successful" and -1551 "already reversed": the money is back.
            0 | -102 | -1551 => Ok(()),
            status => Err(refused(REVERSAL.name, status, &fields)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Rials;
    use wiremock::matchers::{body_string_contains, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const PIN: &str = "S3cr3tPin";

    fn config(base_url: String) -> ParsianConfig {
        ParsianConfig { base_url, pin: PIN.into(), timeout_ms: 300 }
    }

    fn gateway(server: &MockServer) -> ParsianGateway {
        ParsianGateway::new(config(server.uri()), reqwest::Client::new())
    }

    fn order() -> PaymentOrder {
        PaymentOrder {
            order_id: 7,
            amount: Rials::new(250_000).unwrap(),
            callback_url: "https://ncr.example/cb?a=1&b=2".into(),
            description: "<کارت> & \"ملی\"".into(),
        }
    }

    fn answer(operation: &str, inner: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><{operation}Response xmlns="https://pec.Shaparak.ir/x"><{operation}Result>{inner}</{operation}Result></{operation}Response></soap:Body></soap:Envelope>"#
        )
    }

    fn xml(body: String) -> ResponseTemplate {
        ResponseTemplate::new(200).insert_header("content-type", "text/xml; charset=utf-8").set_body_string(body)
    }

    #[test]
    fn debug_redacts_the_pin() {
        let shown = format!("{:?}", config("https://pec.shaparak.ir".into()));
        assert!(!shown.contains(PIN));
    }

    #[test]
    fn envelope_escapes_values_and_round_trips_through_the_parser() {
        let built = envelope(&SALE, &[("CallBackUrl", "https://x/?a=1&b=<2>"), ("AdditionalData", "\"q\" 'a'")]);
        assert!(built.contains("<CallBackUrl>https://x/?a=1&amp;b=&lt;2&gt;</CallBackUrl>"));
        // Read it back as a reply to prove the escaping is well-formed XML.
        let reply = parse_reply(&built, "requestData").unwrap();
        let SoapReply::Result(fields) = reply else { panic!("not a result") };
        assert_eq!(fields["CallBackUrl"], "https://x/?a=1&b=<2>");
        assert_eq!(fields["AdditionalData"], "\"q\" 'a'");
    }

    #[test]
    fn parser_handles_prefixes_entities_cdata_and_faults() {
        let body = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><r:XResponse xmlns:r="urn:x"><r:XResult><r:Status>-1533</r:Status><r:Message>a &amp; b &#1576;</r:Message><r:Token><![CDATA[12]]></r:Token><r:CardNumberMasked/></r:XResult></r:XResponse></s:Body></s:Envelope>"#;
        let SoapReply::Result(fields) = parse_reply(body, "XResult").unwrap() else { panic!("not a result") };
        assert_eq!(fields["Status"], "-1533");
        assert_eq!(fields["Message"], "a & b ب");
        assert_eq!(fields["Token"], "12");
        assert_eq!(fields["CardNumberMasked"], "");

        let fault = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>boom</faultstring></soap:Fault></soap:Body></soap:Envelope>"#;
        assert_eq!(parse_reply(fault, "XResult").unwrap(), SoapReply::Fault("soap:Server".into()));

        // A look-alike outside the SOAP body, broken XML, and a missing result are refused.
        assert!(parse_reply("<XResult><Status>0</Status></XResult>", "XResult").is_err());
        assert!(parse_reply("<soap:Envelope><soap:Body><XResult><Status>0</Status>", "XResult").is_err());
        assert!(parse_reply(&answer("Y", "<Status>0</Status>"), "XResult").is_err());
    }

    #[tokio::test]
    async fn request_sends_the_escaped_fields_and_returns_the_redirect() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/NewIPGServices/Sale/SaleService.asmx"))
            .and(header("SOAPAction", "\"https://pec.Shaparak.ir/NewIPGServices/Sale/SaleService/SalePaymentRequest\""))
            .and(body_string_contains(
                "<SalePaymentRequest xmlns=\"https://pec.Shaparak.ir/NewIPGServices/Sale/SaleService\"><requestData>",
            ))
            .and(body_string_contains(format!("<LoginAccount>{PIN}</LoginAccount>")))
            .and(body_string_contains("<Amount>250000</Amount>"))
            .and(body_string_contains("<OrderId>7</OrderId>"))
            .and(body_string_contains("<CallBackUrl>https://ncr.example/cb?a=1&amp;b=2</CallBackUrl>"))
            .and(body_string_contains("<AdditionalData>&lt;کارت&gt; &amp; &quot;ملی&quot;</AdditionalData>"))
            .respond_with(xml(answer(
                "SalePaymentRequest",
                "<Token>123456789</Token><Message>ok</Message><Status>0</Status>",
            )))
            .expect(1)
            .mount(&server)
            .await;
        let redirect = gateway(&server).request(&order()).await.unwrap();
        assert_eq!(redirect.token, "123456789");
        assert_eq!(redirect.url, format!("{}/NewIPG/?Token=123456789", server.uri()));
    }

    async fn sale_answer(response: ResponseTemplate) -> PortError {
        let server = MockServer::start().await;
        Mock::given(path("/NewIPGServices/Sale/SaleService.asmx")).respond_with(response).mount(&server).await;
        gateway(&server).request(&order()).await.unwrap_err()
    }

    #[tokio::test]
    async fn request_failures() {
        let err = sale_answer(xml(answer(
            "SalePaymentRequest",
            "<Token>0</Token><Message>duplicate</Message><Status>-112</Status>",
        )))
        .await;
        assert!(matches!(&err, PortError::Protocol(m) if m.contains("-112")), "{err:?}");

        let err = sale_answer(xml(answer("SalePaymentRequest", "<Token>0</Token><Status>0</Status>"))).await;
        assert!(matches!(err, PortError::Protocol(_)), "{err:?}");

        let err = sale_answer(
            xml(answer("SalePaymentRequest", "<Token>1</Token><Status>0</Status>")).set_delay(Duration::from_secs(3)),
        )
        .await;
        assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");

        let fault = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>Server was unable to process request.</faultstring></soap:Fault></soap:Body></soap:Envelope>"#;
        let err = sale_answer(ResponseTemplate::new(500).set_body_string(fault)).await;
        assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
        let err = sale_answer(xml(fault.to_owned())).await;
        assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
    }

    async fn confirm_answer(response: ResponseTemplate) -> Result<VerifyOutcome, PortError> {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/NewIPGServices/Confirm/ConfirmService.asmx"))
            .and(header(
                "SOAPAction",
                "\"https://pec.Shaparak.ir/NewIPGServices/Confirm/ConfirmService/ConfirmPayment\"",
            ))
            .and(body_string_contains(format!("<LoginAccount>{PIN}</LoginAccount>")))
            .and(body_string_contains("<Token>123456789</Token>"))
            .respond_with(response)
            .expect(1)
            .mount(&server)
            .await;
        gateway(&server).verify(&order(), "123456789").await
    }

    fn confirm(status: i64, rrn: i64) -> ResponseTemplate {
        xml(answer(
            "ConfirmPayment",
            &format!(
                "<Status>{status}</Status><RRN>{rrn}</RRN><CardNumberMasked>603799******1234</CardNumberMasked><Token>123456789</Token>"
            ),
        ))
    }

    #[tokio::test]
    async fn confirm_success_and_already_confirmed_are_verified() {
        let outcome = confirm_answer(confirm(0, 735_312_345_678)).await.unwrap();
        assert_eq!(
            outcome,
            VerifyOutcome::Verified {
                reference: "735312345678".into(),
                amount: Rials::new(250_000).unwrap(),
                card_mask: Some("603799******1234".into()),
            }
        );
        let again = confirm_answer(confirm(-1533, 735_312_345_678)).await.unwrap();
        assert_eq!(again, outcome);
        let without_rrn =
            confirm_answer(xml(answer("ConfirmPayment", "<Status>-1533</Status><RRN>0</RRN>"))).await.unwrap();
        assert!(matches!(without_rrn, VerifyOutcome::Verified { reference, .. } if reference == "123456789"));
    }

    #[tokio::test]
    async fn confirm_failure_codes() {
        assert_eq!(
            confirm_answer(confirm(-138, 0)).await,
            Ok(VerifyOutcome::NotPaid { reason: NotPaidReason::Cancelled, code: "-138".into() })
        );
        assert_eq!(
            confirm_answer(confirm(-130, 0)).await,
            Ok(VerifyOutcome::NotPaid { reason: NotPaidReason::Declined, code: "-130".into() })
        );
        assert_eq!(
            confirm_answer(confirm(-1540, 0)).await,
            Ok(VerifyOutcome::DebitedNotSettled { code: "-1540".into() })
        );
        assert!(matches!(confirm_answer(confirm(-126, 0)).await, Err(PortError::Protocol(_))));
        assert!(matches!(confirm_answer(confirm(-1, 0)).await, Err(PortError::Unavailable(_))));
        // Success without an RRN, or for another token, is not a confirmation.
        assert!(matches!(confirm_answer(confirm(0, 0)).await, Err(PortError::Protocol(_))));
        let other = xml(answer("ConfirmPayment", "<Status>0</Status><RRN>5</RRN><Token>999</Token>"));
        assert!(matches!(confirm_answer(other).await, Err(PortError::Protocol(_))));
    }

    #[tokio::test]
    async fn confirm_timeout_and_5xx_are_unavailable_never_not_paid() {
        let err = confirm_answer(confirm(0, 1).set_delay(Duration::from_secs(3))).await.unwrap_err();
        assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
        let err = confirm_answer(ResponseTemplate::new(502)).await.unwrap_err();
        assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
    }

    async fn reversal_answer(response: ResponseTemplate) -> Result<(), PortError> {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/NewIPGServices/Reverse/ReversalService.asmx"))
            .and(header(
                "SOAPAction",
                "\"https://pec.Shaparak.ir/NewIPGServices/Reversal/ReversalService/ReversalRequest\"",
            ))
            .and(body_string_contains(
                "<ReversalRequest xmlns=\"https://pec.Shaparak.ir/NewIPGServices/Reversal/ReversalService\">",
            ))
            .and(body_string_contains(format!("<LoginAccount>{PIN}</LoginAccount>")))
            .and(body_string_contains("<Token>123456789</Token>"))
            .respond_with(response)
            .expect(1)
            .mount(&server)
            .await;
        gateway(&server).reverse(&order(), "123456789").await
    }

    #[tokio::test]
    async fn reversal() {
        let reply =
            |status: i64| xml(answer("ReversalRequest", &format!("<Status>{status}</Status><Token>123456789</Token>")));
        assert_eq!(reversal_answer(reply(0)).await, Ok(()));
        assert_eq!(reversal_answer(reply(-1551)).await, Ok(()));
        assert!(matches!(reversal_answer(reply(-1549)).await, Err(PortError::Protocol(m)) if m.contains("-1549")));
        assert!(matches!(reversal_answer(ResponseTemplate::new(503)).await, Err(PortError::Unavailable(_))));
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn parse_callback_reads_the_bank_claim() {
        let gateway = ParsianGateway::new(config("https://pec.shaparak.ir".into()), reqwest::Client::new());
        let posted = fields(&[
            ("Token", "123456789"),
            ("OrderId", "7"),
            ("status", "0"),
            ("RRN", "735312345678"),
            ("TerminalNo", "4400001"),
            ("Amount", "250,000"),
        ]);
        let data = gateway.parse_callback(&posted).unwrap();
        assert_eq!(
            data,
            CallbackData {
                order_id: 7,
                token: Some("123456789".into()),
                claims_success: true,
                status_code: "0".into(),
            }
        );
        // Status 0 without an RRN is not a success claim; -138 is a cancellation.
        let no_rrn = gateway.parse_callback(&fields(&[("Token", "1"), ("OrderId", "7"), ("status", "0")])).unwrap();
        assert!(!no_rrn.claims_success);
        let cancelled =
            gateway.parse_callback(&fields(&[("Token", "1"), ("OrderId", "7"), ("status", "-138")])).unwrap();
        assert!(!cancelled.claims_success);
        assert_eq!(cancelled.status_code, "-138");

        assert!(gateway.parse_callback(&fields(&[("Token", "1"), ("status", "0")])).is_err());
        assert!(gateway.parse_callback(&fields(&[("OrderId", "x7"), ("status", "0")])).is_err());
        assert!(gateway.parse_callback(&fields(&[("OrderId", "7")])).is_err());
    }
}
