#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The HTML report in a real browser: Debian's chromium, headless, takes a
//! screenshot of the demo's report and dumps the rendered DOM; the test
//! fails when the page is blank, when the charts did not render, or when
//! the browser logs a console error.
//!
//! Chromium is installed by this test when `/usr/bin/chromium` is missing
//! (`apt-get update` then `apt-get install -y chromium`, as root, under a
//! lock so that parallel tests install it once). When it cannot be
//! installed the test fails and says why: it is never skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod common;
use common::Temp;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const CHROMIUM: &str = "/usr/bin/chromium";
const LOCK: &str = "/tmp/collect-tests-chromium-install.lock";

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a command with a time limit; the child is killed when it overruns.
fn run_with_limit(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    // Read the pipes while waiting, so a chatty child never blocks.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// The browser, installed with apt when missing. Idempotent; `flock`
/// serialises concurrent installs (tests in parallel, several test binaries).
fn chromium() -> &'static Path {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        if Path::new(CHROMIUM).is_file() {
            return Ok(PathBuf::from(CHROMIUM));
        }
        let uid = Command::new("id").arg("-u").output().map_err(|e| {
            format!("cannot tell whether this runs as root (`id -u`: {e}); install chromium with `apt-get install -y chromium`")
        })?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err(format!(
                "{CHROMIUM} is missing and this test is not running as root, so it cannot \
                 install it: run `sudo apt-get update && sudo apt-get install -y chromium`"
            ));
        }
        let script = format!(
            "test -x {CHROMIUM} || {{ apt-get update && apt-get install -y --no-install-recommends chromium fonts-dejavu-core; }}"
        );
        let out = run_with_limit(
            Command::new("flock")
                .args(["--timeout", "1500", LOCK, "sh", "-c", &script])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            Duration::from_secs(1600),
        );
        if !out.status.success() || !Path::new(CHROMIUM).is_file() {
            return Err(format!(
                "installing chromium with apt-get failed, so the HTML report cannot be checked \
                 in a browser:\n{}",
                show(&out)
            ));
        }
        Ok(PathBuf::from(CHROMIUM))
    });
    match ready {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

const FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
];

fn browser(tmp: &Path, extra: &[String], page: &Path) -> Output {
    let profile = tmp.join(format!(
        "profile-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&profile).unwrap();
    let mut cmd = Command::new(chromium());
    cmd.args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()));
    run_with_limit(&mut cmd, Duration::from_secs(180))
}

/// A screenshot of the page, decoded: (width, height, RGBA pixels).
fn screenshot(tmp: &Path, page: &Path) -> (u32, u32, Vec<u8>) {
    let png = tmp.join("shot.png");
    let _ = std::fs::remove_file(&png);
    let out = browser(
        tmp,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1200,2000".to_string(),
        ],
        page,
    );
    assert!(
        png.is_file(),
        "chromium wrote no screenshot\n{}",
        show(&out)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let rgba: Vec<u8> = match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        other => panic!("unexpected screenshot colour type {other:?}"),
    };
    (info.width, info.height, rgba)
}

/// The share of pixels that differ from the most common colour.
fn not_background(rgba: &[u8]) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for p in rgba.chunks(4) {
        *counts.entry([p[0], p[1], p[2]]).or_insert(0u64) += 1;
    }
    let total: u64 = counts.values().sum();
    let top = counts.values().copied().max().unwrap_or(0);
    1.0 - top as f64 / total.max(1) as f64
}

/// Pixels close to a colour (the charts' fills).
fn pixels_near(rgba: &[u8], rgb: [u8; 3]) -> usize {
    rgba.chunks(4)
        .filter(|p| (0..3).all(|i| (i32::from(p[i]) - i32::from(rgb[i])).abs() <= 40))
        .count()
}

/// The rendered DOM and the console errors chromium logged.
fn dump(tmp: &Path, page: &Path) -> (String, Vec<String>) {
    let out = browser(
        tmp,
        &[
            "--dump-dom".to_string(),
            "--enable-logging=stderr".to_string(),
            "--v=0".to_string(),
        ],
        page,
    );
    assert!(
        out.status.success(),
        "chromium --dump-dom failed\n{}",
        show(&out)
    );
    let errors = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| {
            l.contains("CONSOLE")
                || l.contains("Uncaught")
                || l.contains("Failed to load resource")
                || l.contains("Refused to")
        })
        .map(str::to_string)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), errors)
}

/// The demo on a small book writes the report; its path is printed.
fn demo_report(home: &Path) -> PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_collect"))
        .arg("--home")
        .arg(home)
        .args(["demo", "--customers", "60"])
        .current_dir(ROOT)
        .env("NO_COLOR", "1")
        .env_remove("COLLECT_HOME")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let page = home.join("demo").join("report.html");
    assert!(page.is_file(), "the demo wrote no report\n{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&page.display().to_string()),
        "the demo prints the report's path\n{}",
        show(&out)
    );
    page
}

#[test]
fn the_demo_report_renders_in_a_real_browser() {
    let tmp = Temp::new("demo");
    let page = demo_report(tmp.path());
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing fetched, nothing run.
    for banned in [
        "<script",
        "src=\"http",
        "href=\"http",
        "@import",
        "url(http",
    ] {
        assert!(!html.contains(banned), "the page uses `{banned}`");
    }

    let (dom, errors) = dump(tmp.path(), &page);
    assert!(errors.is_empty(), "console errors:\n{}", errors.join("\n"));
    let svgs = dom.matches("<svg").count();
    assert!(svgs >= 5, "{svgs} charts rendered, expected at least 5");
    for text in [
        "Collection effectiveness",
        "Aging over time",
        "What brings payment",
        "Experiments",
        "Reminder timing",
        "Past-due share",
        "DSO",
        "pre-due-tone",
        "standard due - 3d",
    ] {
        assert!(dom.contains(text), "the rendered page lacks `{text}`");
    }
    // The charts drew bars and text, not just empty frames.
    assert!(
        dom.matches("<rect").count() > 20,
        "too few bars in the charts"
    );
    assert!(
        dom.matches("<text").count() > 40,
        "too few labels in the charts"
    );

    let (w, h, rgba) = screenshot(tmp.path(), &page);
    assert_eq!((w, h), (1200, 2000));
    let busy = not_background(&rgba);
    assert!(
        busy > 0.08,
        "the page looks blank: only {:.1}% of it differs from the background",
        busy * 100.0
    );
    // The aging chart's green (current) and a bar chart's blue are on screen.
    assert!(
        pixels_near(&rgba, [46, 125, 50]) > 500,
        "no aging bars on screen"
    );
    assert!(
        pixels_near(&rgba, [21, 101, 192]) > 500,
        "no pay-rate bars on screen"
    );
    // Keep a copy for people to look at.
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png");
    let _ = std::fs::copy(tmp.path().join("shot.png"), &keep);
}

#[test]
fn the_checks_catch_a_blank_page_and_a_console_error() {
    let tmp = Temp::new("negative");
    let blank = tmp.path().join("blank.html");
    std::fs::write(
        &blank,
        "<!DOCTYPE html><html><head><link rel=\"icon\" href=\"data:,\"></head><body></body></html>",
    )
    .unwrap();
    let (_, _, rgba) = screenshot(tmp.path(), &blank);
    assert!(not_background(&rgba) < 0.01, "a blank page must look blank");

    let broken = tmp.path().join("broken.html");
    std::fs::write(
        &broken,
        "<!DOCTYPE html><html><head><link rel=\"icon\" href=\"data:,\"></head><body><p>x</p>\
         <script>console.error('boom'); notAFunction();</script></body></html>",
    )
    .unwrap();
    let (_, errors) = dump(tmp.path(), &broken);
    assert!(
        !errors.is_empty(),
        "a page with a script error must be reported"
    );
}

/// The page's layout at a phone's width (390 CSS pixels). Headless
/// chromium will not make a window narrower than 500 px, so the page is
/// shown in a 390 px iframe, whose viewport (and media queries) are those of
/// a phone. A probe script added to a copy of the page measures how wide the
/// document lays out and how wide each KPI tile is, and posts both to the
/// frame's parent, which writes them into its DOM for `--dump-dom`.
fn layout_at_phone_width(tmp: &Path, page: &Path) -> (u32, Vec<u32>) {
    let html = std::fs::read_to_string(page).unwrap();
    let probe = "<script>\
        var t = Array.prototype.map.call(document.querySelectorAll('.tile'), \
            function (e) { return Math.round(e.getBoundingClientRect().width); });\
        parent.postMessage(document.documentElement.scrollWidth + ';' + t.join(','), '*');\
        </script></body>";
    std::fs::write(tmp.join("phone-page.html"), html.replace("</body>", probe)).unwrap();
    let frame = tmp.join("phone.html");
    std::fs::write(
        &frame,
        "<!DOCTYPE html><html><head><link rel=\"icon\" href=\"data:,\"></head>\
         <body style=\"margin:0\"><script>window.addEventListener('message', function (e) \
         { document.body.setAttribute('data-probe', String(e.data)); });</script>\
         <iframe src=\"phone-page.html\" style=\"width:390px;height:844px;border:0\"></iframe>\
         </body></html>",
    )
    .unwrap();
    let out = browser(
        tmp,
        &[
            "--dump-dom".to_string(),
            "--virtual-time-budget=10000".to_string(),
        ],
        &frame,
    );
    assert!(out.status.success(), "{}", show(&out));
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let key = "data-probe=\"";
    let start = dom
        .find(key)
        .unwrap_or_else(|| panic!("the probe did not run\n{dom}"))
        + key.len();
    let probe = dom[start..].split('"').next().unwrap();
    let (width, tiles) = probe.split_once(';').unwrap();
    let tiles = tiles
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (width.parse().unwrap(), tiles)
}

#[test]
fn the_demo_report_is_readable_at_phone_width() {
    let tmp = Temp::new("phone");
    let page = demo_report(tmp.path());
    let (width, tiles) = layout_at_phone_width(tmp.path(), &page);
    // Nothing pushes the page sideways: wide tables and charts scroll or
    // shrink inside their own box.
    assert!(
        width <= 390,
        "the page is {width} px wide at a 390 px viewport: it scrolls sideways"
    );
    // The tiles (five KPIs, three of the recovery rate) wrap to two a row
    // instead of five squeezed ones.
    assert_eq!(tiles.len(), 8, "{tiles:?}");
    assert!(
        tiles.iter().all(|w| *w >= 150),
        "KPI tiles too narrow to read at phone width: {tiles:?}"
    );
}
