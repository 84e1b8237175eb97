//! Recent answers keyed by the text around the cursor: typing a character
//! and deleting it again, undo, or moving back to where a suggestion was
//! shown asks the same question twice, and the model would answer the same
//! (decoding is greedy). Pure; the session owns one.

use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use super::DocumentId;
use crate::completion::CursorContext;

/// Answers kept; a few screens' worth of keystrokes.
const CAPACITY: usize = 64;

/// What an answer depends on besides the settings (the cache is cleared
/// when those change): the document, the text the prompt is cut from,
/// and the answer's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(u64);

impl Key {
    pub fn new(document: &DocumentId, ctx: &CursorContext) -> Key {
        // A 64-bit hash stands in for ~64 KB of text per entry; a collision
        // (odds ~2^-64 per lookup) would show one stale suggestion.
        let mut h = DefaultHasher::new();
        document.hash(&mut h);
        ctx.prefix.hash(&mut h);
        ctx.suffix.hash(&mut h);
        ctx.stop.hash(&mut h);
        Key(h.finish())
    }
}

#[derive(Debug, Default)]
pub struct ResultCache {
    /// Oldest first.
    /// Oldest first: the answer, and the others offered with it
    /// (`completion.candidates`).
    entries: VecDeque<(Key, String, Vec<String>)>,
}

impl ResultCache {
    /// The cleaned answer given for `key`, possibly empty (the model had
    /// nothing to suggest there).
    pub fn get(&mut self, key: Key) -> Option<String> {
        let at = self.entries.iter().position(|(k, _, _)| *k == key)?;
        // Used again: make it the newest.
        let entry = self.entries.remove(at)?;
        let text = entry.1.clone();
        self.entries.push_back(entry);
        Some(text)
    }

    /// Whether an answer for `key` is kept (without making it the newest).
    pub fn contains(&self, key: Key) -> bool {
        self.entries.iter().any(|(k, _, _)| *k == key)
    }

    /// The other answers offered with the one for `key` (without making
    /// it the newest).
    pub fn alternatives(&self, key: Key) -> Vec<String> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, a)| a.clone())
            .unwrap_or_default()
    }

    pub fn put(&mut self, key: Key, text: String) {
        self.put_all(key, text, Vec::new());
    }

    /// Keeps `text` for `key`, with the other answers offered with it.
    pub fn put_all(&mut self, key: Key, text: String, alternatives: Vec<String>) {
        self.entries.retain(|(k, _, _)| *k != key);
        if self.entries.len() == CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back((key, text, alternatives));
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn ctx(before: &str, after: &str) -> CursorContext {
        let text = ropey::Rope::from_str(&format!("{before}{after}"));
        crate::completion::cursor_context(&text, None, before.chars().count(), &Config::default())
    }

    fn id(name: &str) -> DocumentId {
        DocumentId::new(name, None)
    }

    #[test]
    fn same_text_same_answer_other_text_none() {
        let mut c = ResultCache::default();
        let k = Key::new(&id("file:///a.py"), &ctx("x = ", "\n"));
        c.put(k, "1".into());
        assert_eq!(
            c.get(Key::new(&id("file:///a.py"), &ctx("x = ", "\n"))),
            Some("1".into())
        );
        assert_eq!(
            c.get(Key::new(&id("file:///b.py"), &ctx("x = ", "\n"))),
            None
        );
        assert_eq!(
            c.get(Key::new(&id("file:///a.py"), &ctx("x =", " \n"))),
            None
        );
        assert_eq!(
            c.get(Key::new(&id("file:///a.py"), &ctx("y = ", "\n"))),
            None
        );
    }

    #[test]
    fn keeps_the_most_recently_used() {
        let mut c = ResultCache::default();
        for i in 0..CAPACITY {
            c.put(Key(i as u64), i.to_string());
        }
        // Touch the oldest, then overflow: the second oldest goes.
        assert_eq!(c.get(Key(0)), Some("0".into()));
        c.put(Key(1000), "new".into());
        assert_eq!(c.len(), CAPACITY);
        assert_eq!(c.get(Key(0)), Some("0".into()));
        assert_eq!(c.get(Key(1)), None);
        assert_eq!(c.get(Key(1000)), Some("new".into()));
    }
}
