//! Money and dates in the customer's language and country, with ICU4X and
//! its compiled CLDR data (no data files to ship or load).
//!
//! The locale is the customer's `language` (`de`, `de-AT`, `en_GB`) with
//! their `country` as the region when the language names none: `de` + `AT`
//! is `de-AT`. A language ICU4X cannot parse is formatted as `en`.
//!
//! Conventions (documented in policy/README.md, "Templates"):
//! - dates: CLDR's long date of the locale (`3. April 2027`, `April 3,
//!   2027`, `3 April 2027` for en-GB), and its medium numeric one for
//!   tables (`03.04.2027`, `Apr 3, 2027`); never ISO 8601;
//! - money: the locale's digits, grouping and decimal separator with the
//!   currency's minor units (ISO 4217: 2 for USD/EUR, 0 for JPY), and the
//!   ISO code rather than a symbol (`$` is ambiguous between USD, CAD,
//!   AUD…): after the amount, as in German and most European languages
//!   (`2.763,63 USD`), before it in English (`USD 2,763.63`), where CLDR's
//!   pattern puts the currency first.

use chrono::{Datelike, NaiveDate};
use icu_datetime::DateTimeFormatter;
use icu_datetime::fieldsets::YMD;
use icu_datetime::input::Date;
use icu_decimal::DecimalFormatter;
use icu_locale_core::Locale;
use rust_decimal::{Decimal, RoundingStrategy};

/// The formatters for one locale. Cheap enough to build per message
/// (compiled data: no I/O).
pub struct Formats {
    locale: Locale,
    decimal: Option<DecimalFormatter>,
    long_date: Option<DateTimeFormatter<YMD>>,
    short_date: Option<DateTimeFormatter<YMD>>,
}

impl std::fmt::Debug for Formats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Formats")
            .field("locale", &self.locale.to_string())
            .finish_non_exhaustive()
    }
}

impl Formats {
    /// The formats for a customer's `language` and `country` (ISO 3166
    /// alpha-2, optional).
    pub fn for_customer(language: &str, country: Option<&str>) -> Formats {
        Formats::new(locale_of(language, country))
    }

    fn new(locale: Locale) -> Formats {
        Formats {
            decimal: DecimalFormatter::try_new((&locale).into(), Default::default()).ok(),
            long_date: DateTimeFormatter::try_new((&locale).into(), YMD::long()).ok(),
            short_date: DateTimeFormatter::try_new((&locale).into(), YMD::medium()).ok(),
            locale,
        }
    }

    /// The locale used, as a BCP 47 tag (`de-AT`).
    pub fn locale(&self) -> String {
        self.locale.to_string()
    }

    fn english(&self) -> bool {
        self.locale.id.language.as_str() == "en"
    }

    /// A number with the currency's minor units (half away from zero).
    pub fn number(&self, amount: Decimal, minor_units: u32) -> String {
        let rounded =
            amount.round_dp_with_strategy(minor_units, RoundingStrategy::MidpointAwayFromZero);
        let plain = format!("{rounded:.prec$}", prec = minor_units as usize);
        let parsed = fixed_decimal::Decimal::try_from_str(&plain).ok();
        match (&self.decimal, parsed) {
            (Some(formatter), Some(mut value)) => {
                value.pad_end(-(minor_units as i16));
                formatter.format(&value).to_string()
            }
            _ => plain,
        }
    }

    /// An amount with its ISO 4217 currency code, in this locale's
    /// convention (`2.763,63 USD`, `USD 2,763.63`).
    pub fn money(&self, amount: Decimal, currency: &str) -> String {
        let currency = currency.trim();
        let minor_units = iso_currency::Currency::from_code(currency)
            .and_then(|c| c.exponent())
            .map_or(2, u32::from);
        let number = self.number(amount, minor_units);
        if currency.is_empty() {
            number
        } else if self.english() {
            match number.strip_prefix('-') {
                Some(positive) => format!("-{currency} {positive}"),
                None => format!("{currency} {number}"),
            }
        } else {
            format!("{number} {currency}")
        }
    }

    /// The long date: `3. April 2027`, `April 3, 2027`.
    pub fn date(&self, day: NaiveDate) -> String {
        format_date(self.long_date.as_ref(), day)
    }

    /// The medium date, for tables: `03.04.2027`, `Apr 3, 2027`.
    pub fn date_short(&self, day: NaiveDate) -> String {
        format_date(self.short_date.as_ref(), day)
    }
}

fn format_date(formatter: Option<&DateTimeFormatter<YMD>>, day: NaiveDate) -> String {
    let date = u8::try_from(day.month())
        .ok()
        .zip(u8::try_from(day.day()).ok())
        .and_then(|(m, d)| Date::try_new_iso(day.year(), m, d).ok());
    match (formatter, date) {
        (Some(f), Some(date)) => f.format(&date).to_string(),
        // Not reachable with chrono's dates; ISO rather than nothing.
        _ => day.to_string(),
    }
}

/// `de` + `AT` → `de-AT`; a language that names its region keeps it;
/// anything ICU4X cannot parse → `en`.
fn locale_of(language: &str, country: Option<&str>) -> Locale {
    let language = language.trim().replace('_', "-");
    let language = if language.is_empty() { "en" } else { &language };
    let Ok(mut locale) = Locale::try_from_str(language) else {
        return icu_locale_core::locale!("en");
    };
    if locale.id.region.is_none()
        && let Some(region) = country
            .map(str::trim)
            .filter(|c| c.len() == 2)
            .and_then(|c| c.to_ascii_uppercase().parse().ok())
    {
        locale.id.region = Some(region);
    }
    locale
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
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::from_str(s).unwrap()
    }

    #[test]
    fn german_money_and_dates() {
        let de = Formats::for_customer("de", Some("DE"));
        assert_eq!(de.locale(), "de-DE");
        assert_eq!(de.money(d("2763.63"), "USD"), "2.763,63 USD");
        assert_eq!(de.money(d("1234567.891"), "EUR"), "1.234.567,89 EUR");
        assert_eq!(de.money(d("0"), "EUR"), "0,00 EUR");
        assert_eq!(de.money(d("0.005"), "EUR"), "0,01 EUR");
        assert_eq!(de.money(d("-1200.5"), "EUR"), "-1.200,50 EUR");
        assert_eq!(de.date(day("2027-04-03")), "3. April 2027");
        assert_eq!(de.date_short(day("2027-04-03")), "03.04.2027");
        // Austria writes January as Jänner.
        let at = Formats::for_customer("de", Some("at"));
        assert_eq!(at.locale(), "de-AT");
        assert_eq!(at.date(day("2027-01-03")), "3. Jänner 2027");
        // Switzerland groups with an apostrophe, and its region wins over
        // the country.
        let ch = Formats::for_customer("de-CH", Some("DE"));
        assert_eq!(ch.locale(), "de-CH");
        assert_eq!(ch.money(d("2763.63"), "CHF"), "2'763.63 CHF");
    }

    #[test]
    fn english_money_and_dates() {
        let us = Formats::for_customer("en", Some("US"));
        assert_eq!(us.money(d("2763.63"), "USD"), "USD 2,763.63");
        assert_eq!(us.money(d("-1200.5"), "USD"), "-USD 1,200.50");
        assert_eq!(us.money(d("12.3"), ""), "12.30");
        assert_eq!(us.date(day("2027-04-03")), "April 3, 2027");
        assert_eq!(us.date_short(day("2027-04-03")), "Apr 3, 2027");
        let gb = Formats::for_customer("en_GB", None);
        assert_eq!(gb.date(day("2027-04-03")), "3 April 2027");
        // Minor units of the currency: none for yen, three for dinar.
        assert_eq!(us.money(d("1234.5"), "JPY"), "JPY 1,235");
        assert_eq!(us.money(d("1.2345"), "KWD"), "KWD 1.235");
    }

    #[test]
    fn unknown_languages_fall_back_to_english() {
        for language in ["", "  ", "not a language!", "x"] {
            let f = Formats::for_customer(language, Some("ZZZ"));
            assert_eq!(f.money(d("2763.63"), "USD"), "USD 2,763.63", "{language:?}");
            assert_eq!(f.date(day("2027-04-03")), "April 3, 2027", "{language:?}");
        }
        let fr = Formats::for_customer("fr", Some("FR"));
        assert_eq!(fr.date(day("2027-04-03")), "3 avril 2027");
        assert!(fr.money(d("2763.63"), "EUR").ends_with(",63 EUR"));
    }
}

/// Why a template's language folder is not a language a customer can have,
/// and the tag that was probably meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotALanguage {
    pub folder: String,
    /// What the folder is: a language's name, a country's code, or neither.
    pub what: &'static str,
    pub suggestion: Option<String>,
}

/// Checks a template's language folder (`de`, `pt-BR`) with the rule the
/// customers' `language` is ingested by, so that every folder is one some
/// customer can be sent: `german/`, `en_GB/` or `jp/` never would be.
pub fn language_folder(folder: &str) -> Result<(), NotALanguage> {
    let lower = folder.to_ascii_lowercase();
    let named = LANGUAGE_NAMES
        .iter()
        .find(|(name, _)| *name == lower)
        .map(|(_, tag)| *tag);
    let country = COUNTRY_CODES
        .iter()
        .find(|(code, _)| *code == lower)
        .map(|(_, tag)| *tag);
    let valid = collect_engine::ingest::language(folder).is_ok();
    if valid && named.is_none() && country.is_none() {
        return Ok(());
    }
    let (what, suggestion) = if let Some(tag) = named {
        ("a language's name", Some(tag.to_string()))
    } else if let Some(tag) = country {
        ("a country's code", Some(tag.to_string()))
    } else if let Ok(tag) = collect_engine::ingest::language(&folder.replace('_', "-")) {
        // `en_GB`: the right tag with the wrong separator.
        ("", Some(tag))
    } else {
        let names = LANGUAGE_NAMES.iter().map(|(n, _)| *n);
        let close = policy_lang::diagnostic::did_you_mean(&lower, names)
            .and_then(|n| LANGUAGE_NAMES.iter().find(|(name, _)| *name == n))
            .map(|(_, tag)| (*tag).to_string());
        ("", close)
    };
    Err(NotALanguage {
        folder: folder.to_string(),
        what,
        suggestion,
    })
}

/// English and native names of languages a folder is often named after,
/// and their BCP 47 tags; ISO 639-2/B codes (`ger`, `fre`) too, which look
/// like tags but are not the ones customers' languages are written with.
const LANGUAGE_NAMES: &[(&str, &str)] = &[
    ("english", "en"),
    ("german", "de"),
    ("deutsch", "de"),
    ("ger", "de"),
    ("deu", "de"),
    ("french", "fr"),
    ("francais", "fr"),
    ("français", "fr"),
    ("fre", "fr"),
    ("fra", "fr"),
    ("spanish", "es"),
    ("espanol", "es"),
    ("español", "es"),
    ("spa", "es"),
    ("italian", "it"),
    ("italiano", "it"),
    ("ita", "it"),
    ("portuguese", "pt"),
    ("portugues", "pt"),
    ("português", "pt"),
    ("por", "pt"),
    ("dutch", "nl"),
    ("nederlands", "nl"),
    ("dut", "nl"),
    ("nld", "nl"),
    ("polish", "pl"),
    ("polski", "pl"),
    ("swedish", "sv"),
    ("svenska", "sv"),
    ("swe", "sv"),
    ("danish", "da"),
    ("dansk", "da"),
    ("norwegian", "nb"),
    ("norsk", "nb"),
    ("finnish", "fi"),
    ("suomi", "fi"),
    ("czech", "cs"),
    ("cze", "cs"),
    ("ces", "cs"),
    ("greek", "el"),
    ("gre", "el"),
    ("ell", "el"),
    ("hungarian", "hu"),
    ("magyar", "hu"),
    ("romanian", "ro"),
    ("turkish", "tr"),
    ("russian", "ru"),
    ("ukrainian", "uk"),
    ("japanese", "ja"),
    ("chinese", "zh"),
    ("chi", "zh"),
    ("zho", "zh"),
    ("korean", "ko"),
    ("arabic", "ar"),
    ("hebrew", "he"),
    ("hindi", "hi"),
];

/// Country codes that are not a language code and are often used as one,
/// with the country's language.
const COUNTRY_CODES: &[(&str, &str)] = &[
    ("us", "en"),
    ("gb", "en"),
    ("at", "de"),
    ("dk", "da"),
    ("jp", "ja"),
    ("cn", "zh"),
    ("cz", "cs"),
    ("gr", "el"),
    ("ua", "uk"),
];

#[cfg(test)]
mod language_folder_tests {
    use super::language_folder;

    #[test]
    fn tags_pass_and_names_get_the_tag() {
        for good in ["en", "de", "pt-BR", "es-419", "DE"] {
            assert_eq!(language_folder(good), Ok(()), "{good}");
        }
        let suggestion = |f: &str| language_folder(f).err().and_then(|e| e.suggestion);
        assert_eq!(suggestion("german").as_deref(), Some("de"));
        assert_eq!(suggestion("German").as_deref(), Some("de"));
        assert_eq!(suggestion("ger").as_deref(), Some("de"));
        assert_eq!(suggestion("germn").as_deref(), Some("de"));
        assert_eq!(suggestion("en_GB").as_deref(), Some("en-GB"));
        assert_eq!(suggestion("jp").as_deref(), Some("ja"));
        assert!(language_folder("xyzzy-folder").is_err());
        assert_eq!(suggestion("xyzzy-folder"), None);
    }
}
