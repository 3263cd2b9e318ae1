//! The report's charts, drawn with `plotters` into SVG text that the HTML
//! page embeds as it is: no script, no font file, no external asset.
//!
//! Category axes (steps, segments, experiment arms, days, weekdays) are
//! drawn on plain numeric coordinates, one unit per category, with the
//! category names written beside them, so long names are never cut.

use collect_engine::effect::AgingRow;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use rust_decimal::prelude::ToPrimitive;

type Drawn = Result<(), Box<dyn std::error::Error>>;

/// The aging buckets' colours, current to 90+: green to deep red.
pub const BUCKET_COLOURS: [RGBColor; 5] = [
    RGBColor(46, 125, 50),
    RGBColor(249, 168, 37),
    RGBColor(239, 108, 0),
    RGBColor(216, 67, 21),
    RGBColor(140, 20, 20),
];
pub const BAR: RGBColor = RGBColor(21, 101, 192);
const INK: RGBColor = RGBColor(33, 33, 33);
const MUTED: RGBColor = RGBColor(110, 110, 110);
const GRID: RGBColor = RGBColor(225, 225, 225);
const BETTER: RGBColor = RGBColor(46, 125, 50);
const WORSE: RGBColor = RGBColor(198, 40, 40);
const FONT: &str = "sans-serif";

/// The colour as CSS, for the HTML legends.
pub fn css(c: &RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Draws into an SVG string; on a drawing error, a short note instead.
fn svg(
    width: u32,
    height: u32,
    title: &str,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Drawn,
) -> String {
    let mut buf = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut buf, (width, height)).into_drawing_area();
        draw(&root).and_then(|()| root.present().map_err(Into::into))
    };
    match drawn {
        // An accessible name for the picture.
        Ok(()) => buf.replacen(
            "<svg ",
            &format!(
                "<svg role=\"img\" aria-label=\"{}\" class=\"chart\" ",
                escape(title).replace('"', "&quot;")
            ),
            1,
        ),
        Err(e) => format!(
            "<p class=\"note\">This chart could not be drawn: {}</p>",
            escape(&e.to_string())
        ),
    }
}

fn style(size: u32, colour: &RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    (FONT, size).into_font().color(colour).pos(Pos::new(h, v))
}

/// `12345` as `12.3k`, `1234567` as `1.23M`.
pub fn compact(x: f64) -> String {
    let a = x.abs();
    if a >= 1_000_000.0 {
        format!("{:.2}M", x / 1_000_000.0)
    } else if a >= 10_000.0 {
        format!("{:.0}k", x / 1_000.0)
    } else if a >= 1_000.0 {
        format!("{:.1}k", x / 1_000.0)
    } else {
        format!("{x:.0}")
    }
}

fn f(d: rust_decimal::Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// Aging over time: one stacked bar per snapshot day, current at the bottom.
pub fn aging(rows: &[AgingRow], currency: &str) -> String {
    let n = rows.len().max(1);
    let top = rows.iter().map(|r| f(r.total)).fold(0.0, f64::max).max(1.0) * 1.08;
    // At most ~14 date labels, evenly spread.
    let every = n.div_ceil(14).max(1);
    svg(1000, 380, "Aging over time", |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .margin_top(12)
            .margin_right(16)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .x_label_formatter(&|_| String::new())
            .y_labels(6)
            .y_label_formatter(&|y| compact(*y))
            .y_desc(format!("open balance ({currency})"))
            .bold_line_style(GRID)
            .light_line_style(WHITE)
            .axis_style(MUTED)
            .label_style((FONT, 13).into_font().color(&INK))
            .axis_desc_style((FONT, 13).into_font().color(&MUTED))
            .draw()?;
        for (i, r) in rows.iter().enumerate() {
            let x = i as f64;
            let mut base = 0.0;
            for ((_, amount), colour) in r.buckets().iter().zip(BUCKET_COLOURS) {
                let h = f(*amount);
                if h > 0.0 {
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(x - 0.36, base), (x + 0.36, base + h)],
                        colour.filled(),
                    )))?;
                }
                base += h;
            }
            if i % every == 0 || i + 1 == rows.len() {
                let (px, py) = chart.backend_coord(&(x, 0.0));
                root.draw(&Text::new(
                    r.date.format("%b %d").to_string(),
                    (px, py + 8),
                    style(12, &INK, HPos::Center, VPos::Top),
                ))?;
            }
        }
        Ok(())
    })
}

/// One horizontal bar: a rate with its interval.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
    /// The count the rate is computed on, shown beside the bar.
    pub n: u32,
}

/// Horizontal bars from 0 to 100%, the first bar on top, each with its 95%
/// interval as a whisker and its value and count written at its end.
pub fn rate_bars(title: &str, bars: &[Bar], axis: &str) -> String {
    let n = bars.len().max(1);
    let height = (70 + 34 * n).min(1400) as u32;
    svg(1000, height, title, |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .margin_top(10)
            .margin_right(110)
            .x_label_area_size(44)
            .y_label_area_size(300)
            .build_cartesian_2d(0f64..1f64, -0.5f64..(n as f64 - 0.5))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .y_label_formatter(&|_| String::new())
            .x_labels(6)
            .x_label_formatter(&|x| format!("{:.0}%", x * 100.0))
            .x_desc(axis)
            .bold_line_style(GRID)
            .light_line_style(WHITE)
            .axis_style(MUTED)
            .label_style((FONT, 13).into_font().color(&INK))
            .axis_desc_style((FONT, 13).into_font().color(&MUTED))
            .draw()?;
        for (i, b) in bars.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let (lx, ly) = chart.backend_coord(&(0.0, y));
            root.draw(&Text::new(
                b.label.clone(),
                (lx - 10, ly),
                style(13, &INK, HPos::Right, VPos::Center),
            ))?;
            let Some(v) = b.value else {
                root.draw(&Text::new(
                    "no outcome known yet".to_string(),
                    (lx + 6, ly),
                    style(12, &MUTED, HPos::Left, VPos::Center),
                ))?;
                continue;
            };
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, y - 0.32), (v, y + 0.32)],
                BAR.mix(0.85).filled(),
            )))?;
            let mut end = v;
            if let (Some(lo), Some(hi)) = (b.low, b.high) {
                let whisker = MUTED.stroke_width(2);
                chart.draw_series([
                    PathElement::new(vec![(lo, y), (hi, y)], whisker),
                    PathElement::new(vec![(lo, y - 0.15), (lo, y + 0.15)], whisker),
                    PathElement::new(vec![(hi, y - 0.15), (hi, y + 0.15)], whisker),
                ])?;
                end = end.max(hi);
            }
            let (ex, ey) = chart.backend_coord(&(end, y));
            root.draw(&Text::new(
                format!("{:.0}%  (n = {})", v * 100.0, b.n),
                (ex + 8, ey),
                style(12, &INK, HPos::Left, VPos::Center),
            ))?;
        }
        Ok(())
    })
}

/// One row of the uplift chart.
#[derive(Debug, Clone)]
pub struct Uplift {
    pub label: String,
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    pub significant: bool,
}

/// Uplift against the reference arm, in points, with the 95% interval:
/// green when significantly better, red when significantly worse, grey
/// when the interval includes zero.
pub fn uplift(rows: &[Uplift]) -> String {
    let n = rows.len().max(1);
    let lo = rows.iter().map(|r| r.low).fold(0.0, f64::min) * 100.0;
    let hi = rows.iter().map(|r| r.high).fold(0.0, f64::max) * 100.0;
    let pad = ((hi - lo) * 0.08).max(2.0);
    let (x0, x1) = (lo - pad, hi + pad);
    let height = (80 + 40 * n).min(1400) as u32;
    svg(1000, height, "Uplift against the reference arm", |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .margin_top(10)
            .margin_right(30)
            .x_label_area_size(44)
            .y_label_area_size(380)
            .build_cartesian_2d(x0..x1, -0.5f64..(n as f64 - 0.5))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .y_label_formatter(&|_| String::new())
            .x_labels(8)
            .x_label_formatter(&|x| format!("{x:+.0}"))
            .x_desc("uplift in points of invoices paid in time (95% interval)")
            .bold_line_style(GRID)
            .light_line_style(WHITE)
            .axis_style(MUTED)
            .label_style((FONT, 13).into_font().color(&INK))
            .axis_desc_style((FONT, 13).into_font().color(&MUTED))
            .draw()?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, -0.5), (0.0, n as f64 - 0.5)],
            INK.stroke_width(1),
        )))?;
        for (i, r) in rows.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let colour = match (r.significant, r.estimate >= 0.0) {
                (true, true) => BETTER,
                (true, false) => WORSE,
                (false, _) => MUTED,
            };
            let (e, l, h) = (r.estimate * 100.0, r.low * 100.0, r.high * 100.0);
            let line = colour.stroke_width(3);
            chart.draw_series([
                PathElement::new(vec![(l, y), (h, y)], line),
                PathElement::new(vec![(l, y - 0.18), (l, y + 0.18)], line),
                PathElement::new(vec![(h, y - 0.18), (h, y + 0.18)], line),
            ])?;
            chart.draw_series(std::iter::once(Circle::new((e, y), 6, colour.filled())))?;
            let (lx, ly) = chart.backend_coord(&(x0, y));
            root.draw(&Text::new(
                r.label.clone(),
                (lx - 10, ly),
                style(13, &INK, HPos::Right, VPos::Center),
            ))?;
            let (tx, ty) = chart.backend_coord(&(e, y));
            root.draw(&Text::new(
                format!("{e:+.1} [{l:+.1}, {h:+.1}]"),
                (tx, ty - 12),
                style(12, &colour, HPos::Center, VPos::Bottom),
            ))?;
        }
        Ok(())
    })
}

/// Vertical bars of a rate by category (days from the due date, weekday),
/// with the 95% interval, for the timing section.
pub fn column_rates(title: &str, bars: &[Bar], axis: &str) -> String {
    let xs: Vec<f64> = (0..bars.len()).map(|i| i as f64).collect();
    columns(title, bars, &xs, axis, false)
}

/// Columns placed on a true day axis: `days[i]` is the day of `bars[i]`
/// relative to the due date, so missing days leave gaps; the axis is
/// labelled in days and each column carries its `n`.
pub fn day_rates(title: &str, bars: &[Bar], days: &[i64], axis: &str) -> String {
    let xs: Vec<f64> = days.iter().map(|d| *d as f64).collect();
    columns(title, bars, &xs, axis, true)
}

fn columns(title: &str, bars: &[Bar], xs: &[f64], axis: &str, day_axis: bool) -> String {
    let n = bars.len().max(1);
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 0.0)
    };
    // Column half-width in axis units: on a day axis one day is one unit,
    // so neighbouring days never overlap.
    let half = if day_axis { 0.38 } else { 0.34 };
    let width = (120 + 56 * n).clamp(480, 1000) as u32;
    svg(width, 320, title, |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .margin_top(24)
            .margin_right(16)
            .x_label_area_size(if day_axis { 60 } else { 56 })
            .y_label_area_size(56)
            .build_cartesian_2d((lo - 0.5 - half)..(hi + 0.5 + half), 0f64..1f64)?;
        let day_label = |x: &f64| -> String {
            let d = x.round() as i64;
            if d > 0 {
                format!("+{d}")
            } else {
                d.to_string()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(if day_axis { 12 } else { 0 })
            .x_label_formatter(&|x| {
                if day_axis {
                    day_label(x)
                } else {
                    String::new()
                }
            })
            .y_labels(6)
            .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
            .x_desc(axis)
            .y_desc("paid within 7 days")
            .bold_line_style(GRID)
            .light_line_style(WHITE)
            .axis_style(MUTED)
            .label_style((FONT, 13).into_font().color(&INK))
            .axis_desc_style((FONT, 13).into_font().color(&MUTED))
            .draw()?;
        for (b, x) in bars.iter().zip(xs.iter().copied()) {
            let (px, py) = chart.backend_coord(&(x, 0.0));
            if !day_axis {
                root.draw(&Text::new(
                    b.label.clone(),
                    (px, py + 8),
                    style(12, &INK, HPos::Center, VPos::Top),
                ))?;
            }
            root.draw(&Text::new(
                format!("n {}", b.n),
                (px, py + if day_axis { 26 } else { 24 }),
                style(10, &MUTED, HPos::Center, VPos::Top),
            ))?;
            let Some(v) = b.value else { continue };
            let x0 = x - half;
            let x1 = x + half;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0, 0.0), (x1, v)],
                BAR.mix(0.85).filled(),
            )))?;
            let mut top = v;
            if let (Some(lo), Some(hi)) = (b.low, b.high) {
                let whisker = MUTED.stroke_width(2);
                let w = half * 0.35;
                chart.draw_series([
                    PathElement::new(vec![(x, lo), (x, hi)], whisker),
                    PathElement::new(vec![(x - w, lo), (x + w, lo)], whisker),
                    PathElement::new(vec![(x - w, hi), (x + w, hi)], whisker),
                ])?;
                top = top.max(hi);
            }
            let (tx, ty) = chart.backend_coord(&(x, top));
            root.draw(&Text::new(
                format!("{:.0}%", v * 100.0),
                (tx, ty - 4),
                style(11, &INK, HPos::Center, VPos::Bottom),
            ))?;
        }
        Ok(())
    })
}
