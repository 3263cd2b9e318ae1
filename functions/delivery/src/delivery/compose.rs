//! Composing a message: its context, the rendered template, the printable
//! letter of a legal notice.

use crate::message::pdf::{Letter, letter_pdf};
use crate::message::postal::address_block;
use crate::message::{
    Attachment, CompanyCtx, CustomerCtx, Formats, InstallmentCtx, InvoiceCtx, InvoiceLists,
    Mailbox, MessageContext, OutgoingMessage, PlanCtx, TemplateError,
};
use chrono::{DateTime, Days, NaiveDate, Utc};
use collect_engine::book::Book;
use collect_engine::domain::{Channel as AuditChannel, Customer, Invoice};
use collect_engine::sweep::PlannedMessage;
use rust_decimal::Decimal;

use super::Sweeper;

impl Sweeper<'_> {
    /// [`Sweeper::compose_at`] for a preview (`collect tasks show`): the
    /// message as it would go out on `day`, dated 00:00 UTC that day (a
    /// preview is not sent; the delivery run dates messages with its clock).
    pub fn compose(
        &self,
        book: &Book,
        customer: &Customer,
        planned: &PlannedMessage,
        day: NaiveDate,
    ) -> Result<OutgoingMessage, TemplateError> {
        let midnight = day.and_time(chrono::NaiveTime::MIN).and_utc();
        self.compose_at(book, customer, planned, day, midnight)
    }

    /// Renders a planned message for its customer, in their language and
    /// formats, sent at `sent_at` (the `Date:`). A letter also goes as a
    /// printable PDF, attached.
    pub fn compose_at(
        &self,
        book: &Book,
        customer: &Customer,
        planned: &PlannedMessage,
        day: NaiveDate,
        sent_at: DateTime<Utc>,
    ) -> Result<OutgoingMessage, TemplateError> {
        // Formats in the language of the version sent: a customer whose
        // language has no version gets the `en` one in English formats.
        let primary = |l: &str| {
            l.trim()
                .split(['-', '_'])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        let language = match self
            .templates
            .language_for(&planned.template, &customer.language)
        {
            Some(version) if primary(&version) != primary(&customer.language) => version,
            _ => customer.language.clone(),
        };
        let formats = Formats::for_customer(&language, customer.country.as_deref());
        let ctx = self.context(book, customer, planned, day, &formats);
        let rendered = self
            .templates
            .render(&planned.template, &customer.language, &ctx)?;
        let mut attachments = Vec::new();
        if planned.channel == AuditChannel::Letter {
            let recipient = address_block(
                &customer.name,
                &customer.address,
                customer.country.as_deref(),
                self.sender.country.as_deref(),
            );
            // One QR code for a letter about one invoice; with several,
            // each pay link is in the body.
            let qr_link = match ctx.lists.invoices.as_slice() {
                [only] => Some(only.pay_link.as_str()),
                _ => None,
            };
            let pdf = letter_pdf(&Letter {
                company: &self.sender.company,
                address: &self.sender.address,
                contact: &ctx.company.reply_to,
                title: &rendered.subject,
                body: &rendered.text,
                language: &formats.locale(),
                recipient: &recipient,
                qr_link,
            });
            attachments.push(Attachment {
                filename: letter_file_name(&planned.template, &ctx.lists.invoices),
                content_type: "application/pdf".to_string(),
                content: pdf,
            });
        }
        Ok(OutgoingMessage {
            message_id: planned.message_id.to_string(),
            date: day,
            sent_at,
            from: Mailbox {
                name: self.sender.company.clone(),
                email: self.sender.email.clone(),
            },
            to: Mailbox {
                name: customer.name.clone(),
                email: customer.email.clone(),
            },
            reply_to: self.sender.reply_to.as_ref().map(|r| Mailbox {
                name: self.sender.company.clone(),
                email: r.clone(),
            }),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            action_ids: planned.action_ids.iter().map(ToString::to_string).collect(),
            tags: planned.tags.clone(),
            attachments,
        })
    }

    /// What the templates see for a planned message, formatted for the
    /// customer.
    fn context(
        &self,
        book: &Book,
        customer: &Customer,
        planned: &PlannedMessage,
        day: NaiveDate,
        formats: &Formats,
    ) -> MessageContext {
        let expires = day
            .checked_add_days(Days::new(self.pay_link_days))
            .unwrap_or(day);
        let invoices: Vec<&Invoice> = planned
            .invoice_ids
            .iter()
            .filter_map(|id| book.invoice(id))
            .collect();
        let currency = invoices
            .first()
            .map_or("", |i| i.currency.as_str())
            .to_string();
        // Each invoice in its state on the sending day `day`, with the step
        // that put it in the message (its action among the message's).
        let step_of = |invoice_id: &str| -> (Option<i64>, String) {
            let live = book
                .actions_of(invoice_id)
                .iter()
                .filter(|a| planned.action_ids.contains(&a.action_id))
                .max_by_key(|a| a.step_offset)
                .map(|a| (Some(a.step_offset), a.target.clone()));
            live.or_else(|| {
                book.steps_of(invoice_id)
                    .iter()
                    .filter(|s| planned.action_ids.contains(&s.action_id))
                    .max_by_key(|s| s.step_offset)
                    .map(|s| {
                        let label = s.label.as_ref();
                        let template = label.split_once(' ').map_or(label, |(_, t)| t);
                        (Some(s.step_offset), template.to_string())
                    })
            })
            .unwrap_or((None, planned.template.clone()))
        };
        let lists = InvoiceLists::of(
            invoices
                .iter()
                .map(|i| {
                    let balance = book.balance(i, day);
                    let link = self.pay_links.link(&i.invoice_id, expires);
                    let (offset, template) = step_of(&i.invoice_id);
                    let ctx = InvoiceCtx::from_invoice(i, balance, day, link, formats)
                        .with_step(offset, &template);
                    (ctx, balance)
                })
                .collect(),
            &currency,
            formats,
        );
        MessageContext {
            customer: CustomerCtx {
                id: customer.customer_id.clone(),
                name: customer.name.clone(),
            },
            company: CompanyCtx {
                name: self.sender.company.clone(),
                reply_to: self
                    .sender
                    .reply_to
                    .clone()
                    .unwrap_or_else(|| self.sender.email.clone()),
                address: self.sender.address.clone(),
            },
            today: formats.date(day),
            lists,
            plan: planned.plan.as_ref().map(|items| {
                let down = if items.len() > 1 && items.first().is_some_and(|(d, _)| *d == day) {
                    items.first().map_or(Decimal::ZERO, |(_, a)| *a)
                } else {
                    Decimal::ZERO
                };
                let installments: Vec<InstallmentCtx> = items
                    .iter()
                    .filter(|(d, _)| *d != day || down.is_zero())
                    .enumerate()
                    .map(|(k, (d, a))| InstallmentCtx {
                        number: k as u32 + 1,
                        due_date: formats.date(*d),
                        amount: formats.money(*a, &currency),
                    })
                    .collect();
                let every = match items.as_slice() {
                    [.., (a, _), (b, _)] => (*b - *a).num_days(),
                    _ => 0,
                };
                PlanCtx {
                    down_payment: formats.money(down, &currency),
                    installments,
                    every_days: every,
                    total: formats.money(
                        items
                            .iter()
                            .map(|(_, a)| *a)
                            .fold(Decimal::ZERO, Decimal::saturating_add),
                        &currency,
                    ),
                }
            }),
        }
    }
}

/// The PDF's file name as the customer sees it: the template and the first
/// invoice's number (`legal-notice-2027-00880.pdf`), letters, digits, `.`,
/// `_` and `-` only.
fn letter_file_name(template: &str, invoices: &[InvoiceCtx]) -> String {
    let stem = match invoices.first() {
        Some(i) => format!("{template}-{}", i.number),
        None => template.to_string(),
    };
    let safe: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.pdf")
}
