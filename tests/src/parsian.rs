//! A stand-in for Parsian's (PEC) internet payment gateway that speaks its SOAP 1.1
//! services — `SalePaymentRequest`, `ConfirmPayment`, `ReversalRequest` — and serves the
//! payment page (`/NewIPG/?Token=…`) that posts the browser back to the merchant's
//! callback with PEC's fields. Tests start it on a free port and point
//! `[payments.parsian] base_url` at it.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

/// The merchant PIN the stub accepts.
pub const PIN: &str = "parsian-test-pin";

#[derive(Debug, Clone)]
pub struct Sale {
    pub order_id: i64,
    pub amount: i64,
    pub callback_url: String,
    pub paid: bool,
    pub confirmed: bool,
    pub reversed: bool,
}

#[derive(Default)]
pub struct Books {
    pub sales: Mutex<HashMap<i64, Sale>>,
    next_token: AtomicI64,
    /// While set, `ReversalRequest` answers PEC's "internal error" (Status -1).
    pub reversal_failing: AtomicBool,
    pub confirm_calls: AtomicUsize,
    pub reversal_calls: AtomicUsize,
    /// While set, `SalePaymentRequest` records the sale and then waits for a permit before
    /// it answers: a test acts while the merchant waits for the bank.
    pub sale_gate: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
}

pub struct ParsianStub {
    pub base: String,
    pub books: Arc<Books>,
    server: actix_web::dev::ServerHandle,
}

impl Drop for ParsianStub {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

impl ParsianStub {
    /// Starts the stub on the current actix runtime.
    pub async fn start() -> Self {
        let books = Arc::new(Books { next_token: AtomicI64::new(810_000_001), ..Default::default() });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind stub");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let data = web::Data::from(books.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/NewIPGServices/Sale/SaleService.asmx", web::post().to(sale))
                .route("/NewIPGServices/Confirm/ConfirmService.asmx", web::post().to(confirm))
                .route("/NewIPGServices/Reverse/ReversalService.asmx", web::post().to(reversal))
                .route("/NewIPG/", web::get().to(page))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self { base, books, server: handle }
    }

    /// The gateway settings pointing at this stub.
    pub fn config(&self) -> api::adapters::payments::parsian::ParsianConfig {
        api::adapters::payments::parsian::ParsianConfig {
            base_url: self.base.clone(),
            pin: PIN.into(),
            timeout_ms: 5_000,
        }
    }

    pub fn sale(&self, token: i64) -> Option<Sale> {
        self.books.sales.lock().expect("lock").get(&token).cloned()
    }

    /// From now on each sale waits for a permit of the returned semaphore (recorded first,
    /// so [`Self::sales_recorded`] tells that the merchant is waiting).
    pub fn pause_sales(&self) -> Arc<tokio::sync::Semaphore> {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        *self.books.sale_gate.lock().expect("lock") = Some(gate.clone());
        gate
    }

    pub fn sales_recorded(&self) -> usize {
        self.books.sales.lock().expect("lock").len()
    }

    pub fn set_reversal_failing(&self, failing: bool) {
        self.books.reversal_failing.store(failing, Ordering::SeqCst);
    }
}

/// The text of `<name>…</name>` in a request envelope, unescaped.
fn field(body: &str, name: &str) -> Option<String> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + body[start..].find(&format!("</{name}>"))?;
    Some(
        body[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A SOAP answer of `operation` (in PEC's namespace `service`) with `fields` in its result.
fn answer(service: &str, operation: &str, fields: &[(&str, String)]) -> HttpResponse {
    let inner: String = fields.iter().map(|(k, v)| format!("<{k}>{}</{k}>", escape(v))).collect();
    let xml = format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" "#,
            r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">"#,
            r#"<soap:Body><{op}Response xmlns="https://pec.Shaparak.ir/NewIPGServices/{service}">"#,
            r#"<{op}Result>{inner}</{op}Result></{op}Response></soap:Body></soap:Envelope>"#
        ),
        op = operation,
        service = service,
        inner = inner,
    );
    HttpResponse::Ok().content_type("text/xml; charset=utf-8").body(xml)
}

fn soap_action_is(req: &HttpRequest, operation: &str) -> bool {
    req.headers().get("SOAPAction").and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains(operation))
}

async fn sale(req: HttpRequest, books: web::Data<Books>, body: String) -> HttpResponse {
    const OP: &str = "SalePaymentRequest";
    if !soap_action_is(&req, OP) || field(&body, "LoginAccount").as_deref() != Some(PIN) {
        return answer("Sale/SaleService", OP, &[("Token", "0".into()), ("Status", "-127".into())]);
    }
    let (Some(amount), Some(order_id), Some(callback_url)) = (
        field(&body, "Amount").and_then(|a| a.parse().ok()),
        field(&body, "OrderId").and_then(|o| o.parse().ok()),
        field(&body, "CallBackUrl"),
    ) else {
        return answer("Sale/SaleService", OP, &[("Token", "0".into()), ("Status", "-100".into())]);
    };
    let token = books.next_token.fetch_add(1, Ordering::SeqCst);
    books
        .sales
        .lock()
        .expect("lock")
        .insert(token, Sale { order_id, amount, callback_url, paid: false, confirmed: false, reversed: false });
    let gate = books.sale_gate.lock().expect("lock").clone();
    if let Some(gate) = gate {
        gate.acquire().await.expect("gate open").forget();
    }
    answer("Sale/SaleService", OP, &[("Token", token.to_string()), ("Message", "OK".into()), ("Status", "0".into())])
}

/// The payment page: the customer pays at once, and PEC's page posts the browser back to
/// the merchant's callback with `Token`, `OrderId`, `status`, `RRN`, `Amount`, ….
async fn page(books: web::Data<Books>, query: web::Query<HashMap<String, String>>) -> HttpResponse {
    let Some(token) = query.get("Token").and_then(|t| t.parse::<i64>().ok()) else {
        return HttpResponse::BadRequest().body("no token");
    };
    let mut sales = books.sales.lock().expect("lock");
    let Some(sale) = sales.get_mut(&token) else { return HttpResponse::NotFound().body("unknown token") };
    sale.paid = true;
    let fields = [
        ("Token", token.to_string()),
        ("OrderId", sale.order_id.to_string()),
        ("TerminalNo", "44481453".into()),
        ("RRN", (700_000_000_000 + token).to_string()),
        ("status", "0".into()),
        ("Amount", sale.amount.to_string()),
        ("HashCardNumber", "9F0A…".into()),
    ];
    let inputs: String =
        fields.iter().map(|(k, v)| format!(r#"<input type="hidden" name="{k}" value="{}">"#, escape(v))).collect();
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(format!(
        r#"<!doctype html><html><body><form method="post" action="{}">{inputs}</form></body></html>"#,
        escape(&sale.callback_url)
    ))
}

async fn confirm(req: HttpRequest, books: web::Data<Books>, body: String) -> HttpResponse {
    const OP: &str = "ConfirmPayment";
    books.confirm_calls.fetch_add(1, Ordering::SeqCst);
    let token = field(&body, "Token").and_then(|t| t.parse::<i64>().ok()).unwrap_or(0);
    if !soap_action_is(&req, OP) || field(&body, "LoginAccount").as_deref() != Some(PIN) {
        return answer("Confirm/ConfirmService", OP, &[("Status", "-127".into()), ("Token", token.to_string())]);
    }
    let mut sales = books.sales.lock().expect("lock");
    let status = match sales.get_mut(&token) {
        None => "-1528",
        Some(s) if s.reversed => "-1551",
        Some(s) if !s.paid => "-1531",
        Some(s) if s.confirmed => "-1533",
        Some(s) => {
            s.confirmed = true;
            "0"
        }
    };
    answer(
        "Confirm/ConfirmService",
        OP,
        &[
            ("Status", status.into()),
            ("CardNumberMasked", "610433******1234".into()),
            ("Token", token.to_string()),
            ("RRN", if status == "0" { (700_000_000_000 + token).to_string() } else { "0".into() }),
        ],
    )
}

async fn reversal(req: HttpRequest, books: web::Data<Books>, body: String) -> HttpResponse {
    const OP: &str = "ReversalRequest";
    books.reversal_calls.fetch_add(1, Ordering::SeqCst);
    let token = field(&body, "Token").and_then(|t| t.parse::<i64>().ok()).unwrap_or(0);
    if !soap_action_is(&req, OP) || field(&body, "LoginAccount").as_deref() != Some(PIN) {
        return answer("Reversal/ReversalService", OP, &[("Status", "-127".into()), ("Token", token.to_string())]);
    }
    if books.reversal_failing.load(Ordering::SeqCst) {
        return answer(
            "Reversal/ReversalService",
            OP,
            &[("Status", "-1".into()), ("Message", "internal error".into()), ("Token", token.to_string())],
        );
    }
    let mut sales = books.sales.lock().expect("lock");
    let status = match sales.get_mut(&token) {
        None => "-1528",
        Some(s) if s.reversed => "-1551",
        Some(s) => {
            s.reversed = true;
            "0"
        }
    };
    answer("Reversal/ReversalService", OP, &[("Status", status.into()), ("Token", token.to_string())])
}
