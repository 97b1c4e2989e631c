//! The printed receipts' layout and renderers: a [`Sheet`] of labelled values drawn as a
//! right-to-left HTML page ([`html`]) or a PDF ([`pdf`]), each with the QR code of its signed
//! verification link. Plain strings in, text or bytes out: what the receipt says (and who
//! may see it) is decided by the server (`api::receipt`); this crate knows no database,
//! no HTTP and no actix-web.

pub mod html;
pub mod pdf;

/// The fonts the receipt is set in (OFL, `receipt/assets/fonts`), shared by the PDF renderer
/// and the `/assets/fonts/{name}` route the HTML page loads them from.
pub static REGULAR_TTF: &[u8] = include_bytes!("../assets/fonts/Vazirmatn-Regular.ttf");
pub static BOLD_TTF: &[u8] = include_bytes!("../assets/fonts/Vazirmatn-Bold.ttf");

/// A shipped font by file name.
pub fn font(name: &str) -> Option<&'static [u8]> {
    match name {
        "Vazirmatn-Regular.ttf" => Some(REGULAR_TTF),
        "Vazirmatn-Bold.ttf" => Some(BOLD_TTF),
        _ => None,
    }
}

/// «نتیجه ثبت نام کارت هوشمند ملی», the seed receipt's title.
pub const TITLE: &str = "نتیجه ثبت نام کارت هوشمند ملی";

/// Everything a printed receipt shows, already formatted for people. Values hold ASCII
/// digits; the HTML and PDF renderers write them with Persian digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptDoc {
    /// «نتیجه ثبت نام کارت هوشمند ملی»
    pub title: String,
    pub national_id: String,
    pub tracking_code: String,
    pub serial: String,
    /// e.g. `1369/03/19`
    pub birth_date_jalali: String,
    /// e.g. `15 ذیقعده 1410`
    pub birth_date_hijri: String,
    /// «زن» / «مرد»
    pub gender: String,
    /// e.g. «اسلام»
    pub religion: String,
    pub mother_name: String,
    pub mobile: String,
    /// «دفتر تکمیل ثبت نام منتخب», or the home visit's heading.
    pub office_heading: String,
    /// «دفتر تکمیل ثبت نام»
    pub office_label: String,
    pub office_name: String,
    /// «نشانی دفتر تکمیل ثبت نام», or «نشانی محل مراجعه» for a home visit.
    pub address_label: String,
    /// e.g. «مراغه - خ پاسداران - اداره ثبت احوال مراغه»
    pub office_address: String,
    pub office_phone: String,
    /// «صبح» / «عصر»
    pub shift: String,
    /// e.g. `1405/09/05`
    pub appointment_date_jalali: String,
    /// «موفق»
    pub payment_status: String,
    pub payment_reference: String,
    pub delivery_office: String,
    /// The numbered prerequisites (bring the birth certificate…, USSD *4*6090#…).
    pub prerequisites: Vec<String>,
    /// Signed URL an office opens (or scans from the QR code) to check the receipt.
    pub verify_url: String,
    /// e.g. `1405/09/01 10:00`
    pub issued_at: String,
}

impl ReceiptDoc {
    /// The registration receipt laid out as a [`Sheet`]: personal details, the chosen
    /// office, the prerequisites.
    pub fn sheet(&self) -> Sheet {
        let f = SheetField::new;
        Sheet {
            title: self.title.clone(),
            code: self.tracking_code.clone(),
            issued_at: self.issued_at.clone(),
            sections: vec![
                SheetSection {
                    heading: "مشخصات فردی".into(),
                    fields: vec![
                        f("national-id", "شماره ملی", &self.national_id),
                        f("tracking-code", "شماره پیگیری", &self.tracking_code),
                        f("birth-date-jalali", "تاریخ تولد شمسی", &self.birth_date_jalali),
                        f("serial", "سریال شناسنامه", &self.serial),
                        f("birth-date-hijri", "تاریخ تولد قمری", &self.birth_date_hijri),
                        f("religion", "دین", &self.religion),
                        f("gender", "جنسیت", &self.gender),
                        f("mother-name", "نام مادر", &self.mother_name),
                        f("mobile", "شماره تلفن همراه", &self.mobile),
                    ],
                },
                SheetSection {
                    heading: self.office_heading.clone(),
                    fields: vec![
                        f("office-name", &self.office_label, &self.office_name).wide(),
                        f("office-address", &self.address_label, &self.office_address).wide(),
                        f("office-phone", "تلفن دفتر تکمیل ثبت نام", &self.office_phone),
                        f("shift", "شیفت کاری", &self.shift),
                        f("appointment-date", "تاریخ تکمیل ثبت نام", &self.appointment_date_jalali),
                        f("payment-status", "وضعیت پرداخت", &self.payment_status),
                        f("payment-reference", "شماره مرجع پرداخت", &self.payment_reference),
                        f("delivery-office", "دفتر تحویل کارت", &self.delivery_office),
                    ],
                },
            ],
            list_heading: "پیش نیاز تکمیل ثبت نام".into(),
            list: self.prerequisites.clone(),
            verify_url: self.verify_url.clone(),
        }
    }
}

/// One labelled value on a printed receipt; `id` is its element id on the HTML page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetField {
    pub id: &'static str,
    pub label: String,
    pub value: String,
    /// Takes a whole line (long values such as addresses); others go two to a line.
    pub wide: bool,
}

impl SheetField {
    pub fn new(id: &'static str, label: &str, value: &str) -> Self {
        SheetField { id, label: label.to_owned(), value: value.to_owned(), wide: false }
    }

    pub fn wide(mut self) -> Self {
        self.wide = true;
        self
    }
}

/// A headed group of values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetSection {
    pub heading: String,
    pub fields: Vec<SheetField>,
}

/// A printed receipt's layout, whatever the receipt (registration, enrollment): a title and
/// the time of issue beside the QR code of the signed verification link, headed sections of
/// labelled values, a numbered list, and the link in full. The HTML page and the PDF are
/// both drawn from one of these, so every receipt looks and verifies the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sheet {
    pub title: String,
    /// The code the page's `<title>` shows after the title (the tracking code).
    pub code: String,
    /// e.g. `1405/09/01 10:00`
    pub issued_at: String,
    pub sections: Vec<SheetSection>,
    pub list_heading: String,
    pub list: Vec<String>,
    pub verify_url: String,
}

/// `1369-03-19` → `1369/03/19`, as the original guide's receipt writes dates.
pub fn slashed(jalali: &str) -> String {
    jalali.replace('-', "/")
}

/// What an empty value shows.
pub const NONE_FA: &str = "—";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_fonts_are_served() {
        assert!(font("Vazirmatn-Regular.ttf").is_some_and(|f| f.len() > 10_000));
        assert!(font("Vazirmatn-Bold.ttf").is_some());
        assert!(font("../Cargo.toml").is_none());
    }
}
