#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

fn write(root: &Path, name: &str, lang: &str, part: &str, text: &str) {
    let dir = root.join(name).join(lang);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(part), text).unwrap();
}

fn full(root: &Path, name: &str, lang: &str, subject: &str, text: &str, html: &str) {
    write(root, name, lang, SUBJECT, subject);
    write(root, name, lang, TEXT, text);
    write(root, name, lang, HTML, html);
}

#[test]
fn renders_with_escaping_in_html_only() {
    let tmp = tempfile::tempdir().unwrap();
    full(
        tmp.path(),
        "reminder",
        "en",
        "Invoice {{ invoices[0].number }}\n  for {{ customer.name }}\n",
        "Dear {{ customer.name }},\n{% for i in invoices -%}\n- {{ i.number }}: {{ i.balance }}\n{% endfor %}\nTotal {{ total_balance }}",
        "<p>Dear {{ customer.name }}</p>",
    );
    let templates = Templates::load(tmp.path()).unwrap();
    let mut ctx = MessageContext::sample();
    ctx.customer.name = "<script>alert(1)</script> & Co".to_string();
    let r = templates.render("reminder", "en", &ctx).unwrap();
    assert_eq!(
        r.subject,
        "Invoice 2025-0042 for <script>alert(1)</script> & Co"
    );
    assert!(!r.subject.contains('\n'));
    assert!(
        r.text.starts_with(
            "Dear <script>alert(1)</script> & Co,\n- 2025-0042: USD 1,200.00\n- 2025-0057"
        ),
        "{}",
        r.text
    );
    assert!(
        r.html
            .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; Co"),
        "{}",
        r.html
    );
    assert!(!r.html.contains("<script>"));
    assert!(templates.check().is_empty(), "{:?}", templates.check());
}

#[test]
fn strict_undefined_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    full(
        tmp.path(),
        "reminder",
        "en",
        "Hello",
        "Dear {{ customer.name }},\n\nYou owe {{ customer.nmae }}.",
        "<p>{{ customer.name }}</p>",
    );
    let templates = Templates::load(tmp.path()).unwrap();
    let err = templates
        .render("reminder", "en", &MessageContext::sample())
        .unwrap_err();
    let TemplateError::Render { file, line, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(file.ends_with("reminder/en/body.txt"), "{file:?}");
    assert_eq!(*line, Some(3));
    assert!(err.to_string().contains("body.txt:3"), "{err}");

    let problems = templates.check();
    assert_eq!(problems.len(), 1, "{problems:?}");
    let p = &problems[0];
    assert!(p.file.ends_with("reminder/en/body.txt"));
    assert_eq!((p.line, p.col), (Some(3), Some(12)));
    assert_eq!(
        p.message,
        "`customer.nmae` is not a variable a template can use"
    );
    // The closest variable, not a list of every one.
    assert_eq!(p.help.as_deref(), Some("did you mean `customer.name`?"));
    let source = templates.source(&p.file).unwrap();
    let (start, end) = p.span.unwrap();
    assert_eq!(&source[start..end], "customer.nmae");
    assert!(
        p.to_string().contains("body.txt:3:12: `customer.nmae`"),
        "{p}"
    );
}

#[test]
fn check_catches_unknown_variables_in_untaken_branches_and_loops() {
    let tmp = tempfile::tempdir().unwrap();
    full(
        tmp.path(),
        "offer",
        "en",
        "Plan for {{ customer.name }}",
        "{% if plan is defined %}{{ plan.total }}{% else %}{{ totl }}{% endif %}\n{% for i in plan.installments %}{{ i.number }} {{ loop.index }}{% endfor %}",
        "{% for i in invoices %}\n{{ i.nmber }}\n{% endfor %}",
    );
    let templates = Templates::load(tmp.path()).unwrap();
    let problems = templates.check();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].file.ends_with("offer/en/body.html"));
    assert_eq!(problems[0].line, Some(2));
    assert!(
        problems[0]
            .message
            .starts_with("`i.nmber` is not a variable"),
        "{}",
        problems[0].message
    );
    // A loop variable's fields are the fields of its list's items.
    assert_eq!(
        problems[0].help.as_deref(),
        Some("did you mean `i.number`?")
    );
    assert!(problems[1].file.ends_with("offer/en/body.txt"));
    assert_eq!(problems[1].line, Some(1));
    assert!(
        problems[1].message.starts_with("`totl` is not a variable"),
        "{}",
        problems[1].message
    );
    assert!(templates.uses_plan("offer"));
}

#[test]
fn render_error_names_the_whole_expression() {
    let tmp = tempfile::tempdir().unwrap();
    full(
        tmp.path(),
        "t",
        "en",
        "S",
        "x\n{{ invoices[1].nmber }}",
        "H",
    );
    let templates = Templates::load(tmp.path()).unwrap();
    let err = templates
        .render("t", "en", &MessageContext::sample())
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(
            "body.txt:2: `invoices[1].nmber` is not a variable a template can use; did you mean \
             `invoices[1].number`?"
        ),
        "{message}"
    );
}

#[test]
fn plan_outside_offers_fails_without_plan() {
    let tmp = tempfile::tempdir().unwrap();
    full(tmp.path(), "t", "en", "S", "{{ plan.total }}", "H");
    let templates = Templates::load(tmp.path()).unwrap();
    let mut ctx = MessageContext::sample();
    assert!(templates.render("t", "en", &ctx).is_ok());
    ctx.plan = None;
    assert!(matches!(
        templates.render("t", "en", &ctx),
        Err(TemplateError::Render { .. })
    ));
}

#[test]
fn syntax_error_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    full(
        tmp.path(),
        "broken",
        "en",
        "S",
        "line one\nline two\n{% if customer.name %}\nno end",
        "H",
    );
    let err = Templates::load(tmp.path()).unwrap_err();
    let TemplateError::Syntax { problem, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(problem.file.ends_with("broken/en/body.txt"), "{problem:?}");
    assert!(matches!(problem.line, Some(3 | 4)), "{problem:?}");
    assert!(problem.message.contains("syntax error"), "{problem:?}");
    assert!(err.to_string().contains("body.txt:"), "{err}");
}

#[test]
fn language_fallback() {
    let tmp = tempfile::tempdir().unwrap();
    full(tmp.path(), "t", "en", "Hello", "Hi", "<p>Hi</p>");
    full(tmp.path(), "t", "de", "Hallo", "Servus", "<p>Servus</p>");
    write(tmp.path(), "only-fr", "fr", SUBJECT, "Bonjour");
    let templates = Templates::load(tmp.path()).unwrap();
    assert_eq!(templates.names(), vec!["only-fr", "t"]);
    assert_eq!(templates.languages("t"), vec!["de", "en"]);
    let ctx = MessageContext::sample();
    assert_eq!(templates.render("t", "de", &ctx).unwrap().subject, "Hallo");
    assert_eq!(
        templates.render("t", "DE_at", &ctx).unwrap().subject,
        "Hallo"
    );
    assert_eq!(templates.render("t", "fr", &ctx).unwrap().subject, "Hello");
    assert_eq!(templates.render("t", "", &ctx).unwrap().text, "Hi");
    assert!(matches!(
        templates.render("only-fr", "de", &ctx),
        Err(TemplateError::NoLanguage { .. })
    ));
    assert!(matches!(
        templates.render("only-fr", "fr", &ctx),
        Err(TemplateError::MissingPart { .. })
    ));
    assert!(matches!(
        templates.render("nope", "en", &ctx),
        Err(TemplateError::UnknownTemplate { .. })
    ));
}

#[test]
fn check_flags_missing_parts_and_strays() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "a", "en", SUBJECT, "S");
    write(tmp.path(), "a", "en", "body.htm", "typo");
    full(tmp.path(), "b", "de", "S", "T", "H");
    std::fs::create_dir_all(tmp.path().join("c")).unwrap();
    let templates = Templates::load(tmp.path()).unwrap();
    let problems = templates.check();
    let files: Vec<String> = problems
        .iter()
        .map(|p| {
            p.file
                .strip_prefix(tmp.path())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    assert_eq!(
        files,
        vec![
            "a/en/body.htm",
            "a/en/body.html",
            "a/en/body.txt",
            "b/en/body.html",
            "b/en/body.txt",
            "b/en/subject.txt",
            "c/en/body.html",
            "c/en/body.txt",
            "c/en/subject.txt",
        ]
    );
    assert!(problems[0].message.starts_with("unexpected file"));
    assert!(problems[1].message.contains("fallback language"));
}

#[test]
fn check_sends_renders_as_the_sweep_sends() {
    let tmp = tempfile::tempdir().unwrap();
    // Fine with the three-invoice sample, fails for a message about one.
    full(
        tmp.path(),
        "two",
        "en",
        "S",
        "Also {{ invoices[1].number }}",
        "H",
    );
    // Guards `plan` and needs a second installment.
    full(
        tmp.path(),
        "plan-offer",
        "de",
        "S",
        "{{ plan.down_payment }} then {{ plan.installments[1].due_date }}",
        "H",
    );
    full(tmp.path(), "plan-offer", "en", "S", "{{ plan.total }}", "H");
    full(
        tmp.path(),
        "fine",
        "en",
        "S {{ customer.name }}",
        "{% for i in invoices %}{{ i.number }}{% endfor %}",
        "H",
    );
    let templates = Templates::load(tmp.path()).unwrap();
    assert!(templates.check().is_empty(), "{:?}", templates.check());

    let two = templates.check_sends("two", false);
    assert_eq!(two.len(), 1, "{two:?}");
    assert!(
        two[0].file.ends_with("two/en/body.txt"),
        "{:?}",
        two[0].file
    );
    assert!(
        two[0].message.starts_with(
            "fails for a message about one invoice: `invoices[1].number` is not defined"
        ),
        "{}",
        two[0].message
    );

    let offer = templates.check_sends("plan-offer", true);
    assert_eq!(offer.len(), 1, "{offer:?}");
    assert!(offer[0].file.ends_with("plan-offer/de/body.txt"));
    assert!(
        offer[0].message.contains("single installment"),
        "{}",
        offer[0].message
    );

    assert!(templates.check_sends("fine", false).is_empty());
    assert!(templates.check_sends("absent", false).is_empty());
}

#[test]
fn language_for_is_what_render_uses() {
    let tmp = tempfile::tempdir().unwrap();
    full(tmp.path(), "t", "en", "Hello", "Hi", "<p>Hi</p>");
    full(tmp.path(), "t", "de", "Hallo", "Servus", "<p>Servus</p>");
    let templates = Templates::load(tmp.path()).unwrap();
    assert_eq!(templates.language_for("t", "de-AT").as_deref(), Some("de"));
    assert_eq!(templates.language_for("t", "fr").as_deref(), Some("en"));
    assert_eq!(templates.language_for("nope", "fr"), None);
}

#[test]
fn real_templates_pass_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policy/templates");
    let templates = Templates::load(&dir).unwrap();
    assert!(!templates.names().is_empty());
    let problems = templates.check();
    assert!(
        problems.is_empty(),
        "{}",
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    for name in templates.names() {
        let sends = templates.check_sends(&name, name == "plan-offer");
        assert!(sends.is_empty(), "{sends:?}");
    }
    let mut ctx = MessageContext::sample();
    for name in templates.names() {
        if !templates.uses_plan(&name) {
            ctx.plan = None;
        }
        let r = templates.render(&name, "en", &ctx).unwrap();
        assert!(!r.subject.is_empty(), "{name}");
        ctx.plan = MessageContext::sample().plan;
    }
}

/// A small layout in the shape of the real one: a page, the invoices,
/// and blocks for the words.
const LAYOUT: &str = "{#- the page -#}\n<html lang=\"{% block lang required %}{% endblock %}\">\n<h1 style=\"color:{% block accent required %}{% endblock %}\">{% block title required %}{% endblock %}</h1>\n{% for invoice in invoices %}<a href=\"{{ invoice.pay_link }}\" style=\"background:{{ self.accent() }}\">{% block pay required %}{% endblock %}</a> {{ invoice.number }}\n{% endfor %}<p>{{ company.name }}</p>\n</html>\n";

fn write_layout(root: &Path, file: &str, text: &str) {
    std::fs::create_dir_all(root.join(LAYOUT_DIR)).unwrap();
    std::fs::write(root.join(LAYOUT_DIR).join(file), text).unwrap();
}

fn body(lang: &str, title: &str) -> String {
    format!(
        "{{% extends \"_layout/page.html\" %}}\n{{% block lang %}}{lang}{{% endblock %}}\n\
         {{% block accent %}}#c53030{{% endblock %}}\n{{% block title %}}{title}{{% endblock %}}\n\
         {{% block pay %}}Pay{{% endblock %}}\n"
    )
}

#[test]
fn bodies_extend_a_layout_that_is_not_a_template() {
    let tmp = tempfile::tempdir().unwrap();
    write_layout(tmp.path(), "page.html", LAYOUT);
    full(
        tmp.path(),
        "reminder",
        "en",
        "S",
        "T",
        &body("en", "Hello {{ customer.name }}"),
    );
    full(tmp.path(), "reminder", "de", "S", "T", &body("de", "Hallo"));
    let templates = Templates::load(tmp.path()).unwrap();
    assert_eq!(templates.names(), vec!["reminder"]);
    assert_eq!(templates.languages("reminder"), vec!["de", "en"]);
    assert_eq!(templates.layouts(), ["_layout/page.html"]);
    assert!(templates.check().is_empty(), "{:?}", templates.check());
    assert!(templates.check_sends("reminder", false).is_empty());

    let mut ctx = MessageContext::sample();
    ctx.customer.name = "<Ann & Co>".to_string();
    let html = templates.render("reminder", "en", &ctx).unwrap().html;
    let rows: String = ctx
        .lists
        .invoices
        .iter()
        .map(|i| {
            format!(
                "<a href=\"{}\" style=\"background:#c53030\">Pay</a> {}\n",
                i.pay_link.replace('/', "&#x2f;"),
                i.number
            )
        })
        .collect();
    assert!(rows.contains(" 2025-0042\n"));
    assert_eq!(
        html,
        format!(
            "<html lang=\"en\">\n<h1 style=\"color:#c53030\">Hello &lt;Ann &amp; Co&gt;</h1>\n\
             {rows}<p>{}</p>\n</html>",
            ctx.company.name
        )
    );
    let de = templates.render("reminder", "de-AT", &ctx).unwrap().html;
    assert!(de.starts_with("<html lang=\"de\">\n<h1"), "{de}");
}

#[test]
fn a_missing_layout_is_a_load_error_naming_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    write_layout(tmp.path(), "page.html", LAYOUT);
    full(tmp.path(), "fine", "en", "S", "T", &body("en", "Fine"));
    full(
        tmp.path(),
        "reminder",
        "en",
        "S",
        "T",
        &format!(
            "{{# {{% extends \"_layout/commented-out.html\" %}} #}}\n{}",
            body("en", "Hi").replace("_layout/page.html", "_layout/pgae.html")
        ),
    );
    let err = Templates::load(tmp.path()).unwrap_err();
    let TemplateError::MissingLayout {
        file,
        line,
        layout,
        message,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert!(file.ends_with("reminder/en/body.html"), "{file:?}");
    assert_eq!(*line, Some(2));
    assert_eq!(layout, "_layout/pgae.html");
    let path = tmp.path().join("_layout").join("pgae.html");
    assert!(
        message.starts_with(&format!(
            "`_layout/pgae.html` does not exist: there is no file {} to extend or include",
            path.display()
        )),
        "{message}"
    );
    assert!(
        message.contains("the layouts are: `_layout/page.html`"),
        "{message}"
    );
    assert!(
        err.to_string().contains("body.html:2: `_layout/pgae.html`"),
        "{err}"
    );

    // A layout that includes a file that is not there is refused too,
    // and without any layout the message says where they belong.
    full(tmp.path(), "reminder", "en", "S", "T", &body("en", "Hi"));
    write_layout(
        tmp.path(),
        "page.html",
        &LAYOUT.replace("<p>", "{% include 'parts/footer.html' %}<p>"),
    );
    let err = Templates::load(tmp.path()).unwrap_err();
    assert!(
        matches!(&err, TemplateError::MissingLayout { file, line: Some(5), layout, .. }
            if file.ends_with("_layout/page.html") && layout == "parts/footer.html"),
        "{err:?}"
    );
    std::fs::remove_dir_all(tmp.path().join(LAYOUT_DIR)).unwrap();
    let err = Templates::load(tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "there is no layout in {}",
            tmp.path().join(LAYOUT_DIR).display()
        )),
        "{err}"
    );
}

#[test]
fn check_names_the_body_or_the_layout_at_fault() {
    let tmp = tempfile::tempdir().unwrap();
    // A misspelt variable in a branch the sample never takes, and one
    // that fails every render.
    write_layout(
        tmp.path(),
        "page.html",
        &LAYOUT.replace(
            "<p>{{ company.name }}</p>",
            "<p>{% if invoices|length > 9 %}{{ company.nmae }}{% endif %}</p>\n<p>{{ total_balanse }}</p>",
        ),
    );
    full(tmp.path(), "a", "en", "S", "T", &body("en", "A"));
    // A body that leaves out a block the layout requires.
    full(
        tmp.path(),
        "b",
        "en",
        "S",
        "T",
        &body("en", "B").replace("{% block pay %}Pay{% endblock %}\n", ""),
    );
    let templates = Templates::load(tmp.path()).unwrap();
    let problems = templates.check();
    let found: Vec<(String, Option<usize>, &str)> = problems
        .iter()
        .map(|p| {
            (
                p.file
                    .strip_prefix(tmp.path())
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/"),
                p.line,
                p.message.as_str(),
            )
        })
        .collect();
    assert_eq!(found.len(), 3, "{found:#?}");
    assert_eq!(
        (found[0].0.as_str(), found[0].1),
        ("_layout/page.html", Some(5))
    );
    assert!(
        found[0].2.starts_with("`company.nmae` is not a variable"),
        "{found:#?}"
    );
    assert_eq!(
        (found[1].0.as_str(), found[1].1),
        ("_layout/page.html", Some(6))
    );
    assert!(
        found[1].2.starts_with("`total_balanse` is not a variable"),
        "{found:#?}"
    );
    assert_eq!((found[2].0.as_str(), found[2].1), ("b/en/body.html", None));
    assert_eq!(
        found[2].2,
        "the block `pay` is missing: `_layout/page.html` needs every body that extends it \
         to fill it (`{% block pay %}…{% endblock %}`)"
    );
    let err = templates
        .render("b", "en", &MessageContext::sample())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("body.html: the block `pay` is missing"),
        "{err}"
    );
}

#[test]
fn references_are_the_literal_names_a_template_must_find() {
    let source = "{# {% include \"in-a-comment\" %} #}\n{%- extends '_layout/a.html' -%}\n\
                  {% raw %}{% include \"raw\" %}{% endraw %}\n{{ '{%' }}\n\
                  {% include \"b\" ignore missing %}{% include name %}{% include [\"c\", \"d\"] %}\n\
                  {% import \"m.html\" as m %}{% from \"n.html\" import x %}{% include \"e\" %}";
    assert_eq!(
        references(source),
        vec![
            ("_layout/a.html".to_string(), 2),
            ("m.html".to_string(), 6),
            ("n.html".to_string(), 6),
            ("e".to_string(), 6),
        ]
    );
}

#[test]
fn the_email_bodies_extend_the_layout() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policy/templates");
    let templates = Templates::load(&dir).unwrap();
    assert_eq!(
        templates.layouts(),
        [
            "_layout/email.html",
            "_layout/invoices-de.txt",
            "_layout/invoices-en.txt"
        ]
    );
    assert!(!templates.names().iter().any(|n| n == LAYOUT_DIR));
    let ctx = MessageContext::sample();
    for name in templates.names() {
        for lang in templates.languages(&name) {
            let source = std::fs::read_to_string(dir.join(&name).join(&lang).join(HTML)).unwrap();
            // The legal notice is a printed letter with its own markup.
            assert_eq!(
                source.starts_with("{% extends \"_layout/email.html\" %}\n"),
                name != "legal-notice",
                "{name}/{lang}"
            );
            let html = templates.render(&name, &lang, &ctx).unwrap().html;
            assert!(
                html.starts_with(&format!("<!DOCTYPE html>\n<html lang=\"{lang}\">\n")),
                "{name}/{lang}: {html}"
            );
            assert!(html.ends_with("</html>"), "{name}/{lang}");
            for invoice in &ctx.lists.invoices {
                assert!(html.contains(&invoice.number), "{name}/{lang}");
            }
        }
    }
}

#[test]
fn a_syntax_error_names_its_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    full(
        tmp.path(),
        "broken",
        "en",
        "S",
        "Hello {{ customer.name }\nBye",
        "H",
    );
    let err = Templates::load(tmp.path()).unwrap_err();
    let TemplateError::Syntax {
        problem,
        source_text,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(problem.line, Some(1), "{problem:?}");
    assert!(problem.col.is_some(), "{problem:?}");
    assert!(problem.span.is_some(), "{problem:?}");
    assert!(source_text.starts_with("Hello"), "{source_text}");
    let shown = err.to_string();
    assert!(shown.contains("broken/en/body.txt:1:"), "{shown}");
}

/// A template part, a language folder or a layout that is a symbolic link
/// is refused with the link's path and target: it could read a file from
/// outside the policy folder (`body.txt` → `/etc/passwd`) and mail it.
#[cfg(unix)]
#[test]
fn a_symbolic_link_is_refused_wherever_it_is() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("passwd");
    std::fs::write(&secret, "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    let lang_dir = outside.path().join("en");
    std::fs::create_dir_all(&lang_dir).unwrap();
    for (link, target) in [
        ("reminder/en/body.txt", secret.clone()),
        ("reminder/de", lang_dir.clone()),
        ("_layout/email.html", secret.clone()),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        full(tmp.path(), "reminder", "en", "S", "T", "<p>H</p>");
        let path = tmp.path().join(link);
        let _ = std::fs::remove_file(&path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let err = Templates::load(tmp.path()).unwrap_err();
        let TemplateError::Link {
            path: at,
            target: to,
        } = &err
        else {
            panic!("{link}: {err:?}");
        };
        assert_eq!(at, &path, "{link}");
        assert_eq!(to.as_deref(), Some(target.as_path()), "{link}");
        let text = err.to_string();
        assert!(
            text.contains("is a symbolic link") && text.contains(link),
            "{text}"
        );
    }
    // The templates folder itself.
    let tmp = tempfile::tempdir().unwrap();
    full(
        &outside.path().join("real"),
        "reminder",
        "en",
        "S",
        "T",
        "H",
    );
    let link = tmp.path().join("templates");
    std::os::unix::fs::symlink(outside.path().join("real"), &link).unwrap();
    assert!(matches!(
        Templates::load(&link),
        Err(TemplateError::Link { .. })
    ));
}
