//! The explanation of an invoice's day: the one model `collect explain`
//! renders (`collect_delivery::explain::explain_invoice`: the day replayed
//! under the bundle revision its actions recorded, matched with the
//! record), drawn as a page.

use super::fields::Fields;
use super::{Failure, Shared, failed, seg, with_desk};
use crate::backend::Backend;
use crate::guard::Signed;
use crate::view::Problem;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use collect_delivery::explain::{ExplainError, Recorded, Request, explain_invoice};
use collect_delivery::ledger::Ledger as _;
use minijinja::context;

fn explain_problem(e: &ExplainError) -> Failure {
    match e {
        ExplainError::Ledger(_) => Failure::Said(
            StatusCode::SERVICE_UNAVAILABLE,
            Problem::new(
                "The work queue cannot reach its data",
                "The explanation could not be read. Try again in a minute.",
            ),
        ),
        ExplainError::NoRevision { .. } | ExplainError::Revision { .. } => Failure::Said(
            StatusCode::CONFLICT,
            Problem::new(
                "This decision cannot be replayed here",
                format!(
                    "{e}. The policy it was decided under is not kept with the data; \
                     `collect explain` with `--policy FILE` explains it as a what-if."
                ),
            ),
        ),
        _ => Failure::Said(
            StatusCode::NOT_FOUND,
            Problem::new("Nothing to explain", e.to_string()),
        ),
    }
}

/// `GET /customers/{cid}/invoices/{iid}/why[?day=YYYY-MM-DD]`: the day of
/// the invoice's latest action when no day is given.
pub(crate) async fn show<B: Backend>(
    State(app): State<Shared<B>>,
    Extension(who): Extension<Signed>,
    Path((cid, iid)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let back = format!("/customers/{}", seg(&cid));
    let day = match Fields::query(raw.as_deref()).date("day") {
        Ok(d) => d,
        Err(f) => return failed(&app, &who, &f, Some(back)),
    };
    let (c, i) = (cid.clone(), iid.clone());
    let got = with_desk!(app, |a, ledger, desk, h| {
        let book = h
            .block_on(ledger.customer_book(&c))
            .map_err(collect_delivery::work::DeskError::from)?;
        let day = match day.or_else(|| book.actions_of(&i).iter().map(|x| x.decided_on).max()) {
            Some(d) => d,
            None => {
                return Err(Failure::Said(
                    StatusCode::NOT_FOUND,
                    Problem::new(
                        "Nothing to explain yet",
                        format!(
                            "Invoice `{i}` has no recorded action: no sweep decided anything for it."
                        ),
                    ),
                ));
            }
        };
        let scorer = a.backend.scorer()?;
        let opts = a.backend.sweep_options()?;
        let policies = Recorded::new(a.backend.bundles(), a.backend.bundle_scratch());
        h.block_on(explain_invoice(
            ledger,
            &policies,
            scorer.as_ref(),
            &opts,
            &Request {
                customer_id: &c,
                invoice_id: &i,
                day,
            },
        ))
        .map_err(|e| explain_problem(&e))
    });
    match got {
        Ok(x) => app.view.page("explain.html", &who, context! { x => x }),
        Err(f) => failed(&app, &who, &f, Some(back)),
    }
}
