//! The enrollment receipt (issue 19 item 5). docs/domain/back-office.md, «تکمیل ثبت نام»: «پس از پایان ثبت نام
//! رسیدی در اختیار متقاضی قرار خواهد گرفت که می بایست آن را تا زمان تحویل کارت نزد خود نگاه
//! دارد» — after enrollment the applicant gets a receipt to keep until the card is handed
//! over; «فرآیند صدور کارت بطور متوسط حدود 20 روز به طول خواهد انجامید». The office and the
//! citizen get it as JSON, a printable page and a PDF, signed and verifiable like the
//! registration receipt (docs/domain/payments.md), with the delivery office and the expected ready date.

use std::process::Command;

use api::seed::offices::MARAGHEH_OFFICE_ID as MARAGHEH;
use api::seed::population::SAMPLE;
use chrono::NaiveDate;
use ncr_tests::{TestApp, db_test};
use serde_json::{Value, json};

const OFFICE_NAME: &str = "اداره ثبت احوال مراغه";
const TITLE: &str = "رسید تکمیل ثبت نام کارت هوشمند ملی";
const CITIZEN_PATH: &str = "/api/v1/citizen/application/enrollment-receipt";

fn persian(s: &str) -> String {
    domain::text::persian_digits(s)
}

async fn fetch(app: &TestApp, path: &str, token: &str, accept: &str) -> reqwest::Response {
    app.http.get(app.url(path)).bearer_auth(token).header("Accept", accept).send().await.expect("request")
}

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

fn jalali_slashed(d: NaiveDate) -> String {
    domain::calendar::JalaliDate::from_gregorian(d).unwrap().to_string().replace('-', "/")
}

/// Text of a PDF as `pdftotext` reads it, without the invisible direction marks it adds.
fn pdf_text(pdf: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("ncr-enrollment-receipt-{}.pdf", uuid::Uuid::new_v4()));
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8", path.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().chars().filter(|c| !('\u{202A}'..='\u{202E}').contains(c)).collect()
}

fn ops(view: &Value) -> Vec<String> {
    view["allowed_operations"].as_array().unwrap().iter().map(|o| o.as_str().unwrap().to_owned()).collect()
}

db_test!(the_office_and_the_citizen_get_a_signed_enrollment_receipt_at_completion, |app| {
    let admin = app.admin_token().await;
    app.create_operator(&admin, "op.maragheh", MARAGHEH).await;
    app.create_operator(&admin, "op.tabriz", "041-TBZ-01").await;
    let token = app.register_and_pay(&SAMPLE).await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    let tracking = view["tracking_code"].as_str().unwrap().to_owned();
    let date: NaiveDate = view["appointment"]["date"].as_str().unwrap().parse().unwrap();
    let office_path = format!("/api/v1/office/applications/{tracking}/enrollment-receipt");

    // Before enrollment: a clear problem, for the citizen and for the office.
    assert!(!ops(&view).contains(&"print_enrollment_receipt".to_owned()));
    let res = fetch(&app, CITIZEN_PATH, &token, "application/json").await;
    assert_eq!(res.status().as_u16(), 409);
    assert!(header(&res, "content-type").starts_with("application/problem+json"));
    let (_, problem) = ncr_tests::json(res).await;
    assert_eq!(problem["code"], "enrollment_not_completed", "{problem}");
    assert_eq!(problem["detail"], "رسید تکمیل ثبت نام پس از پایان تکمیل ثبت نام در دفتر صادر می‌شود.");
    let op = app.staff_token("op.maragheh", "operator-password-1").await;
    let (status, problem) = app.get(&office_path, Some(&op)).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("enrollment_not_completed")), "{problem}");

    // The appointment day: check-in and completion.
    app.clock.set(domain::calendar::tehran_instant(date, 9, 30));
    let op = app.staff_token("op.maragheh", "operator-password-1").await;
    let (status, v) =
        app.post(&format!("/api/v1/office/applications/{tracking}/check-in"), Some(&op), &json!({})).await;
    assert_eq!(status, 200, "{v}");
    let (status, problem) = app.get(&office_path, Some(&op)).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("enrollment_not_completed")), "checked in only");
    let completion = json!({
        "postal_code": "5518743111", "address": "مراغه - خیابان پاسداران - پلاک ۱۲", "landline": "04137221234",
        "documents_checked": true, "fingerprints": "captured", "face": "captured", "capture_reference": "CAP-77"
    });
    let (status, v) =
        app.post(&format!("/api/v1/office/applications/{tracking}/completion"), Some(&op), &completion).await;
    assert_eq!(status, 200, "{v}");
    assert!(ops(&v).contains(&"print_enrollment_receipt".to_owned()), "{v}");

    // The office's copy (JSON).
    let (status, r) = app.get(&office_path, Some(&op)).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["title"], TITLE);
    assert_eq!(r["tracking_code"], tracking.as_str());
    assert_eq!(r["state"], "enrolled");
    assert_eq!(r["national_id"], SAMPLE.national_id);
    assert_eq!(r["enrollment_office"]["id"], MARAGHEH);
    assert_eq!(r["delivery_office"]["id"], MARAGHEH, "the delivery office defaults to the enrollment office");
    assert_eq!(r["delivery_office"]["name"], OFFICE_NAME);
    assert_eq!(r["capture_reference"], "CAP-77");
    assert_eq!(r["enrolled_on_jalali"], domain::calendar::JalaliDate::from_gregorian(date).unwrap().to_string());
    // «حدود 20 روز» (docs/domain/back-office.md): the expected ready date is 20 days after enrollment.
    let ready = date + chrono::Duration::days(20);
    assert_eq!(r["expected_ready_on"], ready.to_string());
    let notes: Vec<&str> = r["notes"].as_array().unwrap().iter().map(|n| n["fa"].as_str().unwrap()).collect();
    assert!(notes[0].contains("تا زمان تحویل کارت نزد خود نگاه دارید"), "{notes:?}");
    assert!(notes[1].contains("۲۰ روز"), "{notes:?}");
    // Another office: as if it did not exist.
    let tabriz = app.staff_token("op.tabriz", "operator-password-1").await;
    let (status, problem) = app.get(&office_path, Some(&tabriz)).await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("application_not_found")));

    // The citizen's copy: JSON, the page, the PDF.
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let (status, mine) = app.get(CITIZEN_PATH, Some(&token)).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!((mine["tracking_code"].clone(), mine["expected_ready_on"].clone()), (json!(tracking), json!(ready)));

    let res = fetch(&app, CITIZEN_PATH, &token, "text/html").await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(header(&res, "content-type").starts_with("text/html"));
    assert!(header(&res, "content-security-policy").contains("default-src 'none'"));
    let page = res.text().await.unwrap();
    let visible = page.replace(r#"<bdi dir="ltr">"#, "").replace("</bdi>", "");
    assert!(page.contains(r#"<html lang="fa" dir="rtl">"#));
    assert!(visible.contains(TITLE) && visible.contains(&persian(&tracking)));
    assert!(visible.contains(OFFICE_NAME) && visible.contains("مراغه - خ پاسداران"));
    assert!(visible.contains(&persian(&jalali_slashed(ready))), "expected ready date in Jalali: {page}");
    assert!(page.contains(r#"<div class="qr" id="qr"><svg"#));

    let res = fetch(&app, CITIZEN_PATH, &token, "application/pdf").await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(header(&res, "content-type"), "application/pdf");
    assert_eq!(
        header(&res, "content-disposition"),
        format!("attachment; filename=\"enrollment-receipt-{tracking}.pdf\"")
    );
    let pdf = res.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let text = tokio::task::spawn_blocking(move || pdf_text(&pdf)).await.unwrap();
    assert!(text.contains(TITLE), "title missing from:\n{text}");
    assert!(text.contains(&persian(&tracking)), "tracking code missing from:\n{text}");
    assert!(text.contains(OFFICE_NAME), "delivery office missing from:\n{text}");
    assert!(text.contains(&persian(&jalali_slashed(ready))), "expected ready date missing from:\n{text}");
    let res = fetch(&app, CITIZEN_PATH, &token, "image/png").await;
    assert_eq!(res.status().as_u16(), 406);

    // The signature verifies, as an enrollment receipt and as nothing else.
    let url = mine["verify_url"].as_str().unwrap();
    let local = url.strip_prefix(&app.base).unwrap();
    assert!(local.contains("&k=enrollment&s="), "{local}");
    let (status, v) = app.get(local, None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!((v["valid"].as_bool(), v["kind"].as_str()), (Some(true), Some("enrollment")));
    assert_eq!((v["state"].as_str(), v["delivery_office_name"].as_str()), (Some("enrolled"), Some(OFFICE_NAME)));
    let as_registration = local.replace("&k=enrollment", "");
    let (status, problem) = app.get(&as_registration, None).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("receipt_signature_invalid")), "{problem}");
    let flipped = format!("{}{}", &tracking[..9], if tracking.ends_with('0') { '1' } else { '0' });
    let other = local.replace(&format!("t={tracking}"), &format!("t={flipped}"));
    let (status, _) = app.get(&other, None).await;
    assert_eq!(status, 422);
    // A registration receipt's signature does not pass as an enrollment receipt.
    let (_, registration) = app.get("/api/v1/citizen/application/receipt", Some(&token)).await;
    let reg_local = registration["verify_url"].as_str().unwrap().strip_prefix(&app.base).unwrap().to_owned();
    let (status, v) = app.get(&reg_local, None).await;
    assert_eq!((status, v["kind"].as_str()), (200, Some("registration")));
    let (status, _) = app.get(&reg_local.replace("&s=", "&k=enrollment&s="), None).await;
    assert_eq!(status, 422);

    // The delivery office may still change before production; the receipt follows it.
    let (status, v) =
        app.put("/api/v1/citizen/application/delivery-office", Some(&token), &json!({"office_id": "041-TBZ-01"})).await;
    assert_eq!(status, 200, "{v}");
    let (_, mine) = app.get(CITIZEN_PATH, Some(&token)).await;
    assert_eq!(mine["delivery_office"]["id"], "041-TBZ-01");
    assert_eq!(mine["enrollment_office"]["id"], MARAGHEH);
    let (status, r) = app.get(&office_path, Some(&tabriz)).await;
    assert_eq!((status, r["tracking_code"].as_str()), (200, Some(tracking.as_str())), "the delivery office sees it");

    // The office's reads are in the audit log.
    let id = view["id"].as_str().unwrap();
    let viewed = app
        .count_sql(&format!(
            "SELECT COUNT(*) AS n FROM audit_log WHERE application_id = '{id}' AND action = 'personal_data_viewed'"
        ))
        .await;
    assert!(viewed >= 2, "{viewed}");
});
