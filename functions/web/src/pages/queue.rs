//! The queue: open work filtered, sorted and paged, a count per queue, and
//! the bulk approval of what a filter shows (a confirmation page with the
//! count first; the desk refuses if the count changed meanwhile).

use super::fields::Fields;
use super::{Failure, Shared, failed, with_desk};
use crate::backend::Backend;
use crate::guard::Signed;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::response::Response;
use collect_delivery::work::{Act, Sort, WorkKind, WorkQuery};
use minijinja::context;

const PER_PAGE: usize = 50;

/// The filter of a query string (or of the bulk form's hidden fields).
pub(crate) fn work_query(f: &Fields) -> Result<WorkQuery, Failure> {
    let kind = match f.get("kind") {
        None => None,
        Some(k) => Some(WorkKind::parse(k).ok_or_else(|| {
            Failure::field(
                "Kind",
                format!("`{k}` is not a kind of work; choose one of the list"),
            )
        })?),
    };
    let sort = match f.get("sort") {
        None => Sort::Priority,
        Some(s) => Sort::parse(s).ok_or_else(|| {
            Failure::field(
                "Sort",
                format!("`{s}` is not an order; choose one of the list"),
            )
        })?,
    };
    let min_balance = f.decimal("min_balance")?;
    let min_days_overdue = f.whole("min_days_overdue")?;
    let page = match f.whole("page")? {
        None => 1,
        Some(p) if p >= 1 => usize::try_from(p).unwrap_or(1),
        Some(_) => return Err(Failure::field("Page", "pages are numbered from 1")),
    };
    Ok(WorkQuery {
        kind,
        queue: f.get("queue").map(str::to_string),
        segment: f.get("segment").map(str::to_string),
        customer_id: f.get("customer").map(str::to_string),
        min_balance,
        min_days_overdue,
        sort,
        page,
        per_page: PER_PAGE,
    })
}

/// The query string of a filter (without its page unless given).
fn query_string(q: &WorkQuery, page: Option<usize>) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if let Some(k) = q.kind {
        pairs.push(("kind", k.as_str().to_string()));
    }
    if let Some(v) = &q.queue {
        pairs.push(("queue", v.clone()));
    }
    if let Some(v) = &q.segment {
        pairs.push(("segment", v.clone()));
    }
    if let Some(v) = &q.customer_id {
        pairs.push(("customer", v.clone()));
    }
    if let Some(v) = q.min_balance {
        pairs.push(("min_balance", v.to_string()));
    }
    if let Some(v) = q.min_days_overdue {
        pairs.push(("min_days_overdue", v.to_string()));
    }
    if q.sort != Sort::Priority {
        pairs.push(("sort", q.sort.as_str().to_string()));
    }
    if let Some(p) = page {
        pairs.push(("page", p.to_string()));
    }
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

fn kind_label(k: WorkKind) -> &'static str {
    match k {
        WorkKind::Approval => "letters awaiting approval",
        WorkKind::Call => "calls",
        WorkKind::FixContact => "addresses to fix",
    }
}

fn sort_label(s: Sort) -> &'static str {
    match s {
        Sort::Priority => "risk × balance, largest first",
        Sort::Balance => "balance, largest first",
        Sort::DaysOverdue => "days overdue, most first",
        Sort::Age => "oldest first",
    }
}

/// `GET /`: the queue.
pub(crate) async fn list<B: Backend>(
    State(app): State<Shared<B>>,
    Extension(who): Extension<Signed>,
    RawQuery(raw): RawQuery,
) -> Response {
    let fields = Fields::query(raw.as_deref());
    let q = match work_query(&fields) {
        Ok(q) => q,
        Err(f) => return failed(&app, &who, &f, Some("/".to_string())),
    };
    let person = who.person.clone();
    let asked = q.clone();
    let got = with_desk!(app, |a, ledger, desk, h| {
        let page = h.block_on(desk.queue(&person, &asked))?;
        // The bulk approval is offered on a list of letters only: its
        // count is then the list's (no second query of the index).
        let approvable = if person.role.may(Act::Approve) && asked.kind == Some(WorkKind::Approval)
        {
            page.total
        } else {
            0
        };
        Ok::<_, Failure>((page, approvable))
    });
    let (page, approvable) = match got {
        Ok(x) => x,
        Err(f) => return failed(&app, &who, &f, Some("/".to_string())),
    };
    let pages = page.total.div_ceil(q.per_page.max(1)).max(1);
    let prev_qs = (q.page > 1).then(|| query_string(&q, Some(q.page - 1)));
    let next_qs = (q.page < pages).then(|| query_string(&q, Some(q.page + 1)));
    let queue_names: Vec<&str> = page.counts.iter().map(|(n, _)| n.as_str()).collect();
    let kinds: Vec<_> = WorkKind::ALL
        .iter()
        .map(|k| context! { value => k.as_str(), label => kind_label(*k) })
        .collect();
    let sorts: Vec<_> = Sort::ALL
        .iter()
        .map(|s| context! { value => s.as_str(), label => sort_label(*s) })
        .collect();
    let f = context! {
        kind => q.kind.map(|k| k.as_str()).unwrap_or_default(),
        queue => q.queue.clone().unwrap_or_default(),
        segment => q.segment.clone().unwrap_or_default(),
        min_balance => q.min_balance.map(|d| d.to_string()).unwrap_or_default(),
        min_days_overdue => q.min_days_overdue.map(|d| d.to_string()).unwrap_or_default(),
        sort => q.sort.as_str(),
    };
    app.view.page(
        "queue.html",
        &who,
        context! {
            page => page,
            pages => pages,
            f => f,
            kinds => kinds,
            sorts => sorts,
            queue_names => queue_names,
            qs => query_string(&q, None),
            prev_qs => prev_qs,
            next_qs => next_qs,
            may_approve => who.person.role.may(Act::Approve),
            approvable => approvable,
            flash => fields.get("done"),
        },
    )
}

/// What a filter says, in words, for the confirmation page.
fn describe(q: &WorkQuery) -> String {
    let mut parts = Vec::new();
    if let Some(v) = &q.queue {
        parts.push(format!("queue {v}"));
    }
    if let Some(v) = &q.segment {
        parts.push(format!("segment {v}"));
    }
    if let Some(v) = &q.customer_id {
        parts.push(format!("customer {v}"));
    }
    if let Some(v) = q.min_balance {
        parts.push(format!("balance at least {v}"));
    }
    if let Some(v) = q.min_days_overdue {
        parts.push(format!("at least {v} days overdue"));
    }
    if parts.is_empty() {
        "no filter: every letter awaiting approval".to_string()
    } else {
        parts.join(", ")
    }
}

/// `GET /bulk`: how many letters the filter's bulk approval would take.
pub(crate) async fn confirm<B: Backend>(
    State(app): State<Shared<B>>,
    Extension(who): Extension<Signed>,
    RawQuery(raw): RawQuery,
) -> Response {
    let fields = Fields::query(raw.as_deref());
    let q = match work_query(&fields) {
        Ok(q) => WorkQuery {
            kind: Some(WorkKind::Approval),
            page: 1,
            per_page: 1,
            ..q
        },
        Err(f) => return failed(&app, &who, &f, Some("/".to_string())),
    };
    if !who.person.role.may(Act::Approve) {
        let f = Failure::Desk(collect_delivery::work::DeskError::NotAllowed {
            role: who.person.role,
            act: Act::Approve,
        });
        return failed(&app, &who, &f, Some("/".to_string()));
    }
    let person = who.person.clone();
    let asked = q.clone();
    let count = match with_desk!(app, |a, ledger, desk, h| {
        Ok::<_, Failure>(h.block_on(desk.queue(&person, &asked))?.total)
    }) {
        Ok(c) => c,
        Err(f) => return failed(&app, &who, &f, Some("/".to_string())),
    };
    let qs = query_string(&q, None);
    let hidden: Vec<(String, String)> = serde_urlencoded::from_str(&qs).unwrap_or_default();
    app.view.page(
        "bulk.html",
        &who,
        context! { count => count, qs => qs, hidden => hidden, filter_text => describe(&q) },
    )
}

/// `POST /bulk`: approves every letter of the filter, if the count is
/// still the one confirmed.
pub(crate) async fn approve_all<B: Backend>(
    State(app): State<Shared<B>>,
    Extension(who): Extension<Signed>,
    body: Bytes,
) -> Response {
    let fields = Fields::parse(&body);
    let parsed = work_query(&fields).and_then(|q| {
        let confirmed = fields
            .whole("confirmed")?
            .and_then(|c| usize::try_from(c).ok())
            .ok_or_else(|| {
                Failure::field("Count confirmed", "confirm the count on the page before")
            })?;
        Ok((q, confirmed))
    });
    let (q, confirmed) = match parsed {
        Ok(x) => x,
        Err(f) => return failed(&app, &who, &f, Some("/".to_string())),
    };
    let q = WorkQuery {
        kind: Some(WorkKind::Approval),
        page: 1,
        ..q
    };
    let back = format!("/bulk?{}", query_string(&q, None));
    let person = who.person.clone();
    let asked = q.clone();
    let done = with_desk!(app, |a, ledger, desk, h| {
        Ok::<_, Failure>(h.block_on(desk.bulk_approve(&person, &asked, confirmed))?)
    });
    match done {
        Ok(out) => {
            let said = match (out.approved.first(), out.approved.len()) {
                (None, _) => "No letter was approved.".to_string(),
                (Some(o), 1) => format!("1 letter: {}.", o.said),
                (Some(o), n) => format!("{n} letters approved; the first: {}.", o.said),
            };
            let refused: Vec<String> = out
                .refused
                .iter()
                .map(|(id, why)| {
                    // The desk's reason names the task already.
                    let why = why
                        .split_once(" is not approved: ")
                        .map_or(why.as_str(), |(_, r)| r);
                    format!("{id}: {why}")
                })
                .collect();
            app.view.page(
                "done.html",
                &who,
                context! {
                    title => format!("{} of {} letters approved", out.approved.len(), confirmed),
                    said => said,
                    refused => refused,
                },
            )
        }
        Err(f) => failed(&app, &who, &f, Some(back)),
    }
}
