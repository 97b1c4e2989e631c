//! The receipt as a printable page: right to left, Persian digits, Jalali dates, set in
//! the bundled Vazirmatn font (`/assets/fonts/…`), one A4 sheet when printed, with the QR
//! code of the signed verification link drawn as inline SVG (no image request, so the
//! page's strict Content-Security-Policy needs no exception). Every value is escaped: names
//! may contain `'` and the like.

use domain::text::persian_digits;
use qrcode::{Color, EcLevel, QrCode};
use unicode_bidi::{BidiClass, bidi_class};

use crate::{ReceiptDoc, Sheet, SheetField};

/// How the page is put together.
pub struct Options<'a> {
    /// The page's script nonce: with one, a "print" button is shown (the web page); without,
    /// the page has no script at all (the e-mail).
    pub nonce: Option<&'a str>,
    /// Prefix of `/assets/fonts/…`: empty on the web page (same origin), the public URL in an
    /// e-mail.
    pub asset_base: &'a str,
}

const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;background:#eef1f5;color:#1b1f24;font-family:Vazirmatn,Tahoma,"DejaVu Sans",sans-serif;font-size:11pt;line-height:1.9}
main{width:210mm;min-height:297mm;margin:0 auto;padding:14mm 16mm;background:#fff}
header{display:flex;justify-content:space-between;align-items:flex-start;gap:8mm;border-bottom:2px solid #5a5a5a;padding-bottom:4mm}
header .qr svg{display:block;width:56mm;height:56mm}
h1{font-size:17pt;margin:0 0 2mm;font-weight:700}
h2{font-size:12.5pt;margin:6mm 0 2mm;padding:1mm 3mm;background:#e8e8e8;border-right:3px solid #5a5a5a;font-weight:700}
.hint{font-size:9pt;color:#444;margin:0}
dl{display:grid;grid-template-columns:1fr 1fr;gap:1mm 10mm;margin:0}
dl div{display:flex;gap:2mm;border-bottom:1px dotted #bbb;padding:1mm 0}
dl div.wide{grid-column:1 / -1}
dt{color:#444}
dt::after{content:":"}
dd{margin:0;font-weight:700}
ol{margin:0;padding-right:7mm;list-style-type:persian}
footer{margin-top:8mm;padding-top:2mm;border-top:1px solid #999;font-size:8.5pt;color:#444;word-break:break-all}
footer a{color:inherit}
.actions{margin-top:6mm;text-align:center}
.actions button{font:inherit;padding:2mm 8mm;border:1px solid #666;border-radius:2mm;background:#0a5c8a;color:#fff;cursor:pointer}
@page{size:A4;margin:0}
@media print{
  body{background:#fff}
  main{margin:0;box-shadow:none}
  .actions{display:none}
  h2,dl div,li{break-inside:avoid}
}
"#;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page of the registration receipt.
pub fn render(doc: &ReceiptDoc, opts: &Options<'_>) -> String {
    render_sheet(&doc.sheet(), opts)
}

/// The whole page of any receipt.
pub fn render_sheet(sheet: &Sheet, opts: &Options<'_>) -> String {
    let base = escape(opts.asset_base);
    let fonts = format!(
        "@font-face{{font-family:Vazirmatn;src:url({base}/assets/fonts/Vazirmatn-Regular.ttf) format(\"truetype\");font-weight:400;font-display:swap}}\
         @font-face{{font-family:Vazirmatn;src:url({base}/assets/fonts/Vazirmatn-Bold.ttf) format(\"truetype\");font-weight:700;font-display:swap}}"
    );
    let qr = qr_svg(&sheet.verify_url).unwrap_or_default();
    let sections: String = sheet
        .sections
        .iter()
        .map(|s| format!("<section><h2>{}</h2>{}</section>\n", escape(&s.heading), fields(&s.fields)))
        .collect();
    let list: String = sheet.list.iter().map(|p| format!("<li>{}</li>", text(p))).collect();
    let (button, script) = match opts.nonce {
        Some(n) => (
            r#"<p class="actions"><button type="button" id="print">چاپ رسید</button></p>"#.to_owned(),
            format!(
                r#"<script nonce="{}">document.getElementById('print').addEventListener('click',function(){{window.print()}});</script>"#,
                escape(n)
            ),
        ),
        None => (String::new(), String::new()),
    };
    let url = escape(&sheet.verify_url);
    format!(
        r#"<!doctype html>
<html lang="fa" dir="rtl"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - {code}</title>
<style>{fonts}{STYLE}</style></head>
<body><main>
<header><div><h1>{title}</h1><p>تاریخ صدور رسید: <bdi dir="ltr" id="issued-at">{issued}</bdi></p>
<p class="hint">برای بررسی اصالت این رسید، کد QR کنار را با تلفن همراه بخوانید.</p></div>
<div class="qr" id="qr">{qr}</div></header>
{sections}<section><h2>{list_heading}</h2><ol id="prerequisites">{list}</ol></section>
<footer>نشانی بررسی اصالت رسید: <a dir="ltr" id="verify-url" href="{url}">{url}</a></footer>
{button}</main>{script}</body></html>
"#,
        title = escape(&sheet.title),
        code = escape(&persian_digits(&sheet.code)),
        issued = escape(&persian_digits(&sheet.issued_at)),
        list_heading = escape(&sheet.list_heading),
    )
}

/// The plain-text part of the e-mail: the same fields, one a line.
pub fn plain_text(doc: &ReceiptDoc) -> String {
    let sheet = doc.sheet();
    let p = persian_digits;
    let mut out = format!("{}\n\n", sheet.title);
    for field in sheet.sections.iter().flat_map(|s| &s.fields) {
        out.push_str(&format!("{}: {}\n", field.label, p(&field.value)));
    }
    out.push_str(&format!("تاریخ صدور رسید: {}\n", p(&sheet.issued_at)));
    out.push_str(&format!("\n{}:\n", sheet.list_heading));
    for (i, item) in sheet.list.iter().enumerate() {
        out.push_str(&format!("{}- {}\n", p(&(i + 1).to_string()), p(item)));
    }
    out.push_str(&format!("\nنشانی بررسی اصالت رسید:\n{}\n", sheet.verify_url));
    out
}

/// A definition list; codes and dates keep their left-to-right order inside the page.
fn fields(rows: &[SheetField]) -> String {
    let mut out = String::from("<dl>");
    for f in rows {
        out.push_str(&format!(
            r#"<div{class}><dt>{label}</dt><dd id="{id}">{value}</dd></div>"#,
            class = if f.wide { r#" class="wide""# } else { "" },
            id = f.id,
            label = escape(&f.label),
            value = text(&f.value),
        ));
    }
    out.push_str("</dl>");
    out
}

/// Escaped text with Persian digits; a word without right-to-left letters (a code such as
/// `*۴*۶۰۹۰#`, a date, a host name) is isolated left to right so its characters keep
/// their order.
fn text(value: &str) -> String {
    persian_digits(value)
        .split(' ')
        .map(|word| {
            let has_rtl = word.chars().any(|c| matches!(bidi_class(c), BidiClass::R | BidiClass::AL));
            let has_ltr = word.chars().any(|c| matches!(bidi_class(c), BidiClass::L | BidiClass::EN));
            if has_ltr && !has_rtl { format!(r#"<bdi dir="ltr">{}</bdi>"#, escape(word)) } else { escape(word) }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The QR code of `data` as an SVG: one path of dark modules, four light modules of quiet
/// zone, crisp edges so a screenshot or a scan decodes.
pub fn qr_svg(data: &str) -> Result<String, String> {
    const QUIET: usize = 4;
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map_err(|e| format!("cannot make a QR code of the verification URL: {e}"))?;
    let width = code.width();
    let size = width + 2 * QUIET;
    let mut path = String::new();
    for (row, cells) in code.to_colors().chunks(width).enumerate() {
        let mut col = 0;
        while col < cells.len() {
            if cells[col] != Color::Dark {
                col += 1;
                continue;
            }
            let start = col;
            while col < cells.len() && cells[col] == Color::Dark {
                col += 1;
            }
            path.push_str(&format!("M{} {}h{}v1h-{}z", start + QUIET, row + QUIET, col - start, col - start));
        }
    }
    Ok(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" shape-rendering="crispEdges" role="img" aria-label="QR"><rect width="{size}" height="{size}" fill="#fff"/><path fill="#000" d="{path}"/></svg>"##
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> ReceiptDoc {
        ReceiptDoc {
            title: crate::TITLE.into(),
            national_id: "2580200606".into(),
            tracking_code: "4973201670".into(),
            serial: "883810".into(),
            birth_date_jalali: "1369/03/19".into(),
            birth_date_hijri: "15 ذیقعده 1410".into(),
            gender: "زن".into(),
            religion: "اسلام".into(),
            mother_name: "شهر'زاد <b>".into(),
            mobile: "09145128136".into(),
            office_heading: "دفتر تکمیل ثبت نام منتخب".into(),
            office_label: "دفتر تکمیل ثبت نام".into(),
            address_label: "نشانی دفتر تکمیل ثبت نام".into(),
            office_name: "اداره ثبت احوال مراغه".into(),
            office_address: "مراغه - خ پاسداران - اداره ثبت احوال مراغه".into(),
            office_phone: "11222226".into(),
            shift: "صبح".into(),
            appointment_date_jalali: "1405/09/05".into(),
            payment_status: "موفق".into(),
            payment_reference: "731906284415".into(),
            delivery_office: "اداره ثبت احوال مراغه".into(),
            prerequisites: vec!["از این لحظه به بعد می‌توانید با شماره‌گیری *4*6090# در موبایل پیگیری نمایید.".into()],
            verify_url: "https://ncr.example.ir/api/v1/public/receipts/verify?t=4973201670&d=2026-11-22&s=abc".into(),
            issued_at: "1405/09/01 10:00".into(),
        }
    }

    #[test]
    fn the_page_is_rtl_persian_and_escaped() {
        let page = render(&doc(), &Options { nonce: Some("n0nce"), asset_base: "" });
        assert!(page.contains(r#"<html lang="fa" dir="rtl">"#));
        assert!(page.contains(r#"<dd id="tracking-code"><bdi dir="ltr">۴۹۷۳۲۰۱۶۷۰</bdi></dd>"#), "{page}");
        assert!(page.contains("شهر&#39;زاد") && page.contains("&lt;b&gt;"));
        assert!(!page.contains("<b>"));
        assert!(page.contains(r#"<bdi dir="ltr">*۴*۶۰۹۰#</bdi>"#));
        assert!(page.contains("url(/assets/fonts/Vazirmatn-Regular.ttf)"));
        assert!(page.contains("@media print") && page.contains("size:A4"));
        assert!(page.contains(r#"<script nonce="n0nce">"#));
        assert!(page.contains("t=4973201670&amp;d=2026-11-22&amp;s=abc"), "the URL is escaped, not converted");
        let mail = render(&doc(), &Options { nonce: None, asset_base: "https://ncr.example.ir" });
        assert!(!mail.contains("<script") && !mail.contains("<button"));
        assert!(mail.contains("url(https://ncr.example.ir/assets/fonts/Vazirmatn-Bold.ttf)"));
    }

    #[test]
    fn the_qr_code_is_an_svg_path() {
        let svg = qr_svg("https://ncr.example.ir/x").unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<path fill=\"#000\" d=\"M"));
    }

    #[test]
    fn plain_text_lists_every_field() {
        let t = plain_text(&doc());
        assert!(t.contains("شماره پیگیری: ۴۹۷۳۲۰۱۶۷۰"));
        assert!(t.contains("دفتر تکمیل ثبت نام: اداره ثبت احوال مراغه"));
        assert!(t.contains("https://ncr.example.ir/api/v1/public/receipts/verify?t=4973201670"));
    }
}
