//! Step one of a request: the prompt laid out by `crate::prompt` within the
//! context's room, tokenized by the model's vocabulary through the token
//! memo.

use std::time::{Duration, Instant};

use super::session::Session;
use super::vocab::VocabTokenizer;
use crate::engine::EngineRequest;
use crate::prompt::memo::Memoized;
use crate::prompt::repo::build_with_context;
use crate::prompt::Token;

/// The prompt as the model is given it.
pub(super) struct ModelPrompt {
    /// The BOS token if the model wants one, then the built prompt.
    pub(super) tokens: Vec<Token>,
    /// Text of the prefix's last token, taken out of the prompt (token
    /// healing): the answer must start with it.
    pub(super) healed: Vec<u8>,
    /// Time from the request's start until the prompt was built.
    pub(super) build_time: Duration,
}

impl Session<'_> {
    pub(super) fn build_prompt(&self, req: &EngineRequest, started: Instant) -> ModelPrompt {
        let bos_len = usize::from(self.bos.is_some());
        let room = self.window.saturating_sub(req.max_tokens + 1 + bos_len);
        let budget = req.prompt_budget.min(room);
        // Cross-file snippets get their own budget, from what the FIM part leaves.
        let context = req.context.clone().map(|mut c| {
            c.budget = c.budget.min(room - budget);
            c
        });
        self.memo.borrow_mut().next_request();
        let vocab_tokenizer = VocabTokenizer {
            model: self.model,
            pieces: &self.pieces,
        };
        let (built, _) = build_with_context(
            &Memoized {
                inner: &vocab_tokenizer,
                memo: &self.memo,
            },
            &self.template,
            self.repo,
            context.as_ref(),
            &req.prefix,
            &req.suffix,
            budget,
            req.shape,
            req.definition_start,
        );
        let build_time = started.elapsed();
        self.trace_prompt(&built.tokens);
        let mut tokens = Vec::with_capacity(built.tokens.len() + 1);
        tokens.extend(self.bos);
        tokens.extend(built.tokens);
        ModelPrompt {
            tokens,
            healed: built.healed,
            build_time,
        }
    }

    /// The prompt as text (special tokens show as nothing), to see what
    /// the model was shown: `INFILL_LOG=infill::engine=trace`.
    fn trace_prompt(&self, tokens: &[Token]) {
        if tracing::enabled!(tracing::Level::TRACE) {
            let text: Vec<u8> = tokens
                .iter()
                .flat_map(|&t| self.pieces.get(t as usize).cloned().unwrap_or_default())
                .collect();
            tracing::trace!(prompt = %String::from_utf8_lossy(&text), "prompt");
        }
    }

    /// How many of `tokens` are template markers or stop tokens.
    pub(super) fn marker_tokens(&self, tokens: &[Token]) -> usize {
        tokens
            .iter()
            .filter(|t| self.template.stop_tokens.contains(t) || self.template.is_marker(**t))
            .count()
    }
}
