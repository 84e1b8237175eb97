//! Prompt lookup (`completion.draftTokens`) with the real model: answers
//! that repeat code of the prompt are the same with drafts and without,
//! and a draft the model partly rejected leaves the KV cache exact, so that
//! a request reusing it answers as a cold cache does.

mod common;

use std::time::Duration;

use common::model_lock;
use infill::config::{Config, Multiline};
use infill::engine::{CancelFlag, Engine, EngineOutput, EngineRequest, EngineState};

/// Documents whose answer at `<cursor>` repeats code above it: a method
/// shaped like the one before, a second similar function.
const DOCUMENTS: [&str; 3] = [
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n\n    def __add__(self, other):\n        return Point(self.x + other.x, self.y + other.y)\n\n    def __sub__(self, other):\n        <cursor>\n",
    "def clamp_width(value):\n    if value < 0:\n        return 0\n    if value > 100:\n        return 100\n    return value\n\n\ndef clamp_height(value):\n    <cursor>\n",
    "class Rectangle:\n    def __init__(self, width, height):\n        self.width = width\n        self.height = height\n\n    def area(self):\n        return self.width * self.height\n\n    def perimeter(self):\n        return 2 * (self.width + self.height)\n\n    def scaled(self, factor):\n        <cursor>\n",
];

fn config() -> Config {
    let mut config = Config::default();
    config.model.path = Some(common::model_path());
    config.model.threads = Some(2);
    config.completion.multiline = Multiline::Always;
    config.completion.time_budget_ms = 0;
    // Answers end before the model rambles on past the code (near-tied
    // choices in prose flip with the batches a cache was evaluated in,
    // drafts or not: `EngineRequest::fresh`).
    config.completion.max_tokens = 40;
    config.completion.max_lines = 4;
    config
}

fn engine(config: &Config) -> std::sync::Arc<dyn Engine> {
    let engine = infill::engine::start(config);
    assert!(matches!(
        engine.wait_ready(Duration::from_secs(300)),
        EngineState::Ready { .. }
    ));
    engine
}

fn ask(engine: &dyn Engine, req: &EngineRequest, fresh: bool, draft: usize) -> EngineOutput {
    let mut req = req.clone();
    req.fresh = fresh;
    req.draft_tokens = draft;
    engine
        .complete(req, CancelFlag::default())
        .expect("an answer")
}

#[test]
fn answers_that_repeat_the_prompt_are_the_same_with_drafts_and_without() {
    let _g = model_lock();
    let config = config();
    let engine = engine(&config);
    let mut accepted = 0;
    for document in DOCUMENTS {
        let req = common::python_request(&config, document, None);
        let plain = ask(engine.as_ref(), &req, true, 0);
        let drafted = ask(engine.as_ref(), &req, true, 8);
        eprintln!(
            "{:?}: {} tokens, {} drafted, {} accepted",
            plain.text, plain.generated_tokens, drafted.drafted_tokens, drafted.accepted_tokens
        );
        assert!(!plain.text.trim().is_empty());
        assert_eq!(plain.drafted_tokens, 0, "drafts off");
        assert_eq!(drafted.text, plain.text, "drafts change no answer");
        assert_eq!(drafted.generated_tokens, plain.generated_tokens);
        assert!(drafted.accepted_tokens <= drafted.drafted_tokens);
        accepted += drafted.accepted_tokens;
    }
    assert!(accepted > 0, "answers that repeat the prompt take drafts");
}

/// A draft the model rejects in part leaves the cache holding exactly the
/// answer: a request whose prompt goes on into that answer (its first line
/// typed, after the middle marker with the cursor line) reuses the cached
/// answer's tokens and answers as a cold cache does.
#[test]
fn after_a_rejected_draft_the_kv_cache_answers_as_a_cold_one() {
    let _g = model_lock();
    let config = config();
    let engine = engine(&config);
    let mut rejected = false;
    for document in DOCUMENTS {
        let cursor_line = document[..document.find("<cursor>").expect("a cursor")]
            .matches('\n')
            .count();
        let first = common::python_request(&config, document, Some(cursor_line));
        let answer = ask(engine.as_ref(), &first, true, 8);
        rejected |= answer.accepted_tokens < answer.drafted_tokens;
        // The answer's first line typed, the cursor at the next line's
        // start: the prompt's middle holds the typed line.
        let Some((line, _)) = answer.text.split_once('\n') else {
            continue;
        };
        let typed = document.replacen("<cursor>", &format!("{line}\n<cursor>"), 1);
        let next = common::python_request(&config, &typed, Some(cursor_line));
        let warm = ask(engine.as_ref(), &next, false, 8);
        let cold = ask(engine.as_ref(), &next, true, 8);
        let plain = ask(engine.as_ref(), &next, true, 0);
        eprintln!(
            "{line:?} typed: {} of {} prompt tokens evaluated; {:?}",
            warm.evaluated_tokens, warm.prompt_tokens, warm.text
        );
        assert_eq!(cold.evaluated_tokens, cold.prompt_tokens);
        // The cached prompt was reused (and with it the typed line's
        // tokens where the model's answer had the same ones).
        assert!(
            warm.evaluated_tokens < warm.prompt_tokens / 2,
            "{} evaluated of {}",
            warm.evaluated_tokens,
            warm.prompt_tokens
        );
        assert_eq!(warm.text, cold.text, "the warm cache answers as a cold one");
        assert_eq!(plain.text, cold.text, "and as plain decoding");
    }
    assert!(rejected, "some draft was rejected in part");
}
