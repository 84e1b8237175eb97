//! The model behind completions, as a small trait so that the protocol
//! layer does not know whether it runs in-process (llama.cpp) or remotely.

#[cfg(feature = "llama")]
pub mod llama;
pub mod reuse;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::completion::{CursorContext, StopRule};

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
    /// (`CursorContext::second_try`).
    pub avoid: Option<String>,
    /// Byte offset in `prefix` where the definition around the cursor
    /// starts (`CursorContext::definition_start`): cross-file comments go
    /// there.
    pub definition_start: Option<usize>,
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

pub trait Engine: Send + Sync {
    fn state(&self) -> EngineState;
    /// Blocks until the engine is ready or failed, or `timeout` passes.
    fn wait_ready(&self, timeout: Duration) -> EngineState;
    /// Blocks until the completion is done, cancelled or failed.
    fn complete(&self, req: EngineRequest, cancel: CancelFlag)
        -> Result<EngineOutput, EngineError>;
}

/// An answer as the user sees it: the model's output cleaned by
/// `CursorContext::finish`.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The model's output: the second try's text where there was one,
    /// with the costs of both tries.
    pub output: EngineOutput,
    pub text: String,
    /// The first answer's raw text, where the cleaning dropped it whole
    /// and a second try replaced it (`CursorContext::second_try`).
    pub dropped_first: Option<String>,
}

impl Finished {
    /// A second request was made.
    pub fn second_try(&self) -> bool {
        self.dropped_first.is_some()
    }

    /// The first request's raw text.
    pub fn first_raw(&self) -> &str {
        self.dropped_first.as_deref().unwrap_or(&self.output.text)
    }
}

/// Completes `req` and cleans the answer; where the cleaning dropped all of
/// it on a blank line and `second_try` allows, asks once more with the
/// dropped start forbidden. Every front end (server, `complete`, the
/// evaluations) goes through here, so they answer alike.
pub fn complete_finished(
    engine: &dyn Engine,
    ctx: &CursorContext,
    req: EngineRequest,
    cancel: &CancelFlag,
    second_try: bool,
) -> Result<Finished, EngineError> {
    let mut retry = req.clone();
    let first = engine.complete(req, cancel.clone())?;
    let text = ctx.finish(&first.text);
    let avoid = if second_try && !first.cut_by_time {
        ctx.second_try(&first.text, &text)
    } else {
        None
    };
    let Some(avoid) = avoid else {
        return Ok(Finished {
            output: first,
            text,
            dropped_first: None,
        });
    };
    retry.avoid = Some(avoid);
    // The second try gets what is left of the time budget (none left: a
    // multi-line answer ends at its first line end).
    retry.time_budget = retry
        .time_budget
        .map(|b| b.checked_sub(first.elapsed).unwrap_or_default());
    // The same prompt was just evaluated: the KV cache holds it exactly.
    retry.fresh = false;
    let second = engine.complete(retry, cancel.clone())?;
    // What the request cost is both tries; its answer is the second's.
    let output = EngineOutput {
        evaluated_tokens: first.evaluated_tokens + second.evaluated_tokens,
        moved_tokens: first.moved_tokens + second.moved_tokens,
        generated_tokens: first.generated_tokens + second.generated_tokens,
        elapsed: first.elapsed + second.elapsed,
        build_time: first.build_time + second.build_time,
        eval_time: first.eval_time + second.eval_time,
        generate_time: first.generate_time + second.generate_time,
        ..second
    };
    Ok(Finished {
        text: ctx.finish(&output.text),
        output,
        dropped_first: Some(first.text),
    })
}

/// Starts the in-process engine that `config` describes; returns at once
/// while the model loads in the background.
#[cfg(feature = "llama")]
pub fn start(config: &crate::config::Config) -> Arc<dyn Engine> {
    let settings = llama::LlamaSettings {
        path: config
            .model
            .path
            .clone()
            .unwrap_or_else(crate::models::default_model_path),
        threads: config
            .model
            .threads
            .map(|t| t as usize)
            .unwrap_or_else(llama::physical_cores),
        context_size: config.model.context_size,
        gpu_layers: config.model.gpu_layers,
        fim_template: config.model.fim_template.clone(),
    };
    llama::LlamaEngine::spawn(settings)
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use ropey::Rope;

    use super::*;
    use crate::completion::cursor_context;
    use crate::config::Config;
    use crate::text::syntax::{Language, SyntaxTree};

    /// Answers from a script, in order, and keeps the requests: a unit
    /// test of `complete_finished`'s decisions, not of a model (the real
    /// model's side, `avoid`, is tested end to end in `tests/lsp_e2e.rs`).
    struct Scripted {
        answers: Mutex<Vec<&'static str>>,
        seen: Mutex<Vec<EngineRequest>>,
    }

    impl Engine for Scripted {
        fn state(&self) -> EngineState {
            EngineState::Ready {
                description: "scripted".into(),
            }
        }
        fn wait_ready(&self, _timeout: Duration) -> EngineState {
            self.state()
        }
        fn complete(
            &self,
            req: EngineRequest,
            _cancel: CancelFlag,
        ) -> Result<EngineOutput, EngineError> {
            self.seen.lock().unwrap().push(req);
            let text = self.answers.lock().unwrap().remove(0).to_string();
            Ok(EngineOutput {
                text,
                elapsed: Duration::from_millis(300),
                generated_tokens: 4,
                ..EngineOutput::default()
            })
        }
    }

    fn run(doc: &str, cursor: usize, answers: Vec<&'static str>) -> (Finished, Vec<EngineRequest>) {
        let rope = Rope::from_str(doc);
        let syntax = SyntaxTree::new(Language::Python, &rope);
        let config = Config::default();
        let ctx = cursor_context(&rope, syntax.as_ref(), cursor, &config);
        let engine = Scripted {
            answers: Mutex::new(answers),
            seen: Mutex::new(Vec::new()),
        };
        let mut req = ctx.engine_request(&config);
        req.fresh = true;
        let done = complete_finished(&engine, &ctx, req, &CancelFlag::default(), true).unwrap();
        (done, engine.seen.into_inner().unwrap())
    }

    const DOC: &str = "def f(m):\n    n = 1\n    \n    for k in m:\n        n += k\n";

    #[test]
    fn a_repeat_of_the_next_line_is_asked_again_avoiding_it() {
        let (done, seen) = run(DOC, 24, vec!["for k in m:\n", "n = sum(m)"]);
        assert!(done.second_try());
        assert_eq!(done.text, "n = sum(m)");
        assert_eq!(done.first_raw(), "for k in m:\n");
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].avoid, None);
        assert_eq!(seen[1].avoid.as_deref(), Some("for k in m:"));
        // The prompt is the same: the KV cache holds it, so no fresh start.
        assert!(!seen[1].fresh);
        assert_eq!(seen[1].prefix, seen[0].prefix);
        // The second try has what the first left of the time budget.
        assert_eq!(seen[1].time_budget, Some(Duration::from_millis(1700)));
        // Costs add up.
        assert_eq!(done.output.generated_tokens, 8);
        assert_eq!(done.output.elapsed, Duration::from_millis(600));
    }

    #[test]
    fn a_kept_answer_or_a_line_with_text_is_not_asked_again() {
        let (done, seen) = run(DOC, 24, vec!["n = 2"]);
        assert_eq!(
            (done.text.as_str(), done.second_try(), seen.len()),
            ("n = 2", false, 1)
        );
        // The cursor after `n = ` on its line: a dropped answer stays dropped.
        let (done, seen) = run(DOC, 18, vec!["1\n"]);
        assert_eq!(
            (done.text.as_str(), done.second_try(), seen.len()),
            ("", false, 1)
        );
    }
}
