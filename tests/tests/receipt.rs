//! The registration receipt (docs/domain/payments.md «نتیجه ثبت نام کارت هوشمند ملی», docs/domain/payments.md): JSON,
//! the printable page, the PDF, the e-mail, and the signed verification link — checked
//! end to end, down to a real browser's rendering of the page and a QR decoder reading it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use api::seed::offices::MARAGHEH_OFFICE_ID;
use api::seed::population::SAMPLE;
use base64::Engine;
use ncr_tests::client::personal_info;
use ncr_tests::{TestApp, db_test, json};
use persistence::PiiKind;
use serde_json::{Value, json};

const OFFICE_NAME: &str = "اداره ثبت احوال مراغه";

fn persian(s: &str) -> String {
    domain::text::persian_digits(s)
}

/// A GET with a citizen token and an optional `Accept`, as raw response.
async fn fetch(app: &TestApp, path: &str, token: &str, accept: Option<&str>) -> reqwest::Response {
    let mut req = app.http.get(app.url(path)).bearer_auth(token);
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    req.send().await.expect("request")
}

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// The receipt as JSON.
async fn receipt_json(app: &TestApp, token: &str) -> Value {
    let (status, body) = app.get("/api/v1/citizen/application/receipt", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The path and query of an absolute URL of the test server.
fn local_path<'a>(app: &TestApp, url: &'a str) -> &'a str {
    url.strip_prefix(&app.base).unwrap_or_else(|| panic!("{url} is not on {}", app.base))
}

/// Replaces the value of one query parameter.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').expect("query");
    let query: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k == name => format!("{k}={value}"),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// Another character in the same alphabet at position `i`.
fn flip(s: &str, i: usize) -> String {
    let mut bytes = s.as_bytes().to_vec();
    bytes[i] = match bytes[i] {
        b'0' => b'1',
        b'A' => b'B',
        b => {
            if b.is_ascii_digit() {
                b'0'
            } else {
                b'A'
            }
        }
    };
    String::from_utf8(bytes).expect("ascii")
}

fn param<'a>(url: &'a str, name: &str) -> &'a str {
    let query = url.split_once('?').expect("query").1;
    query.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}="))).expect("param")
}

db_test!(the_receipt_needs_a_successful_payment, |app| {
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let info = personal_info("1369-03-19", "1410-11-15", "female", "شهرزاد", "09145128136");
    let (status, body) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &info).await;
    assert_eq!(status, 201, "{body}");
    for path in [
        "/api/v1/citizen/application/receipt",
        "/api/v1/citizen/application/receipt.html",
        "/api/v1/citizen/application/receipt.pdf",
    ] {
        let (status, problem) = app.get(path, Some(&token)).await;
        assert_eq!((status, problem["code"].as_str()), (409, Some("payment_required")), "{path}: {problem}");
    }
    let (status, problem) = app
        .post("/api/v1/citizen/application/receipt/email", Some(&token), &json!({"email": "maryam@example.ir"}))
        .await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("payment_required")), "{problem}");
    let (status, problem) = app.get("/api/v1/citizen/application/receipt", None).await;
    assert_eq!((status, problem["code"].as_str()), (401, Some("token_missing")));
});

db_test!(the_json_receipt_shows_everything_the_seed_receipt_shows, |app| {
    let token = app.register_and_pay(&SAMPLE).await;
    let (_, application) = app.get("/api/v1/citizen/application", Some(&token)).await;
    let tracking = application["tracking_code"].as_str().unwrap().to_owned();
    let r = receipt_json(&app, &token).await;

    assert_eq!(r["title"], "نتیجه ثبت نام کارت هوشمند ملی");
    assert_eq!(r["tracking_code"], tracking.as_str());
    assert_eq!(r["state"], "registered");
    assert_eq!(r["national_id"], "2580200606");
    assert_eq!(r["serial"], "883810");
    assert_eq!(r["birth_date"], "1990-06-09");
    assert_eq!(r["birth_date_jalali"], "1369-03-19");
    assert_eq!(r["birth_date_hijri"], "1410-11-15");
    assert_eq!(r["birth_date_hijri_label"], "15 ذیقعده 1410");
    assert_eq!((r["gender"].as_str(), r["gender_label"].as_str()), (Some("female"), Some("زن")));
    assert_eq!((r["religion"].as_str(), r["religion_label"].as_str()), (Some("islam"), Some("اسلام")));
    assert_eq!(r["mother_name"], "شهرزاد");
    assert_eq!(r["mobile"], "09145128136");

    let e = &r["enrollment"];
    assert_eq!(e["office"]["id"], MARAGHEH_OFFICE_ID);
    assert_eq!(e["office"]["name"], OFFICE_NAME);
    assert_eq!(e["office"]["address"], "مراغه - خ پاسداران - اداره ثبت احوال مراغه");
    assert_eq!(e["office"]["phone"], "11222226");
    assert_eq!(e["status"], "booked");
    assert_eq!(e["date"], application["appointment"]["date"]);
    assert_eq!(e["date_jalali"], application["appointment"]["date_jalali"]);
    assert_eq!(e["shift"], application["appointment"]["shift"]);
    let shift_label = if e["shift"] == "morning" { "صبح" } else { "عصر" };
    assert_eq!(e["shift_label"], shift_label);

    assert_eq!(r["payment"]["status"], "paid");
    assert_eq!(r["payment"]["status_label"], "موفق");
    assert!(r["payment"]["reference"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
    assert_eq!(r["payment"]["gateway"], "sandbox");
    assert!(r["payment"]["amount"].as_i64().is_some_and(|a| a > 0));
    assert_eq!(r["delivery_office"]["id"], MARAGHEH_OFFICE_ID);
    assert_eq!(r["home_visit"], false);

    let prerequisites = r["prerequisites"].as_array().unwrap();
    assert_eq!(prerequisites.len(), 5);
    let fa: Vec<&str> = prerequisites.iter().map(|p| p["fa"].as_str().unwrap()).collect();
    let en: Vec<&str> = prerequisites.iter().map(|p| p["en"].as_str().unwrap()).collect();
    assert!(fa[0].contains("شناسنامه") && fa[0].contains("شماره ملی"), "{fa:?}");
    assert!(fa[1].contains("عکسبرداری") && fa[2].contains("اثر انگشت"), "{fa:?}");
    assert!(fa[3].contains("*4*6090#") && en[3].contains("*4*6090#"));
    let host = app.base.trim_start_matches("http://");
    assert!(fa[4].contains(host) && en[4].contains(host), "{fa:?}");
    assert!(en[0].contains("birth certificate") && en[1].contains("photo") && en[2].contains("fingerprints"));

    let issued_on = domain::calendar::tehran_date(app.state.now());
    assert_eq!(
        (r["issued_at_jalali"].as_str(), r["issued_at_tehran_time"].as_str()),
        (Some("1405-09-01"), Some("10:00"))
    );
    let url = r["verify_url"].as_str().unwrap();
    let prefix = format!("{}/api/v1/public/receipts/verify?t={tracking}&d={issued_on}&s=", app.base);
    assert!(url.starts_with(&prefix), "{url}");
    assert_eq!(param(url, "s").len(), 86, "base64url Ed25519 signature");

    // Content negotiation.
    let res = fetch(&app, "/api/v1/citizen/application/receipt", &token, Some("application/json")).await;
    assert!(header(&res, "content-type").starts_with("application/json"));
    assert_eq!(header(&res, "vary"), "Accept");
    let res = fetch(&app, "/api/v1/citizen/application/receipt", &token, Some("text/html,*/*;q=0.8")).await;
    assert!(header(&res, "content-type").starts_with("text/html"));
    let res = fetch(&app, "/api/v1/citizen/application/receipt", &token, Some("application/pdf")).await;
    assert_eq!(header(&res, "content-type"), "application/pdf");
    let res = fetch(&app, "/api/v1/citizen/application/receipt", &token, Some("image/png")).await;
    assert_eq!(res.status().as_u16(), 406);
    let (_, problem) = json(res).await;
    assert_eq!(problem["code"], "not_acceptable");
});

db_test!(the_printable_page_is_persian_right_to_left_and_escaped, |app| {
    let token = app.register_and_pay(&SAMPLE).await;
    // A mother's name with an apostrophe (allowed in names) must come out escaped. The
    // registry holds it so (the mother's name is compared with the registry's).
    let renamed =
        app.exec_sql("UPDATE registry_people SET mother_name = 'شهر''زاد' WHERE national_id = '2580200606'").await;
    assert_eq!(renamed, 1);
    let info = personal_info("1369-03-19", "1410-11-15", "female", "شهر'زاد", "09145128136");
    let (status, body) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &info).await;
    assert_eq!(status, 200, "{body}");
    let r = receipt_json(&app, &token).await;
    let tracking = r["tracking_code"].as_str().unwrap();

    let res = fetch(&app, "/api/v1/citizen/application/receipt.html", &token, None).await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(header(&res, "content-type").starts_with("text/html"));
    let csp = header(&res, "content-security-policy");
    assert!(csp.contains("default-src 'none'") && csp.contains("font-src 'self'"), "{csp}");
    assert_eq!(header(&res, "cache-control"), "no-store");
    let page = res.text().await.unwrap();
    // Codes and numbers sit in left-to-right isolates; the visible text is what counts here.
    let visible = page.replace(r#"<bdi dir="ltr">"#, "").replace("</bdi>", "");

    assert!(page.contains(r#"<html lang="fa" dir="rtl">"#));
    assert!(page.contains(&persian(tracking)), "tracking code in Persian digits");
    assert!(page.contains(&persian("2580200606")) && page.contains(&persian("883810")));
    assert!(visible.contains("۱۳۶۹/۰۳/۱۹") && visible.contains("۱۵ ذیقعده ۱۴۱۰"), "Jalali and lunar birth dates");
    assert!(page.contains(&persian("09145128136")));
    assert!(visible.contains(OFFICE_NAME) && visible.contains("مراغه - خ پاسداران"));
    assert!(visible.contains(&persian("11222226")));
    let date_jalali = r["enrollment"]["date_jalali"].as_str().unwrap().replace('-', "/");
    assert!(visible.contains(&persian(&date_jalali)), "appointment date {date_jalali} in Jalali");
    assert!(visible.contains("موفق") && visible.contains(&persian(r["payment"]["reference"].as_str().unwrap())));
    assert!(page.contains("شهر&#39;زاد") && !page.contains("شهر'زاد"), "the apostrophe is escaped");
    assert!(page.contains(r#"<bdi dir="ltr">*۴*۶۰۹۰#</bdi>"#), "the USSD code keeps its order");
    assert!(page.contains("@media print") && page.contains("size:A4"));
    assert!(page.contains("url(/assets/fonts/Vazirmatn-Regular.ttf)"));
    assert!(page.contains("<svg") && page.contains(r#"<div class="qr" id="qr">"#));
    let escaped_url = r["verify_url"].as_str().unwrap().replace('&', "&amp;");
    assert!(page.contains(&format!(r#"href="{escaped_url}""#)));
    // Only the nonce-bearing script runs.
    let nonce = csp.split("'nonce-").nth(1).and_then(|s| s.split('\'').next()).unwrap();
    assert!(page.contains(&format!(r#"<script nonce="{nonce}">"#)));

    // The same page by content negotiation.
    let res = fetch(&app, "/api/v1/citizen/application/receipt", &token, Some("text/html")).await;
    assert!(res.text().await.unwrap().contains(&persian(tracking)));

    // The font it loads.
    let font = app.http.get(app.url("/assets/fonts/Vazirmatn-Regular.ttf")).send().await.unwrap();
    assert_eq!(font.status().as_u16(), 200);
    assert_eq!(header(&font, "content-type"), "font/ttf");
    assert!(header(&font, "cache-control").starts_with("public, max-age="));
    assert_eq!(font.bytes().await.unwrap().as_ref(), api::receipt::REGULAR_TTF);
    let (status, problem) = app.get("/assets/fonts/secret.toml", None).await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
});

/// A fresh directory under the system temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("ncr-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a tool to completion (killed after `timeout`); its standard output.
fn run(tool: &str, args: &[&str], timeout: Duration) -> String {
    let mut child = Command::new(tool)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run `{tool}` ({e}): install it (CI: `.ci/run` installs chromium zbar-tools poppler-utils)")
        });
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            panic!("`{tool}` did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("output");
    assert!(output.status.success(), "`{tool} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

db_test!(the_pdf_file_holds_the_tracking_code_and_the_office_in_persian, |app| {
    let token = app.register_and_pay(&SAMPLE).await;
    let tracking = receipt_json(&app, &token).await["tracking_code"].as_str().unwrap().to_owned();
    let res = fetch(&app, "/api/v1/citizen/application/receipt.pdf", &token, None).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(header(&res, "content-type"), "application/pdf");
    assert_eq!(header(&res, "content-disposition"), format!("attachment; filename=\"receipt-{tracking}.pdf\""));
    let pdf = res.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));

    let dir = TempDir::new("receipt-pdf");
    let pdf_path = dir.0.join("receipt.pdf");
    std::fs::write(&pdf_path, &pdf).unwrap();
    let raw = tokio::task::spawn_blocking(move || {
        run("pdftotext", &["-layout", "-enc", "UTF-8", path_str(&pdf_path), "-"], Duration::from_secs(60))
    })
    .await
    .unwrap();
    // pdftotext marks the direction of runs with invisible embedding controls; drop them.
    let text: String = raw.chars().filter(|c| !('\u{202A}'..='\u{202E}').contains(c)).collect();
    assert!(text.contains(&persian(&tracking)), "tracking code missing from:\n{text}");
    assert!(text.contains(OFFICE_NAME), "office name missing from:\n{text}");
    assert!(text.contains("نتیجه ثبت نام کارت هوشمند ملی"), "title missing from:\n{text}");
});

db_test!(the_verification_link_accepts_the_receipt_and_rejects_tampering, |app| {
    let token = app.register_and_pay(&SAMPLE).await;
    let r = receipt_json(&app, &token).await;
    let url = r["verify_url"].as_str().unwrap().to_owned();
    let tracking = r["tracking_code"].as_str().unwrap();

    // No login: anyone holding the printout may check it.
    let (status, v) = app.get(local_path(&app, &url), None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["valid"], true);
    assert_eq!(v["tracking_code"], tracking);
    assert_eq!(v["state"], "registered");
    assert_eq!(v["office_name"], OFFICE_NAME);
    assert_eq!(v["appointment_date"], r["enrollment"]["date"]);
    assert_eq!(v["appointment_date_jalali"], r["enrollment"]["date_jalali"]);
    assert_eq!(v["shift"], r["enrollment"]["shift"]);
    assert_eq!(v["issued_on"], param(&url, "d"));
    let text = v.to_string();
    assert!(!text.contains("2580200606") && !text.contains("09145128136") && !text.contains("شهرزاد"), "{text}");

    // Any altered value fails.
    let other_tracking = flip(tracking, 3);
    let other_date = "2026-11-23";
    let other_signature = flip(param(&url, "s"), 5);
    for tampered in [
        with_param(&url, "t", &other_tracking),
        with_param(&url, "d", other_date),
        with_param(&url, "s", &other_signature),
        with_param(&url, "s", "AAAA"),
    ] {
        let (status, problem) = app.get(local_path(&app, &tampered), None).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (422, Some("receipt_signature_invalid")),
            "{tampered}: {problem}"
        );
    }
    let (status, problem) = app.get("/api/v1/public/receipts/verify?t=1", None).await;
    assert_eq!((status, problem["errors"][0]["code"].as_str()), (422, Some("required")), "{problem}");

    // The receipt printed tomorrow has tomorrow's date and still verifies.
    app.clock.advance(chrono::Duration::days(1));
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let again = receipt_json(&app, &token).await;
    let url2 = again["verify_url"].as_str().unwrap();
    assert_ne!(param(url2, "d"), param(&url, "d"));
    let (status, _) = app.get(local_path(&app, url2), None).await;
    assert_eq!(status, 200);
});

db_test!(the_receipt_is_e_mailed_through_the_outbox_with_the_pdf_attached, |app| {
    let token = app.register_and_pay(&SAMPLE).await;
    let r = receipt_json(&app, &token).await;
    let tracking = r["tracking_code"].as_str().unwrap().to_owned();
    let path = "/api/v1/citizen/application/receipt/email";

    let (status, problem) = app.post(path, Some(&token), &json!({"email": "not-an-address"})).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        (problem["errors"][0]["field"].as_str(), problem["errors"][0]["code"].as_str()),
        (Some("email"), Some("email"))
    );
    let (status, problem) = app.post(path, Some(&token), &json!({"email": "a@b.ir", "cc": "x@y.ir"})).await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (422, Some("cc")), "{problem}");

    let (status, queued) = app.post(path, Some(&token), &json!({"email": " maryam.ahmadi@example.ir "})).await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["status"], "queued");
    assert_eq!(queued["recipient_hint"], "m***@example.ir");

    let (_, application) = app.get("/api/v1/citizen/application", Some(&token)).await;
    let id = application["id"].as_str().unwrap().to_owned();
    let rows =
        app.state.run(move |conn| persistence::outbox::for_application(conn, &id.as_str().into())).await.unwrap();
    let mails: Vec<_> = rows.iter().filter(|m| m.channel == "email").collect();
    assert_eq!(mails.len(), 1);
    let mail = mails[0];
    assert_eq!((mail.template.as_str(), mail.status.as_str()), ("receipt", "queued"));
    assert_eq!(mail.dedupe_key, None);
    assert_eq!(mail.recipient_hint, "m***@example.ir");
    assert_eq!(app.state.pii.open(PiiKind::Email, &mail.recipient_enc).unwrap(), "maryam.ahmadi@example.ir");
    assert!(!mail.params_enc.contains("receipt-"), "the parameters are sealed");
    let params: Value = serde_json::from_str(&app.state.pii.open(PiiKind::Secret, &mail.params_enc).unwrap()).unwrap();

    assert!(params["subject"].as_str().unwrap().contains(&persian(&tracking)), "{}", params["subject"]);
    let text = params["text"].as_str().unwrap();
    assert!(text.contains(&persian(&tracking)) && text.contains(OFFICE_NAME), "{text}");
    assert!(text.contains(r["verify_url"].as_str().unwrap()));
    let html = params["html"].as_str().unwrap();
    assert!(html.contains(r#"dir="rtl""#) && html.contains(&persian(&tracking)) && !html.contains("<script"));
    assert!(html.contains(&format!("url({}/assets/fonts/Vazirmatn-Regular.ttf)", app.base)));
    let attachments = params["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2, "the PDF and the appointment's calendar file");
    assert_eq!(
        (attachments[1]["filename"].as_str(), attachments[1]["content_type"].as_str()),
        (Some("appointment.ics"), Some("text/calendar; charset=utf-8"))
    );
    assert_eq!(attachments[0]["filename"], format!("receipt-{tracking}.pdf"));
    assert_eq!(attachments[0]["content_type"], "application/pdf");
    let pdf = base64::engine::general_purpose::STANDARD.decode(attachments[0]["base64"].as_str().unwrap()).unwrap();
    assert!(pdf.starts_with(b"%PDF-") && pdf.len() > 5_000);

    // Five a day; the sixth waits.
    for _ in 0..4 {
        let (status, body) = app.post(path, Some(&token), &json!({"email": "maryam.ahmadi@example.ir"})).await;
        assert_eq!(status, 202, "{body}");
    }
    let (status, problem) = app.post(path, Some(&token), &json!({"email": "maryam.ahmadi@example.ir"})).await;
    assert_eq!((status, problem["code"].as_str()), (429, Some("receipt_email_limit")), "{problem}");
    app.clock.advance(chrono::Duration::hours(25));
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let (status, _) = app.post(path, Some(&token), &json!({"email": "maryam.ahmadi@example.ir"})).await;
    assert_eq!(status, 202);
});

// ---------------------------------------------------------------- in a real browser

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The Chromium binary (`NCR_CHROMIUM` overrides), if one is installed.
fn chromium() -> Option<String> {
    let candidates = std::env::var("NCR_CHROMIUM").map(|c| vec![c]).unwrap_or_else(|_| {
        ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"].map(String::from).to_vec()
    });
    candidates.into_iter().find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
}

db_test!(a_browser_prints_the_page_and_its_qr_code_verifies, |app| {
    let Some(browser) = chromium() else {
        if under_ci() {
            panic!("Chromium is required under CI=true (apt-get install chromium)");
        }
        eprintln!("\n!!! SKIPPED the browser receipt test: Chromium is not installed (apt-get install chromium)\n");
        ncr_tests::record_skip("the browser receipt test");
        return;
    };
    if Command::new("zbarimg").arg("--version").output().is_err() {
        panic!("zbarimg is required (apt-get install zbar-tools)");
    }
    let token = app.register_and_pay(&SAMPLE).await;
    let r = receipt_json(&app, &token).await;
    let page = fetch(&app, "/api/v1/citizen/application/receipt.html", &token, None).await.text().await.unwrap();

    // The page needs the citizen's token, which a browser cannot send from the command line:
    // save it as the citizen would ("Save as…", docs/domain/payments.md), with the font pointing at
    // the test server by absolute URL.
    let dir = TempDir::new("receipt-browser");
    let html_path = dir.0.join("receipt.html");
    let png_path = dir.0.join("receipt.png");
    let profile = dir.0.join("profile");
    std::fs::write(&html_path, page.replace("url(/assets/fonts/", &format!("url({}/assets/fonts/", app.base))).unwrap();
    let fonts_before = app.state.metrics.requests.with_label_values(&["/assets/fonts/{name}", "GET", "200"]).get();

    let (png, html) = (png_path.clone(), html_path.clone());
    tokio::task::spawn_blocking(move || {
        let screenshot = format!("--screenshot={}", path_str(&png));
        let profile = format!("--user-data-dir={}", path_str(&profile));
        let url = format!("file://{}", path_str(&html));
        run(
            &browser,
            &[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                "--virtual-time-budget=5000",
                &profile,
                &screenshot,
                "--window-size=1240,1754",
                &url,
            ],
            Duration::from_secs(120),
        );
    })
    .await
    .unwrap();
    assert!(std::fs::metadata(&png_path).is_ok_and(|m| m.len() > 10_000), "no screenshot");
    // To look at it: NCR_RECEIPT_SCREENSHOT=/tmp/receipt.png
    if let Ok(keep) = std::env::var("NCR_RECEIPT_SCREENSHOT") {
        std::fs::copy(&png_path, keep).expect("keep the screenshot");
    }
    let fonts_after = app.state.metrics.requests.with_label_values(&["/assets/fonts/{name}", "GET", "200"]).get();
    assert!(fonts_after > fonts_before, "the browser did not load the receipt's font");

    let png = png_path.clone();
    let decoded = tokio::task::spawn_blocking(move || {
        run("zbarimg", &["--quiet", "--raw", path_str(&png)], Duration::from_secs(60))
    })
    .await
    .unwrap();
    let decoded = decoded.trim_end().to_owned();
    assert_eq!(decoded, r["verify_url"].as_str().unwrap(), "the QR code carries the signed verification link");

    let (status, v) = app.get(local_path(&app, &decoded), None).await;
    assert_eq!((status, v["valid"].as_bool()), (200, Some(true)), "{v}");
    assert_eq!(v["office_name"], OFFICE_NAME);
    let tampered = with_param(&decoded, "t", &flip(param(&decoded, "t"), 9));
    let (status, problem) = app.get(local_path(&app, &tampered), None).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("receipt_signature_invalid")));
});
