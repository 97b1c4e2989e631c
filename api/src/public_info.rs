//! The public information pages (docs/domain/public.md «آگاهی از فرایند» and «شرایط ثبت نام»): the
//! texts live in `api/data/public/*.json`, in Persian and English, and are parsed once.
//! Numbers that configuration or the tariff decide are placeholders (`{card_fee}`, …)
//! filled at request time, so the texts never disagree with the rules applied.

use std::sync::LazyLock;

use domain::Lang;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The USSD service code citizens dial (docs/domain/public.md).
pub const USSD_CODE: &str = "*4*6090#";

/// One step of a process, explained briefly.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[schema(example = "پرداخت")]
    pub title: String,
    #[schema(example = "هزینه صدور کارت (۲۰۰٬۰۰۰ ریال) را با کارت بانکی عضو شتاب و رمز دوم بپردازید.")]
    pub text: String,
}

/// One tab of «آگاهی از فرایند»: registration, production or delivery.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tab {
    #[schema(value_type = crate::wire::TabId, example = "registration")]
    pub id: String,
    #[schema(example = "ثبت نام")]
    pub title: String,
    pub steps: Vec<Step>,
}

/// A section of «شرایط ثبت نام».
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Section {
    #[schema(value_type = crate::wire::SectionId, example = "documents")]
    pub id: String,
    #[schema(example = "مدارک لازم هنگام مراجعه")]
    pub title: String,
    #[schema(example = json!(["اصل شناسنامه عکس‌دار معتبر (اگر شناسنامه را عوض کرده‌اید، شناسنامه جدید)."]))]
    pub items: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessText {
    pub title: String,
    pub summary: String,
    pub tabs: Vec<Tab>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionsText {
    pub title: String,
    pub summary: String,
    pub sections: Vec<Section>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Bilingual<T> {
    fa: T,
    en: T,
}

impl<T> Bilingual<T> {
    fn get(&self, lang: Lang) -> &T {
        match lang {
            Lang::Fa => &self.fa,
            Lang::En => &self.en,
        }
    }
}

static PROCESS: LazyLock<Bilingual<ProcessText>> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../data/public/process-info.json"))
        .expect("api/data/public/process-info.json is valid (checked by a unit test)")
});

static CONDITIONS: LazyLock<Bilingual<ConditionsText>> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../data/public/registration-conditions.json"))
        .expect("api/data/public/registration-conditions.json is valid (checked by a unit test)")
});

/// The values the placeholders stand for.
#[derive(Debug, Clone)]
pub struct Values {
    pub card_fee: i64,
    pub counter_fee_max: i64,
    pub delivery_fee: i64,
    pub min_age_years: u32,
    pub personal_info_edits: u8,
    pub booking_window_months: u32,
    pub no_show_ban_days: u32,
    pub hold_minutes: i64,
}

impl Values {
    fn pairs(&self, lang: Lang) -> Vec<(&'static str, String)> {
        let number = |n: String| match lang {
            // Persian digits with the Arabic thousands separator, as Persian text is read.
            Lang::Fa => domain::text::persian_digits(&n).replace(',', "٬"),
            Lang::En => n,
        };
        let rials = |v: i64| number(domain::Rials::new(v).map(|r| r.grouped()).unwrap_or_else(|_| v.to_string()));
        vec![
            ("card_fee", rials(self.card_fee)),
            ("counter_fee_max", rials(self.counter_fee_max)),
            ("delivery_fee", rials(self.delivery_fee)),
            ("min_age_years", number(self.min_age_years.to_string())),
            ("personal_info_edits", number(self.personal_info_edits.to_string())),
            ("booking_window_months", number(self.booking_window_months.to_string())),
            ("no_show_ban_days", number(self.no_show_ban_days.to_string())),
            ("hold_minutes", number(self.hold_minutes.to_string())),
            // Left to right inside Persian text, so `*4*6090#` is not reordered.
            ("ussd_code", if lang == Lang::Fa { format!("\u{2066}{USSD_CODE}\u{2069}") } else { USSD_CODE.to_owned() }),
        ]
    }
}

fn fill(text: &str, pairs: &[(&'static str, String)]) -> String {
    pairs.iter().fold(text.to_owned(), |acc, (key, value)| acc.replace(&format!("{{{key}}}"), value))
}

/// «آگاهی از فرایند» in a language, placeholders filled.
pub fn process(lang: Lang, values: &Values) -> ProcessText {
    let pairs = values.pairs(lang);
    let src = PROCESS.get(lang);
    ProcessText {
        title: fill(&src.title, &pairs),
        summary: fill(&src.summary, &pairs),
        tabs: src
            .tabs
            .iter()
            .map(|tab| Tab {
                id: tab.id.clone(),
                title: fill(&tab.title, &pairs),
                steps: tab
                    .steps
                    .iter()
                    .map(|s| Step { title: fill(&s.title, &pairs), text: fill(&s.text, &pairs) })
                    .collect(),
            })
            .collect(),
    }
}

/// «شرایط ثبت نام» in a language, placeholders filled.
pub fn conditions(lang: Lang, values: &Values) -> ConditionsText {
    let pairs = values.pairs(lang);
    let src = CONDITIONS.get(lang);
    ConditionsText {
        title: fill(&src.title, &pairs),
        summary: fill(&src.summary, &pairs),
        sections: src
            .sections
            .iter()
            .map(|s| Section {
                id: s.id.clone(),
                title: fill(&s.title, &pairs),
                items: s.items.iter().map(|i| fill(i, &pairs)).collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        Values {
            card_fee: 200_000,
            counter_fee_max: 90_000,
            delivery_fee: 20_000,
            min_age_years: 15,
            personal_info_edits: 3,
            booking_window_months: 2,
            no_show_ban_days: 4,
            hold_minutes: 15,
        }
    }

    fn all_text(lang: Lang) -> String {
        let p = process(lang, &values());
        let c = conditions(lang, &values());
        let mut out = vec![p.title, p.summary, c.title, c.summary];
        for tab in p.tabs {
            out.push(tab.title);
            out.extend(tab.steps.into_iter().flat_map(|s| [s.title, s.text]));
        }
        for s in c.sections {
            out.push(s.title);
            out.extend(s.items);
        }
        out.join("\n")
    }

    #[test]
    fn the_data_files_parse_and_every_placeholder_is_known() {
        for lang in [Lang::Fa, Lang::En] {
            let text = all_text(lang);
            assert!(!text.contains('{') && !text.contains('}'), "an unknown placeholder is left in:\n{text}");
            let p = process(lang, &values());
            let ids: Vec<&str> = p.tabs.iter().map(|t| t.id.as_str()).collect();
            assert_eq!(ids, ["registration", "production", "delivery"]);
        }
        let fa = all_text(Lang::Fa);
        assert!(fa.contains("۲۰۰٬۰۰۰ ریال") && fa.contains("۹۰٬۰۰۰") && fa.contains("۴ روز"), "{fa}");
        let en = all_text(Lang::En);
        assert!(en.contains("200,000 rials") && en.contains("for 4 days") && en.contains("*4*6090#"), "{en}");
    }

    #[test]
    fn both_languages_have_the_same_shape() {
        let (fa, en) = (process(Lang::Fa, &values()), process(Lang::En, &values()));
        for (a, b) in fa.tabs.iter().zip(&en.tabs) {
            assert_eq!((&a.id, a.steps.len()), (&b.id, b.steps.len()));
        }
        let (fa, en) = (conditions(Lang::Fa, &values()), conditions(Lang::En, &values()));
        for (a, b) in fa.sections.iter().zip(&en.sections) {
            assert_eq!((&a.id, a.items.len()), (&b.id, b.items.len()));
        }
    }
}
