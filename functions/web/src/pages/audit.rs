//! The audit downloads for auditors (role `auditor` or `admin`): every
//! action recorded in a period with its revisions, rule, risk, status and
//! trail (who did what, when), as CSV (one row per trail line) or JSON
//! (one object per action with its trail). An action is in the period
//! when it was decided in it or a line of its trail falls in it.

use super::fields::Fields;
use super::{Failure, Shared, failed, with_desk};
use crate::backend::Backend;
use crate::guard::Signed;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{Days, NaiveDate};
use collect_delivery::ledger::{Ledger as _, LogEntry, Scope};
use collect_delivery::work::{Act, DeskError};
use collect_engine::domain::ActionRecord;
use minijinja::context;
use serde::Serialize;

#[derive(Serialize)]
struct Row {
    #[serde(flatten)]
    action: ActionRecord,
    trail: Vec<LogEntry>,
}

/// `GET /audit`: the period form.
pub(crate) async fn page<B: Backend>(
    State(app): State<Shared<B>>,
    Extension(who): Extension<Signed>,
) -> Response {
    if !who.person.role.may(Act::Export) {
        let f = Failure::Desk(DeskError::NotAllowed {
            role: who.person.role,
            act: Act::Export,
        });
        return failed(&app, &who, &f, Some("/".to_string()));
    }
    let through = app.backend.today();
    let from = through.checked_sub_days(Days::new(30)).unwrap_or(through);
    app.view.page(
        "audit.html",
        &who,
        context! { from => from, through => through },
    )
}

async fn rows<B: Backend>(
    app: &Shared<B>,
    who: &Signed,
    raw: Option<String>,
) -> Result<(NaiveDate, NaiveDate, Vec<Row>), Failure> {
    if !who.person.role.may(Act::Export) {
        return Err(Failure::Desk(DeskError::NotAllowed {
            role: who.person.role,
            act: Act::Export,
        }));
    }
    let f = Fields::query(raw.as_deref());
    let from = f
        .date("from")?
        .ok_or_else(|| Failure::field("From", "give the first day, YYYY-MM-DD"))?;
    let through = f
        .date("through")?
        .ok_or_else(|| Failure::field("Through", "give the last day, YYYY-MM-DD"))?;
    if through < from {
        return Err(Failure::field(
            "Through",
            format!("{through} is before {from}"),
        ));
    }
    with_desk!(app, |a, ledger, desk, h| {
        let book = h
            .block_on(ledger.load_book(&Scope::All, through, from))
            .map_err(DeskError::from)?;
        let mut out = Vec::new();
        let mut actions: Vec<&ActionRecord> = book.actions.values().flatten().collect();
        actions.sort_by(|x, y| (x.decided_on, &x.action_id).cmp(&(y.decided_on, &y.action_id)));
        for act in actions {
            let trail = h.block_on(ledger.trail(act)).map_err(DeskError::from)?;
            let inside = |d: NaiveDate| d >= from && d <= through;
            if inside(act.decided_on) || trail.iter().any(|l| inside(l.day)) {
                out.push(Row {
                    action: act.clone(),
                    trail,
                });
            }
        }
        Ok((from, through, out))
    })
}

fn download(body: Vec<u8>, kind: &'static str, name: String) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// `GET /audit.json?from=…&through=…`.
pub(crate) async fn json<B: Backend>(
    State(app): State<Shared<B>>,
    Extension(who): Extension<Signed>,
    RawQuery(raw): RawQuery,
) -> Response {
    match rows(&app, &who, raw).await {
        Ok((from, through, rows)) => match serde_json::to_vec_pretty(&rows) {
            Ok(body) => download(
                body,
                "application/json",
                format!("audit-{from}-{through}.json"),
            ),
            Err(e) => failed(&app, &who, &Failure::field("JSON", e.to_string()), None),
        },
        Err(f) => failed(&app, &who, &f, Some("/audit".to_string())),
    }
}

/// `GET /audit.csv?from=…&through=…`.
pub(crate) async fn csv<B: Backend>(
    State(app): State<Shared<B>>,
    Extension(who): Extension<Signed>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (from, through, rows) = match rows(&app, &who, raw).await {
        Ok(x) => x,
        Err(f) => return failed(&app, &who, &f, Some("/audit".to_string())),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "action_id",
        "invoice_id",
        "customer_id",
        "decided_on",
        "status",
        "label",
        "rule",
        "segment",
        "risk",
        "policy_name",
        "policy_revision",
        "bundle_revision",
        "git_revision",
        "trail_day",
        "trail_status",
        "trail_note",
        "trail_by",
    ]);
    for r in &rows {
        let a = &r.action;
        let head = [
            a.action_id.to_string(),
            a.invoice_id.to_string(),
            a.customer_id.to_string(),
            a.decided_on.to_string(),
            a.status.as_str().to_string(),
            a.label.clone(),
            a.rule.clone(),
            a.segment.clone(),
            a.risk.map(|x| format!("{x:.4}")).unwrap_or_default(),
            a.policy_name.clone(),
            a.policy_revision.clone(),
            a.bundle_revision.clone().unwrap_or_default(),
            a.git_revision.clone().unwrap_or_default(),
        ];
        let lines: Vec<[String; 4]> = if r.trail.is_empty() {
            vec![Default::default()]
        } else {
            r.trail
                .iter()
                .map(|l| {
                    [
                        l.day.to_string(),
                        l.status.clone(),
                        l.note.clone().unwrap_or_default(),
                        l.by.clone().unwrap_or_default(),
                    ]
                })
                .collect()
        };
        for l in lines {
            let _ = w.write_record(head.iter().chain(l.iter()));
        }
    }
    match w.into_inner() {
        Ok(body) => download(
            body,
            "text/csv; charset=utf-8",
            format!("audit-{from}-{through}.csv"),
        ),
        Err(e) => failed(&app, &who, &Failure::field("CSV", e.to_string()), None),
    }
}
