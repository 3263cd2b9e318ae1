//! Reading sent messages the way a customer does, to find every invoice a
//! message describes as past due that is not past due on the day it was
//! sent (due today is not past due).
//!
//! The reading is deliberately plain, and the same for every template and
//! language, so that the shipped templates and the ones finance ops write
//! are held to it alike:
//! - **Claims.** Past-due wording is one of [`CLAIMS`] (`past due`,
//!   `overdue`, `überfällig`, …), unless a negation (`not`, `nothing`,
//!   `nicht`, `nichts`, `kein`, …) comes before it in the same sentence
//!   ("nothing is past due yet" claims nothing).
//! - **Text body.** Each line naming one of the message's invoice numbers
//!   is an *item*; it is described by its own line and its continuation
//!   lines (indented deeper), and by its *heading*: the nearest paragraph
//!   above it that is neither an item nor indented — a section title
//!   (`Past due:`) or the sentence introducing a list ("the following
//!   invoices are past due …"). Either one claiming past due claims it of
//!   the invoice.
//! - **HTML body.** Each table row naming an invoice is described by its
//!   own cells, the table's header rows, and everything between the
//!   previous table (or the top) and its table: the title, the opening
//!   paragraphs, a section heading.
//! - **Subject.** Split into clauses (at ` · `, `;`, ` – `, `(`, `)`); a
//!   clause with past-due wording claims it of the invoice numbers it
//!   names, says how many are past due with a count before `invoice(s)` /
//!   `Rechnung(en)` (that count must be the number past due), or, naming
//!   neither, that at least one is past due.

use chrono::NaiveDate;

/// Words that call an invoice past due, lower case.
pub const CLAIMS: [&str; 7] = [
    "past due",
    "past-due",
    "overdue",
    "überfällig",
    "zahlungsverzug",
    "in verzug",
    "im verzug",
];

/// Words that, earlier in the same sentence, negate a claim.
const NEGATIONS: [&str; 9] = [
    "not", "nothing", "no", "none", "nicht", "nichts", "kein", "keine", "keiner",
];

/// Nouns a count in a subject counts.
const NOUNS: [&str; 4] = ["invoice", "invoices", "rechnung", "rechnungen"];

/// An invoice a message is about, as the book knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub number: String,
    pub due: NaiveDate,
}

/// A sent message, as the customer reads it.
#[derive(Debug, Clone)]
pub struct Sent {
    /// For the findings: the message id or the file.
    pub name: String,
    /// The day it was sent.
    pub day: NaiveDate,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub invoices: Vec<Listed>,
}

/// Every false past-due claim of a message, one sentence each.
pub fn false_past_due(m: &Sent) -> Vec<String> {
    let mut out = Vec::new();
    let past_due = |l: &Listed| l.due < m.day;
    let claim = |out: &mut Vec<String>, l: &Listed, part: &str, said: &str| {
        if !past_due(l) {
            let state = if l.due == m.day {
                "due that very day".to_string()
            } else {
                format!("due in {} days", (l.due - m.day).num_days())
            };
            out.push(format!(
                "{} (sent {}): invoice {} ({state}, on {}) is called past due by its {part}: `{}`",
                m.name,
                m.day,
                l.number,
                l.due,
                said.trim()
            ));
        }
    };
    for (l, said) in text_claims(&m.text, &m.invoices) {
        claim(&mut out, l, "text", &said);
    }
    for (l, said) in html_claims(&m.html, &m.invoices) {
        claim(&mut out, l, "HTML", &said);
    }
    // The subject.
    let n_past_due = m.invoices.iter().filter(|l| past_due(l)).count();
    for clause in m
        .subject
        .split([';', '(', ')', '·', '–'])
        .filter(|c| claims_past_due(c))
    {
        let named: Vec<&Listed> = m
            .invoices
            .iter()
            .filter(|l| names(clause, &l.number))
            .collect();
        for l in &named {
            claim(&mut out, l, "subject", clause);
        }
        let counts = counts(clause);
        for n in &counts {
            if *n != n_past_due {
                out.push(format!(
                    "{} (sent {}): the subject counts {n} past due, {n_past_due} of its {} invoices are: `{}`",
                    m.name,
                    m.day,
                    m.invoices.len(),
                    m.subject
                ));
            }
        }
        if named.is_empty() && counts.is_empty() && n_past_due == 0 {
            out.push(format!(
                "{} (sent {}): the subject says past due, none of its {} invoices is: `{}`",
                m.name,
                m.day,
                m.invoices.len(),
                m.subject
            ));
        }
    }
    out
}

/// Whether `text` holds a past-due claim not negated earlier in its
/// sentence.
pub fn claims_past_due(text: &str) -> bool {
    let lower = text.to_lowercase();
    CLAIMS.iter().any(|c| {
        lower.match_indices(c).any(|(at, _)| {
            let before = lower.get(..at).unwrap_or("");
            let sentence = before
                .rfind(['.', '!', '?', ':', '\n'])
                .map_or(before, |k| before.get(k + 1..).unwrap_or(""));
            !sentence
                .split(|ch: char| !ch.is_alphanumeric())
                .any(|w| NEGATIONS.contains(&w))
        })
    })
}

/// Whether `text` names the invoice `number` (not as part of a longer
/// number).
fn names(text: &str, number: &str) -> bool {
    text.match_indices(number).any(|(at, _)| {
        let before = text.get(..at).and_then(|b| b.chars().last());
        let after = text.get(at + number.len()..).and_then(|a| a.chars().next());
        let free = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric() && c != '-');
        free(before) && free(after)
    })
}

/// The counts in a clause: a whole number followed (past an adjective
/// such as `overdue`) by `invoice(s)` / `Rechnung(en)`.
fn counts(clause: &str) -> Vec<usize> {
    let words: Vec<String> = clause
        .split(|c: char| c.is_whitespace() || c == ':' || c == ',')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut out = Vec::new();
    for (k, w) in words.iter().enumerate() {
        let Ok(n) = w.parse::<usize>() else { continue };
        let next = words.get(k + 1).map(String::as_str);
        let after = words.get(k + 2).map(String::as_str);
        if next.is_some_and(|x| NOUNS.contains(&x))
            || (next.is_some_and(|x| !NOUNS.contains(&x))
                && after.is_some_and(|x| NOUNS.contains(&x)))
        {
            out.push(n);
        }
    }
    out
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The invoices a text body calls past due, with the words that do.
pub fn text_claims<'a>(text: &str, invoices: &'a [Listed]) -> Vec<(&'a Listed, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let item = |line: &str| invoices.iter().any(|l| names(line, &l.number));
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let listed: Vec<&Listed> = invoices.iter().filter(|l| names(line, &l.number)).collect();
        if listed.is_empty() {
            continue;
        }
        // Its own lines: the line and those indented deeper below it.
        let mut own = line.to_string();
        for next in lines.iter().skip(i + 1) {
            if next.trim().is_empty() || item(next) || indent(next) <= indent(line) {
                break;
            }
            own.push('\n');
            own.push_str(next);
        }
        // Its heading: the nearest paragraph above that is no item and not
        // indented.
        let mut k = i;
        while k > 0 {
            let l = lines.get(k - 1).copied().unwrap_or("");
            if l.trim().is_empty() || item(l) || indent(l) > 0 {
                k -= 1;
            } else {
                break;
            }
        }
        let mut heading = Vec::new();
        while k > 0 {
            let l = lines.get(k - 1).copied().unwrap_or("");
            if l.trim().is_empty() || item(l) || indent(l) > 0 {
                break;
            }
            heading.push(l);
            k -= 1;
        }
        heading.reverse();
        let heading = heading.join("\n");
        for l in listed {
            if claims_past_due(&own) {
                out.push((l, own.clone()));
            } else if claims_past_due(&heading) {
                out.push((l, heading.clone()));
            }
        }
    }
    out
}

/// Text of an HTML fragment: tags dropped (block ends as line breaks),
/// the few entities templates produce decoded.
pub fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        out.push_str(rest.get(..at).unwrap_or(""));
        let Some(end) = rest.get(at..).and_then(|r| r.find('>')) else {
            break;
        };
        let tag = rest
            .get(at + 1..at + end)
            .unwrap_or("")
            .to_ascii_lowercase();
        let name = tag.trim_start_matches('/');
        if ["p", "br", "h1", "h2", "h3", "tr", "li", "div", "table"]
            .iter()
            .any(|t| name == *t || name.starts_with(&format!("{t} ")))
        {
            out.push('\n');
        } else {
            out.push(' ');
        }
        rest = rest.get(at + end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
}

/// The invoices an HTML body calls past due, with the words that do.
pub fn html_claims<'a>(html: &str, invoices: &'a [Listed]) -> Vec<(&'a Listed, String)> {
    let mut out = Vec::new();
    let mut before = String::new();
    let mut rest = html;
    while let Some(at) = rest.find("<table") {
        before.push_str(rest.get(..at).unwrap_or(""));
        let tail = rest.get(at..).unwrap_or("");
        let end = tail
            .find("</table>")
            .map_or(tail.len(), |e| e + "</table>".len());
        let table = tail.get(..end).unwrap_or("");
        let mut heading = html_text(&before);
        for row in table.split("<tr").skip(1) {
            let cells = html_text(&format!("<tr{row}"));
            let listed: Vec<&Listed> = invoices
                .iter()
                .filter(|l| names(&cells, &l.number))
                .collect();
            if listed.is_empty() {
                // A header row: it describes the rows below it.
                heading.push('\n');
                heading.push_str(&cells);
                continue;
            }
            for l in listed {
                // A row's cells are one sentence each: `Days past due` in
                // the header describes the `0` below it.
                if claims_past_due(&cells) {
                    out.push((l, cells.clone()));
                } else if claims_past_due(&heading) {
                    out.push((l, heading.clone()));
                }
            }
        }
        before.clear();
        rest = tail.get(end..).unwrap_or("");
    }
    out
}

/// One message of an outbox, read back from its `.eml` file.
#[derive(Debug, Clone, Default)]
pub struct Eml {
    /// Unfolded, decoded (RFC 2047) header values by lower-case name.
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub html: String,
}

impl Eml {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Parses an `.eml` as the outbox writes it: MIME parts split at every
    /// boundary the message declares, bodies decoded (quoted-printable,
    /// base64).
    pub fn parse(raw: &str) -> Eml {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
        let headers = parse_headers(head);
        let boundaries: Vec<String> = raw
            .match_indices("boundary=\"")
            .filter_map(|(at, m)| {
                let from = at + m.len();
                let rest = raw.get(from..)?;
                rest.find('"')
                    .and_then(|e| rest.get(..e))
                    .map(str::to_string)
            })
            .collect();
        let mut eml = Eml {
            headers,
            ..Eml::default()
        };
        let mut part = String::new();
        let mut parts = Vec::new();
        for line in body.lines() {
            if boundaries
                .iter()
                .any(|b| line.starts_with(&format!("--{b}")))
            {
                parts.push(std::mem::take(&mut part));
                continue;
            }
            part.push_str(line);
            part.push('\n');
        }
        parts.push(part);
        for p in parts {
            let Some((h, b)) = p.split_once("\n\n") else {
                continue;
            };
            let h = parse_headers(h);
            let get = |n: &str| {
                h.iter()
                    .find(|(k, _)| k == n)
                    .map_or("", |(_, v)| v.as_str())
                    .to_ascii_lowercase()
            };
            let decoded = match get("content-transfer-encoding").as_str() {
                "quoted-printable" => quoted_printable(b),
                "base64" => base64_text(b),
                _ => b.to_string(),
            };
            let ty = get("content-type");
            if ty.starts_with("text/plain") && eml.text.is_empty() {
                eml.text = decoded;
            } else if ty.starts_with("text/html") && eml.html.is_empty() {
                eml.html = decoded;
            }
        }
        eml
    }
}

fn parse_headers(head: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push_str(line);
            }
        } else if let Some((n, v)) = line.split_once(':') {
            out.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    for (_, v) in &mut out {
        *v = decode_words(v);
    }
    out
}

/// RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) decoded;
/// the space between two encoded words dropped.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut last_was_word = false;
    while let Some(at) = rest.find("=?") {
        let gap = rest.get(..at).unwrap_or("");
        let after = rest.get(at + 2..).unwrap_or("");
        let parts: Vec<&str> = after.splitn(3, '?').collect();
        let (Some(enc), Some(tail)) = (parts.get(1), parts.get(2)) else {
            break;
        };
        let Some(end) = tail.find("?=") else { break };
        let data = tail.get(..end).unwrap_or("");
        if !(last_was_word && gap.trim().is_empty()) {
            out.push_str(gap);
        }
        match enc.to_ascii_lowercase().as_str() {
            "b" => out.push_str(&base64_text(data)),
            _ => out.push_str(&quoted_printable(&data.replace('_', " "))),
        }
        last_was_word = true;
        rest = tail.get(end + 2..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

fn base64_text(data: &str) -> String {
    use base64::Engine as _;
    let clean: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(clean)
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn quoted_printable(data: &str) -> String {
    let mut bytes = Vec::with_capacity(data.len());
    let mut lines = data.split('\n').peekable();
    while let Some(line) = lines.next() {
        let soft = line.ends_with('=');
        let line = if soft {
            line.get(..line.len() - 1).unwrap_or("")
        } else {
            line
        };
        let b = line.as_bytes();
        let mut k = 0;
        while k < b.len() {
            let c = b.get(k).copied().unwrap_or(0);
            if c == b'=' {
                let hex = line.get(k + 1..k + 3).unwrap_or("");
                if let Ok(v) = u8::from_str_radix(hex, 16) {
                    bytes.push(v);
                    k += 3;
                    continue;
                }
            }
            bytes.push(c);
            k += 1;
        }
        if !soft && lines.peek().is_some() {
            bytes.push(b'\n');
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn msg(subject: &str, text: &str, html: &str) -> Sent {
        Sent {
            name: "m".into(),
            day: day("2027-04-05"),
            subject: subject.into(),
            text: text.into(),
            html: html.into(),
            invoices: vec![
                Listed {
                    number: "2027-00575".into(),
                    due: day("2027-03-28"),
                },
                Listed {
                    number: "2027-00578".into(),
                    due: day("2027-04-05"),
                },
            ],
        }
    }

    #[test]
    fn a_list_under_past_due_wording_is_called_past_due() {
        let text = "Hello,\n\nOur records show that the following invoices are past due and still unpaid,\ndespite our earlier reminders.\n\n- Invoice 2027-00575: USD 1.00, due March 28, 2027\n  Pay online: x\n- Invoice 2027-00578: USD 2.00, due April 5, 2027\n  Pay online: y\n\nTotal open: USD 3.00\n";
        let found = false_past_due(&msg("Overdue: 2 invoices (USD 3.00)", text, ""));
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found[0].contains("2027-00578") && found[0].contains("due that very day"));
        assert!(found[1].contains("counts 2 past due, 1"));
    }

    #[test]
    fn sections_by_state_and_negations_claim_nothing_false() {
        let text = "Hello,\n\nNothing is past due yet on this one.\n\nPast due:\n- Invoice 2027-00575: due March 28, 2027, 8 days past due\n  Pay online: x\n\nDue today:\n- Invoice 2027-00578: due April 5, 2027\n  Pay online: y\n";
        let html = "<h1>Overdue payment</h1><h2>Past due</h2><table><tr><th>Invoice</th></tr><tr><td>2027-00575</td></tr></table><h2>Due today</h2><table><tr><th>Invoice</th></tr><tr><td>2027-00578</td></tr></table>";
        let found = false_past_due(&msg("Overdue: 1 invoice; 1 due today", text, html));
        assert!(found.is_empty(), "{found:#?}");
        // The same HTML with the second table under the title only.
        let html = "<h1>Overdue payment</h1><table><tr><td>2027-00578</td></tr></table>";
        assert_eq!(false_past_due(&msg("", "", html)).len(), 1);
        // A column header describes the rows.
        let html =
            "<table><tr><th>Days past due</th></tr><tr><td>2027-00578</td><td>0</td></tr></table>";
        assert_eq!(false_past_due(&msg("", "", html)).len(), 1);
        assert!(!claims_past_due("Noch ist nichts überfällig"));
        assert!(claims_past_due("Überfällig: Rechnung 1"));
    }

    #[test]
    fn an_eml_is_read_back() {
        let raw = "Subject: =?utf-8?b?w5xiZXJmw6RsbGln?= 2\nContent-Type: multipart/alternative;\n boundary=\"b1\"\n\n--b1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nf=C3=A4llig am=\n 5.\n--b1\nContent-Type: text/html\n\n<p>x</p>\n--b1--\n";
        let e = Eml::parse(raw);
        assert_eq!(e.header("Subject"), Some("Überfällig 2"));
        assert_eq!(e.text.trim_end(), "fällig am 5.");
        assert_eq!(e.html.trim_end(), "<p>x</p>");
    }
}

/// The reading of every message a run sent: how many, in which languages,
/// how many use past-due wording, and each false past-due claim. The demo's
/// outbox and a generated book's captured mail are read with it alike.
#[derive(Debug, Default)]
pub struct Tally {
    pub messages: usize,
    pub languages: std::collections::BTreeMap<String, usize>,
    /// Messages with past-due wording in the subject, text or HTML.
    pub claiming: usize,
    /// One line per false claim, starting with the message's name.
    pub findings: Vec<String>,
}

impl Tally {
    /// Reads one sent message, written in `language`.
    pub fn add(&mut self, sent: &Sent, language: &str) {
        self.messages += 1;
        *self.languages.entry(language.to_string()).or_default() += 1;
        if claims_past_due(&sent.subject)
            || claims_past_due(&sent.text)
            || claims_past_due(&html_text(&sent.html))
        {
            self.claiming += 1;
        }
        self.findings.extend(false_past_due(sent));
    }

    /// Prints the figures and asserts what the letters must be: more than
    /// 100 messages, some in German, some with past-due wording, and no
    /// false past-due claim. `what` names the book in the messages.
    pub fn assert_all_true(&self, what: &str) {
        let bad: std::collections::BTreeSet<&str> = self
            .findings
            .iter()
            .map(|f| f.split(' ').next().unwrap_or(""))
            .collect();
        eprintln!(
            "{what}: {} messages ({:?}), {} with past-due wording, {} of them with a false \
             past-due claim ({} claims)",
            self.messages,
            self.languages,
            self.claiming,
            bad.len(),
            self.findings.len()
        );
        assert!(
            self.messages > 100,
            "{what} sends letters: {}",
            self.messages
        );
        assert!(
            self.languages.get("de").is_some_and(|n| *n > 0),
            "{what}: {:?}",
            self.languages
        );
        assert!(self.claiming > 0, "{what} sends past-due letters");
        assert!(
            self.findings.is_empty(),
            "{what}: {} messages call an invoice past due that is not:\n{}",
            bad.len(),
            self.findings.join("\n")
        );
    }
}
