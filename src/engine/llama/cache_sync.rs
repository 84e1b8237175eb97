//! Step two of a request: the KV cache brought in line with the new
//! prompt. What it can keep of the last prompt (the common prefix, and a run
//! that moved) is kept; the rest is evaluated.

use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use super::session::Session;
use crate::engine::reuse::Moved;
use crate::engine::{CancelFlag, EngineError, EngineRequest};
use crate::prompt::Token;

/// The sequence id text inserted before a moved run is evaluated under.
const SCRATCH_SEQ: i32 = 1;

/// Prompt tokens evaluated per decode call. Small enough that a cancelled
/// request frees the engine quickly, large enough to keep the CPU busy.
/// Also the most tokens of one batch in generation (a token and its draft).
pub(super) const EVAL_CHUNK: usize = 64;

/// The cache in line with the prompt, ready for generation.
pub(super) struct Synced {
    /// Prompt tokens evaluated (the rest were kept in the cache).
    pub(super) evaluated: usize,
    /// Tokens of the run moved in the cache.
    pub(super) moved: usize,
    /// The batch the last prompt token was decoded in: it holds the logits
    /// generation starts from.
    pub(super) batch: LlamaBatch<'static>,
}

impl Session<'_> {
    /// Makes the cache hold `tokens` and nothing after them.
    pub(super) fn sync_cache(
        &mut self,
        req: &EngineRequest,
        tokens: &[Token],
        cancel: &CancelFlag,
    ) -> Result<Synced, EngineError> {
        if req.fresh {
            self.reset();
        }
        // Another document's prompt is kept, this one's comes back (`parked`).
        self.switch_document(req.document.as_deref())?;
        // Keep the cached prefix, and a run of the old prompt that moved
        // (see `reuse`); always evaluate at least the last prompt token,
        // whose logits start generation.
        let plan = self
            .staleness
            .plan(&self.cached, tokens, req.move_cache && self.can_move);
        let common = plan.common;
        let mut evaluated = 0;
        let mut batch = LlamaBatch::new(EVAL_CHUNK, 1);
        let rest = match plan.moved {
            Some(m) => {
                self.move_run(common, m)?;
                self.cached.truncate(common);
                evaluated += self.insert(&mut batch, common, &tokens[common..m.to], cancel)?;
                self.cached.extend_from_slice(&tokens[m.to..m.to + m.len]);
                m.to + m.len
            }
            None => {
                self.ctx
                    .clear_kv_cache_seq(Some(0), Some(position(common)?), None)
                    .map_err(kv_failed)?;
                self.cached.truncate(common);
                common
            }
        };
        evaluated += self.evaluate(&mut batch, &tokens[rest..], cancel)?;
        Ok(Synced {
            evaluated,
            moved: plan.moved.map_or(0, |m| m.len),
            batch,
        })
    }

    /// Evaluates `tokens` after the cached ones in chunks, checking for
    /// cancellation between them. Returns how many were evaluated.
    fn evaluate(
        &mut self,
        batch: &mut LlamaBatch,
        tokens: &[Token],
        cancel: &CancelFlag,
    ) -> Result<usize, EngineError> {
        for chunk in tokens.chunks(EVAL_CHUNK) {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            self.decode(batch, chunk)?;
        }
        Ok(tokens.len())
    }

    /// Evaluates `tokens` (text inserted before a moved run; none for a
    /// deletion) at positions from `at`, where the cache already holds the
    /// run after them. llama.cpp evaluates a sequence only at positions after
    /// its last cached one, so they go through scratch sequence 1, which
    /// shares the cells of the first `at` positions, and their cells are then
    /// given to sequence 0. The run is not in sequence 1: they do not see it,
    /// as in a causal evaluation.
    fn insert(
        &mut self,
        batch: &mut LlamaBatch,
        at: usize,
        tokens: &[Token],
        cancel: &CancelFlag,
    ) -> Result<usize, EngineError> {
        if tokens.is_empty() {
            return Ok(0);
        }
        self.ctx
            .clear_kv_cache_seq(Some(SCRATCH_SEQ as u32), None, None)
            .map_err(kv_failed)?;
        self.ctx
            .copy_kv_cache_seq(0, SCRATCH_SEQ, None, Some(position(at)?))
            .map_err(kv_failed)?;
        let mut next = at;
        for chunk in tokens.chunks(EVAL_CHUNK) {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            self.decode_at(batch, chunk, SCRATCH_SEQ, next, Logits::None)?;
            next += chunk.len();
        }
        self.ctx
            .copy_kv_cache_seq(SCRATCH_SEQ, 0, Some(position(at)?), Some(position(next)?))
            .map_err(kv_failed)?;
        self.ctx
            .clear_kv_cache_seq(Some(SCRATCH_SEQ as u32), None, None)
            .map_err(kv_failed)?;
        self.cached.extend_from_slice(tokens);
        Ok(tokens.len())
    }

    /// Moves the cached run `m` to its place in the new prompt: drops the
    /// cells after `common` that are not in it, then shifts its positions.
    fn move_run(&mut self, common: usize, m: Moved) -> Result<(), EngineError> {
        if m.from > common {
            self.ctx
                .clear_kv_cache_seq(Some(0), Some(position(common)?), Some(position(m.from)?))
                .map_err(kv_failed)?;
        }
        self.ctx
            .clear_kv_cache_seq(Some(0), Some(position(m.from + m.len)?), None)
            .map_err(kv_failed)?;
        let delta = i32::try_from(m.to as i64 - m.from as i64)
            .map_err(|_| EngineError::Failed("shift overflow".into()))?;
        self.ctx
            .kv_cache_seq_add(
                0,
                Some(position(m.from)?),
                Some(position(m.from + m.len)?),
                delta,
            )
            .map_err(|e| EngineError::Failed(format!("KV shift: {e}")))?;
        Ok(())
    }

    /// Evaluates `tokens` after the cached ones; logits only for the last.
    pub(super) fn decode(
        &mut self,
        batch: &mut LlamaBatch,
        tokens: &[Token],
    ) -> Result<(), EngineError> {
        self.decode_at(batch, tokens, 0, self.cached.len(), Logits::Last)?;
        self.cached.extend_from_slice(tokens);
        Ok(())
    }

    /// Evaluates `tokens` after the cached ones with logits for every one:
    /// a chosen token and a draft after it, whose every position
    /// `generate` checks against the model's choice there.
    pub(super) fn decode_all(
        &mut self,
        batch: &mut LlamaBatch,
        tokens: &[Token],
    ) -> Result<(), EngineError> {
        self.decode_at(batch, tokens, 0, self.cached.len(), Logits::All)?;
        self.cached.extend_from_slice(tokens);
        Ok(())
    }

    /// Forgets the cached tokens from position `len` on (a draft's tokens
    /// the model did not choose), in the cache and in `cached` alike, so
    /// that `cached` still says exactly what the cache holds.
    pub(super) fn forget_from(&mut self, len: usize) -> Result<(), EngineError> {
        if len >= self.cached.len() {
            return Ok(());
        }
        self.ctx
            .clear_kv_cache_seq(Some(0), Some(position(len)?), None)
            .map_err(kv_failed)?;
        self.cached.truncate(len);
        Ok(())
    }

    /// Evaluates `tokens` in sequence `seq` at positions from `start`, with
    /// the logits `logits` asks for.
    fn decode_at(
        &mut self,
        batch: &mut LlamaBatch,
        tokens: &[Token],
        seq: i32,
        start: usize,
        logits: Logits,
    ) -> Result<(), EngineError> {
        batch.clear();
        for (i, t) in tokens.iter().enumerate() {
            let pos = i32::try_from(start + i)
                .map_err(|_| EngineError::Failed("position overflow".into()))?;
            let wanted = match logits {
                Logits::None => false,
                Logits::Last => i + 1 == tokens.len(),
                Logits::All => true,
            };
            batch
                .add(LlamaToken(*t), pos, &[seq], wanted)
                .map_err(|e| EngineError::Failed(format!("batch: {e}")))?;
        }
        self.ctx
            .decode(batch)
            .map_err(|e| EngineError::Failed(format!("decode: {e}")))
    }
}

/// Which tokens of a batch get logits (each costs a vocabulary-wide row).
#[derive(Clone, Copy)]
enum Logits {
    None,
    Last,
    All,
}

/// A KV cache position as llama-cpp-2 takes it.
fn position(p: usize) -> Result<u32, EngineError> {
    u32::try_from(p).map_err(|_| EngineError::Failed("position overflow".into()))
}

pub(super) fn kv_failed(e: impl std::fmt::Display) -> EngineError {
    EngineError::Failed(format!("KV cache: {e}"))
}
