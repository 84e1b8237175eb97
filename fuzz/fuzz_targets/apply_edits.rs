//! Opens a document, applies batches of LSP content changes (ranges
//! anywhere, in UTF-8, UTF-16 or UTF-32, full replacements too), and checks
//! after each batch that the text equals the reference model's and that the
//! incrementally edited syntax tree equals a fresh parse of that text.
//!
//! Tree-sitter promises that equality only where the text parses cleanly:
//! after a syntax error, the incremental reparse may recover along another
//! path than a fresh parse (same rule as `outline`'s random-edit tests). So
//! where the trees differ the fresh parse must have an error, and the kept
//! tree must still be one of this text: every node inside it, children in
//! order — what the outline and context code rely on.

#![no_main]

use arbitrary::Arbitrary;
use infill::text::document::{Document, TextChange};
use infill::text::syntax::{Language, SyntaxTree};
use infill_fuzz::{apply, Encoding, Pos, Text};
use libfuzzer_sys::fuzz_target;
use tree_sitter::Node;

#[derive(Arbitrary, Debug)]
enum Lang {
    Python,
    Java,
    Plain,
}

#[derive(Arbitrary, Debug)]
struct Change {
    /// `None`: replace the whole document.
    range: Option<(Pos, Pos)>,
    text: Text,
}

#[derive(Arbitrary, Debug)]
struct Input {
    language: Lang,
    encoding: Encoding,
    text: Text,
    /// Each batch is one `didChange`: changes applied in order, one reparse.
    batches: Vec<Vec<Change>>,
}

fuzz_target!(|input: Input| {
    let (path, language_id, language) = match input.language {
        Lang::Python => ("/fuzz/x.py", "python", Some(Language::Python)),
        Lang::Java => ("/fuzz/X.java", "java", Some(Language::Java)),
        Lang::Plain => ("/fuzz/x.txt", "plaintext", None),
    };
    let enc = input.encoding;
    let mut reference = input.text.build();
    let mut doc = Document::new(path, Some(language_id), 1, &reference);
    check(&doc, &reference, language);
    for (i, batch) in input.batches.iter().enumerate() {
        let changes: Vec<TextChange> = batch
            .iter()
            .map(|c| TextChange {
                range: c.range.map(|(a, b)| (a.lsp(), b.lsp())),
                text: c.text.build(),
            })
            .collect();
        for c in &changes {
            apply(&mut reference, c.range, &c.text, enc);
        }
        let version = i as i32 + 2;
        doc.apply_changes(version, &changes, enc.lsp());
        assert_eq!(doc.version, version);
        check(&doc, &reference, language);
    }
});

fn check(doc: &Document, reference: &str, language: Option<Language>) {
    assert_eq!(
        doc.text().to_string(),
        reference,
        "text differs from the reference"
    );
    assert_eq!(doc.language(), language);
    let Some(language) = language else {
        assert!(doc.syntax().is_none());
        return;
    };
    let fresh =
        SyntaxTree::new(language, &ropey::Rope::from_str(reference)).expect("grammar loads");
    let fresh = fresh.tree().expect("a fresh parse gives a tree");
    let kept = doc
        .syntax()
        .and_then(|s| s.tree())
        .expect("the document has a tree");
    if let Err(difference) = same_tree(kept.root_node(), fresh.root_node()) {
        assert!(
            fresh.root_node().has_error(),
            "a text without syntax errors: {difference}"
        );
        inside(kept.root_node(), reference.len());
    }
}

/// Every node within `0..len`, each child within its parent, siblings in
/// order.
fn inside(node: Node, len: usize) {
    let range = node.byte_range();
    assert!(
        range.start <= range.end && range.end <= len,
        "{} {:?} outside the text (0..{len})",
        node.kind(),
        range
    );
    let mut cursor = node.walk();
    let mut last_end = range.start;
    for child in node.children(&mut cursor) {
        let r = child.byte_range();
        assert!(
            r.start >= last_end && r.end <= range.end,
            "{} {:?} out of order in {} {:?}",
            child.kind(),
            r,
            node.kind(),
            range
        );
        last_end = r.end;
        inside(child, len);
    }
}

/// Node by node: kind, flags, byte range, and start and end points; the
/// first difference, described.
fn same_tree(kept: Node, fresh: Node) -> Result<(), String> {
    let describe = |n: Node| {
        format!(
            "{} {}{}{} bytes {:?} points {:?}..{:?}",
            n.kind(),
            if n.is_named() { "named" } else { "anonymous" },
            if n.is_error() { " error" } else { "" },
            if n.is_missing() { " missing" } else { "" },
            n.byte_range(),
            n.start_position(),
            n.end_position(),
        )
    };
    if describe(kept) != describe(fresh) || kept.child_count() != fresh.child_count() {
        return Err(format!(
            "incremental tree differs from a fresh parse at {} (fresh: {}):\nkept:  {}\nfresh: {}",
            describe(kept),
            describe(fresh),
            kept.to_sexp(),
            fresh.to_sexp()
        ));
    }
    let mut a = kept.walk();
    let mut b = fresh.walk();
    for (x, y) in kept.children(&mut a).zip(fresh.children(&mut b)) {
        same_tree(x, y)?;
    }
    Ok(())
}
