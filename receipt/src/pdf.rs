//! The receipt as a PDF: A4 pages laid out right to left in the Vazirmatn font (OFL,
//! `receipt/assets/fonts`).
//!
//! krilla writes the PDF and embeds a subset of the font. Text is shaped here with rustybuzz
//! (joined Arabic-script letters, and an advance width for every glyph, so lines can be
//! measured and wrapped) and put in display order with the Unicode bidirectional algorithm
//! (unicode-bidi): every line is a right-to-left paragraph, split into level runs that are
//! shaped one by one and drawn from left to right. Numbers are written with Persian digits;
//! words without any right-to-left letter (codes such as `*۴*۶۰۹۰#`, addresses such as
//! `www.dcf.ir`) are wrapped in a left-to-right isolate so their characters keep their order.
//!
//! Layout happens first (into positioned drawing operations, page by page), drawing second.

use domain::text::persian_digits;
use krilla::Document;
use krilla::color::luma;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::{Metadata, TextDirection};
use krilla::page::PageSettings;
use krilla::paint::Fill;
use krilla::text::{Font, GlyphId, KrillaGlyph};
use qrcode::{Color, EcLevel, QrCode};
use unicode_bidi::{BidiClass, BidiInfo, Level, bidi_class};

use crate::{BOLD_TTF, REGULAR_TTF, ReceiptDoc, Sheet, SheetField};

/// A4 in PostScript points.
const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 40.0;
const CONTENT_W: f32 = PAGE_W - 2.0 * MARGIN;
const RIGHT: f32 = PAGE_W - MARGIN;

const TITLE_SIZE: f32 = 16.0;
const HEADING_SIZE: f32 = 12.0;
const BODY_SIZE: f32 = 10.5;
const SMALL_SIZE: f32 = 8.5;
/// Line height as a multiple of the font size (Arabic script needs room above and below).
const LEADING: f32 = 1.85;
const COLUMN_GAP: f32 = 18.0;
/// Side of the QR code with its quiet zone, unless that makes modules too small.
const QR_SIDE: f32 = 112.0;
/// Smallest QR module: 1.6 pt is 3.3 px at 150 dpi, enough for a phone or `zbarimg`.
const QR_MIN_MODULE: f32 = 1.6;
const QR_QUIET_MODULES: usize = 4;

const ISOLATE_LTR: char = '\u{2066}';
const POP_ISOLATE: char = '\u{2069}';

/// Renders the registration receipt as a PDF document (A4, right to left).
pub fn render_pdf(doc: &ReceiptDoc) -> Result<Vec<u8>, String> {
    render_sheet_pdf(&doc.sheet())
}

/// Renders any receipt as a PDF document (A4, right to left).
pub fn render_sheet_pdf(sheet: &Sheet) -> Result<Vec<u8>, String> {
    let fonts = Fonts::load()?;
    let pages = lay_out(sheet, &fonts)?;
    draw(sheet, &fonts, pages)
}

// ---------------------------------------------------------------------------------------
// Fonts and shaping

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Weight {
    Regular,
    Bold,
}

struct FontFace {
    shaper: rustybuzz::Face<'static>,
    pdf: Font,
    units_per_em: f32,
    /// Ascender and descender (positive), in em.
    ascent: f32,
    descent: f32,
}

impl FontFace {
    fn load(data: &'static [u8], name: &str) -> Result<Self, String> {
        let shaper = rustybuzz::Face::from_slice(data, 0).ok_or_else(|| format!("cannot read font {name}"))?;
        let pdf = Font::new(data.into(), 0).ok_or_else(|| format!("krilla cannot read font {name}"))?;
        let units_per_em = shaper.units_per_em() as f32;
        if units_per_em <= 0.0 {
            return Err(format!("font {name} has no units per em"));
        }
        let ascent = f32::from(shaper.ascender()) / units_per_em;
        let descent = -f32::from(shaper.descender()) / units_per_em;
        Ok(FontFace { shaper, pdf, units_per_em, ascent, descent })
    }
}

struct Fonts {
    regular: FontFace,
    bold: FontFace,
}

impl Fonts {
    fn load() -> Result<Self, String> {
        Ok(Fonts {
            regular: FontFace::load(REGULAR_TTF, "Vazirmatn-Regular")?,
            bold: FontFace::load(BOLD_TTF, "Vazirmatn-Bold")?,
        })
    }

    fn face(&self, weight: Weight) -> &FontFace {
        match weight {
            Weight::Regular => &self.regular,
            Weight::Bold => &self.bold,
        }
    }

    /// Shapes one directional run. The glyphs come out in visual (left-to-right) order;
    /// their text ranges index into the returned run's `text`.
    fn shape_run(&self, weight: Weight, text: String, rtl: bool) -> ShapedRun {
        let face = self.face(weight);
        let mut buffer = rustybuzz::UnicodeBuffer::new();
        buffer.push_str(&text);
        buffer.guess_segment_properties();
        buffer.set_direction(if rtl { rustybuzz::Direction::RightToLeft } else { rustybuzz::Direction::LeftToRight });
        let output = rustybuzz::shape(&face.shaper, &[], buffer);

        // A cluster covers the text from its start up to the next larger cluster start.
        let mut starts: Vec<usize> = output.glyph_infos().iter().map(|info| info.cluster as usize).collect();
        starts.sort_unstable();
        starts.dedup();
        let cluster_end = |start: usize| -> usize {
            let i = starts.partition_point(|&s| s <= start);
            starts.get(i).copied().unwrap_or(text.len())
        };

        let upem = face.units_per_em;
        let mut advance = 0.0;
        let glyphs = output
            .glyph_infos()
            .iter()
            .zip(output.glyph_positions())
            .map(|(info, pos)| {
                let start = info.cluster as usize;
                advance += pos.x_advance as f32 / upem;
                KrillaGlyph::new(
                    GlyphId::new(info.glyph_id),
                    pos.x_advance as f32 / upem,
                    pos.x_offset as f32 / upem,
                    pos.y_offset as f32 / upem,
                    pos.y_advance as f32 / upem,
                    start..cluster_end(start),
                    None,
                )
            })
            .collect();
        ShapedRun { text, glyphs, advance }
    }

    /// Shapes one line of a paragraph: bidi levels resolved with the given base direction,
    /// level runs in visual order, each run shaped in its own direction.
    fn shape_line(&self, weight: Weight, text: &str, base_rtl: bool) -> Line {
        let base = if base_rtl { Level::rtl() } else { Level::ltr() };
        let info = BidiInfo::new(text, Some(base));
        let mut runs = Vec::new();
        for para in &info.paragraphs {
            let (levels, level_runs) = info.visual_runs(para, para.range.clone());
            for range in level_runs {
                let Some(level) = levels.get(range.start).copied() else { continue };
                let visible: String = text[range].chars().filter(|&c| !is_bidi_control(c)).collect();
                if !visible.is_empty() {
                    runs.push(self.shape_run(weight, visible, level.is_rtl()));
                }
            }
        }
        let advance = runs.iter().map(|r| r.advance).sum();
        Line { weight, runs, advance }
    }

    fn width(&self, weight: Weight, size: f32, text: &str, base_rtl: bool) -> f32 {
        self.shape_line(weight, text, base_rtl).advance * size
    }

    /// Greedy word wrapping: as many space-separated words on a line as fit `max_width`.
    /// A single word wider than the line is broken between characters.
    fn wrap(&self, weight: Weight, size: f32, text: &str, max_width: f32, base_rtl: bool) -> Vec<Line> {
        let mut lines = Vec::new();
        let mut current = String::new();
        for word in text.split_whitespace() {
            let candidate = if current.is_empty() { word.to_owned() } else { format!("{current} {word}") };
            if self.width(weight, size, &candidate, base_rtl) <= max_width {
                current = candidate;
                continue;
            }
            if !current.is_empty() {
                lines.push(self.shape_line(weight, &current, base_rtl));
                current.clear();
            }
            if self.width(weight, size, word, base_rtl) <= max_width {
                current = word.to_owned();
            } else {
                let mut pieces = self.break_word(weight, size, word, max_width, base_rtl);
                current = pieces.pop().unwrap_or_default();
                lines.extend(pieces.iter().map(|p| self.shape_line(weight, p, base_rtl)));
            }
        }
        if !current.is_empty() {
            lines.push(self.shape_line(weight, &current, base_rtl));
        }
        lines
    }

    fn break_word(&self, weight: Weight, size: f32, word: &str, max_width: f32, base_rtl: bool) -> Vec<String> {
        let mut pieces = Vec::new();
        let mut current = String::new();
        for c in word.chars() {
            current.push(c);
            if current.chars().count() > 1 && self.width(weight, size, &current, base_rtl) > max_width {
                current.pop();
                pieces.push(std::mem::take(&mut current));
                current.push(c);
            }
        }
        pieces.push(current);
        pieces
    }
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Prepares text for a right-to-left line: ASCII digits become Persian digits, and every
/// space-separated word without a right-to-left letter but with a Latin letter or a digit
/// is put in a left-to-right isolate, so `*4*6090#` does not come out as `#6090*4*`.
fn persian_text(text: &str) -> String {
    let text = persian_digits(text);
    let words: Vec<String> = text
        .split(' ')
        .map(|word| {
            let has_rtl = word.chars().any(|c| matches!(bidi_class(c), BidiClass::R | BidiClass::AL));
            let has_ltr = word.chars().any(|c| matches!(bidi_class(c), BidiClass::L | BidiClass::EN));
            if has_ltr && !has_rtl { format!("{ISOLATE_LTR}{word}{POP_ISOLATE}") } else { word.to_owned() }
        })
        .collect();
    words.join(" ")
}

/// One directional run of shaped glyphs.
struct ShapedRun {
    text: String,
    glyphs: Vec<KrillaGlyph>,
    /// Width in em.
    advance: f32,
}

/// A line of text: runs in visual order (left to right).
struct Line {
    weight: Weight,
    runs: Vec<ShapedRun>,
    /// Width in em.
    advance: f32,
}

// ---------------------------------------------------------------------------------------
// Layout

enum Op {
    /// A line of text with its left end at `x` and its baseline at `baseline`.
    Text { x: f32, baseline: f32, size: f32, line: Line },
    /// A filled rectangle; `gray` 0 is black, 255 white.
    Rect { rect: Rect, gray: u8 },
}

struct Pages {
    pages: Vec<Vec<Op>>,
    /// Top of the free space on the current page.
    y: f32,
}

impl Pages {
    fn new() -> Self {
        Pages { pages: vec![Vec::new()], y: MARGIN }
    }

    /// Starts a new page unless `height` more points fit on this one.
    fn reserve(&mut self, height: f32) {
        if self.y + height > PAGE_H - MARGIN && self.y > MARGIN {
            self.pages.push(Vec::new());
            self.y = MARGIN;
        }
    }

    fn push(&mut self, op: Op) {
        if let Some(page) = self.pages.last_mut() {
            page.push(op);
        }
    }

    fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, gray: u8) -> Result<(), String> {
        let rect = Rect::from_xywh(x, y, w, h).ok_or_else(|| format!("bad rectangle {x},{y} {w}x{h}"))?;
        self.push(Op::Rect { rect, gray });
        Ok(())
    }

    /// Places a line inside a box of height `size * LEADING` whose top is `top`, with its right
    /// end at `right` (or its left end at `left` when given).
    fn text(&mut self, fonts: &Fonts, line: Line, size: f32, top: f32, right: f32, left: Option<f32>) {
        let face = fonts.face(line.weight);
        let line_height = size * LEADING;
        let glyph_height = (face.ascent + face.descent) * size;
        let baseline = top + (line_height - glyph_height) / 2.0 + face.ascent * size;
        let x = left.unwrap_or(right - line.advance * size);
        self.push(Op::Text { x, baseline, size, line });
    }
}

/// A «label: value» pair laid out in a column: the label at the right edge, the value's
/// lines to its left, each right-aligned.
struct Field {
    label: Line,
    value: Vec<Line>,
    right: f32,
    value_right: f32,
}

impl Field {
    fn new(fonts: &Fonts, label: &str, value: &str, right: f32, width: f32) -> Self {
        let label = fonts.shape_line(Weight::Bold, &persian_text(&format!("{label}:")), true);
        let label_w = label.advance * BODY_SIZE;
        let value_right = right - label_w - BODY_SIZE * 0.4;
        let value_w = (width - label_w - BODY_SIZE * 0.4).max(BODY_SIZE * 4.0);
        let value = fonts.wrap(Weight::Regular, BODY_SIZE, &persian_text(value), value_w, true);
        Field { label, value, right, value_right }
    }

    fn height(&self) -> f32 {
        self.value.len().max(1) as f32 * BODY_SIZE * LEADING
    }

    fn place(self, pages: &mut Pages, fonts: &Fonts, top: f32) {
        pages.text(fonts, self.label, BODY_SIZE, top, self.right, None);
        for (i, line) in self.value.into_iter().enumerate() {
            pages.text(fonts, line, BODY_SIZE, top + i as f32 * BODY_SIZE * LEADING, self.value_right, None);
        }
    }
}

/// Rows of one or two fields; a field with an empty value is left out.
fn field_rows(pages: &mut Pages, fonts: &Fonts, rows: &[&[(&str, &str)]]) {
    let column_w = (CONTENT_W - COLUMN_GAP) / 2.0;
    for row in rows {
        let present: Vec<&(&str, &str)> = row.iter().filter(|(_, value)| !value.trim().is_empty()).collect();
        let fields: Vec<Field> = match present.as_slice() {
            [] => continue,
            [(label, value)] if row.len() == 1 => vec![Field::new(fonts, label, value, RIGHT, CONTENT_W)],
            _ => present
                .iter()
                .enumerate()
                .map(|(i, (label, value))| {
                    Field::new(fonts, label, value, RIGHT - i as f32 * (column_w + COLUMN_GAP), column_w)
                })
                .collect(),
        };
        let height = fields.iter().map(Field::height).fold(0.0, f32::max);
        pages.reserve(height);
        let top = pages.y;
        for field in fields {
            field.place(pages, fonts, top);
        }
        pages.y += height;
    }
}

fn section_heading(pages: &mut Pages, fonts: &Fonts, heading: &str) -> Result<(), String> {
    let bar = HEADING_SIZE * LEADING;
    // Keep the heading together with at least two lines of its section.
    pages.reserve(bar + 6.0 + 2.0 * BODY_SIZE * LEADING);
    pages.y += 6.0;
    pages.rect(MARGIN, pages.y, CONTENT_W, bar, 232)?;
    pages.rect(RIGHT - 3.0, pages.y, 3.0, bar, 90)?;
    let line = fonts.shape_line(Weight::Bold, &persian_text(heading), true);
    let top = pages.y;
    pages.text(fonts, line, HEADING_SIZE, top, RIGHT - 10.0, None);
    pages.y += bar + 4.0;
    Ok(())
}

/// Draws the QR code of `url` with the top-left corner of its symbol at (`left`, `top`); the
/// quiet zone (four light modules) lies around it, inside the page margin on the top and
/// left. Returns the size of the symbol with its quiet zone on the right and bottom.
fn qr_code(pages: &mut Pages, url: &str, left: f32, top: f32) -> Result<f32, String> {
    let code = QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M)
        .map_err(|e| format!("cannot make a QR code of the verification URL: {e}"))?;
    let width = code.width();
    let module = (QR_SIDE / (width + 2 * QR_QUIET_MODULES) as f32).max(QR_MIN_MODULE);
    let colors = code.to_colors();
    for (row, cells) in colors.chunks(width).enumerate() {
        // Each horizontal run of dark modules becomes one filled rectangle.
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
            let x = left + start as f32 * module;
            pages.rect(x, top + row as f32 * module, (col - start) as f32 * module, module, 0)?;
        }
    }
    Ok((width + QR_QUIET_MODULES) as f32 * module)
}

/// A section's fields as lines of the PDF: a wide field alone, the others two by two.
fn pair_rows(fields: &[SheetField]) -> Vec<Vec<(&str, &str)>> {
    let mut rows: Vec<Vec<(&str, &str)>> = Vec::new();
    let mut open = false;
    for f in fields {
        let cell = (f.label.as_str(), f.value.as_str());
        if f.wide {
            rows.push(vec![cell]);
            open = false;
        } else if open && let Some(last) = rows.last_mut() {
            last.push(cell);
            open = false;
        } else {
            rows.push(vec![cell]);
            open = true;
        }
    }
    rows
}

fn lay_out(sheet: &Sheet, fonts: &Fonts) -> Result<Vec<Vec<Op>>, String> {
    let mut pages = Pages::new();

    // Header: the QR code at the top left, the title and issue date to its right.
    let qr_side = qr_code(&mut pages, &sheet.verify_url, MARGIN, MARGIN)?;
    let header_w = CONTENT_W - qr_side - COLUMN_GAP;
    let mut top = MARGIN + 8.0;
    for line in fonts.wrap(Weight::Bold, TITLE_SIZE, &persian_text(&sheet.title), header_w, true) {
        pages.text(fonts, line, TITLE_SIZE, top, RIGHT, None);
        top += TITLE_SIZE * LEADING;
    }
    pages.y = top + 4.0;
    let issued = [("تاریخ صدور رسید", sheet.issued_at.as_str())];
    field_rows(&mut pages, fonts, &[&issued]);
    let hint = "برای بررسی اصالت این رسید، کد QR کنار را با تلفن همراه بخوانید.";
    for line in fonts.wrap(Weight::Regular, SMALL_SIZE, &persian_text(hint), header_w, true) {
        let top = pages.y;
        pages.text(fonts, line, SMALL_SIZE, top, RIGHT, None);
        pages.y += SMALL_SIZE * LEADING;
    }
    pages.y = pages.y.max(MARGIN + qr_side) + 4.0;
    pages.rect(MARGIN, pages.y, CONTENT_W, 0.8, 90)?;
    pages.y += 4.0;

    for section in &sheet.sections {
        section_heading(&mut pages, fonts, &section.heading)?;
        let rows = pair_rows(&section.fields);
        let rows: Vec<&[(&str, &str)]> = rows.iter().map(Vec::as_slice).collect();
        field_rows(&mut pages, fonts, &rows);
    }

    if !sheet.list.is_empty() {
        section_heading(&mut pages, fonts, &sheet.list_heading)?;
        let line_height = BODY_SIZE * LEADING;
        for (i, item) in sheet.list.iter().enumerate() {
            // The number hangs at the right; wrapped lines align with the text after it.
            let number = fonts.shape_line(Weight::Bold, &persian_text(&format!("{}-", i + 1)), true);
            let indent = BODY_SIZE * 1.8;
            let lines = fonts.wrap(Weight::Regular, BODY_SIZE, &persian_text(item), CONTENT_W - indent, true);
            pages.reserve(line_height);
            let top = pages.y;
            pages.text(fonts, number, BODY_SIZE, top, RIGHT, None);
            for line in lines {
                pages.reserve(line_height);
                let top = pages.y;
                pages.text(fonts, line, BODY_SIZE, top, RIGHT - indent, None);
                pages.y += line_height;
            }
            pages.y += 2.0;
        }
    }

    // Footer: the verification address in full, left to right, under a rule.
    let label = fonts.shape_line(Weight::Regular, &persian_text("نشانی بررسی اصالت رسید:"), true);
    let url_lines = fonts.wrap(Weight::Regular, SMALL_SIZE, &sheet.verify_url, CONTENT_W, false);
    let small_line = SMALL_SIZE * LEADING;
    pages.reserve(10.0 + small_line * (1 + url_lines.len()) as f32);
    pages.y += 10.0;
    pages.rect(MARGIN, pages.y, CONTENT_W, 0.5, 150)?;
    pages.y += 4.0;
    let top = pages.y;
    pages.text(fonts, label, SMALL_SIZE, top, RIGHT, None);
    pages.y += small_line;
    for line in url_lines {
        let top = pages.y;
        pages.text(fonts, line, SMALL_SIZE, top, RIGHT, Some(MARGIN));
        pages.y += small_line;
    }
    Ok(pages.pages)
}

// ---------------------------------------------------------------------------------------
// Drawing

fn draw(sheet: &Sheet, fonts: &Fonts, pages: Vec<Vec<Op>>) -> Result<Vec<u8>, String> {
    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(sheet.title.clone())
            .language("fa-IR".to_owned())
            .text_direction(TextDirection::RightToLeft)
            .creator("ncr".to_owned()),
    );
    for ops in pages {
        let settings = PageSettings::from_wh(PAGE_W, PAGE_H).ok_or("bad page size")?;
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        for op in ops {
            match op {
                Op::Rect { rect, gray } => {
                    let mut path = PathBuilder::new();
                    path.push_rect(rect);
                    let path = path.finish().ok_or("empty path")?;
                    surface.set_fill(Some(Fill { paint: luma::Color::new(gray).into(), ..Fill::default() }));
                    surface.draw_path(&path);
                }
                Op::Text { x, baseline, size, line } => {
                    surface.set_fill(Some(Fill::default()));
                    let font = &fonts.face(line.weight).pdf;
                    let mut x = x;
                    for run in &line.runs {
                        surface.draw_glyphs(
                            Point::from_xy(x, baseline),
                            &run.glyphs,
                            font.clone(),
                            &run.text,
                            size,
                            false,
                        );
                        x += run.advance * size;
                    }
                }
            }
        }
        surface.finish();
        page.finish();
    }
    document.finish().map_err(|e| format!("cannot write the PDF: {e:?}"))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;

    fn seed_receipt() -> ReceiptDoc {
        ReceiptDoc {
            title: "نتیجه ثبت نام کارت هوشمند ملی".to_owned(),
            national_id: "2580200606".to_owned(),
            tracking_code: "4973201670".to_owned(),
            serial: "883381".to_owned(),
            birth_date_jalali: "1369/03/19".to_owned(),
            birth_date_hijri: "15 ذیقعده 1410".to_owned(),
            gender: "زن".to_owned(),
            religion: "اسلام".to_owned(),
            mother_name: "شهرزاد".to_owned(),
            mobile: "09145128136".to_owned(),
            office_heading: "دفتر تکمیل ثبت نام منتخب".to_owned(),
            office_label: "دفتر تکمیل ثبت نام".to_owned(),
            address_label: "نشانی دفتر تکمیل ثبت نام".to_owned(),
            office_name: "اداره ثبت احوال مراغه".to_owned(),
            office_address: "مراغه - خ پاسداران - اداره ثبت احوال مراغه".to_owned(),
            office_phone: "11222226".to_owned(),
            shift: "صبح".to_owned(),
            appointment_date_jalali: "1405/09/05".to_owned(),
            payment_status: "موفق".to_owned(),
            payment_reference: "731906284415".to_owned(),
            delivery_office: "اداره ثبت احوال مراغه".to_owned(),
            prerequisites: vec![
                "برای تکمیل ثبت نام شخصا با در دست داشتن شناسنامه و شماره ملی به دفتر تکمیل ثبت نام مراجعه کنید."
                    .to_owned(),
                "هنگام مراجعه برای تکمیل ثبت نام برای عکسبرداری آماده باشید.".to_owned(),
                "هنگام مراجعه به دفتر تکمیل ثبت نام برای اسکن اثر انگشتان آماده باشید.".to_owned(),
                "از این لحظه به بعد می‌توانید با شماره‌گیری *4*6090# در موبایل درخواست خود را پیگیری نمایید.".to_owned(),
                "پیگیری درخواست همچنین از طریق همین سایت (www.dcf.ir) امکان‌پذیر است.".to_owned(),
            ],
            verify_url:
                "https://ncr.example.ir/v1/receipts/verify?t=4973201670&sig=Qm9vdHN0cmFwLXNpZ25hdHVyZS0xMjM0NTY3ODkw"
                    .to_owned(),
            issued_at: "1405/09/01 10:00".to_owned(),
        }
    }

    /// A fresh directory under the system temporary directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default();
            let path = std::env::temp_dir().join(format!("ncr-{name}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&path).expect("create temp dir");
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Runs an installed tool; a missing tool fails the test with a clear message.
    fn run(tool: &str, args: &[&str]) -> String {
        let output = Command::new(tool).args(args).output().unwrap_or_else(|e| {
            panic!("cannot run `{tool}` ({e}): the PDF receipt test needs poppler-utils (pdftotext, pdftoppm) and zbar-tools (zbarimg) installed")
        });
        assert!(
            output.status.success(),
            "`{tool} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("tool output is UTF-8")
    }

    fn path_str(path: &Path) -> &str {
        path.to_str().expect("temp path is UTF-8")
    }

    #[test]
    fn codes_stay_left_to_right_inside_persian_text() {
        let fonts = Fonts::load().expect("fonts");
        let line = fonts.shape_line(Weight::Regular, &persian_text("با شماره‌گیری *4*6090# در موبایل"), true);
        let texts: Vec<&str> = line.runs.iter().map(|r| r.text.as_str()).collect();
        // Visual order, left to right: the end of the sentence, the code, the start.
        assert_eq!(texts, vec![" در موبایل", "*۴*۶۰۹۰#", "با شماره‌گیری "]);
        // Glyphs of the code run follow its text forwards; those of Persian runs backwards.
        let starts = |run: &ShapedRun| run.glyphs.iter().map(|g| g.text_range.start).collect::<Vec<_>>();
        assert!(starts(&line.runs[1]).is_sorted());
        assert!(starts(&line.runs[0]).iter().rev().is_sorted());
        // A number alone is one left-to-right run of Persian digits.
        let line = fonts.shape_line(Weight::Regular, &persian_text("4973201670"), true);
        assert_eq!(line.runs.len(), 1);
        assert_eq!(line.runs[0].text, "۴۹۷۳۲۰۱۶۷۰");
    }

    #[test]
    fn persian_letters_are_joined() {
        let fonts = Fonts::load().expect("fonts");
        // Contextual forms: «ببب» uses three different glyphs (initial, medial, final).
        let run = fonts.shape_run(Weight::Regular, "ببب".to_owned(), true);
        let ids: Vec<u32> = run.glyphs.iter().map(|g| g.glyph_id.to_u32()).collect();
        assert_eq!(ids.len(), 3);
        assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "no contextual forms: {ids:?}");
    }

    #[test]
    fn long_lines_are_wrapped_within_the_width() {
        let fonts = Fonts::load().expect("fonts");
        let doc = seed_receipt();
        let lines = fonts.wrap(Weight::Regular, BODY_SIZE, &persian_text(&doc.prerequisites[0]), 200.0, true);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| l.advance * BODY_SIZE <= 200.0));
    }

    #[test]
    fn wide_fields_take_a_line_and_the_others_pair_up() {
        let f = |id, wide| SheetField { id, label: id.to_owned(), value: "v".into(), wide };
        let fields = [f("a", true), f("b", false), f("c", false), f("d", false), f("e", true), f("g", false)];
        let rows = pair_rows(&fields);
        let ids: Vec<Vec<&str>> = rows.iter().map(|r| r.iter().map(|(l, _)| *l).collect()).collect();
        assert_eq!(ids, vec![vec!["a"], vec!["b", "c"], vec!["d"], vec!["e"], vec!["g"]]);
    }

    #[test]
    fn a_long_receipt_continues_on_more_pages() {
        let fonts = Fonts::load().expect("fonts");
        let mut doc = seed_receipt();
        doc.prerequisites = doc.prerequisites.iter().cycle().take(60).cloned().collect();
        let pages = lay_out(&doc.sheet(), &fonts).expect("layout");
        assert!(pages.len() > 1);
        assert!(render_pdf(&doc).expect("render").starts_with(b"%PDF-"));
    }

    #[test]
    fn seed_receipt_pdf_is_readable_and_its_qr_code_decodes() {
        let doc = seed_receipt();
        let pdf = render_pdf(&doc).expect("render");
        assert!(pdf.starts_with(b"%PDF-"));
        let dir = TempDir::new("receipt-pdf");
        let pdf_path = dir.0.join("receipt.pdf");
        std::fs::write(&pdf_path, &pdf).expect("write pdf");

        // The PDF holds glyphs in visual order (left to right). pdftotext (poppler) turns each
        // line back into logical order and marks the direction of every run with embedding
        // controls (U+202A LRE, U+202B RLE, U+202C PDF). Those marks are invisible, so they are
        // removed before searching: what remains is the text as a person types it.
        let raw = run("pdftotext", &["-layout", "-enc", "UTF-8", path_str(&pdf_path), "-"]);
        let text: String = raw.chars().filter(|c| !('\u{202A}'..='\u{202E}').contains(c)).collect();
        assert!(text.contains("۴۹۷۳۲۰۱۶۷۰"), "tracking code (Persian digits) missing from:\n{text}");
        assert!(text.contains("اداره ثبت احوال مراغه"), "office name missing from:\n{text}");
        assert!(text.contains("نتیجه ثبت نام کارت هوشمند ملی"), "title missing from:\n{text}");
        assert!(text.contains("*۴*۶۰۹۰#"), "USSD code out of order in:\n{text}");

        let png_prefix = dir.0.join("receipt");
        run("pdftoppm", &["-png", "-r", "150", "-singlefile", path_str(&pdf_path), path_str(&png_prefix)]);
        let png = dir.0.join("receipt.png");
        let decoded = run("zbarimg", &["--quiet", "--raw", path_str(&png)]);
        assert_eq!(decoded.trim_end(), doc.verify_url);
    }
}
