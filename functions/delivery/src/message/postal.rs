//! The recipient's address block of a printed letter, in the order the
//! post of the recipient's country reads it.
//!
//! The ERP gives the parts (street lines, postal code, city, region) and
//! the country as an ISO 3166 alpha-2 code; this module turns them into
//! the lines of the block:
//!
//! - Germany, Austria, Switzerland and most of continental Europe and
//!   Latin America (DIN 5008, UPU S42): `10115 Berlin`, postal code first;
//! - the United States: `San Francisco, CA 94105` (city, state, ZIP on one
//!   line), Canada and Australia alike without the comma
//!   (`Toronto ON  M5H 2N2`, two spaces before the postal code as Canada
//!   Post asks);
//! - the United Kingdom and Ireland: the post town and the postcode each on
//!   their own line (Royal Mail);
//! - anywhere else: the postal code before the city, the region after.
//!
//! A letter that crosses a border (the company's country is not the
//! customer's) ends with the country's name in capitals (UPU); a letter
//! within one country does not.
//!
//! An address without a street line or a city cannot be delivered: the
//! block is then [`AddressBlock::Missing`] and the letter says so to the
//! person who approves it, rather than printing a blank window.

use collect_engine::domain::PostalAddress;

/// The lines of a recipient's address block, or why there are none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressBlock {
    /// Ready for the window of the envelope, the name first.
    Lines(Vec<String>),
    /// Not deliverable as it stands: what is known (the name and any
    /// parts), and which parts are missing (their column names).
    Missing {
        known: Vec<String>,
        missing: Vec<&'static str>,
    },
}

/// How a country writes the last lines of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `10115 Berlin` (region, if any, on the next line).
    PostcodeCity,
    /// `San Francisco, CA 94105`.
    UnitedStates,
    /// `Toronto ON  M5H 2N2`; Australia `SYDNEY NSW 2000` alike with one space.
    CityRegionPostcode { gap: &'static str },
    /// Town, then postcode, each on its own line.
    TownThenPostcode,
}

fn layout(country: Option<&str>) -> Layout {
    match country {
        Some("US" | "PR") => Layout::UnitedStates,
        Some("CA") => Layout::CityRegionPostcode { gap: "  " },
        Some("AU") => Layout::CityRegionPostcode { gap: " " },
        Some("GB" | "IE" | "IM" | "JE" | "GG") => Layout::TownThenPostcode,
        _ => Layout::PostcodeCity,
    }
}

/// The country code as written in the data (`de`, ` DE `) in capitals, if
/// it looks like an ISO 3166 alpha-2 code.
pub fn country_code(country: Option<&str>) -> Option<String> {
    let code = country?.trim().to_ascii_uppercase();
    (code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase())).then_some(code)
}

/// The block for `name` at `address` in `country` (the customer's), sent
/// from `sender_country` (the company's; unknown: the country line is
/// printed whenever the customer's country is known, since it never hurts
/// delivery).
pub fn address_block(
    name: &str,
    address: &PostalAddress,
    country: Option<&str>,
    sender_country: Option<&str>,
) -> AddressBlock {
    let code = country_code(country);
    let part = |p: &Option<String>| {
        p.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let (line1, line2) = (part(&address.line1), part(&address.line2));
    let (postcode, city, region) = (
        part(&address.postal_code),
        part(&address.city),
        part(&address.region),
    );
    let mut lines = vec![name.trim().to_string()];
    lines.extend(line1.clone());
    lines.extend(line2);
    let join = |parts: &[Option<&str>], sep: &str| {
        let text = parts
            .iter()
            .flatten()
            .copied()
            .collect::<Vec<_>>()
            .join(sep);
        (!text.is_empty()).then_some(text)
    };
    match layout(code.as_deref()) {
        Layout::PostcodeCity => {
            lines.extend(join(&[postcode.as_deref(), city.as_deref()], " "));
            lines.extend(region.clone());
        }
        Layout::UnitedStates => {
            let state_zip = join(&[region.as_deref(), postcode.as_deref()], " ");
            lines.extend(join(&[city.as_deref(), state_zip.as_deref()], ", "));
        }
        Layout::CityRegionPostcode { gap } => {
            let city_region = join(&[city.as_deref(), region.as_deref()], " ");
            lines.extend(join(&[city_region.as_deref(), postcode.as_deref()], gap));
        }
        Layout::TownThenPostcode => {
            lines.extend(city.clone());
            lines.extend(region.clone());
            lines.extend(postcode.clone());
        }
    }
    let abroad = code.is_some() && code != country_code(sender_country);
    if let Some(code) = code.as_deref().filter(|_| abroad) {
        lines.push(country_name(code).map_or_else(|| code.to_string(), str::to_uppercase));
    } else if code.is_none() {
        // A country the data gives as a name (`Germany`): printed as given,
        // since it cannot be compared with the company's.
        if let Some(given) = country.map(str::trim).filter(|c| !c.is_empty()) {
            lines.push(given.to_uppercase());
        }
    }
    let mut missing = Vec::new();
    if line1.is_none() {
        missing.push("address_line1");
    }
    if city.is_none() {
        missing.push("city");
    }
    if missing.is_empty() {
        AddressBlock::Lines(lines)
    } else if address.is_empty() {
        // A country alone is not an address: the name only.
        AddressBlock::Missing {
            known: lines.into_iter().take(1).collect(),
            missing,
        }
    } else {
        AddressBlock::Missing {
            known: lines,
            missing,
        }
    }
}

/// The English name of a country the product's customers are commonly in
/// (English is the language the UPU accepts on every envelope); others
/// print their code.
fn country_name(code: &str) -> Option<&'static str> {
    Some(match code {
        "AT" => "Austria",
        "AU" => "Australia",
        "BE" => "Belgium",
        "BR" => "Brazil",
        "CA" => "Canada",
        "CH" => "Switzerland",
        "CN" => "China",
        "CZ" => "Czech Republic",
        "DE" => "Germany",
        "DK" => "Denmark",
        "ES" => "Spain",
        "FI" => "Finland",
        "FR" => "France",
        "GB" => "United Kingdom",
        "GR" => "Greece",
        "HU" => "Hungary",
        "IE" => "Ireland",
        "IN" => "India",
        "IT" => "Italy",
        "JP" => "Japan",
        "LI" => "Liechtenstein",
        "LU" => "Luxembourg",
        "MX" => "Mexico",
        "NL" => "Netherlands",
        "NO" => "Norway",
        "NZ" => "New Zealand",
        "PL" => "Poland",
        "PT" => "Portugal",
        "RO" => "Romania",
        "SE" => "Sweden",
        "SG" => "Singapore",
        "US" => "United States",
        "ZA" => "South Africa",
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn address(line1: &str, postcode: &str, city: &str, region: &str) -> PostalAddress {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        PostalAddress {
            line1: some(line1),
            line2: None,
            postal_code: some(postcode),
            city: some(city),
            region: some(region),
        }
    }

    fn lines(block: AddressBlock) -> Vec<String> {
        match block {
            AddressBlock::Lines(lines) => lines,
            other => panic!("not deliverable: {other:?}"),
        }
    }

    #[test]
    fn germany_puts_the_postcode_before_the_city_and_no_country_at_home() {
        let a = address("Hauptstraße 5", "10115", "Berlin", "");
        assert_eq!(
            lines(address_block("Acme GmbH", &a, Some("DE"), Some("DE"))),
            ["Acme GmbH", "Hauptstraße 5", "10115 Berlin"]
        );
        // From Austria, the letter crosses a border.
        assert_eq!(
            lines(address_block("Acme GmbH", &a, Some("de"), Some("AT"))),
            ["Acme GmbH", "Hauptstraße 5", "10115 Berlin", "GERMANY"]
        );
        let ch = address("Bahnhofstrasse 1", "8001", "Zürich", "");
        assert_eq!(
            lines(address_block("Beta AG", &ch, Some("CH"), Some("CH"))),
            ["Beta AG", "Bahnhofstrasse 1", "8001 Zürich"]
        );
    }

    #[test]
    fn the_united_states_and_canada_put_city_region_and_code_on_one_line() {
        let us = PostalAddress {
            line2: Some("Suite 400".into()),
            ..address("1 Market St", "94105", "San Francisco", "CA")
        };
        assert_eq!(
            lines(address_block("Acme Inc", &us, Some("US"), Some("US"))),
            [
                "Acme Inc",
                "1 Market St",
                "Suite 400",
                "San Francisco, CA 94105"
            ]
        );
        let ca = address("100 Queen St W", "M5H 2N2", "Toronto", "ON");
        assert_eq!(
            lines(address_block("Maple Ltd", &ca, Some("CA"), Some("US"))),
            [
                "Maple Ltd",
                "100 Queen St W",
                "Toronto ON  M5H 2N2",
                "CANADA"
            ]
        );
    }

    #[test]
    fn britain_puts_town_and_postcode_on_their_own_lines() {
        let gb = address("10 Downing Street", "SW1A 2AA", "London", "");
        assert_eq!(
            lines(address_block("Bolt Ltd", &gb, Some("GB"), Some("DE"))),
            [
                "Bolt Ltd",
                "10 Downing Street",
                "London",
                "SW1A 2AA",
                "UNITED KINGDOM"
            ]
        );
    }

    #[test]
    fn other_countries_and_unknown_ones_get_the_default() {
        let fr = address("5 rue de Rivoli", "75001", "Paris", "");
        assert_eq!(
            lines(address_block("Cie", &fr, Some("FR"), None)),
            ["Cie", "5 rue de Rivoli", "75001 Paris", "FRANCE"]
        );
        let xx = address("Main Road 1", "12345", "Springfield", "North");
        assert_eq!(
            lines(address_block("X", &xx, Some("ZZ"), Some("DE"))),
            ["X", "Main Road 1", "12345 Springfield", "North", "ZZ"]
        );
        // No country known: the default layout, no country line.
        assert_eq!(
            lines(address_block("X", &xx, None, Some("DE"))),
            ["X", "Main Road 1", "12345 Springfield", "North"]
        );
        // A country given as a name is printed as given.
        assert_eq!(
            lines(address_block("X", &xx, Some("Germany"), Some("DE"))),
            ["X", "Main Road 1", "12345 Springfield", "North", "GERMANY"]
        );
    }

    #[test]
    fn an_address_without_street_or_city_is_missing_not_blank() {
        assert_eq!(
            address_block("Acme", &PostalAddress::default(), Some("DE"), Some("DE")),
            AddressBlock::Missing {
                known: vec!["Acme".into()],
                missing: vec!["address_line1", "city"],
            }
        );
        assert_eq!(
            address_block("Acme", &PostalAddress::default(), Some("AT"), Some("DE")),
            AddressBlock::Missing {
                known: vec!["Acme".into()],
                missing: vec!["address_line1", "city"],
            }
        );
        let no_city = address("Hauptstraße 5", "10115", "", "");
        assert_eq!(
            address_block("Acme", &no_city, Some("DE"), Some("DE")),
            AddressBlock::Missing {
                known: vec!["Acme".into(), "Hauptstraße 5".into(), "10115".into()],
                missing: vec!["city"],
            }
        );
    }
}
