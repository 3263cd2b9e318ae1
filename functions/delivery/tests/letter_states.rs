#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The rule `collect check` holds templates to (`T0004`): a merged message
//! lists invoices in every state, so a template must read differently
//! when its invoices are past due than when they are not yet due
//! ([`Templates::check_states`]); and what each invoice carries into the
//! template on the day it is sent.

use collect_delivery::message::{InvoiceState, MessageContext, Templates};
use std::path::Path;

fn shipped() -> Templates {
    Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policy/templates")).unwrap()
}

fn write(dir: &Path, name: &str, subject: &str, text: &str, html: &str) {
    let d = dir.join(name).join("en");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("subject.txt"), subject).unwrap();
    std::fs::write(d.join("body.txt"), text).unwrap();
    std::fs::write(d.join("body.html"), html).unwrap();
}

#[test]
fn the_shipped_templates_say_each_invoices_state() {
    let t = shipped();
    for name in t.names() {
        let offer = name == "plan-offer";
        assert_eq!(t.check_states(&name, offer), [], "{name}");
        assert_eq!(t.check_sends(&name, offer), [], "{name}");
    }
}

#[test]
fn a_template_that_calls_every_invoice_past_due_is_warned_about() {
    let tmp = tempfile::tempdir().unwrap();
    // As the firm notice read before: the whole list under past-due words.
    write(
        tmp.path(),
        "blind",
        "Overdue: {{ invoices|length }} invoices ({{ total_balance }})",
        "The following invoices are past due:\n{% for invoice in invoices %}- {{ invoice.number }}, due {{ invoice.due_date }}\n{% endfor %}",
        "<p>The following invoices are past due:</p>{% for invoice in invoices %}<p>{{ invoice.number }}</p>{% endfor %}",
    );
    // The same words, each invoice under its own state.
    write(
        tmp.path(),
        "true",
        "{% if past_due %}Overdue: {{ past_due|length }} invoices ({{ past_due_total }}){% else %}Open: {{ invoices|length }} invoices{% endif %}",
        "{% for invoice in invoices %}- {{ invoice.number }}{% if invoice.state == \"past_due\" %}, {{ invoice.days_overdue }} days past due{% endif %}\n{% endfor %}",
        "{% if past_due %}<p>Past due:</p>{% for invoice in past_due %}<p>{{ invoice.number }}</p>{% endfor %}{% endif %}{% for invoice in due_today + coming_due %}<p>{{ invoice.number }}</p>{% endfor %}",
    );
    // A part that neither names nor counts the invoices may ignore it.
    write(
        tmp.path(),
        "neutral",
        "A message from us",
        "Hello {{ customer.name }}, {{ past_due|length }}",
        "<p>Hello {{ customer.name }}</p>",
    );
    let t = Templates::load(tmp.path()).unwrap();
    let blind: Vec<String> = t
        .check_states("blind", false)
        .iter()
        .map(|p| {
            format!(
                "{}: {}",
                p.file.file_name().unwrap().to_str().unwrap(),
                p.message.split(" reads").next().unwrap()
            )
        })
        .collect();
    assert_eq!(
        blind,
        [
            "body.html: the HTML body",
            "body.txt: the text body",
            "subject.txt: the subject"
        ]
    );
    assert!(
        t.check_states("blind", false)[0]
            .message
            .contains("`past_due`")
    );
    // An offer's subject only offers.
    assert_eq!(t.check_states("blind", true).len(), 2);
    assert_eq!(t.check_states("true", false), []);
    assert_eq!(t.check_states("neutral", false), []);
}

#[test]
fn each_invoice_carries_its_state_on_the_sending_day() {
    let s = MessageContext::sample();
    let states: Vec<(InvoiceState, i64, i64, &str, &str)> = s
        .lists
        .invoices
        .iter()
        .map(|i| {
            (
                i.state,
                i.days_overdue,
                i.days_until_due,
                i.step.as_str(),
                i.template.as_str(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (InvoiceState::PastDue, 30, 0, "due + 30d", "firm-notice"),
            (InvoiceState::DueToday, 0, 0, "due", "urgent-notice"),
            (
                InvoiceState::NotYetDue,
                0,
                14,
                "due - 14d",
                "early-heads-up"
            )
        ]
    );
    assert_eq!(s.lists.past_due_total, "USD 1,200.00");
    assert_eq!(s.lists.due_today_total, "USD 340.50");
    assert_eq!(s.lists.coming_due_total, "USD 210.00");
    assert_eq!(s.lists.total_balance, "USD 1,750.50");
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["invoices"][1]["state"], "due_today");
    assert_eq!(v["coming_due"][0]["number"], "2025-0063");
    // One state for all, the rest unchanged.
    let all = MessageContext::sample_all(InvoiceState::NotYetDue);
    assert_eq!(all.lists.coming_due.len(), 3);
    assert!(all.lists.past_due.is_empty() && all.lists.due_today.is_empty());
    assert_eq!(all.today, s.today);
    assert_eq!(all.lists.invoices[0].due_date, s.lists.invoices[0].due_date);
    assert_eq!(MessageContext::sample_first(1).lists.invoices.len(), 1);
    assert_eq!(MessageContext::sample_first(1).lists.due_today, []);
}
