//! The field rules of the data contract, each written once.
//!
//! The CSV files and the JSON events both run their values through these
//! functions, so a value accepted in `customers.csv` is accepted in a
//! `customer_upserted` event and the two paths cannot drift apart.
//!
//! Every rule takes a value that is already trimmed and not empty (emptiness
//! is decided by the caller, because whether empty is allowed depends on the
//! column, not on the rule) and returns the parsed value or a reason. A
//! reason is a whole phrase that quotes the value, e.g. "`12,5k` is not an
//! amount like `12500.00`", so that it reads on its own in a rejects file
//! and in an error message alike.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;

/// Why a value was refused, quoting the value.
pub(super) type Reason = String;

/// The value in backticks, shortened and with control characters escaped,
/// so that a stray megabyte or a line break in a field cannot make a
/// message unreadable. The full value is kept in [`super::Reject::value`].
pub(super) fn quote(value: &str) -> String {
    const MAX_CHARS: usize = 60;
    let mut out = String::from("`");
    for (i, c) in value.chars().enumerate() {
        if i == MAX_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('`');
    out
}

/// The longest id accepted, in characters: ERP ids are short (SAP's
/// longest document keys have 35 characters, a UUID 36); 100 leaves room
/// for prefixed composite keys.
pub(super) const ID_MAX: usize = 100;
/// The characters of an id besides ASCII letters and digits.
pub(super) const ID_PUNCTUATION: &str = "-_.:/@+";

/// An identifier (customer, invoice, payment, event, action, message).
/// Ids are joined on and printed in messages, keys and file names, so they
/// are held to a safe set that real ERP ids fit (`C-0001`, `INV/2027/00012`,
/// `SO:4711`, `0100018c-…` UUIDs): ASCII letters, digits and
/// [`ID_PUNCTUATION`], at most [`ID_MAX`] characters, never `..` and never
/// starting with `/` (a path out of a folder). Spaces, backslashes, quotes,
/// control and invisible characters are refused, not carried along; so is
/// `#`, which separates the parts of DynamoDB keys (`PAYMENT#<invoice>#…`:
/// an invoice `A#B` would read as invoice `A`'s).
pub(super) fn id(value: &str) -> Result<String, Reason> {
    single_line(value)?;
    let len = value.chars().count();
    if len > ID_MAX {
        return Err(format!(
            "{} has {len} characters; an id has at most {ID_MAX}",
            quote(value)
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !ID_PUNCTUATION.contains(*c))
    {
        let shown = if bad == ' ' {
            "a space".to_owned()
        } else {
            format!("`{}` (U+{:04X})", bad.escape_default(), u32::from(bad))
        };
        return Err(format!(
            "{} contains {shown}; an id is made of letters A–Z, digits and `- _ . : / @ +`",
            quote(value)
        ));
    }
    if value.contains("..") || value.starts_with('/') {
        return Err(format!(
            "{} contains `..` or starts with `/`, as a path leaving a folder would; an id cannot",
            quote(value)
        ));
    }
    Ok(value.to_owned())
}

/// A message id as a mail event may give it: an [`id`], or the message's
/// `Message-ID` header with its angle brackets (`<msg-…@example.com>`),
/// whose inside is held to the rule of ids.
pub(super) fn message_id(value: &str) -> Result<String, Reason> {
    let inside = value
        .strip_prefix('<')
        .and_then(|v| v.strip_suffix('>'))
        .unwrap_or(value);
    id(inside)?;
    Ok(value.to_owned())
}

/// The longest free text accepted (a name, an invoice number, a phone, a
/// tag), in characters: the longest registered company names have about
/// 160; a whole document pasted into a cell is refused.
pub(super) const TEXT_MAX: usize = 200;

/// Free text that ends up in messages (name, number, phone, country,
/// industry, tags): one line, no control characters, because it is put into
/// mail headers and letters; no bidirectional-text controls (they reorder
/// what a reader sees, as in "Trojan Source"); at most [`TEXT_MAX`]
/// characters.
pub(super) fn text(value: &str) -> Result<String, Reason> {
    single_line(value)?;
    no_bidi(value)?;
    let len = value.chars().count();
    if len > TEXT_MAX {
        return Err(format!(
            "{} has {len} characters; this text has at most {TEXT_MAX}",
            quote(value)
        ));
    }
    Ok(value.to_owned())
}

/// The longest street line (`address_line1`, `address_line2`) accepted, in
/// characters: a window envelope holds about 40 at 10 pt; 100 leaves room
/// for long street names while refusing a whole address pasted into one
/// cell.
pub(super) const ADDRESS_LINE_MAX: usize = 100;
/// The longest postal code accepted (the longest in use have 10 characters).
pub(super) const POSTAL_CODE_MAX: usize = 16;
/// The longest city or region accepted.
pub(super) const CITY_MAX: usize = 60;

/// A part of a postal address, printed on the letter's address block: one
/// line, no control characters, no bidirectional-text controls (they can
/// reorder what the printed line shows, as in "Trojan Source"), at most
/// `max` characters.
pub(super) fn address_part(value: &str, max: usize) -> Result<String, Reason> {
    single_line(value)?;
    no_bidi(value)?;
    let len = value.chars().count();
    if len > max {
        return Err(format!(
            "{} has {len} characters; an address part has at most {max}",
            quote(value)
        ));
    }
    Ok(value.to_owned())
}

/// Refuses the invisible characters that change the direction of the text
/// around them ([`is_bidi_control`]).
fn no_bidi(value: &str) -> Result<(), Reason> {
    if value.chars().any(is_bidi_control) {
        return Err(format!(
            "{} contains an invisible text-direction character (U+200E, U+202A–U+202E, U+2066–U+2069, …); retype the value",
            quote(value)
        ));
    }
    Ok(())
}

/// The Unicode characters that change the direction of the text around
/// them (explicit marks, embeddings, overrides and isolates).
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

fn single_line(value: &str) -> Result<(), Reason> {
    if value.chars().any(char::is_control) {
        Err(format!(
            "{} contains a line break or another control character",
            quote(value)
        ))
    } else {
        Ok(())
    }
}

/// The longest email address accepted, in bytes (RFC 5321).
pub(super) const EMAIL_MAX: usize = 254;

/// An address to mail to: one `@`, something before it, a domain with a
/// dot, no spaces, and an address lettre (the mailer that sends it) can
/// parse, so that an address accepted here is never refused on the send
/// day. lettre alone would accept addresses no ERP means (`ap@localhost`);
/// the shape checks catch two addresses in one field, a missing domain or a
/// phone number in the wrong column, lettre the rest (`<ap@example.com>`,
/// `ap@example.com>`, characters not allowed in an address).
pub(super) fn email(value: &str) -> Result<String, Reason> {
    let bad = |hint: &str| {
        format!(
            "{} is not an email address like ap@example.com{hint}",
            quote(value)
        )
    };
    if value.contains([',', ';']) || value.matches('@').count() > 1 {
        return Err(bad(" (one address only)"));
    }
    // RFC 5321: a path is at most 256 octets, with its `<` `>`.
    if value.len() > EMAIL_MAX {
        return Err(format!(
            "{} has {} bytes; an email address has at most {EMAIL_MAX}",
            quote(value),
            value.len()
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(" (no spaces or line breaks)"));
    }
    let Some((local, domain)) = value.split_once('@') else {
        return Err(bad(""));
    };
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..");
    if local.is_empty() || !domain_ok {
        return Err(bad(""));
    }
    if value.contains(['<', '>']) {
        return Err(bad(" (the address only, without `<` `>`)"));
    }
    if lettre::Address::from_str(value).is_err() {
        return Err(bad(""));
    }
    Ok(value.to_owned())
}

/// A language code of 2–3 letters, optionally with a region (`pt-BR`,
/// `es-419`): templates are chosen by it, so `English` or `pt_BR` must not
/// pass as a language that has no template. Returned in its usual case
/// (`pt-br` becomes `pt-BR`).
pub fn language(value: &str) -> Result<String, Reason> {
    let (lang, region) = match value.split_once('-') {
        Some((lang, region)) => (lang, Some(region)),
        None => (value, None),
    };
    let lang_ok = (2..=3).contains(&lang.len()) && lang.chars().all(|c| c.is_ascii_alphabetic());
    let region_ok = region.is_none_or(|r| {
        (r.len() == 2 && r.chars().all(|c| c.is_ascii_alphabetic()))
            || (r.len() == 3 && r.chars().all(|c| c.is_ascii_digit()))
    });
    if lang_ok && region_ok {
        // Codes are case-insensitive; one spelling (`pt-BR`) lets templates
        // be looked up by plain string comparison.
        let lang = lang.to_ascii_lowercase();
        Ok(match region {
            Some(region) => format!("{lang}-{}", region.to_ascii_uppercase()),
            None => lang,
        })
    } else {
        Err(format!(
            "{} is not a language code like `en` or `pt-BR`",
            quote(value)
        ))
    }
}

/// An IANA time zone name: quiet hours and send times are computed in it,
/// so a zone the engine cannot resolve is refused here, not at send time.
pub(super) fn timezone(value: &str) -> Result<String, Reason> {
    match chrono_tz::Tz::from_str(value) {
        Ok(_) => Ok(value.to_owned()),
        Err(_) => Err(format!(
            "{} is not an IANA time zone like Europe/Berlin",
            quote(value)
        )),
    }
}

/// An ISO 4217 code as three upper-case letters, of a currency invoices
/// can be in (one with minor units: not `XAU` or `XXX`). Lower case is
/// refused rather than fixed, because amounts in different currencies are
/// never summed and `eur` next to `EUR` would split one currency in two.
pub(super) fn currency(value: &str) -> Result<String, Reason> {
    if value.len() == 3 && value.chars().all(|c| c.is_ascii_uppercase()) {
        return match iso_currency::Currency::from_code(value) {
            Some(c) if c.exponent().is_some() => Ok(value.to_owned()),
            Some(c) => Err(format!(
                "{} ({}) is not a currency invoices can be in",
                quote(value),
                c.name()
            )),
            None => Err(format!(
                "{} is not an ISO 4217 currency code like EUR or USD",
                quote(value)
            )),
        };
    }
    let hint = if value.len() == 3 && value.chars().all(|c| c.is_ascii_alphabetic()) {
        format!(" (upper case: {})", value.to_ascii_uppercase())
    } else {
        String::new()
    };
    Err(format!(
        "{} is not a currency code like EUR{hint}",
        quote(value)
    ))
}

/// The first day a date of the data contract may be: older records are
/// not collected, and a year like 0001 is a typo or a placeholder.
pub const FIRST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(1990, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

/// The last day a date of the data contract may be: a year like 9999 is a
/// placeholder for "never", not a due date.
pub const LAST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2100, 12, 31) {
    Some(d) => d,
    None => NaiveDate::MAX,
};

/// When the ERP last changed a record (`updated_at`): RFC 3339
/// (`2027-03-01T09:30:00Z`, `2027-03-01T10:30:00+01:00`), or the same
/// without an offset (`2027-03-01T09:30:00`, `2027-03-01 09:30:00`), taken
/// as UTC; on a day from [`FIRST_DAY`] to [`LAST_DAY`], since a year like
/// 9999 would keep the record from ever being updated again.
pub(super) fn timestamp(value: &str) -> Result<DateTime<Utc>, Reason> {
    let parsed = DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
                .map(|t| t.and_utc())
        });
    match parsed {
        Some(t) if (FIRST_DAY..=LAST_DAY).contains(&t.date_naive()) => Ok(t),
        Some(_) => Err(format!(
            "{} is out of range: times are from {FIRST_DAY} to {LAST_DAY}",
            quote(value)
        )),
        None => Err(format!(
            "{} is not a time like `2027-03-01T09:30:00Z` (ISO 8601; without an offset it is UTC)",
            quote(value)
        )),
    }
}

/// A calendar day written `YYYY-MM-DD`, from [`FIRST_DAY`] to [`LAST_DAY`]. The shape is checked before the
/// calendar, because chrono alone would accept `2026-1-5` or `+2026-01-05`,
/// and an export that writes days some other way (`05/01/2026`) is
/// ambiguous between day-first and month-first.
pub(super) fn date(value: &str) -> Result<NaiveDate, Reason> {
    let shaped = |s: &str| {
        s.len() == 10
            && s.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            })
    };
    if shaped(value) {
        if let Ok(day) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            if !(FIRST_DAY..=LAST_DAY).contains(&day) {
                return Err(format!(
                    "{} is out of range: dates are from {FIRST_DAY} to {LAST_DAY}",
                    quote(value)
                ));
            }
            return Ok(day);
        }
    }
    let hint = match value.get(..10) {
        Some(day) if value.len() > 10 && shaped(day) => " (a day only, without a time)",
        _ => "",
    };
    Err(format!(
        "{} is not a date like 2026-12-01{hint}",
        quote(value)
    ))
}

/// `later` must not be before `earlier`: a due date before the issue date,
/// or a promise that ended before it was made, is a typo in the export.
pub(super) fn not_before(
    value: &str,
    later: NaiveDate,
    earlier: NaiveDate,
    earlier_name: &str,
) -> Result<(), Reason> {
    if later < earlier {
        Err(format!(
            "{} is before the {earlier_name} {earlier}",
            quote(value)
        ))
    } else {
        Ok(())
    }
}

/// A plain decimal: digits, optionally a `.` and more digits, optionally a
/// leading `-`. Nothing else: money is never floating point, and a comma,
/// a currency sign or an exponent means the export was formatted for
/// people, which is where amounts get misread by a factor of a thousand.
fn decimal(value: &str) -> Result<Decimal, DecimalError> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !fraction.is_none_or(all_digits) {
        return Err(DecimalError::Shape);
    }
    let parsed = Decimal::from_str_exact(value).map_err(|_| DecimalError::TooLarge)?;
    if parsed.abs() > MAX_AMOUNT {
        return Err(DecimalError::TooLarge);
    }
    Ok(parsed)
}

/// The largest amount (or number) the contract carries, either way:
/// 10^12, a thousand billion. Sums of many such amounts still fit a
/// `Decimal` with room to spare, so the engine's arithmetic cannot overflow
/// on what ingest let in.
pub use crate::domain::MAX_AMOUNT;

enum DecimalError {
    Shape,
    TooLarge,
}

/// Why a number-looking value is not a plain decimal, for the common cases.
fn decimal_hint(value: &str) -> &'static str {
    let starts_numeric = value
        .trim_start_matches(['-', '+'])
        .starts_with(|c: char| c.is_ascii_digit() || c == '.');
    if starts_numeric && value.contains(['e', 'E']) && !value.contains(char::is_whitespace) {
        " (no exponent notation)"
    } else if value.contains(',') {
        " (`.` for decimals, no thousands separators)"
    } else if value.contains(|c: char| c.is_alphabetic() || "$€£¥₹₽₩₺¤".contains(c)) {
        " (no currency signs or codes)"
    } else if value.contains(char::is_whitespace) || value.contains('\'') {
        " (no thousands separators)"
    } else {
        ""
    }
}

fn decimal_with(value: &str, like: &str) -> Result<Decimal, Reason> {
    decimal(value).map_err(|e| match e {
        DecimalError::Shape => format!("{} is not {like}{}", quote(value), decimal_hint(value)),
        DecimalError::TooLarge => format!(
            "{} is out of range: at most 1000000000000 (10^12) either way",
            quote(value)
        ),
    })
}

/// A sum of money, sign allowed.
pub(super) fn amount(value: &str) -> Result<Decimal, Reason> {
    decimal_with(value, "an amount like `12500.00`")
}

/// A non-money decimal (a credit score), sign allowed.
pub(super) fn number(value: &str) -> Result<Decimal, Reason> {
    decimal_with(value, "a number like `712` or `0.82`")
}

/// Money that cannot be negative: payments, revenue, credit limits, down
/// payments. A negative payment is a refund or a reversal, which the
/// contract does not carry; taking it as a payment would reopen an invoice.
pub(super) fn not_negative(value: &str) -> Result<Decimal, Reason> {
    let amount = amount(value)?;
    if amount < Decimal::ZERO {
        Err(format!(
            "{} is negative; this amount cannot be negative",
            quote(value)
        ))
    } else {
        Ok(amount)
    }
}

/// A payment: more than zero. A zero payment pays nothing and would
/// still show as the invoice's latest payment; a negative one is a refund
/// or a reversal, which the contract does not carry.
pub(super) fn payment_amount(value: &str) -> Result<Decimal, Reason> {
    let amount = amount(value)?;
    if amount.is_zero() {
        Err(format!(
            "{} is zero; a payment must be more than zero (leave a zero clearing entry out of the export)",
            quote(value)
        ))
    } else if amount < Decimal::ZERO {
        Err(format!(
            "{} is negative; this amount cannot be negative",
            quote(value)
        ))
    } else {
        Ok(amount)
    }
}

/// The amount of a write-off: more than zero (leave it out to write off
/// the whole balance).
pub(super) fn written_off_amount(value: &str) -> Result<Decimal, Reason> {
    let amount = amount(value)?;
    if amount <= Decimal::ZERO {
        Err(format!(
            "{} is not more than zero; a write-off amount must be more than zero \
             (leave `amount` out to write off the whole balance)",
            quote(value)
        ))
    } else {
        Ok(amount)
    }
}

/// An invoice amount: more than zero. A credit note (negative) or a
/// zero-value invoice has nothing to collect, and dunning for it would be
/// an embarrassment.
pub(super) fn invoice_amount(value: &str) -> Result<Decimal, Reason> {
    let amount = amount(value)?;
    if amount.is_zero() {
        Err(format!(
            "{} is zero; an invoice amount must be more than zero",
            quote(value)
        ))
    } else if amount < Decimal::ZERO {
        Err(format!(
            "{} is negative; an invoice amount must be more than zero",
            quote(value)
        ))
    } else {
        Ok(amount)
    }
}

/// The decimals an amount in `currency` may have: ISO 4217's minor units
/// (2 for EUR and USD, 0 for JPY, 3 for BHD). `None` for a code that is not
/// an invoice currency (refused by [`currency`] already).
pub(super) fn minor_units(currency: &str) -> Option<u32> {
    iso_currency::Currency::from_code(currency)
        .and_then(|c| c.exponent())
        .map(u32::from)
}

/// An amount must not have more decimals than its currency's minor units
/// (`12.345678901` USD, `100.5` JPY): such an amount cannot be paid, and
/// usually means a unit price or an exchange rate landed in the column.
/// Trailing zeros do not count (`100.00` JPY is 100 yen).
pub(super) fn fits_currency(value: &str, amount: Decimal, currency: &str) -> Result<(), Reason> {
    let Some(units) = minor_units(currency) else {
        return Ok(());
    };
    let decimals = amount.normalize().scale();
    if decimals > units {
        Err(format!(
            "{} has {decimals} decimals; {currency} amounts have at most {units}",
            quote(value)
        ))
    } else {
        Ok(())
    }
}

/// `true` or `false`, in any case. `yes`, `1` or `x` are refused: a
/// do-not-contact flag must never be guessed.
pub(super) fn boolean(value: &str) -> Result<bool, Reason> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(format!("{} is not true or false", quote(value)))
    }
}

/// A whole number in `1..=max`, written with digits only.
fn whole(value: &str, max: u32, unit: &str) -> Result<u32, Reason> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{} is not a whole number like 3", quote(value)));
    }
    match value.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{} is out of range: between 1 and {max} {unit}",
            quote(value)
        )),
    }
}

/// Most installments a plan may have: 1,000 is far beyond any real plan
/// and keeps schedules small enough to compute and store.
pub(super) const MAX_INSTALLMENTS: u32 = 1000;

/// Longest interval between installments: a year. Larger values are typos
/// and would push due dates out of any calendar the engine works with.
pub(super) const MAX_EVERY_DAYS: u32 = 366;

/// The number of installments of a payment plan.
pub(super) fn installments(value: &str) -> Result<u32, Reason> {
    whole(value, MAX_INSTALLMENTS, "installments")
}

/// The days between installments of a payment plan.
pub(super) fn every_days(value: &str) -> Result<i64, Reason> {
    whole(value, MAX_EVERY_DAYS, "days").map(i64::from)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn dates_must_be_iso_days() {
        assert_eq!(
            date("2026-02-28").unwrap(),
            NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()
        );
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-1-5",
            "+2026-01-05",
            "05/01/2026",
            "20260105",
        ] {
            let reason = date(bad).unwrap_err();
            assert!(reason.contains("is not a date like 2026-12-01"), "{reason}");
        }
        assert_eq!(
            date("2026-13-01").unwrap_err(),
            "`2026-13-01` is not a date like 2026-12-01"
        );
        assert!(
            date("2026-01-05T10:00:00Z")
                .unwrap_err()
                .contains("without a time")
        );
    }

    #[test]
    fn amounts_are_plain_decimals() {
        assert_eq!(amount("12500.00").unwrap().to_string(), "12500.00");
        assert_eq!(amount("-3.5").unwrap().to_string(), "-3.5");
        assert_eq!(amount("7").unwrap().to_string(), "7");
        assert_eq!(
            amount("12,5k").unwrap_err(),
            "`12,5k` is not an amount like `12500.00` (`.` for decimals, no thousands separators)"
        );
        assert!(amount("1e3").unwrap_err().contains("exponent"));
        assert!(amount("1.5E+3").unwrap_err().contains("exponent"));
        assert!(amount("$12").unwrap_err().contains("currency"));
        assert!(amount("12 EUR").unwrap_err().contains("currency"));
        assert!(amount("12 500").unwrap_err().contains("thousands"));
        for bad in [".5", "5.", "+5", "--5", "-", "1.2.3", "NaN", "inf", "0x10"] {
            assert!(amount(bad).is_err(), "{bad}");
        }
        assert!(
            amount("123456789012345678901234567890")
                .unwrap_err()
                .contains("out of range")
        );
    }

    #[test]
    fn amounts_are_bounded_by_a_thousand_billion() {
        // 28 digits fit a Decimal, but ten of them overflow a sum.
        for big in [
            "1234567890123456789012345678",
            "9999999999999999999999999999",
            "-1234567890123456789012345678",
            "1000000000000.01",
            "-1000000000001",
        ] {
            assert_eq!(
                amount(big).unwrap_err(),
                format!("`{big}` is out of range: at most 1000000000000 (10^12) either way"),
            );
            assert!(number(big).is_err(), "{big}");
        }
        assert_eq!(MAX_AMOUNT.to_string(), "1000000000000");
        assert!(amount("1000000000000").is_ok());
        assert!(amount("-1000000000000.00").is_ok());
        assert!(invoice_amount("1234567890123456789012345678").is_err());
        assert!(not_negative("1234567890123456789012345678").is_err());
    }

    #[test]
    fn dates_are_within_a_sane_range() {
        for bad in ["0001-01-01", "9999-12-31", "1989-12-31", "2101-01-01"] {
            assert_eq!(
                date(bad).unwrap_err(),
                format!("`{bad}` is out of range: dates are from 1990-01-01 to 2100-12-31"),
            );
        }
        assert_eq!(date("1990-01-01").unwrap(), FIRST_DAY);
        assert_eq!(date("2100-12-31").unwrap(), LAST_DAY);
    }

    #[test]
    fn amounts_fit_their_currency() {
        let ok = |v: &str, c: &str| fits_currency(v, amount(v).unwrap(), c);
        assert_eq!(
            ok("12.345678901", "USD").unwrap_err(),
            "`12.345678901` has 9 decimals; USD amounts have at most 2"
        );
        assert!(ok("12.34", "USD").is_ok());
        assert!(
            ok("12.3400000", "USD").is_ok(),
            "trailing zeros do not count"
        );
        assert_eq!(
            ok("100.5", "JPY").unwrap_err(),
            "`100.5` has 1 decimals; JPY amounts have at most 0"
        );
        assert!(ok("100", "JPY").is_ok());
        assert!(ok("100.00", "JPY").is_ok());
        assert!(ok("1.234", "BHD").is_ok());
        assert!(ok("1.2345", "BHD").is_err());
        assert_eq!(minor_units("EUR"), Some(2));
        assert_eq!(minor_units("JPY"), Some(0));
        assert_eq!(minor_units("XYZ"), None);
    }

    #[test]
    fn signs_of_money() {
        assert!(invoice_amount("0.00").unwrap_err().contains("is zero"));
        assert!(invoice_amount("-1").unwrap_err().contains("is negative"));
        assert!(invoice_amount("0.01").is_ok());
        assert!(not_negative("-0.01").unwrap_err().contains("is negative"));
        assert!(not_negative("0").is_ok());
        assert!(not_negative("-0").is_ok());
    }

    #[test]
    fn booleans() {
        assert!(boolean("true").unwrap());
        assert!(boolean("TRUE").unwrap());
        assert!(!boolean("False").unwrap());
        for bad in ["yes", "1", "x", "t"] {
            assert_eq!(
                boolean(bad).unwrap_err(),
                format!("`{bad}` is not true or false")
            );
        }
    }

    #[test]
    fn currencies() {
        assert_eq!(currency("EUR").unwrap(), "EUR");
        assert!(currency("eur").unwrap_err().contains("upper case: EUR"));
        for bad in ["EURO", "E1R", "€", "US"] {
            assert!(currency(bad).is_err(), "{bad}");
        }
        for good in ["USD", "JPY", "CHF", "BHD", "GBP"] {
            assert_eq!(currency(good).unwrap(), good);
        }
        assert_eq!(
            currency("XYZ").unwrap_err(),
            "`XYZ` is not an ISO 4217 currency code like EUR or USD"
        );
        assert!(currency("ABC").is_err());
        // Codes without minor units: gold, "no currency".
        assert!(
            currency("XAU")
                .unwrap_err()
                .contains("not a currency invoices can be in")
        );
        assert!(currency("XXX").is_err());
    }

    #[test]
    fn emails() {
        for good in ["ap@example.com", "first.last+ar@sub.example.co.uk"] {
            assert!(email(good).is_ok(), "{good}");
        }
        for bad in [
            "ap@example",
            "apexample.com",
            "@example.com",
            "a@b@example.com",
            "ap @example.com",
            "ap@example.com; ar@example.com",
            "ap@.example.com",
            "ap@example.com.",
            "ap@exa..mple.com",
            "ap@example.com\n",
            // Pasted with the angle brackets of a mail header: the mailer
            // refuses them on the send day, so ingest refuses them now.
            "<c4@x.example>",
            "c7@seven.example>",
            "<c7@seven.example",
            // Not allowed in an address: caught by lettre's parser.
            "ap(x)@example.com",
            "a\"b@example.com",
            "ap@exa_mple.com!",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert_eq!(
            email("<c4@x.example>").unwrap_err(),
            "`<c4@x.example>` is not an email address like ap@example.com (the address only, without `<` `>`)"
        );
        // What ingest accepts, the mailer can send to.
        for good in [
            "c4@x.example",
            "ap@example.com",
            "first.last+ar@sub.example.co.uk",
        ] {
            assert!(lettre::Address::from_str(&email(good).unwrap()).is_ok());
        }
    }

    #[test]
    fn languages_and_zones() {
        for good in ["en", "de", "fil", "pt-BR", "es-419"] {
            assert!(language(good).is_ok(), "{good}");
        }
        assert_eq!(language("PT-br").unwrap(), "pt-BR");
        assert_eq!(language("DE").unwrap(), "de");
        for bad in ["e", "english", "pt_BR", "pt-", "pt-Brazil", "12"] {
            assert!(language(bad).is_err(), "{bad}");
        }
        assert!(timezone("Europe/Berlin").is_ok());
        assert!(timezone("UTC").is_ok());
        assert!(timezone("Europe/Berln").unwrap_err().contains("IANA"));
        assert!(timezone("CET+1").is_err());
    }

    #[test]
    fn plan_numbers() {
        assert_eq!(installments("3").unwrap(), 3);
        assert!(installments("0").unwrap_err().contains("between 1 and"));
        assert!(installments("2.5").unwrap_err().contains("whole number"));
        assert!(installments("-2").is_err());
        assert!(installments("99999999999").is_err());
        assert_eq!(every_days("30").unwrap(), 30);
        assert!(every_days("367").is_err());
    }

    #[test]
    fn text_is_one_line_and_quotes_are_short() {
        assert!(id("C-1").is_ok());
        assert!(id("C\n1").unwrap_err().contains("line break"));
        assert!(text("Acme\tGmbH").is_err());
        let long = "x".repeat(500);
        let quoted = quote(&long);
        assert!(quoted.chars().count() < 70);
        assert_eq!(quote("a\nb"), "`a\\nb`");
    }
}
