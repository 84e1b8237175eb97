//! Recording acceptance and persistence (`stats.enabled`): each suggestion
//! answered gets a number the client sends back when it is accepted
//! (`Session::accepted`); what is accepted is followed through later edits
//! and measured at the checkpoints (`stats::track`); events go to the
//! store's writer thread (`stats_store`), never to the disk from here.
//!
//! - Shown: a non-empty answer for the document version it was asked at
//!   (an answer overtaken by an edit is not counted; a cancelled request
//!   is not answered at all). Typing through a suggestion keeps it shown:
//!   its rest is answered under the same number, not shown again.
//! - Accepted: the client ran the item's command (whole) or reported a
//!   part (`length`); the accepted text is looked for where the suggestion
//!   stood, and followed from there.
//! - Dismissed: a suggestion never accepted, once it leaves the recent
//!   ones (newer suggestions replaced it), its document closes or the
//!   server ends (dismissals are decided late, as an accept may arrive
//!   after the next suggestion was answered).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ropey::Rope;

use super::stats_store::{self, Writer};
use super::DocumentId;
use crate::stats::aggregate::Today;
use crate::stats::track::{self, CharEdit, Measured, Tracker};
use crate::stats::{Early, Event, Meta, What, CHECKPOINTS, VERSION};
use crate::text::document::AppliedEdit;

/// Suggestions answered and still open to an accept (per server).
const RECENT: usize = 16;

/// Why an accept was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcceptError {
    #[error("no recent suggestion {0}")]
    Unknown(u64),
}

struct Open {
    n: u64,
    doc: DocumentId,
    /// Where the rest of the suggestion would be inserted (a char index,
    /// followed through edits).
    anchor: usize,
    /// What of it is not accepted yet.
    rest: String,
    meta: Meta,
    shown: bool,
    accepted: bool,
    /// Chars of it the user typed by hand.
    typed: u64,
    /// What the last typing through took from it: a client that inserts a
    /// part and asks again before it reports the part (VS Code's partial
    /// accept) has it answered as typed through first.
    last_typed: String,
}

pub struct Recorder {
    writer: Option<Writer>,
    session: String,
    salt: String,
    next: u64,
    languages: HashMap<DocumentId, String>,
    open: VecDeque<Open>,
    tracker: Tracker<DocumentId, (u64, Meta)>,
    clock: Instant,
}

/// The checkpoints: `INFILL_STATS_CHECKPOINTS` (seconds, comma-separated:
/// for tests) or 30 s, 2, 5 and 10 minutes.
fn schedule() -> Vec<u64> {
    std::env::var("INFILL_STATS_CHECKPOINTS")
        .ok()
        .and_then(|v| {
            v.split(',')
                .map(|s| s.trim().parse::<u64>().ok())
                .collect::<Option<Vec<_>>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| CHECKPOINTS.to_vec())
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            writer: None,
            session: stats_store::random_hex()[..12].to_string(),
            salt: String::new(),
            next: 0,
            languages: HashMap::new(),
            open: VecDeque::new(),
            tracker: Tracker::new(schedule()),
            clock: Instant::now(),
        }
    }
}

impl Recorder {
    /// Starts recording into `dir`; `None`: stops (what was recorded
    /// stays). Returns the store's folder when recording.
    pub fn set_store(&mut self, dir: Option<PathBuf>) {
        match dir {
            Some(dir) if self.writer.is_none() => {
                self.salt = stats_store::salt(&dir);
                self.writer = Some(Writer::start(dir));
            }
            Some(_) => {}
            None => {
                self.writer = None;
                self.open.clear();
                self.tracker = Tracker::new(schedule());
            }
        }
    }

    pub fn recording(&self) -> bool {
        self.writer.is_some()
    }

    pub fn today(&self) -> Option<Today> {
        self.writer.as_ref().map(Writer::today)
    }

    fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    /// A checkpoint's measure, `early` where it was taken before its time.
    fn emit_persisted(&self, m: &Measured<(u64, Meta)>, early: Option<Early>) {
        let (n, meta) = &m.payload;
        let what = What::Persisted {
            checkpoint_secs: m.checkpoint_secs,
            similarity: m.similarity,
            deleted: m.deleted,
            early,
        };
        self.emit(*n, what, meta);
    }

    fn emit(&self, n: u64, what: What, meta: &Meta) {
        if let Some(w) = &self.writer {
            w.record(Event {
                v: VERSION,
                t: unix_ms(),
                session: self.session.clone(),
                n,
                what,
                meta: meta.clone(),
            });
        }
    }

    /// The file hash and language of `doc`, for a suggestion's `Meta`.
    pub fn describe(&self, doc: &DocumentId) -> (String, String) {
        let name = doc
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| doc.name().to_string());
        (
            crate::stats::file_hash(&self.salt, &name),
            self.languages
                .get(doc)
                .cloned()
                .unwrap_or_else(|| "plaintext".into()),
        )
    }

    pub fn opened(&mut self, doc: &DocumentId, language: &str) {
        if self.writer.is_some() {
            self.languages.insert(doc.clone(), language.to_string());
        }
    }

    /// `edits` were made to `doc`, in order.
    pub fn edited(&mut self, doc: &DocumentId, edits: &[AppliedEdit]) {
        for e in edits {
            let edit = CharEdit {
                start: e.start,
                end: e.end,
                inserted: e.inserted,
            };
            for open in self.open.iter_mut().filter(|o| o.doc == *doc) {
                open.anchor = track::anchor(open.anchor, &edit);
            }
            self.tracker.edit(doc, &edit);
        }
    }

    /// `doc` closes with `text`: checkpoints not reached are measured
    /// now, its suggestions not accepted are dismissed.
    pub fn closed(&mut self, doc: &DocumentId, text: &Rope) {
        self.finish(doc, text, Early::Close);
        self.languages.remove(doc);
    }

    fn finish(&mut self, doc: &DocumentId, text: &Rope, early: Early) {
        if !self.tracker.documents().contains(doc) && !self.open.iter().any(|o| o.doc == *doc) {
            return;
        }
        for m in self.tracker.finish(doc, &text.to_string()) {
            self.emit_persisted(&m, Some(early));
        }
        let (gone, kept): (VecDeque<Open>, VecDeque<Open>) =
            self.open.drain(..).partition(|o| o.doc == *doc);
        self.open = kept;
        for o in gone {
            self.dismiss(o);
        }
    }

    fn dismiss(&self, o: Open) {
        if o.shown && !o.accepted {
            self.emit(
                o.n,
                What::Dismissed {
                    typed_chars: o.typed,
                },
                &o.meta,
            );
        }
    }

    /// A new suggestion `text` answered at char `cursor` of `doc`; `shown`
    /// records it as shown. Its number, for the client's accept.
    pub fn answered(
        &mut self,
        doc: &DocumentId,
        cursor: usize,
        text: &str,
        meta: Meta,
        shown: bool,
    ) -> Option<u64> {
        if self.writer.is_none() || text.is_empty() {
            return None;
        }
        self.next += 1;
        let n = self.next;
        if shown {
            self.emit(n, What::Shown, &meta);
        }
        self.open.push_back(Open {
            n,
            doc: doc.clone(),
            anchor: cursor,
            rest: text.to_string(),
            meta,
            shown,
            accepted: false,
            typed: 0,
            last_typed: String::new(),
        });
        while self.open.len() > RECENT {
            if let Some(o) = self.open.pop_front() {
                self.dismiss(o);
            }
        }
        Some(n)
    }

    /// The user typed the start of the newest suggestion of `doc`: `rest`
    /// stands at `cursor`. Its number.
    pub fn typed_through(&mut self, doc: &DocumentId, cursor: usize, rest: &str) -> Option<u64> {
        let o = self.open.iter_mut().rev().find(|o| o.doc == *doc)?;
        let before = o.rest.chars().count() as u64;
        let after = rest.chars().count() as u64;
        if !o.rest.ends_with(rest) || after > before {
            return None;
        }
        o.typed += before - after;
        o.last_typed = o.rest[..o.rest.len() - rest.len()].to_string();
        o.rest = rest.to_string();
        o.anchor = cursor;
        Some(o.n)
    }

    /// Suggestion `n` was accepted in `text` (its document now): whole, or
    /// its first `length` chars.
    pub fn accepted(
        &mut self,
        n: u64,
        length: Option<u64>,
        text: impl Fn(&DocumentId) -> Option<Rope>,
    ) -> Result<(), AcceptError> {
        if self.writer.is_none() {
            return Ok(());
        }
        let now = self.now_ms();
        let o = self
            .open
            .iter_mut()
            .find(|o| o.n == n)
            .ok_or(AcceptError::Unknown(n))?;
        let doc_text = text(&o.doc);
        let last = o.last_typed.chars().count();
        if let (Some(l), Some(doc)) = (length, &doc_text) {
            // The part was answered as typed through before it was reported.
            let typed_start = o.anchor.checked_sub(last);
            if l as usize == last
                && last > 0
                && typed_start.is_some_and(|s| find(doc, s, &o.last_typed) == Some(s))
            {
                o.rest = std::mem::take(&mut o.last_typed) + &o.rest;
                o.typed = o.typed.saturating_sub(last as u64);
                o.anchor -= last;
            }
        }
        o.last_typed.clear();
        let rest_len = o.rest.chars().count();
        let take = length.map_or(rest_len, |l| (l as usize).min(rest_len));
        if take == 0 {
            return Ok(());
        }
        let part: String = o.rest.chars().take(take).collect();
        let partial = take < rest_len;
        let newly_shown = !o.shown;
        o.shown = true;
        o.accepted = true;
        let found = doc_text.and_then(|doc| find(&doc, o.anchor, &part));
        let (doc, anchor, meta) = (o.doc.clone(), o.anchor, o.meta.clone());
        o.rest = o.rest.chars().skip(take).collect();
        o.anchor = found.map_or(anchor, |start| start + take);
        if newly_shown {
            self.emit(n, What::Shown, &meta);
        }
        self.emit(
            n,
            What::Accepted {
                accepted_chars: take as u64,
                partial,
            },
            &meta,
        );
        match found {
            Some(start) => self
                .tracker
                .add(doc, start..start + take, &part, now, (n, meta)),
            None => tracing::debug!("accepted suggestion {n} not found in its document"),
        }
        Ok(())
    }

    /// Records the checkpoints due now, measured in the documents.
    pub fn tick(&mut self, text: impl Fn(&DocumentId) -> Option<Rope>) {
        if self.tracker.is_empty() {
            return;
        }
        let now = self.now_ms();
        let read = |doc: &DocumentId, r: std::ops::Range<usize>| {
            let rope = text(doc)?;
            let end = r.end.min(rope.len_chars());
            let start = r.start.min(end);
            Some(rope.slice(start..end).to_string())
        };
        for m in self.tracker.due(now, &read) {
            self.emit_persisted(&m, None);
        }
    }

    /// How often `tick` should run: a quarter of the first checkpoint,
    /// between 100 ms and 1 s.
    pub fn tick_every(&self) -> Duration {
        let first = self.tracker.schedule().first().copied().unwrap_or(30);
        Duration::from_millis((first * 250).clamp(100, 1000))
    }

    /// The server ends: checkpoints not reached are measured on the
    /// documents as they are, suggestions not accepted are dismissed, and
    /// the writer is given a moment to write.
    pub fn shutdown(&mut self, text: impl Fn(&DocumentId) -> Option<Rope>) {
        let mut docs = self.tracker.documents();
        for o in &self.open {
            if !docs.contains(&o.doc) {
                docs.push(o.doc.clone());
            }
        }
        for doc in docs {
            let rope = text(&doc).unwrap_or_default();
            self.finish(&doc, &rope, Early::Exit);
        }
        if let Some(w) = &self.writer {
            w.flush(Duration::from_millis(500));
        }
    }
}

/// Where `part` stands in `doc`: at `anchor`, else the nearest place
/// within a few lines' reach of it.
fn find(doc: &Rope, anchor: usize, part: &str) -> Option<usize> {
    let len = part.chars().count();
    let total = doc.len_chars();
    let at = |start: usize| {
        start + len <= total && doc.slice(start..start + len).chars().eq(part.chars())
    };
    if at(anchor) {
        return Some(anchor);
    }
    let reach = 2 * len + 256;
    (1..=reach).find_map(|d| {
        [anchor.checked_add(d), anchor.checked_sub(d)]
            .into_iter()
            .flatten()
            .find(|&s| at(s))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_text_is_found_near_its_anchor() {
        let doc = Rope::from_str("def f():\n    return 1\n");
        assert_eq!(find(&doc, 13, "return 1"), Some(13));
        assert_eq!(find(&doc, 10, "return 1"), Some(13));
        assert_eq!(find(&doc, 13, "yield"), None);
    }
}
