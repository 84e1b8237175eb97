//! The accepted text's range through later edits, and its edit similarity
//! with what stands there at each checkpoint.
//!
//! Ranges are char indices into the document. An edit before the range
//! moves it; an edit after it (an insertion right at its end included)
//! leaves it; an edit inside it grows or shrinks it; an edit that overlaps
//! it replaces the overlapped part, and the text it inserted counts as
//! standing in the range (so that retyping a line over the accepted text
//! is compared with what was retyped). A range that becomes empty was
//! deleted.

use std::ops::Range;

/// One edit: chars `start..end` of the text before it were replaced by
/// `inserted` chars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CharEdit {
    pub start: usize,
    pub end: usize,
    pub inserted: usize,
}

impl CharEdit {
    fn delta(&self) -> isize {
        self.inserted as isize - (self.end - self.start) as isize
    }
}

fn shift(i: usize, delta: isize) -> usize {
    i.saturating_add_signed(delta)
}

/// `range` after `edit` (see the module's rules).
pub fn track(range: Range<usize>, edit: &CharEdit) -> Range<usize> {
    let delta = edit.delta();
    if edit.end <= range.start {
        // Before it (an insertion right at its start too).
        shift(range.start, delta)..shift(range.end, delta)
    } else if edit.start >= range.end {
        range
    } else {
        let start = range.start.min(edit.start);
        let end = shift(range.end, delta).max(edit.start + edit.inserted);
        start..end.max(start)
    }
}

/// Where an anchor (a cursor) goes after `edit`: text inserted right at it
/// stays after it (what the accept inserts is found after the anchor).
pub fn anchor(at: usize, edit: &CharEdit) -> usize {
    if edit.end <= at && !(edit.start == edit.end && edit.start == at) {
        shift(at, edit.delta())
    } else if edit.start < at {
        edit.start
    } else {
        at
    }
}

/// Edit similarity: 1 − Levenshtein distance / the longer length, over
/// chars (1: unchanged, 0: nothing in common or deleted). `now` is cut to
/// a bound first: text pasted into the range costs no more than that.
pub fn similarity(accepted: &str, now: &str) -> f64 {
    let a: Vec<char> = accepted.chars().take(4096).collect();
    let bound = a.len() * 2 + 64;
    let b: Vec<char> = now.chars().take(bound).collect();
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    1.0 - row[b.len()] as f64 / longest as f64
}

/// One checkpoint measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured<P> {
    pub payload: P,
    pub checkpoint_secs: u64,
    pub similarity: f64,
    pub deleted: bool,
}

struct Item<D, P> {
    doc: D,
    range: Range<usize>,
    text: String,
    accepted_ms: u64,
    /// The next checkpoint (index into the schedule).
    next: usize,
    payload: P,
}

/// Accepted texts being followed, by document, with their checkpoints
/// (seconds after the accept). Times are milliseconds on the caller's clock.
pub struct Tracker<D, P> {
    schedule: Vec<u64>,
    items: Vec<Item<D, P>>,
}

/// At most this many accepted texts are followed at once (the oldest goes).
const MAX_ITEMS: usize = 256;

impl<D: PartialEq + Clone, P: Clone> Tracker<D, P> {
    pub fn new(mut schedule: Vec<u64>) -> Self {
        schedule.sort_unstable();
        schedule.dedup();
        Tracker {
            schedule,
            items: Vec::new(),
        }
    }

    pub fn schedule(&self) -> &[u64] {
        &self.schedule
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Follows `text`, accepted at `now_ms` into `range` of `doc`.
    pub fn add(&mut self, doc: D, range: Range<usize>, text: &str, now_ms: u64, payload: P) {
        if self.schedule.is_empty() {
            return;
        }
        if self.items.len() >= MAX_ITEMS {
            self.items.remove(0);
        }
        self.items.push(Item {
            doc,
            range,
            text: text.to_string(),
            accepted_ms: now_ms,
            next: 0,
            payload,
        });
    }

    /// `edit` was made to `doc`.
    pub fn edit(&mut self, doc: &D, edit: &CharEdit) {
        for item in self.items.iter_mut().filter(|i| i.doc == *doc) {
            item.range = track(item.range.clone(), edit);
        }
    }

    /// The ranges followed in `doc` (for tests and checks).
    pub fn ranges(&self, doc: &D) -> Vec<Range<usize>> {
        self.items
            .iter()
            .filter(|i| i.doc == *doc)
            .map(|i| i.range.clone())
            .collect()
    }

    /// The checkpoints due at `now_ms`, measured on the text `read` gives
    /// for a range of a document (`None`: the document is gone, and its
    /// items with it).
    pub fn due(
        &mut self,
        now_ms: u64,
        read: &dyn Fn(&D, Range<usize>) -> Option<String>,
    ) -> Vec<Measured<P>> {
        let mut out = Vec::new();
        let schedule = &self.schedule;
        self.items.retain_mut(|item| {
            while let Some(&secs) = schedule.get(item.next) {
                if now_ms < item.accepted_ms.saturating_add(secs * 1000) {
                    return true;
                }
                let Some(now) = read(&item.doc, item.range.clone()) else {
                    return false;
                };
                out.push(measure(item, secs, &now));
                item.next += 1;
            }
            false
        });
        out
    }

    /// `doc` is closed (or the server ends): every checkpoint not yet
    /// reached is measured on `text`, the document's text now.
    pub fn finish(&mut self, doc: &D, text: &str) -> Vec<Measured<P>> {
        let mut out = Vec::new();
        let schedule = &self.schedule;
        self.items.retain(|item| {
            if item.doc != *doc {
                return true;
            }
            let now: String = slice(text, item.range.clone());
            for &secs in &schedule[item.next.min(schedule.len())..] {
                out.push(measure(item, secs, &now));
            }
            false
        });
        out
    }

    /// The documents with texts followed.
    pub fn documents(&self) -> Vec<D> {
        let mut docs: Vec<D> = Vec::new();
        for item in &self.items {
            if !docs.contains(&item.doc) {
                docs.push(item.doc.clone());
            }
        }
        docs
    }
}

/// Chars `range` of `text`, clamped to it.
pub fn slice(text: &str, range: Range<usize>) -> String {
    text.chars()
        .skip(range.start)
        .take(range.end.saturating_sub(range.start))
        .collect()
}

fn measure<D, P: Clone>(item: &Item<D, P>, secs: u64, now: &str) -> Measured<P> {
    let deleted = item.range.is_empty() || now.is_empty();
    Measured {
        payload: item.payload.clone(),
        checkpoint_secs: secs,
        similarity: if deleted {
            0.0
        } else {
            similarity(&item.text, now)
        },
        deleted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(start: usize, end: usize, inserted: usize) -> CharEdit {
        CharEdit {
            start,
            end,
            inserted,
        }
    }

    /// Applies `e` replacing with `with` to `text` and `range`, and returns
    /// the text now in the range.
    fn apply(text: &mut String, range: &mut Range<usize>, start: usize, end: usize, with: &str) {
        let chars: Vec<char> = text.chars().collect();
        let mut next: String = chars[..start].iter().collect();
        next.push_str(with);
        next.extend(&chars[end..]);
        *range = track(range.clone(), &edit(start, end, with.chars().count()));
        *text = next;
    }

    #[test]
    fn edits_before_inside_and_after_the_range() {
        // "x = foo(1)\n" with "foo(1)" accepted at 4..10.
        let mut text = String::from("x = foo(1)\n");
        let mut range = 4..10;
        apply(&mut text, &mut range, 0, 0, "yy"); // before: moves
        assert_eq!(slice(&text, range.clone()), "foo(1)");
        apply(&mut text, &mut range, 6, 6, "ab"); // right at its start: before
        assert_eq!(slice(&text, range.clone()), "foo(1)");
        apply(&mut text, &mut range, 14, 14, "zz"); // right at its end: after
        assert_eq!(slice(&text, range.clone()), "foo(1)");
        apply(&mut text, &mut range, 15, 16, ""); // after: nothing
        assert_eq!(slice(&text, range.clone()), "foo(1)");
        apply(&mut text, &mut range, 12, 13, "42"); // inside: grows
        assert_eq!(slice(&text, range.clone()), "foo(42)");
        apply(&mut text, &mut range, 8, 11, ""); // inside: shrinks
        assert_eq!(slice(&text, range.clone()), "(42)");
        assert_eq!(text, "yyx = ab(42)z\n");
    }

    #[test]
    fn overlapping_edits_count_what_they_inserted() {
        let mut text = String::from("a = bar(2)\n");
        let mut range = 4..10;
        // Replaces "= ba" (straddling the start) with "= ba".
        apply(&mut text, &mut range, 2, 6, "= ba");
        assert_eq!(slice(&text, range.clone()), "= bar(2)");
        // Replaces "(2)\n" (straddling the end) with "(3)".
        let mut text = String::from("a = bar(2)\n");
        let mut range = 4..10;
        apply(&mut text, &mut range, 7, 11, "(3)");
        assert_eq!(slice(&text, range.clone()), "bar(3)");
        // Deleting the line deletes the range.
        let mut text = String::from("a = bar(2)\nb\n");
        let mut range = 4..10;
        apply(&mut text, &mut range, 0, 11, "");
        assert!(range.is_empty());
        assert_eq!(text, "b\n");
    }

    #[test]
    fn anchors_keep_what_is_inserted_at_them_after_them() {
        assert_eq!(anchor(5, &edit(5, 5, 3)), 5);
        assert_eq!(anchor(5, &edit(0, 0, 3)), 8);
        assert_eq!(anchor(5, &edit(2, 7, 0)), 2);
        assert_eq!(anchor(5, &edit(6, 7, 0)), 5);
    }

    #[test]
    fn similarity_is_one_minus_normalized_edit_distance() {
        assert_eq!(similarity("abc", "abc"), 1.0);
        assert_eq!(similarity("abcd", "abXd"), 0.75);
        assert_eq!(similarity("abcd", ""), 0.0);
        assert_eq!(similarity("ab", "abcd"), 0.5);
        assert_eq!(similarity("", ""), 1.0);
    }

    #[test]
    fn checkpoints_measure_on_the_injected_clock() {
        let mut t: Tracker<&str, u32> = Tracker::new(vec![30, 120]);
        let doc = std::cell::RefCell::new(String::from("def f():\n    return 1\n"));
        // "return 1" accepted at char 13 at t = 1000 ms.
        t.add("d", 13..21, "return 1", 1000, 7);
        let read = |_: &&str, r: Range<usize>| Some(slice(&doc.borrow(), r));
        assert!(t.due(30_999, &read).is_empty());
        let first = t.due(31_000, &read);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].checkpoint_secs, 30);
        assert_eq!(first[0].similarity, 1.0);
        // The user changes "1" to "12" and puts a line above.
        t.edit(&"d", &edit(20, 21, 2));
        *doc.borrow_mut() = "def f():\n    return 12\n".into();
        t.edit(&"d", &edit(0, 0, 2));
        *doc.borrow_mut() = "# def f():\n    return 12\n".into();
        assert_eq!(t.ranges(&"d"), vec![15..24]);
        let second = t.due(500_000, &read);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].checkpoint_secs, 120);
        assert!((second[0].similarity - (1.0 - 1.0 / 9.0)).abs() < 1e-9);
        assert!(t.is_empty());
    }

    #[test]
    fn closing_measures_every_checkpoint_left() {
        let mut t: Tracker<&str, ()> = Tracker::new(vec![30, 120, 300]);
        t.add("d", 0..3, "abc", 0, ());
        t.add("e", 0..3, "abc", 0, ());
        let read = |_: &&str, r: Range<usize>| Some(slice("abc", r));
        assert_eq!(t.due(30_000, &read).len(), 2);
        t.edit(&"d", &edit(0, 3, 0));
        let closed = t.finish(&"d", "");
        assert_eq!(
            closed
                .iter()
                .map(|m| (m.checkpoint_secs, m.deleted))
                .collect::<Vec<_>>(),
            vec![(120, true), (300, true)]
        );
        assert_eq!(t.len(), 1);
        // A document gone without a close drops its items.
        assert!(t.due(1_000_000, &|_, _| None).is_empty());
        assert!(t.is_empty());
    }
}
