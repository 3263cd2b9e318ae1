//! A task: its record and trail, the customer's context in one line, the
//! letter's preview exactly as it would be sent (subject and text on the
//! page; the HTML body in a sandboxed frame from its own address; the legal
//! letter's PDF), the link to its explanation, and the forms of every act
//! the person's role allows.

use super::fields::Fields;
use super::{Failure, Shared, failed, seg, with_desk};
use crate::backend::Backend;
use crate::guard::Signed;
use crate::view::Problem;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use collect_delivery::work::{CallOutcome, Outcome, Preview, PreviewError, TaskView, preview};
use minijinja::context;

/// The policy of a letter's HTML body in its frame: no script, no form, no
/// request anywhere (inline styles and embedded images only), and framed
/// only by this site's task page.
const PREVIEW_CSP: &str = "sandbox; default-src 'none'; style-src 'unsafe-inline'; \
     img-src data:; frame-ancestors 'self'";

fn task_url(cid: &str, tid: &str) -> String {
    format!("/customers/{}/tasks/{}", seg(cid), seg(tid))
}

/// The task and, for a message, its preview (`Ok(None)`: a call or an
/// address to fix, nothing to preview).
fn load<B: Backend>(
    a: &crate::App<B>,
    ledger: &B::Ledger,
    desk: &collect_delivery::work::Desk<
        '_,
        B::Ledger,
        collect_delivery::explain::Recorded<'_, B::Bundles>,
    >,
    h: &tokio::runtime::Handle,
    who: &crate::Person,
    cid: &str,
    tid: &str,
) -> Result<(TaskView, Result<Option<Preview>, String>), Failure> {
    use collect_delivery::ledger::Ledger as _;
    let t = h.block_on(desk.task(who, cid, tid))?;
    let Some(record) = t.action.clone() else {
        return Ok((t, Ok(None)));
    };
    if record.channel == collect_engine::domain::Channel::Call {
        return Ok((t, Ok(None)));
    }
    let book = h
        .block_on(ledger.customer_book(cid))
        .map_err(collect_delivery::work::DeskError::from)?;
    let day = a.backend.today();
    let p = h.block_on(a.backend.with_sweeper(|s| preview(s, &book, &record, day)))?;
    let p = match p {
        Ok(p) => Ok(Some(p)),
        Err(PreviewError::NoMessage(_)) => Ok(None),
        Err(e) => Err(format!(
            "The letter cannot be previewed: {e}. The sweep would fail on it the same way; \
             tell whoever maintains the templates."
        )),
    };
    Ok((t, p))
}

/// `GET /customers/{cid}/tasks/{tid}`.
pub(crate) async fn show<B: Backend>(
    State(app): State<Shared<B>>,
    Extension(who): Extension<Signed>,
    Path((cid, tid)): Path<(String, String)>,
) -> Response {
    let person = who.person.clone();
    let (c, t) = (cid.clone(), tid.clone());
    let got = with_desk!(app, |a, ledger, desk, h| load(
        a, ledger, &desk, h, &person, &c, &t
    ));
    let (task, pv) = match got {
        Ok(x) => x,
        Err(f) => return failed(&app, &who, &f, Some("/".to_string())),
    };
    let url = task_url(&cid, &tid);
    let why = task.action.as_ref().map(|a| {
        format!(
            "/customers/{}/invoices/{}/why?day={}",
            seg(&cid),
            seg(a.invoice_id.as_str()),
            a.decided_on
        )
    });
    let (preview, preview_error) = match pv {
        Ok(p) => (p, None),
        Err(e) => (None, Some(e)),
    };
    app.view.page(
        "task.html",
        &who,
        context! {
            t => task,
            url => url,
            customer_url => format!("/customers/{}", seg(&cid)),
            why => why,
            preview => preview.as_ref().map(|p| context! {
                to => p.to, subject => p.subject, text => p.text,
                has_html => p.html.is_some(), has_pdf => p.pdf.is_some(),
            }),
            preview_error => preview_error,
            today => app.backend.today().to_string(),
        },
    )
}

async fn preview_of<B: Backend>(
    app: &Shared<B>,
    who: &Signed,
    cid: String,
    tid: String,
) -> Result<Preview, Response> {
    let person = who.person.clone();
    let got = with_desk!(app, |a, ledger, desk, h| load(
        a, ledger, &desk, h, &person, &cid, &tid
    ));
    match got {
        Ok((_, Ok(Some(p)))) => Ok(p),
        Ok((_, Ok(None))) => Err(app.view.problem(
            StatusCode::NOT_FOUND,
            &Problem::new(
                "Nothing to preview",
                "This task sends no message: it is a call or an address to fix.",
            ),
            Some(who),
        )),
        Ok((_, Err(e))) => Err(app.view.problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            &Problem::new("The letter cannot be previewed", e),
            Some(who),
        )),
        Err(f) => Err(failed(app, who, &f, None)),
    }
}

/// `GET …/preview.html`: the HTML body as sent, under a sandbox policy.
pub(crate) async fn preview_html<B: Backend>(
    State(app): State<Shared<B>>,
    Extension(who): Extension<Signed>,
    Path((cid, tid)): Path<(String, String)>,
) -> Response {
    match preview_of(&app, &who, cid, tid).await {
        Ok(p) => {
            let body = p.html.unwrap_or_else(|| {
                // A text-only message: its text, escaped, as the frame's body.
                format!("<pre>{}</pre>", escape(&p.text))
            });
            let mut r = body.into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PREVIEW_CSP),
            );
            h.insert(
                header::X_FRAME_OPTIONS,
                HeaderValue::from_static("SAMEORIGIN"),
            );
            r
        }
        Err(r) => r,
    }
}

/// `GET …/letter.pdf`: the printable legal letter.
pub(crate) async fn letter_pdf<B: Backend>(
    State(app): State<Shared<B>>,
    Extension(who): Extension<Signed>,
    Path((cid, tid)): Path<(String, String)>,
) -> Response {
    let name = format!(
        "letter-{}.pdf",
        tid.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
    );
    match preview_of(&app, &who, cid, tid).await {
        Ok(Preview { pdf: Some(pdf), .. }) => {
            let mut r = pdf.into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pdf"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{name}\"")) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Ok(_) => app.view.problem(
            StatusCode::NOT_FOUND,
            &Problem::new(
                "No printed letter",
                "This message goes by email only; it has no printable letter.",
            ),
            Some(&who),
        ),
        Err(r) => r,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What a call's form gave.
fn call_outcome(f: &Fields) -> Result<CallOutcome, Failure> {
    let note = f.get("note").map(str::to_string);
    Ok(match f.required("outcome")? {
        "reached" => CallOutcome::Reached { note },
        "promised" => CallOutcome::Promised {
            until: f.date("until")?.ok_or_else(|| {
                Failure::field("Promised to pay by", "say by which day, e.g. 2027-03-31")
            })?,
            note,
        },
        "disputed" => CallOutcome::Disputed {
            note: note.ok_or_else(|| Failure::field("Note", "say what the customer disputes"))?,
        },
        "wrong_contact" => {
            let email = f.get("email").map(str::to_string);
            let phone = f.get("phone").map(str::to_string);
            if email.is_none() && phone.is_none() && note.is_none() {
                return Err(Failure::field(
                    "New email",
                    "give the right email or phone, or a note saying none is known",
                ));
            }
            CallOutcome::WrongContact { email, phone, note }
        }
        "no_answer" => CallOutcome::NoAnswer { note },
        "note" => CallOutcome::Note {
            text: note.ok_or_else(|| Failure::field("Note", "write the note"))?,
        },
        other => {
            return Err(Failure::field(
                "What the call gave",
                format!("`{other}` is not one of the choices"),
            ));
        }
    })
}

/// `POST …/{act}`: approve, reject, reopen, call, close-contact.
pub(crate) async fn act<B: Backend>(
    State(app): State<Shared<B>>,
    Extension(who): Extension<Signed>,
    Path((cid, tid, act)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let f = Fields::parse(&body);
    let url = task_url(&cid, &tid);
    let person = who.person.clone();
    let (c, t) = (cid.clone(), tid.clone());
    let (title, result): (&str, Result<Outcome, Failure>) = match act.as_str() {
        "approve" => (
            "Approved",
            with_desk!(app, |a, ledger, desk, h| {
                Ok(h.block_on(desk.approve(&person, &c, &t))?)
            }),
        ),
        "reject" | "reopen" => {
            let reason = match f.required("reason") {
                Ok(r) => r.to_string(),
                Err(e) => return failed(&app, &who, &e, Some(url)),
            };
            let reject = act == "reject";
            (
                if reject { "Rejected" } else { "Reopened" },
                with_desk!(app, |a, ledger, desk, h| {
                    Ok(if reject {
                        h.block_on(desk.reject(&person, &c, &t, &reason))?
                    } else {
                        h.block_on(desk.reopen(&person, &c, &t, &reason))?
                    })
                }),
            )
        }
        "call" => {
            let outcome = match call_outcome(&f) {
                Ok(o) => o,
                Err(e) => return failed(&app, &who, &e, Some(url)),
            };
            (
                "Call recorded",
                with_desk!(app, |a, ledger, desk, h| {
                    Ok(h.block_on(desk.record_call(&person, &c, &t, &outcome))?)
                }),
            )
        }
        "close-contact" => {
            let note = match f.required("note") {
                Ok(n) => n.to_string(),
                Err(e) => return failed(&app, &who, &e, Some(url)),
            };
            (
                "Address task closed",
                with_desk!(app, |a, ledger, desk, h| {
                    Ok(h.block_on(desk.close_contact(&person, &t, &note))?)
                }),
            )
        }
        _ => {
            return app.view.problem(
                StatusCode::NOT_FOUND,
                &Problem::new("There is no such act", "Use the buttons of the task page."),
                Some(&who),
            );
        }
    };
    match result {
        Ok(o) => app.view.page(
            "done.html",
            &who,
            context! {
                title => title,
                said => o.said,
                task_url => url,
                customer_url => format!("/customers/{}", seg(&cid)),
            },
        ),
        Err(e) => failed(&app, &who, &e, Some(url)),
    }
}
