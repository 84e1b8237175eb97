use super::fuzz::*;
use super::*;
use crate::text::document::{Document, TextChange};
use crate::text::position::PositionEncoding;

const PY: &str = "\
import os

LIMIT = 10

def top(a, b=1):
    return a + b

class Shape(Base):
    sides: int = 0

    @property
    def area(self) -> float:
        return 0.0
";

#[test]
fn python_symbols_with_signatures_and_members() {
    let o = outline(Some(Language::Python), PY);
    let sig = |n: &str| {
        o.symbols
            .iter()
            .find(|s| s.name == n)
            .map(|s| (s.kind, s.signature.clone(), s.parent))
    };
    assert_eq!(
        sig("top"),
        Some((SymbolKind::Function, "def top(a, b=1):".into(), None))
    );
    assert_eq!(
        sig("Shape"),
        Some((SymbolKind::Class, "class Shape(Base):".into(), None))
    );
    let shape = o.symbols.iter().position(|s| s.name == "Shape");
    assert_eq!(
        sig("area"),
        Some((SymbolKind::Method, "def area(self) -> float:".into(), shape))
    );
    assert_eq!(sig("sides").map(|s| s.0), Some(SymbolKind::Field));
    assert_eq!(sig("LIMIT").map(|s| s.2), Some(None));
    // Chunks: the module lines, the function, the (small) class whole.
    let starts: Vec<usize> = o.chunks.iter().map(|c| c.start_line).collect();
    assert_eq!(starts, vec![0, 4, 7]);
    assert!(o.chunks[2].text(PY).contains("@property"));
}

#[test]
fn large_java_class_is_cut_into_header_and_members() {
    let mut src = String::from("package p;\n\npublic class Big {\n    private int n;\n\n");
    for i in 0..20 {
        src.push_str(&format!(
            "    /** Doc {i}. */\n    public int get{i}(int x) {{\n        return x + {i};\n    }}\n"
        ));
    }
    src.push_str("}\n");
    let o = outline(Some(Language::Java), &src);
    let get3 = o.symbols.iter().find(|s| s.name == "get3").unwrap();
    assert_eq!(get3.kind, SymbolKind::Method);
    assert_eq!(get3.signature, "public int get3(int x)");
    assert_eq!(o.symbols[get3.parent.unwrap()].name, "Big");
    // Header chunk holds the class line and its field, not the methods.
    let header = o
        .chunks
        .iter()
        .find(|c| c.text(&src).contains("class Big"))
        .unwrap();
    assert!(header.text(&src).contains("private int n;"));
    assert!(!header.text(&src).contains("get0"));
    assert!(o
        .chunks
        .iter()
        .any(|c| c.text(&src).contains("get7(int x)") && !c.text(&src).contains("get8")));
    // Every line with a word is in exactly one chunk.
    let mut seen = vec![0; src.lines().count()];
    for c in &o.chunks {
        for s in seen.iter_mut().take(c.end_line + 1).skip(c.start_line) {
            *s += 1;
        }
    }
    for (i, l) in src.lines().enumerate() {
        if l.chars().any(char::is_alphanumeric) {
            assert_eq!(seen[i], 1, "line {i}: {l}");
        }
    }
}

#[test]
fn plain_text_in_windows() {
    let text: String = (0..70).map(|i| format!("line {i}\n")).collect();
    let o = outline(None, &text);
    let ranges: Vec<(usize, usize)> = o
        .chunks
        .iter()
        .map(|c| (c.start_line, c.end_line))
        .collect();
    assert_eq!(ranges, vec![(0, 29), (30, 59), (60, 69)]);
    assert!(o.symbols.is_empty());
}

fn parse(language: Language, text: &str) -> Tree {
    let mut parser = Parser::new();
    parser.set_language(&language.grammar()).unwrap();
    parser.parse(text, None).unwrap()
}

/// Random edits to a document; after each few, `update` from the last
/// state must equal a fresh outline from the same tree, both with the
/// document's tree and with none (`update` then reparses incrementally
/// itself). Returns how often the incremental tree was not the fresh
/// parse's (tree-sitter's error recovery can take another path).
fn updates_equal_fresh(language: Language, seed_text: &str, pool: &[&str], seed: u64) -> usize {
    let mut rng = Rng(seed);
    let path = format!(
        "/x.{}",
        if language == Language::Python {
            "py"
        } else {
            "java"
        }
    );
    let mut doc = Document::new(&path, None, 0, seed_text);
    let mut text = seed_text.to_string();
    let tree = doc.syntax().and_then(|s| s.tree().cloned());
    let (first, p) = update(Some(language), &text, &Lines::new(&text), tree, None);
    assert_eq!(first, outline(Some(language), &text));
    let (_, p2) = update(Some(language), &text, &Lines::new(&text), None, None);
    // The states of both chains: with the document's trees, and without.
    let mut states = [p, p2];
    let mut diverged = 0;
    for round in 1..=300 {
        if round % 50 == 0 {
            let reset = TextChange {
                range: None,
                text: seed_text.to_string(),
            };
            doc.apply_changes(round, &[reset], PositionEncoding::Utf8);
        }
        let mut changes = Vec::new();
        for _ in 0..=rng.below(3) {
            let c = random_change(&mut rng, &doc.text().to_string(), pool);
            doc.apply_changes(round, std::slice::from_ref(&c), PositionEncoding::Utf8);
            changes.push(c);
        }
        let new = doc.text().to_string();
        let lines = Lines::new(&new);
        let fresh = parse(language, &new);
        let context =
            || format!("round {round}, changes {changes:?}\nbefore:\n{text}\nafter:\n{new}");
        for own in [false, true] {
            let tree = doc
                .syntax()
                .and_then(|s| s.tree().cloned())
                .filter(|_| !own);
            let last = states[own as usize].take().unwrap();
            let diff = TextDiff::new(&text, &new, &lines);
            let (got, p) = update(Some(language), &new, &lines, tree, Some((&diff, last)));
            let p = p.unwrap();
            // What a full query of the same tree gives.
            assert_eq!(
                p.defs,
                definitions(language, &new, &p.tree),
                "own parse {own}: {}",
                context()
            );
            assert_eq!(got, cut(&p.defs, &new, &lines));
            if p.tree.root_node().to_sexp() == fresh.root_node().to_sexp() {
                assert_eq!(got, outline(Some(language), &new), "{}", context());
            } else {
                assert!(fresh.root_node().has_error(), "{}", context());
                diverged += 1;
            }
            states[own as usize] = Some(p);
        }
        text = new;
    }
    diverged
}

/// Seeds per language (`INFILL_FUZZ_SEEDS` for a longer run).
fn seeds() -> u64 {
    std::env::var("INFILL_FUZZ_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
}

#[test]
fn python_updates_equal_a_fresh_outline() {
    let diverged: usize = (1..=seeds())
        .map(|seed| updates_equal_fresh(Language::Python, PY_SEED, PY_POOL, seed * 7919))
        .sum();
    eprintln!(
        "python: incremental tree not the fresh one in {diverged} of {} updates",
        seeds() * 600
    );
}

#[test]
fn java_updates_equal_a_fresh_outline() {
    let diverged: usize = (1..=seeds())
        .map(|seed| updates_equal_fresh(Language::Java, JAVA_SEED, JAVA_POOL, seed * 104729))
        .sum();
    eprintln!(
        "java: incremental tree not the fresh one in {diverged} of {} updates",
        seeds() * 600
    );
}
