//! The long-lived llama.cpp context and what it holds, and one request run
//! on it: build the prompt, bring the cache in line with it, generate.

use std::cell::RefCell;
use std::num::NonZeroU32;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::{LlamaModel, RopeType};

use super::candidates::{ALTERNATIVE_TOKENS, MAX_ALTERNATIVES};
use super::parked::{Kept, FIRST_KEPT_SEQ};
use super::vocab::PromptVocab;
use super::{backend, LlamaSettings};
use crate::engine::reuse::Staleness;
use crate::engine::{CancelFlag, EngineError, EngineOutput, EngineRequest};
use crate::prompt::fim::FimTemplate;
use crate::prompt::memo::TokenMemo;
use crate::prompt::repo::RepoTokens;
use crate::prompt::Token;

pub(super) struct Session<'m> {
    pub(super) model: &'m LlamaModel,
    pub(super) ctx: LlamaContext<'m>,
    pub(super) template: FimTemplate,
    /// The model's repository-level tokens, if it has them.
    pub(super) repo: Option<RepoTokens>,
    pub(super) bos: Option<Token>,
    /// Bytes of every token (empty for special ones), for token healing.
    pub(super) pieces: Vec<Vec<u8>>,
    /// Tokens whose keys and values the context holds, in order from position 0.
    pub(super) cached: Vec<Token>,
    /// Tokenizations of the last requests' long texts.
    pub(super) memo: RefCell<TokenMemo>,
    /// How approximate the moved part of the KV cache is.
    pub(super) staleness: Staleness,
    /// Whether the model's cache can be shifted (plain RoPE positions;
    /// llama.cpp aborts on a shift it cannot do).
    pub(super) can_move: bool,
    /// Most tokens of one prompt and its answer (`model.contextSize`); the
    /// context holds this much for the prompt in use and each kept one.
    pub(super) window: usize,
    /// Prompts kept besides the one in use (`parked`).
    pub(super) kept: Kept,
}

impl<'m> Session<'m> {
    pub(super) fn new(
        model: &'m LlamaModel,
        settings: &LlamaSettings,
    ) -> Result<Session<'m>, String> {
        let backend = backend()?;
        let threads = i32::try_from(settings.threads.max(1)).unwrap_or(1);
        let kept = settings.kept_prompts;
        // One unified cache: a window for the prompt in use and one for
        // each kept prompt.
        // And room for the alternatives' answers (`candidates`).
        let alternatives_room = (MAX_ALTERNATIVES * ALTERNATIVE_TOKENS) as u32;
        let n_ctx = u32::try_from(kept + 1)
            .ok()
            .and_then(|n| settings.context_size.checked_mul(n))
            .and_then(|n| n.checked_add(alternatives_room))
            .ok_or_else(|| {
                "model.contextSize × (model.keptPrompts + 1) is too large".to_string()
            })?;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(512)
            .with_n_ubatch(512)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            // A second sequence, sharing the cells of the first (one
            // unified cache), to evaluate text inserted before a moved run
            // (see `insert`); then one per kept prompt and a spare (`parked`),
            // then one per alternative answer (`candidates`).
            .with_n_seq_max(FIRST_KEPT_SEQ as u32 + kept as u32 + 1 + MAX_ALTERNATIVES as u32)
            .with_kv_unified(true);
        let ctx = model
            .new_context(backend, params)
            .map_err(|e| format!("cannot create a llama.cpp context of {n_ctx} tokens: {e}"))?;

        let PromptVocab {
            template,
            repo,
            bos,
            pieces,
        } = PromptVocab::of(model, settings.fim_template.as_deref());
        Ok(Session {
            model,
            ctx,
            template,
            repo,
            bos,
            pieces,
            cached: Vec::new(),
            memo: RefCell::new(TokenMemo::default()),
            staleness: Staleness::default(),
            can_move: matches!(model.rope_type(), Some(RopeType::Norm | RopeType::NeoX)),
            window: settings.context_size as usize,
            kept: Kept::new(kept),
        })
    }

    /// Forgets the KV cache: its content is unknown after a failure.
    pub(super) fn reset(&mut self) {
        self.ctx.clear_kv_cache();
        self.cached.clear();
        self.staleness.reset();
        self.kept.clear();
    }

    /// Bytes of KV memory the context holds at most: keys and values of
    /// every layer (16-bit) for each of its tokens.
    pub(super) fn kv_cache_bytes(&self) -> u64 {
        let heads = u64::from(self.model.n_head().max(1));
        let per_head = u64::try_from(self.model.n_embd()).unwrap_or(0) / heads;
        let kv_width = per_head * u64::from(self.model.n_head_kv());
        u64::from(self.model.n_layer()) * 2 * kv_width * 2 * u64::from(self.ctx.n_ctx())
    }

    pub(super) fn complete(
        &mut self,
        req: &EngineRequest,
        cancel: &CancelFlag,
    ) -> Result<EngineOutput, EngineError> {
        let started = Instant::now();
        let result = self.run(req, cancel, started);
        if let Err(EngineError::Failed(_)) = &result {
            self.reset();
        }
        result
    }

    fn run(
        &mut self,
        req: &EngineRequest,
        cancel: &CancelFlag,
        started: Instant,
    ) -> Result<EngineOutput, EngineError> {
        let prompt = self.build_prompt(req, started);
        if prompt.tokens.is_empty() {
            return Ok(EngineOutput::default());
        }
        let mut synced = self.sync_cache(req, &prompt.tokens, cancel)?;
        let build_time = prompt.build_time;
        let eval_time = started.elapsed().saturating_sub(build_time);
        if req.evaluate_only {
            return Ok(EngineOutput {
                prompt_tokens: prompt.tokens.len(),
                evaluated_tokens: synced.evaluated,
                moved_tokens: synced.moved,
                elapsed: started.elapsed(),
                build_time,
                eval_time,
                ..EngineOutput::default()
            });
        }
        let (answer, alternatives) = if req.candidates > 1 {
            self.generate_candidates(req, cancel, started, &prompt.healed, &mut synced.batch)?
        } else {
            let answer = self.generate(req, cancel, started, &prompt.healed, &mut synced.batch)?;
            (answer, Vec::new())
        };
        Ok(EngineOutput {
            text: answer.text,
            prompt_tokens: prompt.tokens.len(),
            evaluated_tokens: synced.evaluated,
            moved_tokens: synced.moved,
            generated_tokens: answer.generated,
            marker_tokens: self.marker_tokens(&prompt.tokens),
            elapsed: started.elapsed(),
            build_time,
            eval_time,
            generate_time: started.elapsed().saturating_sub(build_time + eval_time),
            cut_by_time: answer.cut_by_time,
            drafted_tokens: answer.drafted,
            accepted_tokens: answer.accepted,
            alternatives,
        })
    }
}
