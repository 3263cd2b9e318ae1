#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! An `offer plan` step is sent with the `plan-offer` template: without it,
//! `check` reports E0011 at the step (it would fail when the offer goes out).

use policy_lang::{PLAN_OFFER_TEMPLATE, check_source};
use std::collections::HashSet;

const POLICY: &str = "policy \"example\"
  effective 2026-12-01
  currency USD

segment standard otherwise

ladder standard
  due - 7d  offer plan 3 installments every 30d
  due       experiment \"offer-or-not\" {
              50% offer plan 2 installments every 14d,
              50% email \"urgent-notice\"
            }
";

fn catalog(names: &[&str]) -> HashSet<String> {
    names.iter().map(|n| (*n).to_string()).collect()
}

#[test]
fn an_offer_without_the_plan_offer_template_is_an_error_at_each_offer() {
    let (_, diags) = check_source(POLICY, "p.policy", Some(&catalog(&["urgent-notice"])));
    let lines: Vec<(String, u32)> = diags.iter().map(|d| (d.code.to_string(), d.line)).collect();
    assert_eq!(
        lines,
        vec![("E0011".to_string(), 8), ("E0011".to_string(), 10)],
        "{diags:#?}"
    );
    assert!(
        diags[0].message.contains("`plan-offer`"),
        "{}",
        diags[0].message
    );
    assert!(
        diags[0]
            .help
            .as_deref()
            .unwrap()
            .contains("templates/plan-offer/en/subject.txt"),
        "{:?}",
        diags[0].help
    );
}

#[test]
fn an_offer_with_the_plan_offer_template_is_fine() {
    let (_, diags) = check_source(
        POLICY,
        "p.policy",
        Some(&catalog(&["urgent-notice", PLAN_OFFER_TEMPLATE])),
    );
    assert!(diags.is_empty(), "{diags:#?}");
    assert_eq!(PLAN_OFFER_TEMPLATE, "plan-offer");
}
