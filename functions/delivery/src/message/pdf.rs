//! The printable letter: a legal letter as an A4 PDF, attached to its email
//! and saved beside the `.eml` in the outbox.
//!
//! Written with `pdf-writer` (typst's, a few small dependencies): Helvetica
//! from the 14 fonts every PDF reader has (nothing embedded), WinAnsi
//! encoding (Latin-1 plus `€`, `„`, `“`, `–`, …; any other character
//! prints as `?`), content streams left uncompressed so the text can be
//! searched and diffed.
//!
//! The page follows DIN 5008 (form B), which also fits the usual window
//! envelopes elsewhere (DL, C5/6): the letterhead (company, postal address,
//! reply-to address) at the top; the address field from 45 mm to 90 mm
//! down, 25 mm from the left edge, with the sender on one small line
//! above the recipient's block ([`super::postal`] lays it out for the
//! recipient's country); the QR code of the pay link to the right of it;
//! then the body, the template's rendered text part, line by line, wrapped
//! at the page width. A recipient without a deliverable address gets a red
//! notice in the window instead of a blank, so the person who approves the
//! letter sees it before it is printed.
//!
//! A web address (the pay link) is never broken across lines: it gets a line
//! of its own, in a smaller size when it does not fit the width, and a link
//! annotation, so a reader of the PDF can click it whatever the display.
//!
//! Deterministic: the same letter gives the same bytes (no creation date).

use pdf_writer::types::{ActionType, AnnotationType};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use super::postal::AddressBlock;

/// What goes on the printed letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter<'a> {
    /// The sender, printed large at the top.
    pub company: &'a str,
    /// The sender's postal address, one line each.
    pub address: &'a [String],
    /// Where to answer (an email address), under the address.
    pub contact: &'a str,
    /// The document title (the email's subject), in the PDF's metadata.
    pub title: &'a str,
    /// The letter itself: the template's text part.
    pub body: &'a str,
    /// BCP 47 language of the letter (`de-DE`), in the PDF's metadata.
    pub language: &'a str,
    /// The recipient's address block, for the envelope's window.
    pub recipient: &'a AddressBlock,
    /// The pay link to print as a QR code beside the address (a letter
    /// about one invoice; with several, each link is in the body).
    pub qr_link: Option<&'a str>,
}

const A4: (f32, f32) = (595.0, 842.0);
/// 25 mm: DIN 5008's left margin, inside the envelope's window.
const LEFT: f32 = 70.0;
const TOP: f32 = 800.0;
const BOTTOM: f32 = 60.0;
const BODY_SIZE: f32 = 10.0;
const LEADING: f32 = 14.0;
/// Characters a body line holds at 10 pt Helvetica between the margins
/// (about 5 pt a character on average, 455 pt wide).
const WRAP: usize = 88;
/// The smallest size a web address is printed in to keep it on one line.
const LINK_MIN_SIZE: f32 = 6.0;
/// Millimetres to points.
const MM: f32 = 72.0 / 25.4;
/// The top of the address field, 45 mm down (DIN 5008 form B).
const WINDOW_TOP: f32 = A4.1 - 45.0 * MM;
/// Where the body starts on the first page: under the address field
/// (90 mm down) and a little air.
const FIRST_BODY: f32 = A4.1 - 98.0 * MM;
/// The QR code's side.
const QR_SIZE: f32 = 72.0;

const REGULAR: Name = Name(b"F1");
const BOLD: Name = Name(b"F2");

/// A line of the body: text, or a web address on a line of its own.
#[derive(Debug, Clone, PartialEq)]
enum Line {
    Text(String),
    Link { indent: String, url: String },
}

/// A clickable area of a page and where it leads.
struct LinkArea {
    rect: Rect,
    url: String,
}

/// The letter as PDF bytes.
pub fn letter_pdf(letter: &Letter) -> Vec<u8> {
    let mut pages: Vec<(Content, Vec<LinkArea>)> = Vec::new();
    let mut content = Content::new();
    let mut links: Vec<LinkArea> = Vec::new();

    // Letterhead.
    let mut y = TOP;
    text_line(&mut content, BOLD, 14.0, LEFT, y, letter.company);
    y -= 16.0;
    for line in letter
        .address
        .iter()
        .map(String::as_str)
        .chain(Some(letter.contact))
        .filter(|l| !l.trim().is_empty())
    {
        text_line(&mut content, REGULAR, 9.0, LEFT, y, line);
        y -= 11.0;
    }
    y -= 2.0;
    content
        .set_line_width(0.5)
        .move_to(LEFT, y)
        .line_to(A4.0 - LEFT, y)
        .stroke();

    // The address field: the sender on one small line, then the recipient.
    // A long letterhead pushes it down rather than overprinting it.
    let mut y = (y - 12.0).min(WINDOW_TOP - 12.0);
    let sender = std::iter::once(letter.company)
        .chain(letter.address.iter().map(String::as_str))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" · ");
    text_line(
        &mut content,
        REGULAR,
        7.0,
        LEFT,
        y,
        &fit(&sender, 7.0, 85.0 * MM),
    );
    let qr_top = y + 7.0;
    y -= 16.0;
    y = address_field(&mut content, letter.recipient, y);
    if let Some(url) = letter.qr_link {
        qr(&mut content, url, A4.0 - LEFT - QR_SIZE, qr_top - QR_SIZE);
    }

    // Body.
    let mut y = y.min(FIRST_BODY).min(qr_top - QR_SIZE) - LEADING;
    for line in letter.body.lines().flat_map(wrap) {
        if y < BOTTOM {
            pages.push((
                std::mem::replace(&mut content, Content::new()),
                std::mem::take(&mut links),
            ));
            y = TOP;
        }
        match line {
            Line::Text(text) => text_line(&mut content, REGULAR, BODY_SIZE, LEFT, y, &text),
            Line::Link { indent, url } => {
                let x = LEFT + text_width(&indent, BODY_SIZE);
                let (size, shown) = link_display(&url, A4.0 - LEFT - x);
                text_line(&mut content, REGULAR, size, x, y, &shown);
                links.push(LinkArea {
                    rect: Rect::new(x, y - 2.0, x + text_width(&shown, size), y + size),
                    url,
                });
            }
        }
        y -= LEADING;
    }
    pages.push((content, links));

    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let mut next = 6;
    let mut alloc = || {
        let id = Ref::new(next);
        next += 1;
        id
    };
    let page_ids: Vec<(Ref, Ref, Vec<Ref>)> = pages
        .iter()
        .map(|(_, links)| (alloc(), alloc(), links.iter().map(|_| alloc()).collect()))
        .collect();

    let mut pdf = Pdf::new();
    pdf.catalog(catalog)
        .pages(tree)
        .lang(TextStr(letter.language));
    pdf.pages(tree)
        .kids(page_ids.iter().map(|(page, _, _)| *page))
        .count(page_ids.len() as i32);
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.document_info(info)
        .title(TextStr(letter.title))
        .author(TextStr(letter.company))
        .producer(TextStr("Proactive Collections"));
    for ((page_id, content_id, annot_ids), (content, links)) in page_ids.iter().zip(pages) {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, A4.0, A4.1))
            .parent(tree)
            .contents(*content_id);
        if !annot_ids.is_empty() {
            page.annotations(annot_ids.iter().copied());
        }
        let mut resources = page.resources();
        resources.fonts().pair(REGULAR, regular).pair(BOLD, bold);
        resources.finish();
        page.finish();
        pdf.stream(*content_id, &content.finish());
        for (id, link) in annot_ids.iter().zip(links) {
            let mut annot = pdf.annotation(*id);
            annot
                .subtype(AnnotationType::Link)
                .rect(link.rect)
                .border(0.0, 0.0, 0.0, None);
            annot
                .action()
                .action_type(ActionType::Uri)
                .uri(Str(link.url.as_bytes()));
        }
    }
    pdf.finish()
}

/// The recipient's block from `y` down; returns the `y` under it. When the
/// address is not deliverable, what is known and a red notice naming the
/// missing columns, for the person who approves the letter.
fn address_field(content: &mut Content, block: &AddressBlock, mut y: f32) -> f32 {
    let (known, missing) = match block {
        AddressBlock::Lines(lines) => (lines, None),
        AddressBlock::Missing { known, missing } => (known, Some(missing)),
    };
    for line in known {
        text_line(
            content,
            REGULAR,
            BODY_SIZE,
            LEFT,
            y,
            &fit(line, BODY_SIZE, 80.0 * MM),
        );
        y -= 12.0;
    }
    if let Some(missing) = missing {
        let headline = if known.len() <= 1 {
            "NO POSTAL ADDRESS ON FILE".to_string()
        } else {
            "POSTAL ADDRESS INCOMPLETE".to_string()
        };
        content.set_fill_rgb(0.8, 0.0, 0.0);
        text_line(content, BOLD, BODY_SIZE, LEFT, y, &headline);
        y -= 11.0;
        let help = format!(
            "Do not post: add {} to the customer's record.",
            missing.join(", ")
        );
        text_line(content, REGULAR, 8.0, LEFT, y, &help);
        y -= 12.0;
        content.set_fill_gray(0.0);
    }
    y
}

/// The QR code of `url` with its lower left corner at (`x`, `y`), drawn as
/// filled squares (with the quiet zone the standard asks for inside
/// [`QR_SIZE`]). For a link too long for a QR code nothing is drawn: the
/// link is in the body anyway.
fn qr(content: &mut Content, url: &str, x: f32, y: f32) {
    let Ok(code) = qrcode::QrCode::new(url.as_bytes()) else {
        return;
    };
    let width = code.width();
    // Four modules of quiet zone on each side.
    let module = QR_SIZE / (width + 8) as f32;
    content.save_state();
    content.set_fill_gray(0.0);
    // Drawn in module units (a grid of `width + 8` with the quiet zone,
    // origin at the bottom left), one rectangle per run of dark modules in
    // a row: small whole numbers, a fraction of the bytes of one square a
    // module in points.
    let side = (width + 8) as f32;
    content.transform([module, 0.0, 0.0, module, x, y]);
    let colors = code.to_colors();
    for (row, modules) in colors.chunks(width).enumerate() {
        for (start, len) in dark_runs(modules) {
            content.rect((4 + start) as f32, side - (5 + row) as f32, len as f32, 1.0);
        }
    }
    content.fill_nonzero();
    content.restore_state();
}

/// The runs of dark modules in a row of a QR code, as (first column,
/// length).
fn dark_runs(row: &[qrcode::Color]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, color) in row.iter().chain(Some(&qrcode::Color::Light)).enumerate() {
        match (color, start) {
            (qrcode::Color::Dark, None) => start = Some(i),
            (qrcode::Color::Light, Some(s)) => {
                runs.push((s, i - s));
                start = None;
            }
            _ => {}
        }
    }
    runs
}

/// The size and the text a web address is shown in, on one line `room`
/// points wide: the body size when it fits, else the size that makes it
/// fit (not below [`LINK_MIN_SIZE`]), else shortened in the middle with
/// `…` (the link annotation keeps the whole address).
fn link_display(url: &str, room: f32) -> (f32, String) {
    let at_body = text_width(url, BODY_SIZE);
    if at_body <= room {
        return (BODY_SIZE, url.to_string());
    }
    let size = (BODY_SIZE * room / at_body).max(LINK_MIN_SIZE);
    (size, fit(url, size, room))
}

/// `text` shortened in the middle with `…` until it is at most `room`
/// points wide at `size`.
fn fit(text: &str, size: f32, room: f32) -> String {
    if text_width(text, size) <= room {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut keep = chars.len();
    while keep > 2 {
        keep -= 1;
        let head: String = chars.iter().take(keep.div_ceil(2)).collect();
        let tail: String = chars.iter().skip(chars.len() - keep / 2).collect();
        let shown = format!("{head}…{tail}");
        if text_width(&shown, size) <= room {
            return shown;
        }
    }
    "…".to_string()
}

/// The width of `text` in Helvetica at `size` points (the font's metrics
/// for ASCII; other characters as a digit).
fn text_width(text: &str, size: f32) -> f32 {
    let units: u32 = text.chars().map(helvetica_width).sum();
    units as f32 * size / 1000.0
}

/// Helvetica's advance widths (AFM, thousandths of the size) for ASCII.
fn helvetica_width(c: char) -> u32 {
    const ASCII: [u16; 95] = [
        278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278,
        278, // ' '../
        556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // 0-9
        278, 278, 584, 584, 584, 556, 1015, // :;<=>?@
        667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, // A-M
        722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, // N-Z
        278, 278, 278, 469, 556, 333, // [\]^_`
        556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, // a-m
        556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, // n-z
        334, 260, 334, 584, // {|}~
    ];
    u32::from(c)
        .checked_sub(32)
        .and_then(|i| ASCII.get(i as usize))
        .map_or(556, |w| u32::from(*w))
}

/// One line of text starting at `x`. ASCII runs are written as literal
/// strings (searchable in the file), the rest in WinAnsi bytes.
fn text_line(content: &mut Content, font: Name, size: f32, x: f32, y: f32, text: &str) {
    let bytes = win_ansi(text);
    content.begin_text();
    content.set_font(font, size);
    content.next_line(x, y);
    let mut start = 0;
    while start < bytes.len() {
        let ascii = bytes.get(start).is_some_and(u8::is_ascii);
        let len = bytes
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|b| b.is_ascii() == ascii)
            .count();
        if let Some(run) = bytes.get(start..start + len) {
            content.show(Str(run));
        }
        start += len.max(1);
    }
    content.end_text();
}

/// The text in WinAnsiEncoding (Windows-1252); characters it lacks become
/// `?`, control characters spaces.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '\t' => b' ',
            c if c.is_control() => b' ',
            c if c.is_ascii() => c as u8,
            '\u{a0}'..='\u{ff}' => u8::try_from(u32::from(c)).unwrap_or(b'?'),
            '€' => 0x80,
            '‚' => 0x82,
            '„' => 0x84,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            // Narrow no-break space (CLDR's group separator in some locales).
            '\u{202f}' => 0xa0,
            _ => b'?',
        })
        .collect()
}

/// Whether a word is a web address, which is never cut.
fn is_link(word: &str) -> bool {
    word.starts_with("https://") || word.starts_with("http://")
}

/// A line wrapped at word boundaries to [`WRAP`] characters. A web address
/// (the pay link) gets a line of its own, whole; any other word longer than
/// a line is cut. Leading spaces are kept.
fn wrap(line: &str) -> Vec<Line> {
    let line = line.trim_end();
    let indent: String = line.chars().take_while(|c| *c == ' ').collect();
    if line.chars().count() <= WRAP && !line.split_whitespace().any(is_link) {
        return vec![Line::Text(line.to_string())];
    }
    let mut out = Vec::new();
    let mut current = indent.clone();
    let fresh = |current: &String| current.chars().count() == indent.chars().count();
    for word in line.split_whitespace() {
        if is_link(word) {
            if !fresh(&current) {
                out.push(Line::Text(std::mem::replace(&mut current, indent.clone())));
            }
            out.push(Line::Link {
                indent: indent.clone(),
                url: word.to_string(),
            });
            continue;
        }
        let used = current.chars().count();
        if !fresh(&current) && used + 1 + word.chars().count() > WRAP {
            out.push(Line::Text(std::mem::replace(&mut current, indent.clone())));
        }
        if !fresh(&current) {
            current.push(' ');
        }
        let mut rest: Vec<char> = word.chars().collect();
        while current.chars().count() + rest.len() > WRAP {
            let room = WRAP.saturating_sub(current.chars().count()).max(1);
            let head: String = rest.drain(..room.min(rest.len())).collect();
            current.push_str(&head);
            out.push(Line::Text(std::mem::replace(&mut current, indent.clone())));
        }
        current.extend(rest);
    }
    if !fresh(&current) {
        out.push(Line::Text(current));
    }
    out
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn recipient() -> AddressBlock {
        AddressBlock::Lines(vec![
            "Kunde AG".to_string(),
            "Ringstraße 1".to_string(),
            "1010 Wien".to_string(),
            "AUSTRIA".to_string(),
        ])
    }

    fn letter<'a>(address: &'a [String], body: &'a str, recipient: &'a AddressBlock) -> Letter<'a> {
        Letter {
            company: "Beispiel GmbH",
            address,
            contact: "buchhaltung@beispiel.de",
            title: "Letzte Mahnung: Rechnung 2027-00880",
            body,
            language: "de-DE",
            recipient,
            qr_link: None,
        }
    }

    #[test]
    fn letter_is_a_pdf_with_letterhead_address_and_body() {
        let address = vec!["Hauptstraße 5".to_string(), "10115 Berlin".to_string()];
        let body = "3. April 2027\n\nRechnung 2027-00880, fällig am 3. März 2027\n".to_string()
            + &"Zeile\n".repeat(80);
        let recipient = recipient();
        let letter = letter(&address, &body, &recipient);
        let bytes = letter_pdf(&letter);
        assert!(bytes.starts_with(b"%PDF-"));
        assert!(contains(&bytes, b"(Beispiel GmbH)"));
        // `ß` (0xDF in WinAnsi) is written apart from the ASCII around it.
        assert!(contains(&bytes, b"(Hauptstra)"));
        assert!(contains(&bytes, b"<DF>"), "ß as WinAnsi");
        assert!(contains(&bytes, b"(e 5)"));
        assert!(contains(&bytes, b"(10115 Berlin)"));
        assert!(contains(&bytes, b"(buchhaltung@beispiel.de)"));
        // The recipient's block, and the sender's line above it.
        assert!(contains(&bytes, b"(Kunde AG)"));
        assert!(contains(&bytes, b"(1010 Wien)"));
        assert!(contains(&bytes, b"(AUSTRIA)"));
        assert!(contains(&bytes, b"(Beispiel GmbH "), "sender line");
        assert!(contains(&bytes, b"(Rechnung 2027-00880, f)"));
        assert!(contains(&bytes, b"/WinAnsiEncoding"));
        // 80 more lines do not fit one page.
        assert!(contains(&bytes, b"/Count 2"), "two pages");
        assert!(!contains(&bytes, b"POSTAL ADDRESS"), "no notice");
        assert_eq!(bytes, letter_pdf(&letter), "deterministic");
    }

    #[test]
    fn a_letter_without_an_address_says_so_in_the_window() {
        let body = "Text\n";
        let none = AddressBlock::Missing {
            known: vec!["Kunde AG".to_string()],
            missing: vec!["address_line1", "city"],
        };
        let bytes = letter_pdf(&letter(&[], body, &none));
        assert!(contains(&bytes, b"(Kunde AG)"));
        assert!(contains(&bytes, b"(NO POSTAL ADDRESS ON FILE)"));
        assert!(contains(
            &bytes,
            b"(Do not post: add address_line1, city to the customer's record.)"
        ));
        assert!(contains(&bytes, b"0.8 0 0 rg"), "in red");
        let partial = AddressBlock::Missing {
            known: vec!["Kunde AG".to_string(), "Ringstraße 1".to_string()],
            missing: vec!["city"],
        };
        let bytes = letter_pdf(&letter(&[], body, &partial));
        assert!(contains(&bytes, b"(POSTAL ADDRESS INCOMPLETE)"));
    }

    #[test]
    fn the_pay_link_is_whole_on_its_own_line_and_clickable() {
        // A real pay link, as the sweep makes it.
        let links = crate::message::paylink::PayLinks::new(
            &[7u8; 32],
            "https://pay.example-supplies.com/invoice/{token}",
        )
        .unwrap();
        let expires = chrono::NaiveDate::from_ymd_opt(2027, 5, 18).unwrap();
        let url = links.link("INV-2027-00880", expires);
        assert!(url.chars().count() > WRAP, "longer than a body line");
        let body = format!("Rechnung 2027-00880\n    Zahlungslink: {url}\nDanke.\n");
        let recipient = recipient();
        let bytes = letter_pdf(&letter(&[], &body, &recipient));
        // The whole address in one string of one text line, after its label.
        let shown = format!("({url})");
        assert!(contains(&bytes, shown.as_bytes()), "the link in one piece");
        assert!(contains(&bytes, b"(    Zahlungslink:)"));
        // Clickable: a link annotation with the whole address.
        assert!(contains(&bytes, b"/Subtype /Link"));
        assert!(contains(&bytes, format!("/URI ({url})").as_bytes()));
        // Shown in the size that makes it fit between the indent and the margin.
        let x = LEFT + text_width("    ", BODY_SIZE);
        let (size, text) = link_display(&url, A4.0 - LEFT - x);
        assert_eq!(text, url);
        assert!((LINK_MIN_SIZE..BODY_SIZE).contains(&size), "{size}");
        assert!(x + text_width(&url, size) <= A4.0 - LEFT + 0.01);
        let font = format!("/F1 {size} Tf");
        assert!(contains(&bytes, font.as_bytes()), "{font}");
    }

    #[test]
    fn a_link_too_long_for_the_smallest_size_is_shortened_in_the_middle() {
        let url = format!("https://pay.example.com/i/{}", "x".repeat(400));
        let (size, shown) = link_display(&url, 455.0);
        assert_eq!(size, LINK_MIN_SIZE);
        assert!(shown.starts_with("https://pay.example.com/i/xx"), "{shown}");
        assert!(shown.contains('…') && shown.ends_with("xxx"), "{shown}");
        assert!(text_width(&shown, size) <= 455.0);
    }

    #[test]
    fn a_letter_about_one_invoice_carries_the_qr_code_of_its_pay_link() {
        let url = "https://pay.example.com/i/v1.abc";
        let recipient = recipient();
        let body = format!("Zahlungslink: {url}\n");
        let without = letter_pdf(&letter(&[], &body, &recipient));
        let with = letter_pdf(&Letter {
            qr_link: Some(url),
            ..letter(&[], &body, &recipient)
        });
        let squares = |b: &[u8]| b.windows(4).filter(|w| w == b" re\n").count();
        assert_eq!(squares(&without), 0);
        // One rectangle per run of dark modules, every dark module in one.
        let code = qrcode::QrCode::new(url.as_bytes()).unwrap();
        let colors = code.to_colors();
        let runs: Vec<Vec<(usize, usize)>> = colors.chunks(code.width()).map(dark_runs).collect();
        assert_eq!(squares(&with), runs.iter().map(Vec::len).sum::<usize>());
        let dark = colors.iter().filter(|c| **c == qrcode::Color::Dark).count();
        let covered: usize = runs.iter().flatten().map(|(_, len)| len).sum();
        assert_eq!(covered, dark, "every dark module drawn once");
        assert!(squares(&with) > 50, "{}", squares(&with));
        use qrcode::Color::{Dark as D, Light as L};
        assert_eq!(
            dark_runs(&[D, D, L, D, L, L, D]),
            vec![(0, 2), (3, 1), (6, 1)]
        );
    }

    fn texts(lines: &[Line]) -> Vec<&str> {
        lines
            .iter()
            .map(|l| match l {
                Line::Text(t) => t.as_str(),
                Line::Link { url, .. } => url.as_str(),
            })
            .collect()
    }

    #[test]
    fn wrapping_keeps_words_cuts_long_ones_and_never_a_link() {
        let long = "wort ".repeat(40);
        let lines = wrap(&format!("  {long}"));
        assert!(lines.len() > 1);
        assert!(
            texts(&lines).iter().all(|l| l.chars().count() <= WRAP),
            "{lines:?}"
        );
        assert!(
            texts(&lines).iter().all(|l| l.starts_with("  wort")),
            "{lines:?}"
        );
        let word = format!("IBAN{}", "0".repeat(200));
        let lines = wrap(&word);
        assert_eq!(texts(&lines).concat(), word);
        assert!(texts(&lines).iter().all(|l| l.chars().count() <= WRAP));
        assert_eq!(wrap("kurz"), vec![Line::Text("kurz".into())]);
        let url = format!("https://pay.example.com/{}", "x".repeat(200));
        assert_eq!(
            wrap(&format!("  Pay here: {url} today")),
            vec![
                Line::Text("  Pay here:".into()),
                Line::Link {
                    indent: "  ".into(),
                    url: url.clone()
                },
                Line::Text("  today".into()),
            ]
        );
        assert_eq!(
            wrap("Link: https://p.example/1"),
            vec![
                Line::Text("Link:".into()),
                Line::Link {
                    indent: String::new(),
                    url: "https://p.example/1".into()
                },
            ]
        );
        assert_eq!(win_ansi("Grüße – 5 €"), b"Gr\xfc\xdfe \x96 5 \x80");
        assert_eq!(win_ansi("日本"), b"??");
    }
}
