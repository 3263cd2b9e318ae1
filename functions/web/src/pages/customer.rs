//! A customer's context: open invoices with their live balance, the
//! timeline of actions with their trails, promises, disputes, plans and
//! outcomes, payments, contact details and holds; and the end-of-ladder
//! decision (agency, write off, keep working), each with a reason.

use super::fields::Fields;
use super::{Failure, Shared, failed, seg, with_desk};
use crate::backend::Backend;
use crate::guard::Signed;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::response::Response;
use collect_delivery::work::{AccountDecision, Act};
use minijinja::context;

/// `GET /customers/{cid}`.
pub(crate) async fn show<B: Backend>(
    State(app): State<Shared<B>>,
    Extension(who): Extension<Signed>,
    Path(cid): Path<String>,
) -> Response {
    let person = who.person.clone();
    let c = cid.clone();
    let got = with_desk!(app, |a, ledger, desk, h| {
        Ok::<_, Failure>(h.block_on(desk.customer(&person, &c))?)
    });
    match got {
        Ok(v) => app.view.page(
            "customer.html",
            &who,
            context! {
                c => v,
                url => format!("/customers/{}", seg(&cid)),
                may_close => who.person.role.may(Act::CloseAccount),
            },
        ),
        Err(f) => failed(&app, &who, &f, Some("/".to_string())),
    }
}

fn decision(f: &Fields) -> Result<AccountDecision, Failure> {
    let reason = f.required("reason")?.to_string();
    Ok(match f.required("decision")? {
        "agency" => AccountDecision::Agency {
            agency: f
                .get("agency")
                .ok_or_else(|| Failure::field("Agency", "name the collection agency"))?
                .to_string(),
            reason,
        },
        "write_off" => AccountDecision::WriteOff { reason },
        "keep_working" => AccountDecision::KeepWorking { reason },
        other => {
            return Err(Failure::field(
                "Decision",
                format!("`{other}` is not one of the choices"),
            ));
        }
    })
}

/// `POST /customers/{cid}/decide`.
pub(crate) async fn decide<B: Backend>(
    State(app): State<Shared<B>>,
    Extension(who): Extension<Signed>,
    Path(cid): Path<String>,
    body: Bytes,
) -> Response {
    let f = Fields::parse(&body);
    let url = format!("/customers/{}", seg(&cid));
    let invoices = f.all("invoice_ids");
    let parsed = decision(&f).and_then(|d| {
        if invoices.is_empty() {
            Err(Failure::field("Invoices", "tick at least one invoice"))
        } else {
            Ok(d)
        }
    });
    let d = match parsed {
        Ok(d) => d,
        Err(e) => return failed(&app, &who, &e, Some(url)),
    };
    let person = who.person.clone();
    let c = cid.clone();
    let got = with_desk!(app, |a, ledger, desk, h| {
        Ok::<_, Failure>(h.block_on(desk.decide_account(&person, &c, &invoices, &d))?)
    });
    match got {
        Ok(o) => app.view.page(
            "done.html",
            &who,
            context! { title => "Decision recorded", said => o.said, customer_url => url },
        ),
        Err(e) => failed(&app, &who, &e, Some(url)),
    }
}
