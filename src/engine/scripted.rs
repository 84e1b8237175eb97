//! An engine that answers from a script, for unit tests of the layers
//! above the model (the pipeline's decisions, the session's reuse, cache,
//! cancellation and ordering) and for the fuzz target of the protocol layer
//! (`fuzz/fuzz_targets/lsp_session.rs`, the `fuzzing` feature), which is
//! the same kind of use. It never stands in for the model in an end-to-end
//! test: those run the real one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::{
    Alternative, CancelFlag, Engine, EngineError, EngineOutput, EngineRequest, EngineState,
};

/// In a scripted answer, what separates it from its alternatives
/// (`EngineOutput::alternatives`): `"a\u{1e}b"` answers `a`, and `b` too
/// where several candidates are asked.
pub const ALTERNATIVES: char = '\u{1e}';

/// At the end of a scripted answer: the time budget cut it
/// (`EngineOutput::cut_by_time`).
pub const CUT_BY_TIME: char = '\u{1f}';

pub struct Scripted {
    /// Answers in order, one per request that generates; none left: "".
    answers: Mutex<VecDeque<String>>,
    /// Every request made, in order (warm starts too).
    pub seen: Mutex<Vec<EngineRequest>>,
    /// While true, requests from the `held_from`-th on (0-based) block
    /// until released or cancelled.
    held: Mutex<bool>,
    held_from: AtomicUsize,
    released: Condvar,
    /// Requests that ended cancelled.
    cancelled: AtomicUsize,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Scripted {
    pub fn new(answers: &[&str]) -> Scripted {
        Scripted {
            answers: Mutex::new(answers.iter().map(|a| a.to_string()).collect()),
            seen: Mutex::new(Vec::new()),
            held: Mutex::new(false),
            held_from: AtomicUsize::new(0),
            released: Condvar::new(),
            cancelled: AtomicUsize::new(0),
        }
    }

    /// Requests from now on wait for `release` (or their cancellation).
    pub fn hold(&self) {
        self.hold_from(0);
    }

    /// Requests after the first `n` (counted from the start) wait for
    /// `release` (or their cancellation).
    pub fn hold_from(&self, n: usize) {
        self.held_from.store(n, Ordering::SeqCst);
        *locked(&self.held) = true;
    }

    pub fn release(&self) {
        *locked(&self.held) = false;
        self.released.notify_all();
    }

    pub fn requests(&self) -> Vec<EngineRequest> {
        locked(&self.seen).clone()
    }

    /// Requests that asked for an answer (warm starts left out).
    pub fn answering_requests(&self) -> usize {
        locked(&self.seen)
            .iter()
            .filter(|r| !r.evaluate_only)
            .count()
    }

    pub fn cancelled(&self) -> usize {
        self.cancelled.load(Ordering::SeqCst)
    }
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
        cancel: CancelFlag,
    ) -> Result<EngineOutput, EngineError> {
        let evaluate_only = req.evaluate_only;
        let candidates = req.candidates;
        let time_budget = req.time_budget;
        let index = {
            let mut seen = locked(&self.seen);
            seen.push(req);
            seen.len() - 1
        };
        let from = self.held_from.load(Ordering::SeqCst);
        let mut held = locked(&self.held);
        while *held && index >= from {
            if cancel.is_cancelled() {
                self.cancelled.fetch_add(1, Ordering::SeqCst);
                return Err(EngineError::Cancelled);
            }
            held = self
                .released
                .wait_timeout(held, Duration::from_millis(2))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(held);
        if cancel.is_cancelled() {
            self.cancelled.fetch_add(1, Ordering::SeqCst);
            return Err(EngineError::Cancelled);
        }
        let script = if evaluate_only {
            String::new()
        } else {
            locked(&self.answers).pop_front().unwrap_or_default()
        };
        // `ALTERNATIVES` separates the answer from its alternatives, given
        // as many as the request wants, less likely each.
        let mut parts = script.split(ALTERNATIVES).map(str::to_string);
        let mut text = parts.next().unwrap_or_default();
        let cut_by_time = text.ends_with(CUT_BY_TIME);
        if cut_by_time {
            text.pop();
        }
        let alternatives = parts
            .take(candidates.saturating_sub(1))
            .enumerate()
            .map(|(i, text)| Alternative {
                text,
                first_logprob: -1.0 - i as f32,
            })
            .collect();
        Ok(EngineOutput {
            text,
            // An answer cut by time took all of the budget.
            elapsed: match (cut_by_time, time_budget) {
                (true, Some(budget)) => budget,
                _ => Duration::from_millis(300),
            },
            generated_tokens: if evaluate_only { 0 } else { 4 },
            alternatives,
            cut_by_time,
            ..EngineOutput::default()
        })
    }
}
