#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Comments after the last item: a `# comment` or a `## doc comment` ends a
//! policy as well as anything else, with or without a final newline, and
//! `collect fmt` keeps it.

use policy_lang::check_source;
use policy_lang::format::format;

const BODY: &str = "policy \"example\"
  effective 2026-12-01
  currency USD

segment standard otherwise

ladder standard
  due  email \"urgent-notice\"
";

fn errors(source: &str) -> Vec<String> {
    let (_, diags) = check_source(source, "end.policy", None);
    diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.headline())
        .collect()
}

#[test]
fn a_policy_may_end_with_a_doc_comment() {
    for ending in [
        "## Reviewed by finance ops.\n",
        "## Reviewed by finance ops.",
        "\n## Reviewed by finance ops.\n## Second line.\n\n",
        "  ## indented, after the last step\n",
    ] {
        let source = format!("{BODY}{ending}");
        assert_eq!(errors(&source), Vec::<String>::new(), "{source:?}");
    }
}

#[test]
fn a_policy_may_end_with_a_comment_without_a_newline() {
    for ending in ["# the end", "# the end\n", "\n# one\n# two"] {
        let source = format!("{BODY}{ending}");
        assert_eq!(errors(&source), Vec::<String>::new(), "{source:?}");
    }
}

#[test]
fn a_doc_comment_at_the_end_documents_nothing() {
    let with = format!("{BODY}## Reviewed by finance ops.");
    let (file, diags) = policy_lang::syntax::parse(&with);
    assert!(diags.is_empty(), "{diags:?}");
    let file = file.unwrap();
    let Some(policy_lang::ast::Item::Ladder(ladder)) = file.items.last() else {
        panic!("{:?}", file.items);
    };
    assert!(
        ladder.steps[0].docs.is_empty(),
        "{:?}",
        ladder.steps[0].docs
    );
    let trailing = file.trailing_docs.unwrap();
    assert_eq!(trailing.node, vec![" Reviewed by finance ops.".to_string()]);
    assert_eq!(trailing.span.line, 9);
    // The same policy as without the comment.
    let (without, _) = policy_lang::syntax::parse(BODY);
    assert_eq!(without.unwrap().items, file.items);
}

#[test]
fn fmt_keeps_comments_at_the_end() {
    let source = format!("{BODY}  # a comment\n## Reviewed by finance ops.\n## Ticket FIN-7");
    let out = format(&source).unwrap();
    assert!(
        out.ends_with("\n\n# a comment\n## Reviewed by finance ops.\n## Ticket FIN-7\n"),
        "{out}"
    );
    assert_eq!(format(&out).unwrap(), out, "idempotent");
}

#[test]
fn text_after_a_trailing_doc_comment_is_still_an_error() {
    let source = format!("{BODY}## doc\nladder");
    let errs = errors(&source);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("E0001"), "{errs:?}");
}
