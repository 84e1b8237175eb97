//! What `update` queries after an edit: the changed bytes, the tree's
//! changed ranges, and every definition touching them, grown until no
//! definition straddles the border; the old definitions outside are kept, moved.

use tree_sitter::Tree;

use crate::text::syntax::Language;

use super::definitions::{run_query, Def};
use super::{Parsed, TextDiff};

/// The definitions of the new `text`, given the last update's: the query
/// runs only over what changed.
///
/// Why this equals a fresh query of `tree`: outside the changed bytes and
/// the changed ranges of the tree, every character has the same text and
/// the same ancestors (`Tree::changed_ranges`). Take a definition whose
/// extent misses the queried ranges. The other tree has a definition of
/// the same kind over the same characters, with the same name. If that one
/// reached further, a character it covers beyond ours would have other
/// ancestors and so lie in a changed range; it would touch the ranges,
/// count as changed, and its name, which is ours, would be added to the
/// ranges, so ours would touch them too. So it covers exactly the same
/// characters: the same definition. Hence: every definition that touches
/// the ranges, old or new, has its name added, until nothing more is
/// added; then the new ones that touch them come from the query, and the
/// old ones that do not are kept, moved.
pub(super) fn changed_definitions(
    language: Language,
    text: &str,
    tree: &Tree,
    previous: Parsed,
    diff: &TextDiff,
) -> Vec<Def> {
    let mut old_tree = previous.tree;
    old_tree.edit(&diff.input_edit());
    let mut ranges = Ranges::default();
    // One byte either side, so that what only touches the change counts.
    ranges.add(diff.start.saturating_sub(1), diff.new_end + 1);
    for r in old_tree.changed_ranges(tree) {
        ranges.add(r.start_byte.saturating_sub(1), r.end_byte + 1);
    }
    // Old definitions, where they are now: their extent and their name.
    let old: Vec<((usize, usize), usize)> = previous
        .defs
        .iter()
        .map(|d| {
            let (a, b) = d.extent();
            (
                diff.map_range(a, b),
                diff.map_range(d.name_byte, d.name_byte + 1).0,
            )
        })
        .collect();
    let mut queried = Ranges::default();
    let mut found: Vec<Def> = Vec::new();
    loop {
        grow_to_decorated(language, tree, &mut ranges);
        for (a, b) in ranges.minus(&queried) {
            let r = &ranges;
            run_query(
                language,
                text,
                tree,
                Some((a, b)),
                &|e| r.intersects(e),
                &mut found,
            );
        }
        queried = ranges.clone();
        let mut grown = ranges.clone();
        let names = found
            .iter()
            .map(|d| (d.extent(), d.name_byte))
            .chain(old.iter().copied());
        for (extent, name) in names {
            if ranges.intersects(extent) && !ranges.intersects((name, name + 1)) {
                grown.add(name, name + 1);
            }
        }
        if grown == ranges {
            break;
        }
        ranges = grown;
    }
    let mut defs: Vec<Def> = found
        .into_iter()
        .filter(|d| ranges.intersects(d.extent()))
        .collect();
    for (d, &(extent, _)) in previous.defs.into_iter().zip(&old) {
        if ranges.intersects(extent) {
            continue;
        }
        let Some((at, rows)) = diff.moved(d.whole_byte, d.end_byte) else {
            continue;
        };
        let shift = |x: usize| (x + at).wrapping_sub(d.whole_byte);
        let row = |r: usize| (r as isize + rows) as usize;
        defs.push(Def {
            start_line: row(d.start_line),
            end_line: row(d.end_line),
            whole_byte: at,
            start_byte: shift(d.start_byte),
            name_byte: shift(d.name_byte),
            body_byte: d.body_byte.map(shift),
            end_byte: shift(d.end_byte),
            ..d
        });
    }
    defs.sort_by(Def::order);
    defs.dedup_by(|a, b| Def::same(a, b));
    defs
}

/// Grows `ranges` over every decorated definition one of them starts or
/// ends in: its decorators belong to the definition, and the query only
/// finds a definition through its own node.
fn grow_to_decorated(language: Language, tree: &Tree, ranges: &mut Ranges) {
    if language != Language::Python {
        return;
    }
    loop {
        let mut grown = ranges.clone();
        for &(a, b) in &ranges.0 {
            for at in [a, b.saturating_sub(1).max(a)] {
                let mut node = tree.root_node().descendant_for_byte_range(at, at);
                while let Some(n) = node {
                    if n.kind() == "decorated_definition" {
                        grown.add(n.start_byte(), n.end_byte());
                    }
                    node = n.parent();
                }
            }
        }
        if grown == *ranges {
            return;
        }
        *ranges = grown;
    }
}

/// Sorted, disjoint byte ranges.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Ranges(Vec<(usize, usize)>);

impl Ranges {
    fn add(&mut self, a: usize, b: usize) {
        self.0.push((a, b.max(a + 1)));
        self.0.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(self.0.len());
        for &(a, b) in &self.0 {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        self.0 = merged;
    }

    fn intersects(&self, (a, b): (usize, usize)) -> bool {
        // The first range ending after `a`.
        let i = self.0.partition_point(|r| r.1 <= a);
        self.0.get(i).is_some_and(|r| r.0 < b)
    }

    /// The parts of `self` not in `other`.
    fn minus(&self, other: &Ranges) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for &(a, b) in &self.0 {
            let mut from = a;
            for &(c, d) in &other.0 {
                if d <= from || c >= b {
                    continue;
                }
                if c > from {
                    out.push((from, c));
                }
                from = from.max(d);
            }
            if from < b {
                out.push((from, b));
            }
        }
        out
    }
}
