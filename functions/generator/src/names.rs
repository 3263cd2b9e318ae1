//! The world customers are drawn from: regions (country, language, time
//! zone), company names in English and German, industries, and the small
//! draws (a weighted pick, a normal, an amount) the generator makes.

use collect_engine::domain::PostalAddress;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

#[derive(Clone, Copy)]
pub(crate) struct Region {
    pub(crate) timezone: &'static str,
    pub(crate) countries: &'static [&'static str],
    /// Chance, in percent, that the customer reads German.
    pub(crate) german: u32,
    pub(crate) weight: u32,
}

/// Where customers are. At the default send time (14:00 UTC) customers in
/// Los Angeles and Tokyo are inside the policy's quiet hours.
pub(crate) const REGIONS: [Region; 8] = [
    Region {
        timezone: "America/New_York",
        countries: &["US"],
        german: 0,
        weight: 30,
    },
    Region {
        timezone: "America/Chicago",
        countries: &["US"],
        german: 0,
        weight: 14,
    },
    Region {
        timezone: "America/Los_Angeles",
        countries: &["US"],
        german: 0,
        weight: 4,
    },
    Region {
        timezone: "Europe/Berlin",
        countries: &["DE", "DE", "DE", "AT", "CH"],
        german: 75,
        weight: 20,
    },
    Region {
        timezone: "Europe/London",
        countries: &["GB", "IE"],
        german: 0,
        weight: 10,
    },
    Region {
        timezone: "Europe/Amsterdam",
        countries: &["NL", "BE"],
        german: 10,
        weight: 6,
    },
    Region {
        timezone: "UTC",
        countries: &["PT", "IS", "GH"],
        german: 0,
        weight: 10,
    },
    Region {
        timezone: "Asia/Tokyo",
        countries: &["JP"],
        german: 0,
        weight: 6,
    },
];

pub(crate) const NAMES_EN: [&str; 24] = [
    "Northwind",
    "Bluebird",
    "Summit",
    "Harbor",
    "Ironwood",
    "Maple",
    "Granite",
    "Redwood",
    "Silver Lake",
    "Brightline",
    "Cedar",
    "Falcon",
    "Keystone",
    "Lakeside",
    "Meridian",
    "Oakridge",
    "Pioneer",
    "Riverside",
    "Sterling",
    "Tidewater",
    "Vantage",
    "Westfield",
    "Atlas",
    "Beacon",
];
pub(crate) const KINDS_EN: [&str; 10] = [
    "Supplies",
    "Logistics",
    "Foods",
    "Builders",
    "Medical",
    "Retail",
    "Labs",
    "Print",
    "Hospitality",
    "Motors",
];
pub(crate) const SUFFIX_EN: [&str; 4] = ["Inc.", "LLC", "Ltd", "Co."];
pub(crate) const NAMES_DE: [&str; 16] = [
    "Bergmann", "Hoffmann", "Keller", "Lindner", "Neumann", "Schubert", "Vogel", "Weber", "Brandt",
    "Fischer", "Hartmann", "Krause", "Lorenz", "Richter", "Sommer", "Winter",
];
pub(crate) const KINDS_DE: [&str; 8] = [
    "Maschinenbau",
    "Logistik",
    "Handel",
    "Bau",
    "Elektro",
    "Feinkost",
    "Druck",
    "Medizintechnik",
];
pub(crate) const SUFFIX_DE: [&str; 3] = ["GmbH", "AG", "KG"];
pub(crate) const INDUSTRIES: [&str; 8] = [
    "manufacturing",
    "wholesale",
    "construction",
    "healthcare",
    "retail",
    "hospitality",
    "logistics",
    "software",
];

pub(crate) fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        return None;
    }
    items.get(rng.random_range(0..items.len()))
}

pub(crate) fn weighted<T: Copy>(
    rng: &mut ChaCha8Rng,
    items: &[T],
    weight: impl Fn(&T) -> u32,
) -> Option<T> {
    let total: u32 = items.iter().map(&weight).sum();
    if total == 0 {
        return items.first().copied();
    }
    let mut roll = rng.random_range(0..total);
    for item in items {
        let w = weight(item);
        if roll < w {
            return Some(*item);
        }
        roll -= w;
    }
    items.last().copied()
}

/// A standard normal draw (Box–Muller).
pub(crate) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// An invoice amount: log-normal around 1,800 USD, between 150 and 25,000.
pub(crate) fn amount(rng: &mut ChaCha8Rng, scale: f64) -> Decimal {
    let x = (1800.0 * scale * (0.95 * normal(rng)).exp()).clamp(150.0, 25_000.0);
    // Whole cents; the clamp keeps this far inside i64.
    Decimal::new((x * 100.0).round() as i64, 2)
}

pub(crate) fn days(rng: &mut ChaCha8Rng, from: i64, to: i64) -> i64 {
    rng.random_range(from..=to)
}

pub(crate) fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// A city, its region where the post uses one, and the shape of its
/// postal codes: `#` is a digit, `@` a capital letter.
type City = (&'static str, &'static str, &'static str);

/// Cities by country.
const CITIES: &[(&str, &[City])] = &[
    (
        "US",
        &[
            ("New York", "NY", "100##"),
            ("Chicago", "IL", "606##"),
            ("Los Angeles", "CA", "900##"),
            ("Austin", "TX", "787##"),
            ("Columbus", "OH", "432##"),
        ],
    ),
    (
        "DE",
        &[
            ("Berlin", "", "10###"),
            ("Hamburg", "", "20###"),
            ("München", "", "80###"),
            ("Köln", "", "50###"),
        ],
    ),
    ("AT", &[("Wien", "", "1###"), ("Graz", "", "80##")]),
    ("CH", &[("Zürich", "", "80##"), ("Basel", "", "40##")]),
    (
        "GB",
        &[("London", "", "EC# #@@"), ("Manchester", "", "M## #@@")],
    ),
    ("IE", &[("Dublin", "", "D0# @###")]),
    (
        "NL",
        &[("Amsterdam", "", "10## @@"), ("Utrecht", "", "35## @@")],
    ),
    ("BE", &[("Brussel", "", "10##"), ("Antwerpen", "", "20##")]),
    ("PT", &[("Lisboa", "", "1###-###")]),
    ("IS", &[("Reykjavík", "", "10#")]),
    ("GH", &[("Accra", "", "")]),
    ("JP", &[("Tokyo", "Tokyo", "1##-####")]),
];

const STREETS_EN: [&str; 6] = [
    "Market Street",
    "High Street",
    "Harbor Road",
    "Commerce Drive",
    "Station Road",
    "Mill Lane",
];
const STREETS_DE: [&str; 6] = [
    "Hauptstraße",
    "Bahnhofstraße",
    "Industriestraße",
    "Marktplatz",
    "Gartenweg",
    "Lindenallee",
];

/// A postal address in `country` (street names in the customer's
/// `language`); one customer in ten has none, as in a real ERP export.
pub(crate) fn address(rng: &mut ChaCha8Rng, country: &str, language: &str) -> PostalAddress {
    if rng.random_range(0..10) == 0 {
        return PostalAddress::default();
    }
    let Some((_, cities)) = CITIES
        .iter()
        .find(|(c, _)| *c == country)
        .or_else(|| CITIES.first())
    else {
        return PostalAddress::default();
    };
    let Some(&(city, region, shape)) = pick(rng, cities) else {
        return PostalAddress::default();
    };
    let number = rng.random_range(1..200);
    let street = if language == "de" {
        format!(
            "{} {number}",
            pick(rng, &STREETS_DE).copied().unwrap_or("Hauptstraße")
        )
    } else if matches!(country, "US" | "GB" | "IE" | "JP") {
        format!(
            "{number} {}",
            pick(rng, &STREETS_EN).copied().unwrap_or("Market Street")
        )
    } else {
        format!(
            "{} {number}",
            pick(rng, &STREETS_EN).copied().unwrap_or("Market Street")
        )
    };
    let postal_code: String = shape
        .chars()
        .map(|c| match c {
            '#' => char::from(b'0' + rng.random_range(0..10u8)),
            '@' => char::from(b'A' + rng.random_range(0..26u8)),
            c => c,
        })
        .collect();
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    PostalAddress {
        line1: Some(street),
        line2: rng.random_bool(0.2).then(|| "Accounts Payable".to_string()),
        postal_code: some(&postal_code),
        city: Some(city.to_string()),
        region: some(region),
    }
}
