//! The snippets of the last query, kept while the cursor stays on its line
//! (see `SnippetMemo`).

use std::path::PathBuf;
use std::sync::Arc;

use super::query::Query;
use super::snippet::Snippet;
use super::tokens::{jaccard, term_set};

/// The snippets of the last query, by file and line.
///
/// Keeps the retrieved set fixed while the user types on one line: the
/// snippets sit at the start of the prompt, so changing them would throw
/// away the engine's whole KV cache. A new line, another file, or a query
/// that has really changed (little overlap with the last) retrieves again.
#[derive(Default)]
pub struct SnippetMemo {
    last: Option<Last>,
}

struct Last {
    path: PathBuf,
    line: usize,
    terms: Vec<u64>,
    snippets: Arc<Vec<Snippet>>,
}

/// Below this overlap with the last query, the query has really changed.
const SAME_QUERY: f64 = 0.6;

impl SnippetMemo {
    /// The last snippets if they still stand for `q`, else `fetch()`'s.
    pub fn get(
        &mut self,
        q: &Query,
        fetch: impl FnOnce() -> Vec<Snippet>,
    ) -> (Arc<Vec<Snippet>>, bool) {
        let line = q.line;
        let terms = term_set(&q.text());
        if let Some(last) = &self.last {
            if last.path == q.path
                && last.line == line
                && jaccard(&last.terms, &terms) >= SAME_QUERY
            {
                return (last.snippets.clone(), true);
            }
        }
        let snippets = Arc::new(fetch());
        self.last = Some(Last {
            path: q.path.to_path_buf(),
            line,
            terms,
            snippets: snippets.clone(),
        });
        (snippets, false)
    }

    /// Forgets the kept set (the index changed under it in a way that matters).
    pub fn clear(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retrieval::fixtures::query;
    use std::path::Path;

    #[test]
    fn stable_within_a_line() {
        let mut st = SnippetMemo::default();
        let p = Path::new("/ws/a.py");
        let body = "import os\nfrom util import load_config, parse\nconfig = load_config(path)\nvalues = parse(config";
        let (a, reused) = st.get(&query(p, body), Vec::new);
        assert!(!reused && a.is_empty());
        let typed = format!("{body}, stri");
        let (_, reused) = st.get(&query(p, &typed), || unreachable!());
        assert!(reused);
        let next_line = format!("{body})\n");
        let (_, reused) = st.get(&query(p, &next_line), std::vec::Vec::new);
        assert!(!reused);
    }
}
