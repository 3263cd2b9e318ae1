#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The work queue in a real browser, the way the collections team uses it:
//! `collect serve` on a generated home (SQLite, a month of sweeps that
//! leave letters awaiting approval and calls), Debian's chromium driven
//! headless through Debian's chromedriver (WebDriver, the `fantoccini`
//! crate). One browser session walks the list in order — list and
//! filter, a letter's preview and its PDF, approve, reject with a reason,
//! reopen, a promise to pay that the next sweep holds, bulk approve, an
//! account handed to an agency and one written off (dunning stops, the
//! report counts them), the keyboard alone, a POST without the CSRF token —
//! then a phone-sized session (390 px, no horizontal scroll; without the
//! token every page is refused) and an auditor's server (cannot approve).
//!
//! chromium and chromedriver are installed by this test when missing
//! (`apt-get install -y chromium chromium-driver`, as root, under a lock);
//! when they cannot be, the test fails and says why: it is never skipped.

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{KEY, ROOT, Temp, collect, text};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const LOCK: &str = "/tmp/collect-tests-chromium-install.lock";
/// The day the queue is worked: the last sweep of the book below.
const TODAY: &str = "2027-04-12";

const CUSTOMERS: &str = "customer_id,name,email,phone,language,timezone,country,industry,annual_revenue,credit_score,credit_limit,tags,do_not_contact,address_line1,address_line2,postal_code,city,region
C1,Acme GmbH,ap@acme.example,+49 221 555 0101,de,Europe/Berlin,DE,manufacturing,120000,640,50000,,false,Industriestraße 12,Buchhaltung,50667,Köln,
C2,Globex Inc,billing@globex.example,+1 212 555 0102,en,America/New_York,US,retail,90000,600,20000,,false,1 Market St,,10001,New York,NY
C3,Initech LLC,ap@initech.example,+1 512 555 0103,en,America/Chicago,US,software,80000,610,20000,,false,4120 Freidrich Ln,,78744,Austin,TX
C4,Umbrella Ltd,accounts@umbrella.example,+44 20 5550 0104,en,Europe/London,GB,pharma,900000,700,90000,strategic,false,1 Raccoon Rd,,EC1A 1BB,London,
C5,Hooli <b>Corp</b>,ap@hooli.example,+1 650 555 0105,en,America/Los_Angeles,US,software,70000,580,10000,,false,1 Hooli Way,,94043,Palo Alto,CA
C6,Stark Industries,ap@stark.example,+1 212 555 0106,en,America/New_York,US,defense,60000,590,10000,,false,200 Park Ave,,10166,New York,NY
C7,Wayne Enterprises,ap@wayne.example,+1 212 555 0107,en,America/New_York,US,conglomerate,50000,570,10000,,false,1007 Mountain Dr,,10001,Gotham,NY
C8,Soylent Co,ap@soylent.example,+1 212 555 0108,fr,Europe/Paris,FR,food,40000,560,10000,,false,5 Rue de Rivoli,,75001,Paris,
";

const INVOICES: &str =
    "invoice_id,customer_id,number,issue_date,due_date,amount,currency,disputed,dispute_opened_on
I1,C1,2027-0001,2027-02-09,2027-03-11,1200.00,USD,false,
I2,C2,2027-0002,2027-02-09,2027-03-11,800.00,USD,false,
I3,C3,2027-0003,2027-02-09,2027-03-11,4350.50,USD,false,
I4,C4,2027-0004,2027-02-09,2027-03-25,99000.00,USD,false,
I5,C5,2027-0005,2027-02-09,2027-03-11,2500.00,USD,false,
I6,C6,2027-0006,2027-02-09,2027-03-11,3100.00,USD,false,
I7,C7,2027-0007,2027-02-09,2027-03-11,5600.00,USD,false,
I8,C8,2027-0008,2027-02-09,2027-03-11,700.00,USD,false,
I9,C2,2027-0009,2027-02-20,2027-03-22,1900.00,USD,false,
";

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// chromium and chromedriver, installed with apt when missing (as root,
/// under a lock shared with the report's browser test).
fn browser_installed() {
    if Path::new(CHROMIUM).is_file() && Path::new(CHROMEDRIVER).is_file() {
        return;
    }
    let uid = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "{CHROMIUM} or {CHROMEDRIVER} is missing and this test is not running as root, so it \
         cannot install them: run `sudo apt-get update && sudo apt-get install -y chromium \
         chromium-driver`"
    );
    let script = format!(
        "test -x {CHROMIUM} && test -x {CHROMEDRIVER} || {{ apt-get update && apt-get install \
         -y --no-install-recommends chromium chromium-driver fonts-dejavu-core; }}"
    );
    let out = Command::new("flock")
        .args(["--timeout", "1500", LOCK, "sh", "-c", &script])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success() && Path::new(CHROMEDRIVER).is_file(),
        "installing chromium and chromium-driver with apt-get failed:\n{}",
        show(&out)
    );
}

/// A child process ended when the test ends, passing or failing.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `collect serve` on `home` as `who` with `role`; its first line is the
/// address to open (with the token).
fn serve(home: &Path, who: &str, role: &str) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_collect"))
        .args(["--home"])
        .arg(home)
        .args([
            "serve", "--port", "0", "--as", who, "--role", role, "--date", TODAY,
        ])
        .current_dir(ROOT)
        .env("COLLECT_PAY_LINK_KEY", KEY)
        .env("COLLECT_TODAY", "2027-12-31")
        .env_remove("COLLECT_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut first).unwrap();
    // Whatever else it prints is read, so it never writes to a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let url = first.trim().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.contains("/?token="),
        "the first line of `collect serve` is the address to open, got {first:?}"
    );
    (Running(child), url)
}

fn origin(url: &str) -> String {
    url.split("/?token=").next().unwrap().to_string()
}

/// A month of sweeps on a small book: on TODAY seven legal letters await
/// approval and ten calls wait for a collector.
fn home(t: &Temp) -> PathBuf {
    t.write("data/customers.csv", CUSTOMERS);
    t.write("data/invoices.csv", INVOICES);
    t.write(
        "data/payments.csv",
        "payment_id,invoice_id,paid_on,amount\n",
    );
    let home = t.path().join("home");
    let data = t.path().join("data");
    let out = collect(&home, &["ingest", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    for day in [
        "2027-03-08",
        "2027-03-11",
        "2027-03-18",
        "2027-03-26",
        TODAY,
    ] {
        let out = collect(&home, &["run", "--date", day]);
        assert!(out.status.success(), "{}", text(&out));
    }
    home
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chromedriver(t: &Temp) -> (Running, String) {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg(format!(
            "--log-path={}",
            t.path().join("chromedriver.log").display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "chromedriver did not listen on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (Running(child), format!("http://127.0.0.1:{port}"))
}

async fn session(driver: &str, profile: &Path, phone: bool) -> Client {
    std::fs::create_dir_all(profile).unwrap();
    let mut options = json!({
        "binary": CHROMIUM,
        "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--window-size=1280,900",
            format!("--user-data-dir={}", profile.display()),
        ],
    });
    if phone {
        options["mobileEmulation"] =
            json!({ "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 1.0 } });
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".to_string(), options);
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(driver)
        .await
        .unwrap_or_else(|e| panic!("cannot start chromium through chromedriver: {e}"))
}

async fn body(c: &Client) -> String {
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn find(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e,
        Err(e) => panic!(
            "no `{css}` on {}: {e}\n{}",
            c.current_url().await.unwrap(),
            body(c).await
        ),
    }
}

async fn click(c: &Client, css: &str) {
    find(c, css).await.click().await.unwrap();
}

/// Waits until the page that was shown when `mark` was called has been
/// replaced by a loaded one (a form sent, a link followed).
async fn mark(c: &Client) {
    c.execute("window.__before = true; return 1", vec![])
        .await
        .unwrap();
}

async fn loaded(c: &Client) {
    let started = Instant::now();
    loop {
        let v = c
            .execute(
                "return !window.__before && document.readyState === 'complete'",
                vec![],
            )
            .await;
        if matches!(v, Ok(Value::Bool(true))) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no new page after 30 s on {}",
            c.current_url().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Clicks what sends a form or follows a link, and waits for the next page.
async fn go(c: &Client, css: &str) {
    mark(c).await;
    click(c, css).await;
    loaded(c).await;
}

async fn fill(c: &Client, css: &str, value: &str) {
    let e = find(c, css).await;
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

/// `fetch` from the page (same origin, its cookie): status, content type
/// and the first bytes of the body.
async fn fetch(c: &Client, url: &str, post: Option<&str>) -> (u64, String, String) {
    let script = "var done = arguments[arguments.length - 1]; \
        var init = arguments[1] === null ? {} : {method: 'POST', body: arguments[1], \
            headers: {'Content-Type': 'application/x-www-form-urlencoded'}}; \
        fetch(arguments[0], init).then(function (r) { return r.arrayBuffer().then(function (b) { \
            var s = String.fromCharCode.apply(null, new Uint8Array(b).slice(0, 400)); \
            done([r.status, r.headers.get('content-type') || '', s]); }); }) \
        .catch(function (e) { done([0, '', String(e)]); });";
    let v = c
        .execute_async(script, vec![json!(url), json!(post)])
        .await
        .unwrap();
    (
        v[0].as_u64().unwrap(),
        v[1].as_str().unwrap().to_string(),
        v[2].as_str().unwrap().to_string(),
    )
}

/// The link of the first task row whose text contains `needle`, on the page shown.
async fn task_link(c: &Client, needle: &str) -> String {
    let rows = c
        .find_all(Locator::Css("table.rows tbody tr"))
        .await
        .unwrap();
    for r in rows {
        if r.text().await.unwrap().contains(needle) {
            let a = r.find(Locator::Css("td[data-label=Task] a")).await.unwrap();
            return a.attr("href").await.unwrap().unwrap();
        }
    }
    panic!("no row with `{needle}` on the page:\n{}", body(c).await);
}

async fn rows(c: &Client) -> usize {
    c.find_all(Locator::Css("table.rows tbody tr"))
        .await
        .unwrap()
        .len()
}

/// One key pressed and released on whatever has the focus, as a keyboard does.
async fn press(c: &Client, key: Key) {
    let k: char = key.into();
    let actions = KeyActions::new("keyboard".to_string())
        .then(KeyAction::Down { value: k })
        .then(KeyAction::Up { value: k });
    c.perform_actions(actions).await.unwrap();
}

/// Text typed on the keyboard into whatever has the focus.
async fn type_text(c: &Client, text: &str) {
    let mut actions = KeyActions::new("keyboard".to_string());
    for ch in text.chars() {
        actions = actions
            .then(KeyAction::Down { value: ch })
            .then(KeyAction::Up { value: ch });
    }
    c.perform_actions(actions).await.unwrap();
}

/// Tab until `found` says the focused element is the one, at most `limit` times.
async fn tab_to(c: &Client, limit: usize, what: &str, js_test: &str) {
    for _ in 0..limit {
        press(c, Key::Tab).await;
        if js(c, js_test).await == json!(true) {
            return;
        }
    }
    panic!(
        "{what} is not reachable with Tab on {}",
        c.current_url().await.unwrap()
    );
}

#[test]
fn the_collections_team_works_the_queue_in_a_browser() {
    browser_installed();
    let t = Temp::new("queue-browser");
    let home = home(&t);
    let (_server, url) = serve(&home, "ana@example.com", "admin");
    let (_auditor_server, auditor_url) = serve(&home, "ines@example.com", "auditor");
    let (_driver, driver) = chromedriver(&t);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let o = origin(&url);
        let c = session(&driver, &t.path().join("profile"), false).await;

        // --- list and filter
        c.goto(&url).await.unwrap();
        assert_eq!(
            c.current_url().await.unwrap().as_str(),
            format!("{o}/"),
            "the token is exchanged for a session cookie and leaves the address"
        );
        let page = body(&c).await;
        assert!(page.contains("17 items match"), "{page}");
        assert!(page.contains("approvals: 7"), "a count per queue:\n{page}");
        assert!(page.contains("collections: 8"), "{page}");
        assert!(
            page.contains("Hooli <b>Corp</b>"),
            "a name with markup is shown as text, never as markup:\n{page}"
        );
        c.find(Locator::Css("select[name=kind]"))
            .await
            .unwrap()
            .select_by_value("call")
            .await
            .unwrap();
        fill(&c, "input[name=min_balance]", "1000").await;
        go(&c, "form.filters button[type=submit]").await;
        let page = body(&c).await;
        assert!(
            page.contains("8 items match"),
            "calls with a balance of at least 1000 (not I2's 800, not I8's 700):\n{page}"
        );
        assert!(!page.contains("legal-notice"), "{page}");
        let header = js(
            &c,
            "return Array.from(document.querySelectorAll('thead th')).map(e => e.textContent).join('|')",
        )
        .await;
        assert_eq!(
            header,
            json!("Customer|Invoice(s)|Balance|Days overdue|Risk|Segment|Language|Queue|Age|Task")
        );
        c.find(Locator::Css("select[name=sort]"))
            .await
            .unwrap()
            .select_by_value("balance")
            .await
            .unwrap();
        go(&c, "form.filters button[type=submit]").await;
        let first = js(
            &c,
            "return document.querySelector('tbody tr td[data-label=Balance]').textContent",
        )
        .await;
        assert_eq!(first, json!("99000.00 USD"), "sorted by balance, largest first");
        fill(&c, "input[name=min_balance]", "a lot").await;
        go(&c, "form.filters button[type=submit]").await;
        let page = body(&c).await;
        assert!(
            page.contains("Minimum balance: `a lot` is not an amount"),
            "a bad filter names its field:\n{page}"
        );

        // --- a letter's preview and its PDF
        c.goto(&format!("{o}/?kind=approval&customer=C5")).await.unwrap();
        let hooli = task_link(&c, "legal-notice").await;
        c.goto(&format!("{o}{hooli}")).await.unwrap();
        let page = body(&c).await;
        assert!(
            page.contains("Final notice before legal action: invoice 2027-0005"),
            "the subject as sent:\n{page}"
        );
        let frame = c
            .find(Locator::Css("iframe.preview"))
            .await
            .unwrap()
            .attr("src")
            .await
            .unwrap()
            .unwrap();
        let (status, kind, html) = fetch(&c, &frame, None).await;
        assert_eq!((status, kind.as_str()), (200, "text/html; charset=utf-8"));
        assert!(html.contains("Example Supplies Ltd"), "{html}");
        c.find(Locator::Css("iframe.preview"))
            .await
            .unwrap()
            .enter_frame()
            .await
            .unwrap();
        let framed = body(&c).await;
        assert!(
            framed.contains("2,500.00"),
            "the HTML body renders in its sandboxed frame:\n{framed}"
        );
        c.enter_parent_frame().await.unwrap();
        let pdf = c
            .find(Locator::Css("#pdf"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .unwrap();
        let (status, kind, bytes) = fetch(&c, &pdf, None).await;
        assert_eq!((status, kind.as_str()), (200, "application/pdf"));
        assert!(bytes.starts_with("%PDF-"), "{bytes}");

        // --- one click from the action to its explanation
        go(&c, "#why").await;
        let page = body(&c).await;
        assert!(page.contains("Why invoice 2027-0005"), "{page}");
        assert!(page.contains("Holds"), "{page}");
        assert!(page.contains("Ladder of the standard segment"), "{page}");
        assert!(page.contains("Bundle revision"), "{page}");

        // --- a POST without the CSRF token is refused
        c.goto(&format!("{o}{hooli}")).await.unwrap();
        js(
            &c,
            "document.querySelector('form[action$=\"/approve\"] input[name=csrf]').remove(); return 1",
        )
        .await;
        go(&c, "#approve").await;
        let page = body(&c).await;
        assert!(page.contains("This form was refused"), "{page}");
        let (status, _, _) = fetch(&c, &format!("{o}{hooli}/approve"), Some("")).await;
        assert_eq!(status, 403, "a POST without the token");

        // --- approve: the page says when it goes out
        c.goto(&format!("{o}{hooli}")).await.unwrap();
        go(&c, "#approve").await;
        let page = body(&c).await;
        assert!(page.contains("ana@example.com"), "{page}");
        assert!(
            page.contains("collect run"),
            "an approval says when the letter goes out (the next `collect run`):\n{page}"
        );

        // --- reject: a reason is required, then recorded
        c.goto(&format!("{o}/?kind=approval&customer=C1")).await.unwrap();
        let acme = task_link(&c, "legal-notice").await;
        c.goto(&format!("{o}{acme}")).await.unwrap();
        js(
            &c,
            "document.querySelector('form[action$=\"/reject\"] textarea').removeAttribute('required'); return 1",
        )
        .await;
        go(&c, "#reject").await;
        let page = body(&c).await;
        assert!(
            page.contains("Reason: this field is required"),
            "the server refuses a rejection without a reason, naming the field:\n{page}"
        );
        c.goto(&format!("{o}{acme}")).await.unwrap();
        fill(&c, "form[action$=\"/reject\"] textarea", "paid by cheque, in the post").await;
        go(&c, "#reject").await;
        let page = body(&c).await;
        assert!(page.contains("Rejected"), "{page}");

        // --- reopen today's decision: a new trail line, back in the queue
        c.goto(&format!("{o}{acme}")).await.unwrap();
        fill(&c, "form[action$=\"/reopen\"] textarea", "the cheque bounced").await;
        go(&c, "#reopen").await;
        c.goto(&format!("{o}{acme}")).await.unwrap();
        let page = body(&c).await;
        assert!(page.contains("awaiting approval"), "{page}");
        assert!(page.contains("paid by cheque, in the post"), "the rejection stays in the trail:\n{page}");
        assert!(page.contains("the cheque bounced"), "{page}");

        // --- a call: promised to pay; the next sweep holds the invoice
        c.goto(&format!("{o}/?kind=call&customer=C2")).await.unwrap();
        let call = task_link(&c, "I9").await;
        c.goto(&format!("{o}{call}")).await.unwrap();
        click(&c, "input[name=outcome][value=promised]").await;
        js(
            &c,
            "document.querySelector('input[name=until]').value = '2027-04-30'; return 1",
        )
        .await;
        fill(&c, "#call-form textarea[name=note]", "will pay by the end of the month").await;
        go(&c, "#record-call").await;
        let page = body(&c).await;
        assert!(page.contains("Call recorded"), "{page}");

        // --- the end of the ladder: an agency for C6, a write-off for C7
        c.goto(&format!("{o}/customers/C6")).await.unwrap();
        click(&c, "input[name=invoice_ids][value=I6]").await;
        click(&c, "input[name=decision][value=agency]").await;
        fill(&c, "input[name=agency]", "Recovery Partners").await;
        fill(&c, "#decide-form textarea[name=reason]", "no answer in 30 days").await;
        go(&c, "#decide").await;
        let page = body(&c).await;
        assert!(page.contains("Decision recorded"), "{page}");
        c.goto(&format!("{o}/customers/C7")).await.unwrap();
        click(&c, "input[name=invoice_ids][value=I7]").await;
        click(&c, "input[name=decision][value=write_off]").await;
        fill(&c, "#decide-form textarea[name=reason]", "the company is insolvent").await;
        go(&c, "#decide").await;
        let page = body(&c).await;
        assert!(page.contains("Decision recorded"), "{page}");

        // --- bulk approve what the filter shows, after confirming the count
        c.goto(&format!("{o}/?kind=approval")).await.unwrap();
        let listed = rows(&c).await;
        go(&c, "a[href^=\"/bulk\"]").await;
        let page = body(&c).await;
        assert!(
            page.contains(&format!("Approve {listed} letters?")),
            "the confirmation shows the count the list shows ({listed}):\n{page}"
        );
        go(&c, "form[action=\"/bulk\"] button").await;
        let page = body(&c).await;
        // The letters of the accounts handed to an agency or written off
        // are refused by the re-check: dunning stopped.
        assert!(
            page.contains(&format!("{} of {listed} letters approved", listed - 2)),
            "{page}"
        );
        assert!(page.contains("placed with agency `Recovery Partners`"), "{page}");
        assert!(page.contains("written off on 2027-04-12 by ana@example.com"), "{page}");
        c.goto(&format!("{o}/?kind=approval")).await.unwrap();
        assert!(body(&c).await.contains("2 items match"));

        // --- the keyboard alone: skip link, a task, a call's outcome
        c.goto(&format!("{o}/?kind=call")).await.unwrap();
        press(&c, Key::Tab).await;
        let first = js(&c, "return document.activeElement.textContent").await;
        assert_eq!(first, json!("Skip to content"), "the first stop is the skip link");
        let outline = js(&c, "return getComputedStyle(document.activeElement).outlineStyle").await;
        assert_ne!(outline, json!("none"), "focus is visible");
        press(&c, Key::Enter).await;
        let focused = js(&c, "return document.activeElement.id").await;
        assert_eq!(focused, json!("main"), "the skip link moves focus to the content");
        tab_to(
            &c,
            80,
            "a task link",
            "return (document.activeElement.getAttribute('href') || '').indexOf('/tasks/') >= 0",
        )
        .await;
        mark(&c).await;
        press(&c, Key::Enter).await;
        loaded(&c).await;
        tab_to(
            &c,
            40,
            "the call's outcome",
            "return document.activeElement.name === 'outcome'",
        )
        .await;
        press(&c, Key::Space).await;
        let picked = js(&c, "return document.querySelector('input[name=outcome]:checked').value").await;
        assert_eq!(picked, json!("promised"), "Space picks the focused choice");
        tab_to(
            &c,
            20,
            "the note",
            "return document.activeElement.name === 'note'",
        )
        .await;
        type_text(&c, "typed with the keyboard").await;
        press(&c, Key::Tab).await;
        mark(&c).await;
        press(&c, Key::Enter).await;
        loaded(&c).await;
        let page = body(&c).await;
        // A promise without its date: the browser asks for nothing (the
        // date is not marked required); the server names the field.
        assert!(
            page.contains("Promised to pay by: say by which day"),
            "submitted by keyboard; the missing date is named:\n{page}"
        );

        c.close().await.unwrap();

        // --- without the token, a phone-sized browser is refused; with it,
        // every page fits 390 px
        let phone = session(&driver, &t.path().join("profile-phone"), true).await;
        phone.goto(&format!("{o}/")).await.unwrap();
        let page = body(&phone).await;
        assert!(page.contains("Sign in to the work queue"), "{page}");
        let (status, _, _) = fetch(&phone, &format!("{o}/customers/C1"), None).await;
        assert_eq!(status, 401);
        phone.goto(&url).await.unwrap();
        for path in ["/", "/?kind=call", acme.as_str(), "/customers/C2", "/customers/C5/invoices/I5/why"] {
            phone.goto(&format!("{o}{path}")).await.unwrap();
            let w = js(
                &phone,
                "return [document.documentElement.clientWidth, \
                 document.documentElement.scrollWidth, \
                 Array.from(document.querySelectorAll('body *')) \
                   .filter(e => e.getBoundingClientRect().right > 391) \
                   .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + \
                   Math.round(e.getBoundingClientRect().right)).join(', ')]",
            )
            .await;
            assert_eq!(w[0], json!(390), "the phone's viewport on {path}: {w}");
            assert!(
                w[1].as_u64().unwrap() <= 390,
                "{path} scrolls sideways at 390 px: {w}"
            );
        }
        phone.close().await.unwrap();

        // --- an auditor reads, downloads the audit, and cannot approve
        let ao = origin(&auditor_url);
        let a = session(&driver, &t.path().join("profile-auditor"), false).await;
        a.goto(&auditor_url).await.unwrap();
        a.goto(&format!("{ao}{call}")).await.unwrap();
        let page = body(&a).await;
        assert!(!page.contains("Record the call"), "{page}");
        assert!(page.contains("may read this task, not act on it"), "{page}");
        let token = js(
            &a,
            "return document.querySelector('meta[name=csrf-token]').content",
        )
        .await;
        let token = token.as_str().unwrap();
        let (status, _, said) = fetch(
            &a,
            &format!("{ao}{acme}/approve"),
            Some(&format!("csrf={token}")),
        )
        .await;
        assert_eq!(status, 403, "an auditor's approval, with a valid token: {said}");
        let (status, kind, csv) = fetch(
            &a,
            &format!("{ao}/audit.csv?from=2027-03-01&through={TODAY}"),
            None,
        )
        .await;
        assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"));
        assert!(csv.starts_with("action_id,invoice_id,customer_id"), "{csv}");
        a.close().await.unwrap();
    });

    // The next sweep: the promise holds I9, the agency and the write-off
    // stop the dunning of I6 and I7.
    let next = collect(&home, &["run", "--date", "2027-04-13"]);
    assert!(next.status.success(), "{}", text(&next));
    let why = collect(&home, &["explain", "I9", "--date", "2027-04-13"]);
    let why = text(&why);
    assert!(why.contains("promise"), "{why}");
    assert!(
        why.lines()
            .any(|l| l.contains("promise") && l.contains("holds")),
        "the promise recorded on the call holds I9 on the next sweep:\n{why}"
    );
    let report = collect(
        &home,
        &["report", "--from", "2027-03-01", "--to", "2027-04-13"],
    );
    let report = text(&report);
    assert!(
        report.contains(
            "written off 5,600.00 (1 invoice(s)); placed with agencies 3,100.00 (1 invoice(s))"
        ),
        "the report's recovery counts the write-off (I7) and the agency (I6):\n{report}"
    );
}
