//! An in-memory BM25 index over chunks, updated per document in place.
//!
//! Why not a crate: `tantivy` is built around immutable on-disk segments;
//! every update is a commit plus a reader reload (milliseconds, and
//! threads), which does not fit re-indexing a buffer on each pause in
//! typing. The `bm25` crate scores an in-memory corpus but brings its own
//! tokenizer pipeline (stemming, stop words for natural language) and keeps
//! no per-document postings to remove from. What we need is small: postings
//! with term frequencies, tombstones for removed chunks, and compaction
//! when the dead outnumber the living. Written here, it updates a file in
//! tens of microseconds.

use std::collections::HashMap;

use super::tokens::for_each_term;

/// BM25 parameters (the usual defaults).
const K1: f32 = 1.2;
const B: f32 = 0.75;
/// Most distinct query terms scored.
const MAX_QUERY_TERMS: usize = 40;
/// Extra candidates ranked before `accept` filters them, so that the
/// filter runs on a few documents rather than every one touched.
const FILTER_MARGIN: usize = 64;

/// A chunk's slot in the index; stable until the chunk is removed.
pub type DocId = u32;

#[derive(Debug, Default)]
pub struct Bm25 {
    terms: HashMap<String, u32>,
    /// Per term: (doc, term frequency), in insertion order; may hold dead docs.
    postings: Vec<Vec<(DocId, u16)>>,
    /// Per term: how many live docs hold it, and how many dead ones are
    /// still in its postings.
    df: Vec<u32>,
    dead: Vec<u32>,
    /// Per doc slot: its length in terms, its distinct terms (for removal),
    /// and whether it is live.
    len: Vec<u32>,
    doc_terms: Vec<Vec<u32>>,
    live: Vec<bool>,
    live_count: usize,
    total_len: u64,
    dead_postings: usize,
    total_postings: usize,
    /// Scratch for queries, one per doc slot, and the docs a query
    /// touched (kept: a query on a large workspace touches many).
    scores: Vec<f32>,
    touched: Vec<DocId>,
    hits: Vec<(DocId, f32)>,
}

impl Bm25 {
    pub fn live_docs(&self) -> usize {
        self.live_count
    }

    /// Indexes `text` as a new document.
    pub fn add(&mut self, text: &str) -> DocId {
        self.add_parts(&[text])
    }

    /// Indexes the texts of `parts` as one new document (as if joined by
    /// a line break).
    pub fn add_parts(&mut self, parts: &[&str]) -> DocId {
        let mut counts: HashMap<u32, u16> = HashMap::new();
        let mut len = 0u32;
        for part in parts {
            for_each_term(part, |t| {
                let id = match self.terms.get(t) {
                    Some(&id) => id,
                    None => {
                        let id = self.postings.len() as u32;
                        self.terms.insert(t.to_string(), id);
                        self.postings.push(Vec::new());
                        self.df.push(0);
                        self.dead.push(0);
                        id
                    }
                };
                let c = counts.entry(id).or_insert(0);
                *c = c.saturating_add(1);
                len += 1;
            });
        }
        let doc = self.len.len() as DocId;
        let mut distinct = Vec::with_capacity(counts.len());
        for (term, tf) in counts {
            self.postings[term as usize].push((doc, tf));
            self.df[term as usize] += 1;
            distinct.push(term);
        }
        self.total_postings += distinct.len();
        self.len.push(len);
        self.doc_terms.push(distinct);
        self.live.push(true);
        self.scores.push(0.0);
        self.live_count += 1;
        self.total_len += u64::from(len);
        doc
    }

    /// Removes a document: its postings stay as tombstones until the
    /// term's list is a quarter dead (then that list is swept: searches
    /// stay fast while buffers are re-indexed over and over), or `compact`.
    pub fn remove(&mut self, doc: DocId) {
        let d = doc as usize;
        if !self.live.get(d).copied().unwrap_or(false) {
            return;
        }
        self.live[d] = false;
        self.live_count -= 1;
        self.total_len -= u64::from(self.len[d]);
        let terms = std::mem::take(&mut self.doc_terms[d]);
        self.dead_postings += terms.len();
        for &t in &terms {
            let t = t as usize;
            self.df[t] -= 1;
            self.dead[t] += 1;
            if self.dead[t] >= 16 && self.dead[t] as usize * 4 >= self.postings[t].len() {
                let live = &self.live;
                self.postings[t].retain(|(d, _)| live[*d as usize]);
                self.dead_postings -= self.dead[t] as usize;
                self.total_postings -= self.dead[t] as usize;
                self.dead[t] = 0;
            }
        }
    }

    /// Whether dead postings are worth sweeping (more than the live ones).
    pub fn needs_compaction(&self) -> bool {
        self.dead_postings > 4096 && self.dead_postings * 2 > self.total_postings
    }

    /// Drops dead postings. Doc ids do not change.
    pub fn compact(&mut self) {
        let live = &self.live;
        for p in &mut self.postings {
            p.retain(|(d, _)| live[*d as usize]);
        }
        self.dead.iter_mut().for_each(|d| *d = 0);
        self.total_postings -= self.dead_postings;
        self.dead_postings = 0;
    }

    /// The query's scored terms: those the index holds, without the
    /// common ones (unless nothing else is left), rarest first, capped.
    fn query_terms(&self, query: &str) -> Vec<u32> {
        let mut qterms: Vec<u32> = Vec::new();
        for_each_term(query, |t| {
            if let Some(&id) = self.terms.get(t) {
                if !qterms.contains(&id) {
                    qterms.push(id);
                }
            }
        });
        // Terms in more than a fifth of the chunks (`self`, `return`,
        // `public`) have long postings and little weight: skipping them
        // keeps a query within milliseconds on a large workspace. If the
        // query has nothing else, they are used after all.
        let common = (self.live_count / 5).max(50) as u32;
        if qterms.iter().any(|&t| self.df[t as usize] <= common) {
            qterms.retain(|&t| self.df[t as usize] <= common);
        }
        // The rarest terms carry the most weight; a cap bounds the work.
        qterms.sort_by_key(|&t| self.df[t as usize]);
        qterms.truncate(MAX_QUERY_TERMS);
        qterms
    }

    /// The score `text` would have for `query` as a document of the index
    /// (the index's term statistics; `text` itself is not counted in
    /// them): a piece from outside the index ranked with its hits.
    pub fn score_text(&self, query: &str, text: &str) -> f32 {
        let n = self.live_count as f32;
        let qterms = self.query_terms(query);
        if n == 0.0 || qterms.is_empty() {
            return 0.0;
        }
        let mut tfs: HashMap<u32, f32> = HashMap::new();
        let mut len = 0u32;
        for_each_term(text, |t| {
            len += 1;
            if let Some(&id) = self.terms.get(t) {
                if qterms.contains(&id) {
                    *tfs.entry(id).or_insert(0.0) += 1.0;
                }
            }
        });
        let avg = (self.total_len as f32 / n).max(1.0);
        let norm = K1 * (1.0 - B) + K1 * B / avg * len as f32;
        tfs.iter()
            .map(|(&t, &tf)| {
                let df = self.df[t as usize] as f32;
                let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                idf * tf * (K1 + 1.0) / (tf + norm)
            })
            .sum()
    }

    /// The `k` best live documents for `query` with a score above zero,
    /// best first; `accept` filters documents before ranking.
    pub fn search(
        &mut self,
        query: &str,
        k: usize,
        accept: impl Fn(DocId) -> bool,
    ) -> Vec<(DocId, f32)> {
        let n = self.live_count as f32;
        let qterms = self.query_terms(query);
        if n == 0.0 || qterms.is_empty() {
            return Vec::new();
        }
        let avg = (self.total_len as f32 / n).max(1.0);
        let mut touched = std::mem::take(&mut self.touched);
        touched.clear();
        let per_len = K1 * B / avg;
        for &t in &qterms {
            let df = self.df[t as usize] as f32;
            if df == 0.0 {
                continue;
            }
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for &(doc, tf) in &self.postings[t as usize] {
                let d = doc as usize;
                if !self.live[d] {
                    continue;
                }
                let tf = f32::from(tf);
                let norm = K1 * (1.0 - B) + per_len * self.len[d] as f32;
                if self.scores[d] == 0.0 {
                    touched.push(doc);
                }
                self.scores[d] += idf * tf * (K1 + 1.0) / (tf + norm);
            }
        }
        let mut hits = std::mem::take(&mut self.hits);
        hits.clear();
        for &doc in &touched {
            let s = std::mem::take(&mut self.scores[doc as usize]);
            if s > 0.0 {
                hits.push((doc, s));
            }
        }
        self.touched = touched;
        let order = |a: &(DocId, f32), b: &(DocId, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        let m = (k + FILTER_MARGIN).min(hits.len());
        let mut out = Vec::new();
        if m > 0 {
            hits.select_nth_unstable_by(m - 1, order);
            let best = &mut hits[..m];
            best.sort_by(order);
            out.extend(best.iter().filter(|h| accept(h.0)).take(k));
        }
        self.hits = hits;
        out
    }

    /// A live document's terms with their frequencies, sorted, and the
    /// index-wide statistics that scores depend on (for tests).
    #[cfg(test)]
    pub fn describe(&self, doc: DocId) -> (Vec<(String, u16, u32)>, u32) {
        let mut out = Vec::new();
        for (term, &id) in &self.terms {
            for &(d, tf) in &self.postings[id as usize] {
                if d == doc && self.live[d as usize] {
                    out.push((term.clone(), tf, self.df[id as usize]));
                }
            }
        }
        out.sort();
        (out, self.len[doc as usize])
    }

    /// Totals that every score depends on (for tests).
    #[cfg(test)]
    pub fn totals(&self) -> (usize, u64) {
        (self.live_count, self.total_len)
    }

    /// Approximate heap bytes held (for the benchmark).
    pub fn heap_bytes(&self) -> usize {
        let postings: usize = self.postings.iter().map(|p| p.capacity() * 8 + 24).sum();
        let terms: usize = self.terms.keys().map(|k| k.capacity() + 40).sum();
        let doc_terms: usize = self.doc_terms.iter().map(|t| t.capacity() * 4 + 24).sum();
        postings + terms + doc_terms + self.len.capacity() * 9 + self.df.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_matching_docs_and_forgets_removed_ones() {
        let mut ix = Bm25::default();
        let a = ix.add("def parse_header(line): return line.split(':')");
        let b = ix.add("class Renderer: def render(self, page): pass");
        let c = ix.add("def header_value(h): return h");
        let hits = ix.search("parse the header", 10, |_| true);
        assert_eq!(hits[0].0, a);
        assert!(hits.iter().any(|h| h.0 == c));
        assert!(hits.iter().all(|h| h.0 != b));
        ix.remove(a);
        let hits = ix.search("parse the header", 10, |_| true);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![c]);
        ix.compact();
        assert_eq!(ix.search("parse", 10, |_| true), vec![]);
        assert_eq!(ix.live_docs(), 2);
        // Filtering and k.
        assert_eq!(ix.search("header render", 1, |d| d != c).len(), 1);
    }

    #[test]
    fn a_text_outside_the_index_scores_as_a_document_of_it() {
        let mut ix = Bm25::default();
        ix.add("def parse_header(line): return line.split(':')");
        ix.add("class Renderer: def render(self, page): pass");
        let text = "def header_value(h): return h";
        let c = ix.add(text);
        // With the same statistics, the same score as the document.
        let inside = ix.search("parse the header", 10, |x| x == c)[0].1;
        let outside = ix.score_text("parse the header", text);
        assert!(
            inside > 0.0 && (outside - inside).abs() < 1e-4,
            "{outside} vs {inside}"
        );
        assert_eq!(ix.score_text("nothing shared", text), 0.0);
        assert_eq!(ix.score_text("parse the header", "unrelated words"), 0.0);
    }
}
