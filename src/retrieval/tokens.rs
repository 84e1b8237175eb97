//! Code-aware terms for BM25: identifiers are split at `_` and camelCase
//! boundaries and lowercased, so `parseHttpHeader` and `parse_http_header`
//! share terms; the whole identifier is kept as a term too, so an exact
//! name match still counts most. Punctuation and numbers are dropped.
//! Term sets (sorted hashes) and their overlap tell near-duplicate texts
//! and changed queries apart.

/// Calls `f` with each term of `text`, in order (repeats included).
pub fn for_each_term(text: &str, mut f: impl FnMut(&str)) {
    let mut buf = String::new();
    for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        let word = word.trim_matches('_');
        if word.is_empty() || !word.chars().any(char::is_alphabetic) {
            continue;
        }
        let mut parts = 0;
        for part in split_identifier(word) {
            if part.chars().count() < 2 || !part.chars().any(char::is_alphabetic) {
                continue;
            }
            buf.clear();
            buf.extend(part.chars().flat_map(char::to_lowercase));
            f(&buf);
            parts += 1;
        }
        if parts > 1 {
            buf.clear();
            buf.extend(word.chars().flat_map(char::to_lowercase));
            f(&buf);
        }
    }
}

/// A term's 64-bit FNV-1a hash (for term sets that need no strings).
pub fn hash(term: &str) -> u64 {
    term.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// All terms of `text`, in order.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_term(text, |t| out.push(t.to_string()));
    out
}

/// Splits at `_`, at lower→upper (`parseHttp`), and before the last capital
/// of a run followed by lowercase (`HTTPServer` → `HTTP`, `Server`).
fn split_identifier(word: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for piece in word.split('_').filter(|p| !p.is_empty()) {
        let chars: Vec<(usize, char)> = piece.char_indices().collect();
        let mut start = 0;
        for k in 1..chars.len() {
            let (i, c) = chars[k];
            let prev = chars[k - 1].1;
            let next_lower = chars.get(k + 1).is_some_and(|(_, n)| n.is_lowercase());
            let boundary = (c.is_uppercase() && (prev.is_lowercase() || prev.is_ascii_digit()))
                || (c.is_uppercase() && prev.is_uppercase() && next_lower);
            if boundary {
                out.push(&piece[start..i]);
                start = i;
            }
        }
        out.push(&piece[start..]);
    }
    out
}

/// Identifiers of `text` as written (for the symbol table), in order.
pub fn identifiers(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| {
            w.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
        })
}

/// The distinct terms of a text, as sorted 64-bit hashes (no string is
/// kept: these sets are built for every candidate of every query).
pub(super) fn term_set(text: &str) -> Vec<u64> {
    let mut set = Vec::new();
    for_each_term(text, |t| set.push(hash(t)));
    set.sort_unstable();
    set.dedup();
    set
}

pub(super) fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut inter) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    inter as f64 / (a.len() + b.len() - inter) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_snake_and_camel_case() {
        assert_eq!(
            terms("parse_http_header(x); HTTPServer.getValue2() 42 ++ a"),
            vec![
                "parse",
                "http",
                "header",
                "parse_http_header",
                "http",
                "server",
                "httpserver",
                "get",
                "value2",
                "getvalue2"
            ]
        );
        assert!(terms("== {} ( ) 3.14 _").is_empty());
    }

    #[test]
    fn identifiers_as_written() {
        let ids: Vec<&str> = identifiers("self.fooBar(1, _x) + 2y").collect();
        assert_eq!(ids, vec!["self", "fooBar", "_x"]);
    }
}
