//! How the language writes steps and actions for people: the offset of a
//! step (`due - 3d`), the short label of an action (`email
//! friendly-reminder`, as recorded on every action and shown by `explain`
//! and `diff`) and an action's canonical source text (as `collect fmt`
//! writes it and the checker quotes it). One place, used by the checker,
//! the formatter, the compiler and the tools.

use crate::ast::{Action, DownPayment};
use crate::syntax::quote;

/// `due`, `due - 3d`, `due + 7d`.
pub fn offset_text(days: i64) -> String {
    match days {
        0 => "due".to_string(),
        d if d < 0 => format!("due - {}d", -d),
        d => format!("due + {d}d"),
    }
}

/// A short name for what an action does: `email friendly-reminder`,
/// `call collections`, `letter legal-notice`, `offer plan`.
pub fn action_label(action: &Action) -> String {
    match action {
        Action::Email { template } => format!("email {}", template.node),
        Action::Call { queue } => format!("call {}", queue.node),
        Action::Letter { template } => format!("letter {}", template.node),
        Action::OfferPlan(_) => "offer plan".to_string(),
        Action::Experiment(e) => format!("experiment {}", e.name.node),
    }
}

/// An action as `collect fmt` writes it: `email "friendly-reminder"`,
/// `offer plan 3 installments every 30d down 20%`.
pub fn action_source(a: &Action) -> String {
    match a {
        Action::Email { template } => format!("email {}", quote(&template.node)),
        Action::Call { queue } => format!("call {}", quote(&queue.node)),
        Action::Letter { template } => format!("letter {}", quote(&template.node)),
        Action::OfferPlan(plan) => {
            let n = plan.installments.node;
            let mut s = format!(
                "offer plan {n} installment{} every {}d",
                if n == 1 { "" } else { "s" },
                plan.every_days.node
            );
            match plan.down.as_ref().map(|d| &d.node) {
                Some(DownPayment::Percent(pct)) => s.push_str(&format!(" down {pct}%")),
                Some(DownPayment::Money { amount, currency }) => {
                    s.push_str(&format!(" down {amount} {currency}"))
                }
                None => {}
            }
            s
        }
        Action::Experiment(e) => format!("experiment {} {{ … }}", quote(&e.name.node)),
    }
}
