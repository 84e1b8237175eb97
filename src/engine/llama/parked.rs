//! Prompts of other documents kept in the KV cache besides the one in use
//! (`model.keptPrompts`), each in a sequence of its own, so that returning
//! to a recently used file costs about a keystroke there instead of a cold
//! prompt. When a request is for another document than the prompt in use,
//! that prompt is kept (the one kept longest unused goes when all places
//! are taken), and the new document's kept prompt, if there is one, is
//! brought back to be reused as usual.
//!
//! Exact: a kept prompt's cells are the very ones computed for it, moved
//! between sequences by llama.cpp's sequence copies (which only relabel
//! cells of the one unified cache); nothing is shifted or recomputed.
//! Sequence 0 is the prompt in use, 1 the scratch sequence of
//! `cache_sync::insert`, 2..=2+keptPrompts the kept ones, the ones after
//! them the alternative answers of `candidates` (only while they are decoded).

use super::cache_sync::kv_failed;
use super::session::Session;
use crate::engine::reuse::Staleness;
use crate::engine::EngineError;
use crate::prompt::Token;

/// The first sequence id of a kept prompt. There is one sequence more than
/// kept prompts: the prompt coming back holds its own until the one in use
/// has been kept.
pub(super) const FIRST_KEPT_SEQ: i32 = 2;

/// Prompts shorter than this cost little to evaluate again: not kept.
const MIN_KEPT: usize = 64;

struct KeptPrompt {
    document: String,
    seq: i32,
    tokens: Vec<Token>,
    staleness: Staleness,
    /// When it was put aside (a request counter), for eviction.
    kept_at: u64,
}

/// The kept prompts, how many there may be, and whose prompt is in use.
#[derive(Default)]
pub(super) struct Kept {
    prompts: Vec<KeptPrompt>,
    pub(super) capacity: usize,
    /// The document of the prompt in sequence 0, if known.
    in_use: Option<String>,
    clock: u64,
}

impl Kept {
    pub(super) fn new(capacity: usize) -> Kept {
        Kept {
            capacity,
            ..Kept::default()
        }
    }

    /// Forgets them all (the cache was cleared).
    pub(super) fn clear(&mut self) {
        self.prompts.clear();
        self.in_use = None;
    }
}

impl Session<'_> {
    /// Before a prompt of `document` is brought into the cache: if the
    /// prompt in use is another document's, it is kept, and `document`'s
    /// kept prompt (if any) comes back in its place. Requests of no
    /// document (evaluations) keep nothing.
    pub(super) fn switch_document(&mut self, document: Option<&str>) -> Result<(), EngineError> {
        let Some(document) = document else {
            return Ok(());
        };
        if self.kept.capacity == 0 || self.kept.in_use.as_deref() == Some(document) {
            self.kept.in_use = Some(document.to_string());
            return Ok(());
        }
        self.kept.clock += 1;
        // Taken out first, so that keeping the prompt in use cannot evict it.
        let returning = self
            .kept
            .prompts
            .iter()
            .position(|p| p.document == document)
            .map(|i| self.kept.prompts.swap_remove(i));
        let busy = returning.as_ref().map(|r| r.seq);
        if let Some(previous) = self.kept.in_use.take() {
            if self.cached.len() >= MIN_KEPT {
                self.keep_in_use(previous, busy)?;
            }
        }
        if let Some(kept) = returning {
            self.bring_back(kept)?;
        }
        self.kept.in_use = Some(document.to_string());
        Ok(())
    }

    /// Copies the prompt in use to a sequence of its own: the one this
    /// document had, a free one (not `busy`), or the one kept longest.
    fn keep_in_use(&mut self, document: String, busy: Option<i32>) -> Result<(), EngineError> {
        let reused = self
            .kept
            .prompts
            .iter()
            .position(|p| p.document == document)
            .or_else(|| {
                (self.kept.prompts.len() >= self.kept.capacity)
                    .then(|| {
                        (0..self.kept.prompts.len()).min_by_key(|&i| self.kept.prompts[i].kept_at)
                    })
                    .flatten()
            });
        let seq = match reused {
            Some(i) => self.kept.prompts.swap_remove(i).seq,
            // There is one more kept sequence than kept prompts: with one
            // taken out to come back, one of them is free.
            None => (FIRST_KEPT_SEQ..)
                .find(|s| Some(*s) != busy && self.kept.prompts.iter().all(|p| p.seq != *s))
                .unwrap_or(FIRST_KEPT_SEQ),
        };
        self.ctx
            .clear_kv_cache_seq(Some(seq as u32), None, None)
            .map_err(kv_failed)?;
        self.ctx
            .copy_kv_cache_seq(0, seq, None, None)
            .map_err(kv_failed)?;
        tracing::debug!(
            tokens = self.cached.len(),
            seq,
            "kept the prompt of {document}"
        );
        self.kept.prompts.push(KeptPrompt {
            document,
            seq,
            tokens: self.cached.clone(),
            staleness: self.staleness.clone(),
            kept_at: self.kept.clock,
        });
        Ok(())
    }

    /// Makes `kept` the prompt in use; its sequence is free again.
    fn bring_back(&mut self, kept: KeptPrompt) -> Result<(), EngineError> {
        self.ctx
            .clear_kv_cache_seq(Some(0), None, None)
            .map_err(kv_failed)?;
        self.ctx
            .copy_kv_cache_seq(kept.seq, 0, None, None)
            .map_err(kv_failed)?;
        self.ctx
            .clear_kv_cache_seq(Some(kept.seq as u32), None, None)
            .map_err(kv_failed)?;
        tracing::debug!(
            tokens = kept.tokens.len(),
            "brought back the prompt of {}",
            kept.document
        );
        self.cached = kept.tokens;
        self.staleness = kept.staleness;
        Ok(())
    }
}
