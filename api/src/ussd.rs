//! The `*4*6090#` USSD menu (docs/domain/public.md) as pure functions: applications
//! registered with the caller's mobile, then the chosen one's status, next step,
//! appointment and delivery. Stateless: the gateway resends everything typed so far
//! (`text = "2*0"`), so the position is replayed from it on every request.
//!
//! Every screen — the `CON `/`END ` prefix included — is at most [`MAX_SCREEN`]
//! characters; longer content is split into pages: `0` shows more, `00` goes back.

use domain::Lang;
use domain::application::{Application, AppointmentStatus, State};
use domain::calendar::{JalaliDate, tehran_date};
use domain::text::persian_digits;

/// The longest screen, in characters (not bytes: Persian letters are two bytes each).
pub const MAX_SCREEN: usize = 80;
const PREFIX: usize = 4; // "CON " or "END "
const MORE: &str = "0";
const BACK: &str = "00";

/// The gateway's reply: continue the session with a menu, or end it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Con(String),
    End(String),
}

impl Reply {
    /// The body the gateway expects (`CON …` / `END …`).
    pub fn render(&self) -> String {
        match self {
            Reply::Con(s) => format!("CON {s}"),
            Reply::End(s) => format!("END {s}"),
        }
    }
}

/// One application as the menu shows it: a label for the list and its detail lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub label: String,
    pub lines: Vec<String>,
}

/// What the menu needs to know about an application (no national code, ever).
pub struct Facts<'a> {
    pub app: &'a Application,
    pub first_name: Option<&'a str>,
    /// The enrollment office's name, when the application has a seat.
    pub slot_office: Option<&'a str>,
    /// The delivery office's name.
    pub delivery_office: Option<&'a str>,
}

fn t(lang: Lang, fa: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Fa => fa,
        Lang::En => en,
    }
}

/// Digits as the caller reads them: Persian digits in Persian.
fn digits(lang: Lang, s: &str) -> String {
    match lang {
        Lang::Fa => persian_digits(s),
        Lang::En => s.to_owned(),
    }
}

/// A date in the Jalali calendar, `۱۴۰۵/۰۹/۰۳`.
fn jalali(lang: Lang, date: chrono::NaiveDate) -> String {
    let s = JalaliDate::from_gregorian(date).map(|d| d.to_string().replace('-', "/")).unwrap_or_default();
    digits(lang, &s)
}

/// Builds the menu entry of one application from live data.
pub fn entry(facts: &Facts<'_>, now: chrono::DateTime<chrono::Utc>, policy: &domain::Policy, lang: Lang) -> Entry {
    let app = facts.app;
    let mut label =
        facts.first_name.map(|n| truncate(n, 16)).unwrap_or_else(|| t(lang, "درخواست", "Application").into());
    // The tracking code's last four digits tell a mother's applications apart; the rest stays private.
    if let Some(code) = &app.tracking_code {
        let tail: String = code.as_str().chars().skip(6).collect();
        label.push_str(&format!(" ({})", digits(lang, &tail)));
    }

    let mut lines = vec![label.clone(), format!("{} {}", t(lang, "وضعیت:", "Status:"), app.state.describe(lang))];
    lines.push(domain::application::next_step_text(Some(app), now, lang));
    if let Some(slot) = &app.slot {
        let shift = match lang {
            Lang::Fa => slot.shift.label_fa(),
            Lang::En => slot.shift.as_str(),
        };
        let when = format!("{} {} {}", t(lang, "نوبت:", "Appointment:"), jalali(lang, slot.date), shift);
        match app.appointment {
            AppointmentStatus::Held | AppointmentStatus::Booked => lines.push(when),
            AppointmentStatus::Missed => lines.push(format!("{when} {}", t(lang, "(مراجعه نشد)", "(missed)"))),
            // Kept after a closure until the citizen books it (issue 19).
            AppointmentStatus::Offered => lines.push(format!("{when} {}", t(lang, "(پیشنهادی)", "(offered)"))),
            AppointmentStatus::None | AppointmentStatus::Used => {}
        }
        if matches!(
            app.appointment,
            AppointmentStatus::Held
                | AppointmentStatus::Booked
                | AppointmentStatus::Missed
                | AppointmentStatus::Offered
        ) && let Some(office) = facts.slot_office
        {
            lines.push(format!("{} {office}", t(lang, "دفتر:", "Office:")));
        }
    }
    if let Some(until) = app.no_show_ban_until.filter(|u| *u >= tehran_date(now)) {
        lines.push(format!("{} {}", t(lang, "نوبت‌گیری مجدد پس از", "Can book again after"), jalali(lang, until)));
    }
    if let Some(deadline) = app.booking_deadline(policy) {
        lines.push(format!("{} {}", t(lang, "مهلت نوبت‌گیری:", "Book before:"), jalali(lang, tehran_date(deadline))));
    }
    if app.state.card_under_way()
        && let Some(office) = facts.delivery_office
    {
        let what = if app.state == State::ReadyForDelivery {
            t(lang, "آماده تحویل در:", "Ready at:")
        } else {
            t(lang, "محل تحویل کارت:", "Card delivered at:")
        };
        lines.push(format!("{what} {office}"));
    }
    Entry { label, lines }
}

/// Where the caller is in the menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    List {
        page: usize,
    },
    /// `from_list`: the list page to go back to (none when there is only one application).
    Detail {
        app: usize,
        page: usize,
        from_list: Option<usize>,
    },
}

/// The reply to everything typed so far (`text`, `*`-separated) for these applications.
pub fn respond(entries: &[Entry], text: &str, lang: Lang) -> Reply {
    if entries.is_empty() {
        return Reply::End(
            t(lang, "برای این شماره همراه درخواستی ثبت نشده است.", "No application uses this mobile number.").into(),
        );
    }
    let list_pages = list_pages(entries, lang);
    let details: Vec<Vec<Vec<String>>> = entries.iter().map(|e| paginate(&e.lines, lang, entries.len() > 1)).collect();
    let mut pos = if entries.len() == 1 {
        Position::Detail { app: 0, page: 0, from_list: None }
    } else {
        Position::List { page: 0 }
    };
    for token in text.split('*').map(|s| domain::text::ascii_digits(s.trim())).filter(|s| !s.is_empty()) {
        // An option that does not exist here is ignored: the same screen is shown again.
        pos = match pos {
            Position::List { page } if token == MORE && page + 1 < list_pages.len() => {
                Position::List { page: page + 1 }
            }
            Position::List { page } if token == BACK && page > 0 => Position::List { page: page - 1 },
            Position::List { page } => match token.parse::<usize>() {
                Ok(n) if (1..=entries.len()).contains(&n) => {
                    Position::Detail { app: n - 1, page: 0, from_list: Some(page) }
                }
                _ => pos,
            },
            Position::Detail { app, page, from_list } if token == MORE && page + 1 < details[app].len() => {
                Position::Detail { app, page: page + 1, from_list }
            }
            Position::Detail { app, page, from_list } if token == BACK && page > 0 => {
                Position::Detail { app, page: page - 1, from_list }
            }
            Position::Detail { page: 0, from_list: Some(list), .. } if token == BACK => Position::List { page: list },
            Position::Detail { .. } => pos,
        };
    }
    match pos {
        Position::List { page } => Reply::Con(list_pages[page].clone()),
        Position::Detail { app, page, from_list } => {
            let pages = &details[app];
            let screen = pages[page].join("\n");
            let can_move = page + 1 < pages.len() || page > 0 || from_list.is_some();
            if can_move { Reply::Con(screen) } else { Reply::End(screen) }
        }
    }
}

/// The footer of a page: `0` for more, `00` for back.
fn footer(lang: Lang, more: bool, back: bool) -> Option<String> {
    let more = more.then(|| format!("{} {}", digits(lang, MORE), t(lang, "بیشتر", "more")));
    let back = back.then(|| format!("{} {}", digits(lang, BACK), t(lang, "بازگشت", "back")));
    match (more, back) {
        (Some(m), Some(b)) => Some(format!("{m} | {b}")),
        (m, b) => m.or(b),
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn fits(lines: &[String]) -> bool {
    PREFIX + chars(&lines.join("\n")) <= MAX_SCREEN
}

/// The list of applications, split into pages, numbered across pages.
fn list_pages(entries: &[Entry], lang: Lang) -> Vec<String> {
    let header = t(lang, "درخواست‌های این شماره:", "Applications on this number:");
    let items: Vec<String> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{}. {}", digits(lang, &(i + 1).to_string()), e.label))
        .collect();
    let mut pages = Vec::new();
    let mut start = 0;
    while start < items.len() {
        let page_no = pages.len();
        let mut take = 1;
        // Take as many items as fit together with the header and footer.
        while start + take < items.len() {
            let candidate =
                page_lines(header, &items[start..start + take + 1], lang, start + take + 1 < items.len(), page_no > 0);
            if !fits(&candidate) {
                break;
            }
            take += 1;
        }
        let lines = page_lines(header, &items[start..start + take], lang, start + take < items.len(), page_no > 0);
        pages.push(lines.join("\n"));
        start += take;
    }
    pages
}

fn page_lines(header: &str, items: &[String], lang: Lang, more: bool, back: bool) -> Vec<String> {
    let mut lines = vec![header.to_owned()];
    lines.extend(items.iter().cloned());
    lines.extend(footer(lang, more, back));
    lines
}

/// Splits detail lines into screens. `back_to_list`: the first page offers `00` too.
fn paginate(lines: &[String], lang: Lang, back_to_list: bool) -> Vec<Vec<String>> {
    // Lines are wrapped to fit beside the widest footer, so any piece fits on any page.
    let widest = footer(lang, true, true).map_or(0, |f| chars(&f) + 1);
    let pieces: Vec<String> = lines.iter().flat_map(|l| wrap(l, MAX_SCREEN - PREFIX - widest)).collect();
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut rest = &pieces[..];
    while !rest.is_empty() {
        let back = !pages.is_empty() || back_to_list;
        // The last page: everything left fits with the footer it will have.
        let last = page_with(rest, footer(lang, false, back));
        if fits(&last) {
            pages.push(last);
            break;
        }
        // Otherwise as many pieces as fit beside a "more" footer (at least one).
        let more = footer(lang, true, back);
        let take = (1..=rest.len()).take_while(|&n| fits(&page_with(&rest[..n], more.clone()))).last().unwrap_or(1);
        pages.push(page_with(&rest[..take], more));
        rest = &rest[take..];
    }
    pages
}

fn page_with(pieces: &[String], footer: Option<String>) -> Vec<String> {
    pieces.iter().cloned().chain(footer).collect()
}

/// Breaks a line into pieces of at most `width` characters, at spaces where possible.
fn wrap(line: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for word in line.split(' ') {
        let word = truncate(word, width);
        let needed = chars(&current) + usize::from(!current.is_empty()) + chars(&word);
        if !current.is_empty() && needed > width {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&word);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn truncate(s: &str, width: usize) -> String {
    if chars(s) <= width { s.to_owned() } else { s.chars().take(width.saturating_sub(1)).chain(['…']).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_with(label: &str, n_lines: usize) -> Entry {
        // As `entry` builds them: the label heads the detail.
        let mut lines = vec![label.to_owned()];
        lines.extend((1..n_lines).map(|i| format!("سطر شماره {i} با متنی نسبتا بلند برای آزمودن صفحه‌بندی")));
        Entry { label: label.into(), lines }
    }

    fn screen(r: &Reply) -> String {
        r.render()
    }

    #[test]
    fn every_screen_fits_and_pages_chain() {
        let entries: Vec<Entry> = (0..7).map(|i| entry_with(&format!("نام شماره {i}"), 6)).collect();
        let mut inputs = vec![String::new()];
        for a in 1..=7 {
            for more in 0..6 {
                let mut path = vec![a.to_string()];
                path.extend(std::iter::repeat_n("0".to_owned(), more));
                inputs.push(path.join("*"));
                inputs.push(format!("{}*00", path.join("*")));
            }
        }
        inputs.extend(["0", "0*0", "0*0*00", "0*00", "x*1"].map(String::from));
        for text in inputs {
            let r = respond(&entries, &text, Lang::Fa);
            let s = screen(&r);
            assert!(s.chars().count() <= MAX_SCREEN, "{text:?} → {} chars: {s}", s.chars().count());
            let r = respond(&entries, &text, Lang::En);
            assert!(screen(&r).chars().count() <= MAX_SCREEN, "{text:?}: {}", screen(&r));
        }
    }

    #[test]
    fn the_list_numbers_across_pages_and_back_returns() {
        let entries: Vec<Entry> = (0..7).map(|i| entry_with(&format!("نام{i}"), 1)).collect();
        let first = respond(&entries, "", Lang::Fa);
        assert!(matches!(first, Reply::Con(_)));
        let second = respond(&entries, "0", Lang::Fa);
        assert_ne!(first, second, "0 shows the next page");
        assert_eq!(respond(&entries, "0*00", Lang::Fa), first, "00 goes back");
        // Choosing 7 from the first page works (numbers are global) and 00 returns to the list.
        let detail = respond(&entries, "7", Lang::Fa);
        assert!(screen(&detail).contains("نام6"), "{detail:?}");
        assert_eq!(respond(&entries, "7*00", Lang::Fa), first);
        assert_eq!(respond(&entries, "0*00*7*00", Lang::Fa), first);
        // Unknown options leave the screen as it was.
        assert_eq!(respond(&entries, "9", Lang::Fa), first);
        assert_eq!(respond(&entries, "۰", Lang::Fa), second, "Persian digits are accepted");
    }

    #[test]
    fn a_single_short_application_ends_the_session() {
        let entries = vec![entry_with("مریم", 1)];
        assert!(matches!(respond(&entries, "", Lang::Fa), Reply::End(_)));
        assert!(matches!(respond(&[], "", Lang::Fa), Reply::End(_)));
    }

    #[test]
    fn long_lines_are_wrapped_not_cut() {
        let long = "کلمه ".repeat(40);
        let pieces = wrap(long.trim(), 30);
        assert!(pieces.iter().all(|p| p.chars().count() <= 30));
        assert_eq!(pieces.join(" "), long.trim());
    }
}
