//! Several candidates (`completion.candidates`) with the real model: the
//! first is the single answer, the others differ from it, and the KV cache
//! afterwards holds the prompt and the first answer alone, so that the
//! next request (the answer's line typed) answers as a cold cache does.

mod common;

use std::time::Duration;

use common::model_lock;
use infill::config::{Config, Multiline};
use infill::engine::{CancelFlag, Engine, EngineOutput, EngineRequest, EngineState};

/// Documents with the cursor on a blank line of a body.
const DOCUMENTS: [&str; 2] = [
    "def clamp_width(value):\n    if value < 0:\n        return 0\n    if value > 100:\n        return 100\n    return value\n\n\ndef clamp_height(value):\n    <cursor>\n",
    "class Rectangle:\n    def __init__(self, width, height):\n        self.width = width\n        self.height = height\n\n    def area(self):\n        <cursor>\n",
];

fn config() -> Config {
    let mut config = Config::default();
    config.model.path = Some(common::model_path());
    config.model.threads = Some(2);
    config.completion.multiline = Multiline::Never;
    config.completion.time_budget_ms = 0;
    config.completion.max_tokens = 24;
    config
}

fn ask(engine: &dyn Engine, req: &EngineRequest, fresh: bool, candidates: usize) -> EngineOutput {
    let mut req = req.clone();
    req.fresh = fresh;
    req.candidates = candidates;
    engine
        .complete(req, CancelFlag::default())
        .expect("an answer")
}

#[test]
fn the_first_candidate_is_the_single_answer_and_the_cache_stays_exact() {
    let _g = model_lock();
    let config = config();
    let engine = infill::engine::start(&config);
    assert!(matches!(
        engine.wait_ready(Duration::from_secs(300)),
        EngineState::Ready { .. }
    ));
    let mut alternatives = 0;
    for document in DOCUMENTS {
        let cursor_line = document[..document.find("<cursor>").expect("a cursor")]
            .matches('\n')
            .count();
        let first = common::python_request(&config, document, Some(cursor_line));
        let single = ask(engine.as_ref(), &first, true, 1);
        let several = ask(engine.as_ref(), &first, true, 3);
        eprintln!("{:?} and {:?}", several.text, several.alternatives);
        assert!(single.alternatives.is_empty());
        assert_eq!(
            several.text, single.text,
            "the first candidate is the answer"
        );
        assert_eq!(several.generated_tokens, single.generated_tokens);
        assert!(several.alternatives.len() <= 2);
        assert!(several.alternatives.iter().all(|a| a.text != single.text));
        alternatives += several.alternatives.len();
        // The answer's line typed, the cursor at the next line's start:
        // the cache (the prompt and the first answer) is reused.
        let line = single.text.lines().next().unwrap_or("").trim_end();
        let typed = document.replacen("<cursor>", &format!("{line}\n    <cursor>"), 1);
        let next = common::python_request(&config, &typed, Some(cursor_line));
        let warm = ask(engine.as_ref(), &next, false, 3);
        let cold = ask(engine.as_ref(), &next, true, 3);
        eprintln!(
            "{line:?} typed: {} of {} prompt tokens evaluated; {:?}",
            warm.evaluated_tokens, warm.prompt_tokens, warm.text
        );
        assert!(
            warm.evaluated_tokens < warm.prompt_tokens / 2,
            "{} evaluated of {}",
            warm.evaluated_tokens,
            warm.prompt_tokens
        );
        assert_eq!(warm.text, cold.text, "the warm cache answers as a cold one");
        // The same alternatives (their log-probabilities differ in the
        // last digits: the prompt was evaluated in other batches).
        let texts = |o: &EngineOutput| {
            o.alternatives
                .iter()
                .map(|a| a.text.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(texts(&warm), texts(&cold));
        // And once more with one candidate, after several.
        let again = ask(engine.as_ref(), &next, false, 1);
        let cold_single = ask(engine.as_ref(), &next, true, 1);
        assert_eq!(again.text, cold_single.text);
    }
    assert!(alternatives > 0, "some alternative was offered");
}
