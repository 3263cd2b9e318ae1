//! Letters in the customer's language and formats: every template the
//! standard policy sends, composed by the production path
//! (`Sweeper::compose`) for a German customer, is the German version with
//! German dates and money; the legal letter carries a printable PDF with the
//! company's address; headers carry the send time and the sender's domain.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use collect_delivery::mailer::{Mailer, Outbox};
use collect_delivery::message::{OutgoingMessage, to_rfc5322};
use collect_engine::book::Book;
use collect_engine::domain::Channel;
use collect_engine::sweep::PlannedMessage;
use collect_testkit::book::{Env, customer, day, invoice, money, policy_dir};
use policy_lang::PLAN_OFFER_TEMPLATE;
use policy_lang::compile::CAction;

/// The templates the standard policy sends, with their channel.
fn standard_sends() -> (String, BTreeSet<(String, &'static str)>) {
    let source = std::fs::read_to_string(policy_dir().join("standard-net30.policy")).unwrap();
    let (policy, _) = policy_lang::load(&source, "standard-net30.policy", None)
        .unwrap_or_else(|d| panic!("{d:?}"));
    let mut out = BTreeSet::new();
    let mut add = |a: &CAction| match a {
        CAction::Email { template } => {
            out.insert((template.clone(), "email"));
        }
        CAction::Letter { template } => {
            out.insert((template.clone(), "letter"));
        }
        CAction::OfferPlan(_) => {
            out.insert((PLAN_OFFER_TEMPLATE.to_string(), "offer"));
        }
        _ => {}
    };
    for step in policy.ladders.iter().flat_map(|l| &l.steps) {
        match &step.action {
            CAction::Experiment { arms, .. } => {
                for arm in arms.iter().filter_map(|a| a.action.as_deref()) {
                    add(arm);
                }
            }
            other => add(other),
        }
    }
    (source, out)
}

/// Every `YYYY-MM-DD` in a text, links left out (their tokens are opaque).
fn iso_dates(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for word in text.split(|c: char| c.is_whitespace() || c == '>' || c == '<') {
        if word.contains("://") || word.contains("href=") {
            continue;
        }
        let chars: Vec<char> = word.chars().collect();
        for start in 0..chars.len() {
            let Some(w) = chars.get(start..start + 10) else {
                break;
            };
            let digit = |k: usize| w[k].is_ascii_digit();
            let bounded = start == 0 || !chars[start - 1].is_ascii_digit();
            let after = chars.get(start + 10).is_none_or(|c| !c.is_ascii_digit());
            if bounded
                && after
                && (0..4).all(digit)
                && w[4] == '-'
                && (5..7).all(digit)
                && w[7] == '-'
                && (8..10).all(digit)
            {
                found.push(w.iter().collect());
            }
        }
    }
    found
}

struct Case {
    env: Env,
    book: Book,
    sends: BTreeSet<(String, &'static str)>,
}

const DUE: &str = "2027-04-03";
const SENT_AT: &str = "2027-05-03T08:15:42Z";

fn case(language: &str, country: &str) -> Case {
    let (source, sends) = standard_sends();
    let env = Env::with_policy(&source);
    let mut c = customer("C-0042");
    c.name = "Weber Maschinenbau GmbH".to_string();
    c.language = language.to_string();
    c.country = Some(country.to_string());
    let mut inv = invoice("INV-27-00880", "C-0042", DUE, "2763.63");
    inv.number = "2027-00880".to_string();
    let book = Book::new(vec![c], vec![inv], Vec::new(), Vec::new(), Vec::new());
    Case { env, book, sends }
}

fn compose(c: &Case, template: &str, channel: &str, address: &[&str]) -> OutgoingMessage {
    let mut sweeper = c.env.sweeper();
    sweeper.sender.address = address.iter().map(|s| s.to_string()).collect();
    let on: NaiveDate = day("2027-05-03");
    let planned = PlannedMessage {
        message_id: format!("msg-{template}").into(),
        customer_id: "C-0042".into(),
        channel: Channel::parse(channel).unwrap(),
        template: template.to_string(),
        action_ids: vec![format!("act-{template}").into()],
        invoice_ids: vec!["INV-27-00880".into()],
        plan: (channel == "offer").then(|| {
            vec![
                (on, money("276.36")),
                (day("2027-06-02"), money("829.09")),
                (day("2027-07-02"), money("829.09")),
                (day("2027-08-01"), money("829.09")),
            ]
        }),
        tags: Vec::new(),
    };
    let customer = c.book.customers.get("C-0042").unwrap();
    let sent_at: DateTime<Utc> = SENT_AT.parse().unwrap();
    sweeper
        .compose_at(&c.book, customer, &planned, on, sent_at)
        .unwrap_or_else(|e| panic!("{template}: {e}"))
}

#[test]
fn german_customers_get_german_letters_with_german_formats() {
    let c = case("de", "DE");
    assert!(c.sends.len() >= 7, "{:?}", c.sends);
    for (template, channel) in &c.sends {
        assert_eq!(
            c.env.templates.language_for(template, "de").as_deref(),
            Some("de"),
            "`{template}` falls back to English for German customers"
        );
        let msg = compose(&c, template, channel, &["Beispielweg 12", "10115 Berlin"]);
        for (part, text) in [
            ("subject", &msg.subject),
            ("text", &msg.text),
            ("html", &msg.html),
        ] {
            assert!(
                iso_dates(text).is_empty(),
                "{template} {part}: ISO dates {:?} in\n{text}",
                iso_dates(text)
            );
            assert!(
                !text.contains("2,763.63"),
                "{template} {part}: US money\n{text}"
            );
            for english in ["Dear ", "Invoice ", "Please ", "Kind regards", "due on"] {
                assert!(
                    !text.contains(english),
                    "{template} {part}: English `{english}` in\n{text}"
                );
            }
        }
        // Money and the due date, German style, in the body.
        assert!(
            msg.text.contains("2.763,63 USD"),
            "{template}:\n{}",
            msg.text
        );
        assert!(
            msg.html.contains("2.763,63 USD"),
            "{template}:\n{}",
            msg.html
        );
        assert!(
            msg.text.contains("3. April 2027"),
            "{template}: no German due date in\n{}",
            msg.text
        );
        assert!(
            msg.html.contains("3. April 2027") || msg.html.contains("03.04.2027"),
            "{template}: no German due date in\n{}",
            msg.html
        );
    }
    let offer = compose(&c, PLAN_OFFER_TEMPLATE, "offer", &[]);
    assert!(offer.text.contains("829,09 USD"), "{}", offer.text);
    assert!(offer.text.contains("2. Juni 2027"), "{}", offer.text);
}

#[test]
fn english_customers_get_english_formats() {
    let c = case("en", "US");
    for (template, channel) in &c.sends {
        let msg = compose(&c, template, channel, &[]);
        for text in [&msg.subject, &msg.text, &msg.html] {
            assert!(
                iso_dates(text).is_empty(),
                "{template}: ISO dates in\n{text}"
            );
            assert!(!text.contains("2.763,63"), "{template}:\n{text}");
        }
        assert!(
            msg.text.contains("USD 2,763.63"),
            "{template}:\n{}",
            msg.text
        );
        assert!(
            msg.text.contains("April 3, 2027"),
            "{template}:\n{}",
            msg.text
        );
    }
    // No French version: the English one, with English month names (the
    // country still gives the number style, as CLDR's en-FR has it).
    let fr = case("fr", "FR");
    let msg = compose(&fr, "urgent-notice", "email", &[]);
    assert!(msg.text.contains("3 April 2027"), "{}", msg.text);
    assert!(!msg.text.contains("avril"), "{}", msg.text);
    let gb = case("en", "GB");
    let msg = compose(&gb, "legal-notice", "letter", &[]);
    assert!(
        msg.text.contains("3 May 2027"),
        "the letter's date:\n{}",
        msg.text
    );
}

#[test]
fn the_legal_letter_is_attached_as_a_pdf_and_saved_beside_the_eml() {
    let c = case("de", "DE");
    let msg = compose(
        &c,
        "legal-notice",
        "letter",
        &["Beispielweg 12", "10115 Berlin"],
    );
    assert_eq!(msg.attachments.len(), 1);
    let pdf = &msg.attachments[0];
    assert_eq!(pdf.content_type, "application/pdf");
    assert_eq!(pdf.filename, "legal-notice-2027-00880.pdf");
    let has = |needle: &str| {
        pdf.content
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    };
    assert!(pdf.content.starts_with(b"%PDF-"));
    if let Ok(out) = std::env::var("LETTER_PDF_OUT") {
        std::fs::write(out, &pdf.content).unwrap();
    }
    for needle in [
        "(Example Supplies)",
        "(Beispielweg 12)",
        "(10115 Berlin)",
        "2027-00880",
        "2.763,63 USD",
    ] {
        assert!(has(needle), "`{needle}` is not in the PDF");
    }
    // An email is not a letter: no attachment.
    assert!(
        compose(&c, "firm-notice", "email", &[])
            .attachments
            .is_empty()
    );

    // Headers: the send time, the sender's domain, the PDF as a part.
    let eml = String::from_utf8(to_rfc5322(&msg).unwrap()).unwrap();
    assert!(
        eml.contains("Date: Mon, 03 May 2027 08:15:42 +0000"),
        "{eml}"
    );
    assert!(
        eml.contains("Message-ID: <msg-legal-notice@example.com>"),
        "{eml}"
    );
    assert!(eml.contains("Content-Type: multipart/mixed"), "{eml}");
    assert!(eml.contains("Content-Type: application/pdf"), "{eml}");

    // The outbox keeps the PDF beside the .eml.
    let tmp = tempfile::tempdir().unwrap();
    let outbox = Outbox::new(tmp.path());
    pollster::block_on(outbox.send(&msg)).unwrap();
    let dir = Path::new(tmp.path()).join("2027-05-03");
    assert!(dir.join("msg-legal-notice.eml").is_file());
    assert_eq!(
        std::fs::read(dir.join("msg-legal-notice.pdf")).unwrap(),
        pdf.content
    );
}
