//! The texts of the notifications, in Persian (the default) and English.
//!
//! An SMS in Persian is sent as UCS-2, where one segment holds 70 characters and a longer
//! text is split into 67-character parts that cost one SMS each. So every template has
//! variants, richest first, and the first that fits one segment is sent (a long office
//! name drops out before the tracking code does). Numbers are written in Persian digits;
//! the tracking code is written out in full; the national code never appears. Generated
//! credentials and one-time codes stay exactly as they must be typed (ASCII).

use domain::Lang;
use domain::offices::Shift;
use domain::text::persian_digits;
use serde_json::Value;

use super::Template;

/// One UCS-2 SMS segment.
pub const UCS2_SEGMENT: usize = 70;
/// One GSM 7-bit SMS segment (plain ASCII English).
pub const GSM7_SEGMENT: usize = 160;

/// A rendered notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The e-mail subject when sent by e-mail.
    pub subject: String,
    pub text: String,
}

/// The template's parameters do not fit it (a bug in the code that queued the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {template}: missing or invalid parameter `{param}`")]
pub struct RenderError {
    pub template: &'static str,
    pub param: &'static str,
}

/// The characters a text occupies in one SMS segment's budget.
pub fn sms_units(text: &str) -> usize {
    text.encode_utf16().count()
}

/// How many characters fit one segment for this text.
pub fn segment_limit(text: &str) -> usize {
    if text.is_ascii() { GSM7_SEGMENT } else { UCS2_SEGMENT }
}

pub fn render(template: Template, lang: Lang, params: &Value) -> Result<Rendered, RenderError> {
    let p = Params { template: template.as_str(), value: params, lang };
    let variants = match lang {
        Lang::Fa => fa(template, &p)?,
        Lang::En => en(template, &p)?,
    };
    let text = variants
        .iter()
        .find(|v| sms_units(v) <= segment_limit(v))
        .or(variants.last())
        .cloned()
        .ok_or(RenderError { template: p.template, param: "-" })?;
    Ok(Rendered { subject: subject(template, lang).to_owned(), text })
}

fn subject(template: Template, lang: Lang) -> &'static str {
    let (fa, en) = match template {
        Template::EfolderCredentials | Template::EfolderResetCode => ("کارپوشه ملی ایرانیان", "National e-folder"),
        _ => ("سامانه کارت هوشمند ملی", "National smart ID card"),
    };
    if lang == Lang::En { en } else { fa }
}

fn fa(template: Template, p: &Params<'_>) -> Result<Vec<String>, RenderError> {
    Ok(match template {
        Template::Registration => {
            let tc = p.tracking_code()?;
            let mut v = Vec::new();
            if let Some(when) = p.when() {
                v.push(format!("ثبت‌نام کارت ملی انجام شد. رهگیری: {tc}، نوبت: {when}"));
            }
            v.push(format!("ثبت‌نام کارت ملی انجام شد. کد رهگیری: {tc}"));
            v
        }
        Template::PaymentResult => {
            if p.flag("success") {
                match p.opt_tracking_code() {
                    Some(tc) => vec![format!("پرداخت هزینه کارت ملی موفق بود. کد رهگیری: {tc}")],
                    None => vec!["پرداخت هزینه کارت ملی موفق بود.".into()],
                }
            } else if p.flag("refund") {
                vec!["پرداخت تایید نشد؛ مبلغ کسرشده تا ۷۲ ساعت به حسابتان بازمی‌گردد.".into()]
            } else {
                vec!["پرداخت هزینه کارت ملی ناموفق بود؛ نوبت شما آزاد شد.".into()]
            }
        }
        Template::Booking => {
            let when = p.when().ok_or(p.missing("date_jalali"))?;
            let mut v = Vec::new();
            if let (Some(office), Some(tc)) = (p.str("office"), p.opt_tracking_code()) {
                v.push(format!("نوبت کارت ملی {when}، {office}. رهگیری {tc}"));
            }
            if let Some(office) = p.str("office") {
                v.push(format!("نوبت کارت ملی شما: {when}، {office}"));
            }
            v.push(format!("نوبت کارت ملی شما: {when}"));
            v
        }
        Template::Reminder => {
            let when = p.when().ok_or(p.missing("date_jalali"))?;
            let mut v = Vec::new();
            if let Some(office) = p.str("office") {
                v.push(format!("یادآوری: نوبت کارت ملی فردا {when}، {office}"));
            }
            v.push(format!("یادآوری: نوبت کارت ملی شما فردا {when} است."));
            v
        }
        Template::NoShow => {
            let mut v = Vec::new();
            if let Some(until) = p.date("ban_until_jalali") {
                v.push(format!("در نوبت کارت ملی حاضر نشدید. نوبت‌گیری دوباره از {until}"));
            }
            v.push("در نوبت کارت ملی حاضر نشدید؛ برای نوبت تازه به سامانه بروید.".into());
            v
        }
        Template::IdentityResult => {
            if p.flag("verified") {
                vec!["هویت شما تایید شد؛ ثبت‌نام کارت ملی را ادامه دهید.".into()]
            } else {
                vec!["اطلاعات شما با ثبت احوال همخوانی ندارد؛ آن را اصلاح کنید.".into()]
            }
        }
        Template::CardReady => {
            let mut v = Vec::new();
            if let Some(office) = p.str("office") {
                v.push(format!("کارت هوشمند ملی شما آماده تحویل است: {office}"));
            }
            v.push("کارت هوشمند ملی شما آماده تحویل است.".into());
            v
        }
        Template::CardUncollected => {
            let days = p.count("days").unwrap_or_else(|| p.digits("30"));
            let mut v = Vec::new();
            if let Some(office) = p.str("office") {
                v.push(format!("کارت ملی شما {days} روز است در {office} منتظر دریافت است."));
            }
            v.push(format!("کارت هوشمند ملی شما {days} روز است آماده تحویل است؛ آن را دریافت کنید."));
            v
        }
        Template::TrackingCodeRecovery => vec![format!("کد رهگیری کارت هوشمند ملی شما: {}", p.tracking_code()?)],
        Template::EfolderCredentials => {
            let (user, password) = (p.need("username")?, p.need("password")?);
            vec![format!("کارپوشه ملی\nنام کاربری: {user}\nکلمه عبور: {password}")]
        }
        Template::EfolderResetCode => vec![format!("کد بازیابی کلمه عبور کارپوشه: {}", p.need("code")?)],
        Template::HomeVisitScheduled => {
            let when = p.when().ok_or(p.missing("date_jalali"))?;
            let mut v = Vec::new();
            if let Some(tc) = p.opt_tracking_code() {
                v.push(format!("کارت ملی: {when} به منزلتان می‌آییم. رهگیری {tc}"));
            }
            v.push(format!("کارت ملی: {when} برای تکمیل ثبت‌نام به منزلتان می‌آییم."));
            v
        }
        Template::OfficeClosed => {
            let mut v = Vec::new();
            if let (Some(when), Some(until)) = (p.when(), p.date("until_jalali")) {
                v.push(format!("دفتر تعطیل شد؛ نوبت {when} تا {until} برایتان نگه داشته شد"));
            }
            v.push("دفتر روز نوبت کارت ملی تعطیل است؛ بدون محرومیت نوبت تازه بگیرید.".into());
            v
        }
        Template::Withdrawal => {
            if p.flag("refund") {
                vec!["انصراف ثبت شد؛ هزینه کارت ملی به حساب شبای شما بازگردانده می‌شود.".into()]
            } else {
                vec!["انصراف شما ثبت شد و درخواست کارت ملی بسته شد.".into()]
            }
        }
        Template::RefundSettled => match (p.str("method"), p.str("bank_reference")) {
            (Some("transfer"), Some(reference)) => vec![
                format!("هزینه کارت ملی به حساب شبای شما واریز شد. پیگیری: {reference}"),
                "هزینه کارت ملی به حساب شبای شما واریز شد.".into(),
            ],
            (Some("transfer"), None) => vec!["هزینه کارت ملی به حساب شبای شما واریز شد.".into()],
            _ => vec!["هزینه کارت ملی به کارت پرداخت‌کننده بازگشت.".into()],
        },
    })
}

fn en(template: Template, p: &Params<'_>) -> Result<Vec<String>, RenderError> {
    Ok(match template {
        Template::Registration => {
            let tc = p.tracking_code()?;
            let mut v = Vec::new();
            if let Some(when) = p.when() {
                v.push(format!("Smart ID card registration done. Tracking code: {tc}. Appointment: {when}"));
            }
            v.push(format!("Smart ID card registration done. Tracking code: {tc}"));
            v
        }
        Template::PaymentResult => {
            if p.flag("success") {
                match p.opt_tracking_code() {
                    Some(tc) => vec![format!("Smart ID card fee paid. Tracking code: {tc}")],
                    None => vec!["Smart ID card fee paid.".into()],
                }
            } else if p.flag("refund") {
                vec!["Payment not confirmed; any amount taken is refunded within 72 hours.".into()]
            } else {
                vec!["Smart ID card payment failed; your appointment was released.".into()]
            }
        }
        Template::Booking => {
            let when = p.when().ok_or(p.missing("date_jalali"))?;
            let mut v = Vec::new();
            if let Some(office) = p.str("office") {
                v.push(match p.opt_tracking_code() {
                    Some(tc) => format!("Smart ID card appointment: {when}, {office}. Tracking code: {tc}"),
                    None => format!("Smart ID card appointment: {when}, {office}"),
                });
            }
            v.push(format!("Smart ID card appointment: {when}"));
            v
        }
        Template::Reminder => {
            let when = p.when().ok_or(p.missing("date_jalali"))?;
            let mut v = Vec::new();
            if let Some(office) = p.str("office") {
                v.push(format!("Reminder: your smart ID card appointment is tomorrow, {when}, {office}"));
            }
            v.push(format!("Reminder: your smart ID card appointment is tomorrow, {when}"));
            v
        }
        Template::NoShow => match p.date("ban_until_jalali") {
            Some(until) => vec![format!("You missed your smart ID card appointment. You can book again from {until}.")],
            None => vec!["You missed your smart ID card appointment; book a new one on the portal.".into()],
        },
        Template::IdentityResult => {
            if p.flag("verified") {
                vec!["Your identity was confirmed; continue your smart ID card registration.".into()]
            } else {
                vec!["Your details do not match the civil registry; please correct them.".into()]
            }
        }
        Template::CardReady => match p.str("office") {
            Some(office) => vec![format!("Your smart ID card is ready for collection at {office}.")],
            None => vec!["Your smart ID card is ready for collection.".into()],
        },
        Template::CardUncollected => {
            let days = p.count("days").unwrap_or_else(|| "30".into());
            let mut v = Vec::new();
            if let Some(office) = p.str("office") {
                v.push(format!("Your smart ID card has waited {days} days for collection at {office}."));
            }
            v.push(format!("Your smart ID card has waited {days} days for collection."));
            v
        }
        Template::TrackingCodeRecovery => {
            vec![format!("Your smart ID card tracking code: {}", p.tracking_code()?)]
        }
        Template::EfolderCredentials => {
            let (user, password) = (p.need("username")?, p.need("password")?);
            vec![format!("National e-folder\nUsername: {user}\nPassword: {password}")]
        }
        Template::EfolderResetCode => vec![format!("National e-folder password reset code: {}", p.need("code")?)],
        Template::HomeVisitScheduled => {
            let when = p.when().ok_or(p.missing("date_jalali"))?;
            match p.opt_tracking_code() {
                Some(tc) => vec![format!(
                    "Smart ID card: we will visit you at home on {when} to complete your enrollment. Tracking code: {tc}"
                )],
                None => {
                    vec![format!("Smart ID card: we will visit you at home on {when} to complete your enrollment.")]
                }
            }
        }
        Template::OfficeClosed => match (p.when(), p.date("until_jalali")) {
            (Some(when), Some(until)) => vec![format!(
                "The office is closed on your smart ID card appointment day; {when} is kept for you until {until}. No ban applies."
            )],
            _ => vec![
                "The office is closed on your smart ID card appointment day; book another one. No ban applies.".into(),
            ],
        },
        Template::Withdrawal => {
            if p.flag("refund") {
                vec!["Withdrawal recorded; the smart ID card fee will be refunded to your Sheba account.".into()]
            } else {
                vec!["Withdrawal recorded; your smart ID card application is closed.".into()]
            }
        }
        Template::RefundSettled => match (p.str("method"), p.str("bank_reference")) {
            (Some("transfer"), Some(reference)) => {
                vec![format!("The smart ID card fee was transferred to your Sheba account. Reference: {reference}")]
            }
            (Some("transfer"), None) => vec!["The smart ID card fee was transferred to your Sheba account.".into()],
            _ => vec!["The smart ID card fee was returned to the card that paid it.".into()],
        },
    })
}

/// Reading a template's parameters, formatted for its language.
struct Params<'a> {
    template: &'static str,
    value: &'a Value,
    lang: Lang,
}

impl Params<'_> {
    fn missing(&self, param: &'static str) -> RenderError {
        RenderError { template: self.template, param }
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.value.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
    }

    fn need(&self, key: &'static str) -> Result<&str, RenderError> {
        self.str(key).ok_or(self.missing(key))
    }

    /// A whole number, in the language's digits.
    fn count(&self, key: &str) -> Option<String> {
        self.value.get(key).and_then(Value::as_i64).map(|n| self.digits(&n.to_string()))
    }

    fn flag(&self, key: &str) -> bool {
        self.value.get(key).and_then(Value::as_bool).unwrap_or(false)
    }

    fn digits(&self, s: &str) -> String {
        match self.lang {
            Lang::Fa => persian_digits(s),
            Lang::En => s.to_owned(),
        }
    }

    fn opt_tracking_code(&self) -> Option<String> {
        self.str("tracking_code").filter(|s| s.bytes().all(|b| b.is_ascii_digit())).map(|s| self.digits(s))
    }

    fn tracking_code(&self) -> Result<String, RenderError> {
        self.opt_tracking_code().ok_or(self.missing("tracking_code"))
    }

    /// `1405-09-10` → `۱۴۰۵/۰۹/۱۰`.
    fn date(&self, key: &str) -> Option<String> {
        let d = domain::calendar::JalaliDate::parse(self.str(key)?).ok()?;
        Some(self.digits(&format!("{:04}/{:02}/{:02}", d.year(), d.month(), d.day())))
    }

    /// The appointment's date and shift: `۱۴۰۵/۰۹/۱۰ صبح`.
    fn when(&self) -> Option<String> {
        let date = self.date("date_jalali")?;
        let shift = self.str("shift").and_then(Shift::parse).map(|s| match self.lang {
            Lang::Fa => s.label_fa(),
            Lang::En => s.as_str(),
        });
        Some(match shift {
            Some(shift) => format!("{date} {shift}"),
            None => date,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Typical parameters of each template, as the code that queues them passes them.
    fn typical(t: Template) -> Value {
        let booking = json!({
            "office": "اداره ثبت احوال مراغه",
            "address": "مراغه - خ پاسداران - اداره ثبت احوال مراغه",
            "date_jalali": "1405-09-10",
            "shift": "morning",
            "tracking_code": "4973201675",
        });
        match t {
            Template::Registration | Template::Booking | Template::Reminder | Template::HomeVisitScheduled => booking,
            Template::PaymentResult => json!({"success": false, "refund": true}),
            Template::NoShow => json!({"ban_until_jalali": "1405-09-14"}),
            Template::IdentityResult => json!({"verified": true}),
            Template::CardReady => json!({"office": "اداره ثبت احوال مراغه", "tracking_code": "4973201675"}),
            Template::CardUncollected => json!({"office": "اداره ثبت احوال مراغه", "days": 30}),
            Template::TrackingCodeRecovery => json!({"tracking_code": "4973201675"}),
            Template::EfolderCredentials => json!({"username": "u4973201675", "password": "Xk7#pQ2m9Lr4"}),
            Template::EfolderResetCode => json!({"code": "482915"}),
            Template::OfficeClosed => json!({
                "office": "اداره ثبت احوال مراغه", "date_jalali": "1405-09-10", "shift": "afternoon",
                "until_jalali": "1405-09-07", "tracking_code": "4973201675",
            }),
            Template::Withdrawal => json!({"refund": true}),
            Template::RefundSettled => {
                json!({"method": "transfer", "bank_reference": "700000810000002", "amount": 200000})
            }
        }
    }

    #[test]
    fn every_persian_text_fits_one_sms_segment() {
        for t in Template::ALL {
            let r = render(t, Lang::Fa, &typical(t)).unwrap();
            assert!(sms_units(&r.text) <= UCS2_SEGMENT, "{t:?} is {} long: {}", sms_units(&r.text), r.text);
        }
    }

    #[test]
    fn every_english_text_fits_one_sms_segment() {
        for t in Template::ALL {
            let r = render(t, Lang::En, &typical(t)).unwrap();
            let limit = segment_limit(&r.text);
            assert!(sms_units(&r.text) <= limit, "{t:?} is {} long (limit {limit}): {}", sms_units(&r.text), r.text);
        }
    }

    #[test]
    fn the_richest_text_that_fits_is_chosen() {
        let r = render(Template::Booking, Lang::Fa, &typical(Template::Booking)).unwrap();
        assert_eq!(r.text, "نوبت کارت ملی ۱۴۰۵/۰۹/۱۰ صبح، اداره ثبت احوال مراغه. رهگیری ۴۹۷۳۲۰۱۶۷۵");
        // A long office name drops the tracking code, then the office.
        let mut long = typical(Template::Booking);
        long["office"] = json!("دفتر پیشخوان خدمات دولت الکترونیک شماره ۱۲ شهرستان مراغه");
        let r = render(Template::Booking, Lang::Fa, &long).unwrap();
        assert!(sms_units(&r.text) <= UCS2_SEGMENT, "{}", r.text);
        assert!(r.text.contains("۱۴۰۵/۰۹/۱۰"), "{}", r.text);
    }

    #[test]
    fn persian_digits_and_the_full_tracking_code() {
        let r = render(Template::TrackingCodeRecovery, Lang::Fa, &typical(Template::TrackingCodeRecovery)).unwrap();
        assert_eq!(r.text, "کد رهگیری کارت هوشمند ملی شما: ۴۹۷۳۲۰۱۶۷۵");
        let r = render(Template::Reminder, Lang::Fa, &typical(Template::Reminder)).unwrap();
        assert_eq!(r.text, "یادآوری: نوبت کارت ملی فردا ۱۴۰۵/۰۹/۱۰ صبح، اداره ثبت احوال مراغه");
        let r = render(Template::TrackingCodeRecovery, Lang::En, &typical(Template::TrackingCodeRecovery)).unwrap();
        assert_eq!(r.text, "Your smart ID card tracking code: 4973201675");
    }

    #[test]
    fn credentials_and_codes_stay_as_typed() {
        let r = render(Template::EfolderCredentials, Lang::Fa, &typical(Template::EfolderCredentials)).unwrap();
        assert!(r.text.contains("u4973201675") && r.text.contains("Xk7#pQ2m9Lr4"), "{}", r.text);
        let r = render(Template::EfolderResetCode, Lang::Fa, &typical(Template::EfolderResetCode)).unwrap();
        assert!(r.text.ends_with("482915"), "{}", r.text);
    }

    #[test]
    fn the_national_code_never_appears() {
        for t in Template::ALL {
            let mut params = typical(t);
            params["national_id"] = json!("2580200606");
            for lang in [Lang::Fa, Lang::En] {
                let r = render(t, lang, &params).unwrap();
                assert!(!r.text.contains("2580200606") && !r.text.contains("۲۵۸۰۲۰۰۶۰۶"), "{t:?}: {}", r.text);
            }
        }
    }

    #[test]
    fn missing_parameters_are_errors() {
        assert_eq!(
            render(Template::TrackingCodeRecovery, Lang::Fa, &json!({})),
            Err(RenderError { template: "tracking_code_recovery", param: "tracking_code" })
        );
        assert!(render(Template::Booking, Lang::Fa, &json!({"office": "x"})).is_err());
        assert!(render(Template::EfolderCredentials, Lang::Fa, &json!({"username": "u"})).is_err());
    }

    /// Issue 19: the closure, withdrawal and refund texts say what happened and what the
    /// citizen keeps; each fits one SMS in every variant it may choose.
    #[test]
    fn closure_withdrawal_and_refund_texts() {
        let r = render(Template::OfficeClosed, Lang::Fa, &typical(Template::OfficeClosed)).unwrap();
        assert!(r.text.contains("۱۴۰۵/۰۹/۱۰ عصر") && r.text.contains("تا ۱۴۰۵/۰۹/۰۷"), "{}", r.text);
        let r = render(Template::OfficeClosed, Lang::Fa, &json!({})).unwrap();
        assert_eq!(r.text, "دفتر روز نوبت کارت ملی تعطیل است؛ بدون محرومیت نوبت تازه بگیرید.");
        assert!(sms_units(&r.text) <= UCS2_SEGMENT);
        let r = render(Template::Withdrawal, Lang::Fa, &json!({"refund": false})).unwrap();
        assert_eq!(r.text, "انصراف شما ثبت شد و درخواست کارت ملی بسته شد.");
        let r = render(Template::RefundSettled, Lang::Fa, &typical(Template::RefundSettled)).unwrap();
        assert!(r.text.ends_with("700000810000002"), "{}", r.text);
        let r = render(Template::RefundSettled, Lang::Fa, &json!({"method": "reversal"})).unwrap();
        assert_eq!(r.text, "هزینه کارت ملی به کارت پرداخت‌کننده بازگشت.");
        for (t, params) in [
            (Template::Withdrawal, json!({"refund": true})),
            (Template::RefundSettled, json!({"method": "transfer", "bank_reference": "R".repeat(40)})),
            (Template::RefundSettled, json!({"method": "transfer"})),
        ] {
            let r = render(t, Lang::Fa, &params).unwrap();
            assert!(sms_units(&r.text) <= UCS2_SEGMENT, "{t:?}: {}", r.text);
        }
    }

    #[test]
    fn a_scheduled_home_visit_says_we_will_visit_on_the_date() {
        let r = render(Template::HomeVisitScheduled, Lang::Fa, &typical(Template::HomeVisitScheduled)).unwrap();
        assert_eq!(r.text, "کارت ملی: ۱۴۰۵/۰۹/۱۰ صبح به منزلتان می‌آییم. رهگیری ۴۹۷۳۲۰۱۶۷۵");
        let r = render(Template::HomeVisitScheduled, Lang::En, &typical(Template::HomeVisitScheduled)).unwrap();
        assert!(r.text.contains("we will visit you at home on 1405/09/10 morning"), "{}", r.text);
    }

    #[test]
    fn registration_with_and_without_a_booking() {
        let paid_only = json!({"tracking_code": "4973201675", "amount": 200000, "reference": "R1"});
        let r = render(Template::Registration, Lang::Fa, &paid_only).unwrap();
        assert_eq!(r.text, "ثبت‌نام کارت ملی انجام شد. کد رهگیری: ۴۹۷۳۲۰۱۶۷۵");
        let r = render(Template::Registration, Lang::Fa, &typical(Template::Registration)).unwrap();
        assert!(r.text.contains("نوبت: ۱۴۰۵/۰۹/۱۰ صبح"), "{}", r.text);
        assert_eq!(r.subject, "سامانه کارت هوشمند ملی");
    }
}
