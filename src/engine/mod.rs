//! The model behind completions, as a small trait so that the protocol
//! layer does not know whether it runs in-process (llama.cpp) or remotely.

pub mod healing;
#[cfg(feature = "llama")]
pub mod llama;
#[cfg(feature = "llama")]
pub mod remote;
pub mod reuse;
pub mod stop;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub use stop::StopRule;

/// What starts a comment on a line of Python or Java code (`#`, `//`, `/*`,
/// a Javadoc line's `*`): `EngineRequest::code_first` keeps the answer
/// from starting with one. None starts a line of code in either language
/// (a line never starts with `*` or `/` there).
pub const COMMENT_STARTS: [&str; 4] = ["#", "//", "/*", "*"];

/// Whether `text` (the answer so far, after nothing but blanks) starts a
/// comment, or may still become one (`/`).
pub fn starts_comment(text: &[u8]) -> bool {
    COMMENT_STARTS
        .iter()
        .any(|c| takes_start(text, c.as_bytes()))
}

/// Whether answer bytes `part`, coming after nothing but blanks, start
/// down the text `start`: their first non-blank bytes begin it, or contain
/// all of it. The one test of an avoided start (`EngineRequest::avoid`,
/// `code_first`), token by token in process and on a remote answer.
pub fn takes_start(part: &[u8], start: &[u8]) -> bool {
    let Some(first) = part.iter().position(|b| !b.is_ascii_whitespace()) else {
        return false;
    };
    let content = &part[first..];
    start.starts_with(content) || content.starts_with(start)
}

/// What the pipeline asks of an engine: fill the gap between `prefix` and
/// `suffix`. The engine owns prompt formatting, since templates and token
/// budgets depend on its model.
#[derive(Debug, Clone)]
pub struct EngineRequest {
    pub prefix: String,
    pub suffix: String,
    /// Most prompt tokens for prefix, suffix and template markers.
    pub prompt_budget: usize,
    pub max_tokens: usize,
    pub stop: StopRule,
    /// Snippets of other workspace files, laid out in the FIM prompt
    /// within their own budget; `None` for in-file completion.
    pub context: Option<crate::prompt::repo::CrossFileContext>,
    /// Once this much time has passed, generation ends at the next line end.
    pub time_budget: Option<Duration>,
    pub shape: crate::prompt::Shape,
    /// Only bring the prompt into the KV cache, generate nothing (warm
    /// start: the next real request then evaluates only what changed).
    pub evaluate_only: bool,
    /// Keep cached tokens that moved to another position by shifting them
    /// (`reuse`), instead of evaluating them again.
    pub move_cache: bool,
    /// Evaluate the whole prompt, keeping nothing of the KV cache, so that
    /// the answer depends on the prompt alone. For evaluations: a prefix
    /// reused from the last request was evaluated in other batches, which
    /// changes logits in their last digits, and with a small model that
    /// flips near-tied greedy choices (the same item answered differently
    /// depending on the item before it).
    pub fresh: bool,
    /// A start the answer must not take: until the answer has its first
    /// non-blank text, no token may begin this text (or end the answer).
    /// Set for a second try after the first answer was dropped
    /// (`completion::CursorContext::second_try`).
    pub avoid: Option<String>,
    /// The answer's first text may not be a comment (`engine::COMMENT_STARTS`):
    /// set for a second try after the first answer's dropped line was a
    /// comment's or a snippet header's (the model took the cursor for a
    /// place inside a comment), so that it does not write another one.
    pub code_first: bool,
    /// The answer must have text on the cursor's line: until its first
    /// non-blank text, no token may end the answer, break the line or be
    /// blanks alone (past the healed text).
    /// Set where the user opened a line of code to write on it, where a
    /// small model often ends at once (it takes the hole for empty) or
    /// puts a line break first (the line stays blank, so the answer is
    /// cut to nothing). Greedy choices that already had text are the
    /// same with it or without it.
    pub require_content: bool,
    /// Where `require_content`: how many blanks (spaces, tabs) the answer
    /// may start with before its text, the indentation still to type
    /// where the cursor stands before it (a line-start cursor); 0 where
    /// it is typed. Blanks past it are refused: a model that would have
    /// ended goes on with blanks to no end when it may not.
    pub indent_to_type: usize,
    /// Where not empty: the numbers of blanks (after what is typed) at
    /// which the answer's text may start on the cursor's line, the
    /// indentations the code around allows there (Python's levels,
    /// `completion::CursorContext::indents_to_type`). Text after other
    /// blanks is refused; `indent_to_type` is then the deepest.
    pub indents: Vec<usize>,
    /// Byte offset in `prefix` where the definition around the cursor
    /// starts (`completion::CursorContext::definition_start`): cross-file comments go
    /// there.
    pub definition_start: Option<usize>,
    /// The document the prompt is of, so that the engine can keep the
    /// prompts of several (`model.keptPrompts`); `None` keeps nothing.
    pub document: Option<String>,
    /// Most tokens drafted at a time by prompt lookup
    /// (`completion.draftTokens`; 0: none): the tokens that followed the
    /// last few generated ones where they occurred before in the prompt or
    /// answer are evaluated in one batch with the token before them, and
    /// kept as far as they are the model's own greedy choices. The choices
    /// are made as without drafts, but a batch of several tokens computes
    /// logits in their last digits differently from one token at a time
    /// (as `fresh` says of prompt chunks), so a near-tied choice may flip:
    /// `infill-eval bench-draft` measures how often (3 of 92 multi-line
    /// answers differed, where the top two logits were 0.006 to 0.13
    /// apart).
    pub draft_tokens: usize,
    /// Most answers wanted (`completion.candidates`; 1: the greedy one
    /// alone, exactly as ever). The others start with the next-best first
    /// tokens (each starting differently from the greedy answer and from
    /// one another) and go on greedily, each in a sequence of its own that
    /// shares the prompt's cells; all are decoded together, one token of
    /// each in one batch per step. Their cells leave the cache afterwards,
    /// which then holds the prompt and the greedy answer. The in-process
    /// engine alone gives more than one (`EngineOutput::alternatives`).
    pub candidates: usize,
    /// The alternatives are decoded to their own ends (each, once the
    /// greedy answer is done, to its next line end, within a line's
    /// steps), not cut short a few steps after the greedy answer ends
    /// (which keeps offered alternatives cheap). Set for a second try on a
    /// blank line, where the greedy answer may be dropped again and an
    /// alternative is then the answer: a short greedy line (`}`) would
    /// otherwise leave every longer alternative unfinished.
    pub alternatives_to_their_end: bool,
    /// Alternatives branch off where the model was nearly torn, not only
    /// at the answer's first text: a start other than the greedy one is
    /// taken there only within `NEAR_TIE` of it (the best other start
    /// always), and a slot left is taken at the first later token of the
    /// greedy answer's first line whose runner-up is that near (forked
    /// from the greedy answer's cells there). Set for the alternatives a
    /// user cycles through; not for a second try, which wants other
    /// starts.
    pub branch_at_near_ties: bool,
}

/// An answer besides the greedy one (`EngineRequest::candidates`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alternative {
    /// Raw text, cut by the stop rule, as `EngineOutput::text`.
    pub text: String,
    /// Log-probability of its first token at the answer's first position
    /// (the rest is greedy): what alternatives are ranked by.
    pub first_logprob: f32,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineOutput {
    /// Raw generated text, already cut by the stop rule.
    pub text: String,
    pub prompt_tokens: usize,
    /// Prompt tokens actually evaluated (the rest were reused from the KV cache).
    pub evaluated_tokens: usize,
    /// Reused tokens that were shifted to a new position (see `reuse`).
    pub moved_tokens: usize,
    pub generated_tokens: usize,
    /// Template marker tokens in the prompt: exactly the template's own,
    /// whatever the file says (text is never parsed into special tokens).
    pub marker_tokens: usize,
    #[serde(rename = "elapsedMs", serialize_with = "as_millis")]
    pub elapsed: Duration,
    /// Where `elapsed` went: laying out and tokenizing the prompt,
    /// evaluating its new tokens, generating. The benchmark prints them
    /// to show what a request costs beyond the model's own compute.
    #[serde(rename = "buildMs", serialize_with = "as_millis")]
    pub build_time: Duration,
    #[serde(rename = "evalMs", serialize_with = "as_millis")]
    pub eval_time: Duration,
    #[serde(rename = "generateMs", serialize_with = "as_millis")]
    pub generate_time: Duration,
    /// Generation was ended early by the request's time budget.
    pub cut_by_time: bool,
    /// Tokens drafted by prompt lookup (`EngineRequest::draft_tokens`),
    /// and how many of them the model chose (each saved a decode).
    pub drafted_tokens: usize,
    pub accepted_tokens: usize,
    /// Answers besides `text`, best first (`EngineRequest::candidates`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Alternative>,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineState {
    Loading,
    Ready { description: String },
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("the model is still loading")]
    Loading,
    #[error("the model is not available: {0}")]
    Unavailable(String),
    #[error("the request was cancelled")]
    Cancelled,
    #[error("the model failed: {0}")]
    Failed(String),
}

/// Set by whoever no longer wants the answer; checked by the engine between
/// tokens so that a superseded request frees the model within one token.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    /// Whether `other` is this very flag (not a copy of its state).
    pub fn is(&self, other: &CancelFlag) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Cancels its flag when dropped: held by a request handler, so that a
/// handler dropped by `$/cancelRequest` also stops the decode behind it.
#[derive(Debug)]
pub struct CancelOnDrop(pub CancelFlag);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A change in an engine's health that the user should hear of once: the
/// first fault of an episode (a remote server down, overloaded, answering
/// garbage, or settings it cannot serve), or the episode's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultNews {
    Began(String),
    Ended,
}

pub trait Engine: Send + Sync {
    fn state(&self) -> EngineState;
    /// Blocks until the engine is ready or failed, or `timeout` passes.
    fn wait_ready(&self, timeout: Duration) -> EngineState;
    /// Blocks until the completion is done, cancelled or failed.
    fn complete(&self, req: EngineRequest, cancel: CancelFlag)
        -> Result<EngineOutput, EngineError>;
    /// What the user has not been told of the engine's health yet; each
    /// piece of news is returned once. An in-process engine has none (its
    /// one failure, the model load, is its state).
    fn fault_news(&self) -> Option<FaultNews> {
        None
    }
    /// Whether the engine's health changes between requests (a remote
    /// engine probes its server in the background during a fault), so
    /// that its `fault_news` is worth looking at without one.
    fn probes_in_background(&self) -> bool {
        false
    }
}

/// Waits until `engine` has loaded its model: its description, or why it
/// cannot answer (failed, or still loading after `timeout`). For the
/// front ends that make requests only once the model is there.
pub fn wait_until_ready(engine: &dyn Engine, timeout: Duration) -> Result<String, String> {
    match engine.wait_ready(timeout) {
        EngineState::Ready { description } => Ok(description),
        EngineState::Failed(why) => Err(why),
        EngineState::Loading => Err(format!(
            "the model did not load within {} s",
            timeout.as_secs()
        )),
    }
}

#[cfg(any(test, feature = "fuzzing"))]
pub mod scripted;

/// Starts the in-process engine that `config` describes; returns at once
/// while the model loads in the background.
#[cfg(feature = "llama")]
pub fn start(config: &crate::config::Config) -> Arc<dyn Engine> {
    use crate::config::EngineKind;
    let vocab_path =
        crate::models::model_path(config.model.path.as_deref(), config.model.preset.name());
    if config.engine.kind != EngineKind::Local {
        return remote::RemoteEngine::spawn(remote::RemoteSettings {
            kind: config.engine.kind,
            url: config.engine.url.clone().unwrap_or_default(),
            model: config.engine.model.clone(),
            api_key_env: config.engine.api_key_env.clone(),
            timeout: Duration::from_millis(config.engine.timeout_ms),
            vocab_path,
            fim_template: config.model.fim_template.clone(),
            context_size: config.model.context_size as usize,
        });
    }
    let settings = llama::LlamaSettings {
        path: vocab_path,
        threads: config
            .model
            .threads
            .map(|t| t as usize)
            .unwrap_or_else(llama::physical_cores),
        context_size: config.model.context_size,
        kept_prompts: config.model.kept_prompts as usize,
        gpu_layers: config.model.gpu_layers,
        fim_template: config.model.fim_template.clone(),
    };
    llama::LlamaEngine::spawn(settings)
}

/// Waits (at most `timeout`) until the engine threads have ended, their
/// engines dropped and models freed; returns whether they all did. The
/// process calls it before it exits, once nothing holds an engine.
pub fn wait_for_threads(timeout: Duration) -> bool {
    #[cfg(feature = "llama")]
    return llama::wait_for_threads(timeout);
    #[cfg(not(feature = "llama"))]
    {
        let _ = timeout;
        true
    }
}

/// Without the `llama` feature there is no model: every request is answered
/// as unavailable, so the rest of the server still works (and is fuzzed).
#[cfg(not(feature = "llama"))]
pub fn start(_config: &crate::config::Config) -> Arc<dyn Engine> {
    Arc::new(NoEngine)
}

#[cfg(not(feature = "llama"))]
const NO_ENGINE: &str = "this build of infill has no model engine (the `llama` feature is off)";

#[cfg(not(feature = "llama"))]
struct NoEngine;

#[cfg(not(feature = "llama"))]
impl Engine for NoEngine {
    fn state(&self) -> EngineState {
        EngineState::Failed(NO_ENGINE.to_string())
    }
    fn wait_ready(&self, _timeout: Duration) -> EngineState {
        self.state()
    }
    fn complete(
        &self,
        _req: EngineRequest,
        _cancel: CancelFlag,
    ) -> Result<EngineOutput, EngineError> {
        Err(EngineError::Unavailable(NO_ENGINE.to_string()))
    }
}

/// An engine's state, shared between the engine and the thread that loads
/// its model (or probes its server), with a condition variable for those
/// that wait for the load. A poisoned lock reads as a failed engine.
#[derive(Clone)]
pub struct SharedState(Arc<(Mutex<EngineState>, Condvar)>);

impl SharedState {
    pub fn loading() -> SharedState {
        SharedState(Arc::new((Mutex::new(EngineState::Loading), Condvar::new())))
    }

    pub fn get(&self) -> EngineState {
        match self.0 .0.lock() {
            Ok(s) => s.clone(),
            Err(_) => EngineState::Failed("engine state poisoned".into()),
        }
    }

    /// The state once it is no longer `Loading`, or when `timeout` ends.
    pub fn wait_ready(&self, timeout: Duration) -> EngineState {
        let (lock, cvar) = &*self.0;
        let Ok(guard) = lock.lock() else {
            return EngineState::Failed("engine state poisoned".into());
        };
        match cvar.wait_timeout_while(guard, timeout, |s| *s == EngineState::Loading) {
            Ok((s, _)) => s.clone(),
            Err(_) => EngineState::Failed("engine state poisoned".into()),
        }
    }

    pub fn set(&self, new: EngineState) {
        let (lock, cvar) = &*self.0;
        if let Ok(mut s) = lock.lock() {
            *s = new;
        }
        cvar.notify_all();
    }
}
