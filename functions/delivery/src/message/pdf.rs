//! The printable letter: a legal letter as an A4 PDF, attached to its email
//! and saved beside the `.eml` in the outbox.
//!
//! Written with `pdf-writer` (typst's, a few small dependencies): Helvetica
//! from the 14 fonts every PDF reader has (nothing embedded), WinAnsi
//! encoding (Latin-1 plus `€`, `„`, `“`, `–`, …; any other character
//! prints as `?`), content streams left uncompressed so the text can be
//! searched and diffed. The letterhead (company name, postal address,
//! reply-to address) is drawn by this module; the body is the template's
//! rendered text part, line by line, wrapped at the page width.
//!
//! Deterministic: the same letter gives the same bytes (no creation date).

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

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
}

const A4: (f32, f32) = (595.0, 842.0);
const LEFT: f32 = 70.0;
const TOP: f32 = 780.0;
const BOTTOM: f32 = 60.0;
const BODY_SIZE: f32 = 10.0;
const LEADING: f32 = 14.0;
/// Characters a body line holds at 10 pt Helvetica between the margins
/// (about 5 pt a character on average, 455 pt wide).
const WRAP: usize = 88;

const REGULAR: Name = Name(b"F1");
const BOLD: Name = Name(b"F2");

/// The letter as PDF bytes.
pub fn letter_pdf(letter: &Letter) -> Vec<u8> {
    let mut pages: Vec<Content> = Vec::new();
    let mut content = Content::new();

    // Letterhead.
    let mut y = TOP;
    text_line(&mut content, BOLD, 14.0, y, letter.company);
    y -= 18.0;
    for line in letter
        .address
        .iter()
        .map(String::as_str)
        .chain(Some(letter.contact))
        .filter(|l| !l.trim().is_empty())
    {
        text_line(&mut content, REGULAR, 9.0, y, line);
        y -= 12.0;
    }
    y -= 4.0;
    content
        .set_line_width(0.5)
        .move_to(LEFT, y)
        .line_to(A4.0 - LEFT, y)
        .stroke();
    y -= 30.0;

    // Body.
    for line in letter.body.lines().flat_map(wrap) {
        if y < BOTTOM {
            pages.push(std::mem::replace(&mut content, Content::new()));
            y = TOP;
        }
        text_line(&mut content, REGULAR, BODY_SIZE, y, &line);
        y -= LEADING;
    }
    pages.push(content);

    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let first_page = 6;
    let page_ids: Vec<Ref> = (0..pages.len())
        .map(|k| Ref::new(first_page + 2 * k as i32))
        .collect();

    let mut pdf = Pdf::new();
    pdf.catalog(catalog)
        .pages(tree)
        .lang(TextStr(letter.language));
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
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
    for (page_id, content) in page_ids.iter().zip(pages) {
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, A4.0, A4.1))
            .parent(tree)
            .contents(content_id);
        let mut resources = page.resources();
        resources.fonts().pair(REGULAR, regular).pair(BOLD, bold);
        resources.finish();
        page.finish();
        pdf.stream(content_id, &content.finish());
    }
    pdf.finish()
}

/// One line of text at the left margin. ASCII runs are written as literal
/// strings (searchable in the file), the rest in WinAnsi bytes.
fn text_line(content: &mut Content, font: Name, size: f32, y: f32, text: &str) {
    let bytes = win_ansi(text);
    content.begin_text();
    content.set_font(font, size);
    content.next_line(LEFT, y);
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

/// A line wrapped at word boundaries to [`WRAP`] characters (a word
/// longer than that, such as a pay link, is cut). Leading spaces are kept.
fn wrap(line: &str) -> Vec<String> {
    let line = line.trim_end();
    if line.chars().count() <= WRAP {
        return vec![line.to_string()];
    }
    let indent: String = line.chars().take_while(|c| *c == ' ').collect();
    let mut out = Vec::new();
    let mut current = indent.clone();
    for word in line.split_whitespace() {
        let used = current.chars().count();
        let fresh = used == indent.chars().count();
        if !fresh && used + 1 + word.chars().count() > WRAP {
            out.push(std::mem::replace(&mut current, indent.clone()));
        }
        if current.chars().count() > indent.chars().count() {
            current.push(' ');
        }
        let mut rest: Vec<char> = word.chars().collect();
        while current.chars().count() + rest.len() > WRAP {
            let room = WRAP.saturating_sub(current.chars().count()).max(1);
            let head: String = rest.drain(..room.min(rest.len())).collect();
            current.push_str(&head);
            out.push(std::mem::replace(&mut current, indent.clone()));
        }
        current.extend(rest);
    }
    if current.chars().count() > indent.chars().count() {
        out.push(current);
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

    #[test]
    fn letter_is_a_pdf_with_letterhead_and_body() {
        let address = vec!["Hauptstraße 5".to_string(), "10115 Berlin".to_string()];
        let body = "3. April 2027\n\nRechnung 2027-00880, fällig am 3. März 2027\n".to_string()
            + &"Zahlungslink: https://pay.example.com/i/".repeat(3)
            + "\n"
            + &"Zeile\n".repeat(80);
        let letter = Letter {
            company: "Beispiel GmbH",
            address: &address,
            contact: "buchhaltung@beispiel.de",
            title: "Letzte Mahnung: Rechnung 2027-00880",
            body: &body,
            language: "de-DE",
        };
        let bytes = letter_pdf(&letter);
        assert!(bytes.starts_with(b"%PDF-"));
        assert!(contains(&bytes, b"(Beispiel GmbH)"));
        // `ß` (0xDF in WinAnsi) is written apart from the ASCII around it.
        assert!(contains(&bytes, b"(Hauptstra)"));
        assert!(contains(&bytes, b"<DF>"), "ß as WinAnsi");
        assert!(contains(&bytes, b"(e 5)"));
        assert!(contains(&bytes, b"(10115 Berlin)"));
        assert!(contains(&bytes, b"(buchhaltung@beispiel.de)"));
        assert!(contains(&bytes, b"(Rechnung 2027-00880, f)"));
        assert!(contains(&bytes, b"/WinAnsiEncoding"));
        // 80 more lines do not fit one page.
        assert!(contains(&bytes, b"/Count 2"), "two pages");
        assert_eq!(bytes, letter_pdf(&letter), "deterministic");
    }

    #[test]
    fn wrapping_keeps_words_and_cuts_long_ones() {
        let long = "wort ".repeat(40);
        let lines = wrap(&format!("  {long}"));
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| l.chars().count() <= WRAP), "{lines:?}");
        assert!(lines.iter().all(|l| l.starts_with("  wort")), "{lines:?}");
        let url = format!("https://pay.example.com/{}", "x".repeat(200));
        let lines = wrap(&url);
        assert_eq!(lines.concat(), url);
        assert!(lines.iter().all(|l| l.chars().count() <= WRAP));
        assert_eq!(wrap("kurz"), vec!["kurz"]);
        assert_eq!(win_ansi("Grüße – 5 €"), b"Gr\xfc\xdfe \x96 5 \x80");
        assert_eq!(win_ansi("日本"), b"??");
    }
}
