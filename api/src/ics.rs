//! The appointment as an iCalendar file (RFC 5545), for the citizen's calendar app: served
//! at `GET /api/v1/citizen/application/appointment.ics` and attached to the receipt
//! e-mail (issue 20). Times are UTC (`…Z`), so no time-zone definition is needed; the
//! shift's hours are Tehran's.

use chrono::{DateTime, Utc};
use domain::application::Slot;
use persistence::offices::OfficeRow;

/// `text/calendar` with the charset calendar apps expect.
pub const CONTENT_TYPE: &str = "text/calendar; charset=utf-8";

/// What the file says about one booked appointment.
pub struct Appointment<'a> {
    pub application_id: &'a str,
    pub tracking_code: &'a str,
    pub slot: &'a Slot,
    pub office: &'a OfficeRow,
    /// When the file is made (`DTSTAMP`).
    pub now: DateTime<Utc>,
    /// The host part of the event's `UID`.
    pub host: &'a str,
}

/// The `.ics` text: one event for the shift, with a reminder the evening before.
pub fn appointment(a: &Appointment<'_>) -> String {
    let start = domain::calendar::tehran_instant(a.slot.date, a.slot.shift.starts_at_hour(), 0);
    let end = domain::calendar::tehran_instant(a.slot.date, a.slot.shift.ends_at_hour(), 0);
    let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let jalali = domain::calendar::JalaliDate::from_gregorian(a.slot.date).map(|d| d.to_string()).unwrap_or_default();
    let description = format!(
        "کد رهگیری: {}\nتاریخ: {} ({})\nنشانی: {}\nتلفن دفتر: {}\n\
         با شناسنامه و کارت ملی مراجعه کنید و برای عکس و اثر انگشت آماده باشید.\n\
         پیگیری: *4*6090#",
        a.tracking_code,
        jalali,
        a.slot.shift.label_fa(),
        a.office.address,
        a.office.phone,
    );
    let lines = [
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//NCR//Smart ID card appointment//FA".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
        "METHOD:PUBLISH".to_owned(),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:appointment-{}-{}-{}@{}", a.application_id, a.slot.date, a.slot.shift.as_str(), a.host),
        format!("DTSTAMP:{}", stamp(a.now)),
        format!("DTSTART:{}", stamp(start)),
        format!("DTEND:{}", stamp(end)),
        format!("SUMMARY:{}", text(&format!("نوبت تکمیل ثبت نام کارت هوشمند ملی - {}", a.office.name))),
        format!("LOCATION:{}", text(&format!("{} - {}", a.office.name, a.office.address))),
        format!("DESCRIPTION:{}", text(&description)),
        "STATUS:CONFIRMED".to_owned(),
        "TRANSP:OPAQUE".to_owned(),
        "BEGIN:VALARM".to_owned(),
        "ACTION:DISPLAY".to_owned(),
        // 18:00 Tehran the evening before a morning shift (08:00): 14 hours ahead.
        "TRIGGER:-PT14H".to_owned(),
        format!("DESCRIPTION:{}", text("یادآوری نوبت کارت هوشمند ملی")),
        "END:VALARM".to_owned(),
        "END:VEVENT".to_owned(),
        "END:VCALENDAR".to_owned(),
    ];
    let mut out = String::new();
    for line in lines {
        fold(&line, &mut out);
    }
    out
}

/// A TEXT value escaped (RFC 5545 §3.3.11).
fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends a content line folded at 75 octets (RFC 5545 §3.1), never inside a UTF-8
/// character, ending in CRLF.
fn fold(line: &str, out: &mut String) {
    let mut used = 0;
    for c in line.chars() {
        if used + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += c.len_utf8();
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_fold_at_75_octets_between_characters() {
        let mut out = String::new();
        fold(&format!("DESCRIPTION:{}", "ثبت نام ".repeat(20)), &mut out);
        assert!(out.ends_with("\r\n"));
        for line in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{} octets: {line}", line.len());
        }
        let unfolded = out.replace("\r\n ", "");
        assert_eq!(unfolded, format!("DESCRIPTION:{}\r\n", "ثبت نام ".repeat(20)));
    }

    #[test]
    fn text_values_are_escaped() {
        assert_eq!(text("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
    }
}
