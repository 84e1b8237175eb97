//! Symbols and chunks as the model sees them: a definition as its
//! signature (a class with its members, a member under its class), a
//! chunk as its lines that best match the query.

use super::outline::{Symbol, SymbolKind};
use super::tokens;

/// Most members shown around a member's definition (its neighbours that
/// the query names in part).
const MAX_MEMBER_LINES: usize = 6;

/// A symbol as the model should see it: a class as its header and member
/// signatures; a member under its class's header, with the members beside
/// it that the query names in part; anything else its signature.
/// Members are chosen by how many terms of their names the query (`terms`,
/// sorted) has, and shown in file order: the line being written calls a
/// member that its own context names in part (`consumeTo` where the code
/// around says `reader.consume()`), rarely one of a class's first.
pub(super) fn definition_text(
    symbols: &[Symbol],
    i: usize,
    max_lines: usize,
    terms: &[u64],
) -> String {
    let s = &symbols[i];
    let (class, pinned, room) = match (s.kind, s.parent) {
        (SymbolKind::Class, _) => (i, None, max_lines.saturating_sub(1)),
        (_, Some(p)) if p < symbols.len() => (p, Some(i), MAX_MEMBER_LINES.min(max_lines)),
        _ => return s.signature.clone(),
    };
    // How many of a member's name terms are in `among` (sorted).
    let shared = |m: usize, among: &[u64]| {
        let mut n = 0;
        tokens::for_each_term(&symbols[m].name, |t| {
            n += usize::from(among.binary_search(&tokens::hash(t)).is_ok());
        });
        n
    };
    let members: Vec<usize> = (0..symbols.len())
        .filter(|&m| symbols[m].parent == Some(class))
        .collect();
    let mut shown = members.clone();
    if let Some(p) = pinned {
        // Beside a member, its name's family (`consumeTo` beside `consume`).
        let mut family = Vec::new();
        tokens::for_each_term(&symbols[p].name, |t| family.push(tokens::hash(t)));
        family.sort_unstable();
        shown.retain(|&m| m == p || shared(m, &family) > 0);
    }
    if shown.len() > room {
        // The member asked for first, then by relevance; stable, so
        // equally relevant members keep file order.
        shown.sort_by_cached_key(|&m| (Some(m) != pinned, std::cmp::Reverse(shared(m, terms))));
        shown.truncate(room.max(1));
        shown.sort_unstable();
    }
    let mut lines = vec![match pinned {
        Some(_) => first_line(&symbols[class].signature).to_string(),
        None => symbols[class].signature.clone(),
    }];
    for &m in &shown {
        let sig = &symbols[m].signature;
        // The member asked for in full, the others by their first line.
        let sig = if Some(m) == pinned {
            sig.as_str()
        } else {
            first_line(sig)
        };
        lines.push(format!("    {sig}"));
    }
    if pinned.is_none() && shown.len() < members.len() {
        lines.push("    ...".into());
    }
    lines.join("\n")
}

/// The `max` consecutive lines of `text` that share the most terms with
/// `query` (all of it if it is short enough), after how many lines.
pub(super) fn best_window<'a>(text: &'a str, query: &[u64], max: usize) -> (usize, &'a str) {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    if lines.len() <= max {
        return (0, text);
    }
    let score: Vec<usize> = lines
        .iter()
        .map(|l| {
            let mut n = 0;
            tokens::for_each_term(l, |t| {
                if query.binary_search(&tokens::hash(t)).is_ok() {
                    n += 1;
                }
            });
            n
        })
        .collect();
    let mut sum: usize = score[..max].iter().sum();
    let (mut best, mut at) = (sum, 0);
    for start in 1..=lines.len() - max {
        sum = sum + score[start + max - 1] - score[start - 1];
        if sum > best {
            (best, at) = (sum, start);
        }
    }
    let from: usize = lines[..at].iter().map(|l| l.len()).sum();
    let len: usize = lines[at..at + max].iter().map(|l| l.len()).sum();
    (at, &text[from..from + len])
}

pub(super) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}
