//! Computing ahead: while a suggestion is shown, the suggestion that
//! follows it is computed as if it were accepted (the document with the
//! suggestion inserted, the cursor at its end), and kept with the recent
//! answers. When the user accepts, the editor's next request asks exactly
//! that question, and is answered at once. llama.vim and llama.vscode do
//! the same; without it, accepting is followed by a full wait.
//!
//! A single-line suggestion changes only the cursor's line, which the
//! prompt keeps at its end (after the middle marker), so the computation
//! reuses the whole KV cache and, if the user types something else
//! instead, the next request still does. A multi-line one is computed
//! ahead only where the document's prompt anchor (`anchor`) serves its
//! end: its lines then go after the middle marker too. Elsewhere it would
//! evaluate the suffix again and, if cancelled, leave the next keystroke to
//! evaluate it once more.
//!
//! Exact by construction: the answer is found by the text around the
//! cursor (`results::Key`), so a document that changed otherwise since
//! never gets it. It yields to any real request: one that asks elsewhere
//! cancels it; one that asks exactly what is being computed waits for it
//! instead of starting again.

use std::sync::{Arc, Mutex};

use ropey::Rope;
use tokio::sync::watch;

use super::{ask_model, lock_state, results, Anchor, Asked, DocumentId, LiveIndex, State};
use crate::completion::cursor_context;
use crate::completion::pipeline::Mode;
use crate::config::Config;
use crate::engine::CancelFlag;
use crate::text::syntax::{Language, SyntaxTree};

/// The computation in progress: where its answer will be found, how to
/// stop it, and a signal that turns true when it ended (whichever way).
pub(super) struct Ahead {
    pub key: results::Key,
    /// The document and version it was started at: an edit since makes
    /// it useless, none keeps it useful.
    pub started_at: (DocumentId, i32),
    pub cancel: CancelFlag,
    pub ended: watch::Receiver<bool>,
}

/// How long the answer computed ahead may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Length {
    /// The whole answer: a shown suggestion is read before it is
    /// accepted, so there is time for it.
    Whole,
    /// Cut by the time budget as a request's own answer is, counted from
    /// the computation's start: a user who presses Enter during it waits
    /// for it, and never longer than for a request of their own.
    Budgeted,
}

/// Starts computing the suggestion after `shown` is accepted at char
/// `cursor` of `id` (still at `version`). Skipped when the model is not
/// ready or where an automatic request would not be answered. Returns at
/// once (the accepted document is parsed off the caller's thread and
/// outside the state lock) the task, which ends with the computation.
pub(super) fn schedule(
    state: Arc<Mutex<State>>,
    index: Arc<LiveIndex>,
    id: DocumentId,
    version: i32,
    cursor: usize,
    shown: String,
    length: Length,
) -> Option<tokio::task::JoinHandle<()>> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let snapshot = {
        let st = lock_state(&state);
        let doc = st.ready_document(&id, version)?;
        // One computed for an older version of this document (after
        // Enter, while the user accepted the suggestion shown) is useless.
        if let Some(stale) = st
            .ahead
            .as_ref()
            .filter(|a| a.started_at.0 == id && a.started_at.1 < version)
        {
            stale.cancel.cancel();
        }
        if !st.config.completion.compute_ahead || st.ahead_running() {
            return None;
        }
        // An O(1) copy; the document as it will be once accepted is made
        // from it on a blocking thread.
        let anchor = st.anchors.get(&id).cloned();
        let mut config = st.config.clone();
        if length == Length::Whole {
            // No one waits for it yet: the whole answer, not one cut by
            // the time budget.
            config.completion.time_budget_ms = 0;
        }
        (doc.text().clone(), doc.language(), config, anchor)
    };
    Some(runtime.spawn(async move {
        let (text, language, config, anchor) = snapshot;
        let for_id = id.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            accepted(&for_id, text, language, cursor, &shown, config, anchor)
        })
        .await;
        let Ok(Some((mut asked, key))) = prepared else {
            return;
        };
        let job = {
            let mut st = lock_state(&state);
            // The document changed, another computation began, or the
            // answer is already kept while this one was prepared.
            if st.ready_document(&id, version).is_none()
                || st.ahead_running()
                || st.results.contains(key)
            {
                return;
            }
            asked.recent = st.recent_chunks();
            let cancel = CancelFlag::default();
            let (ended_tx, ended) = watch::channel(false);
            st.ahead = Some(Ahead {
                key,
                started_at: (id.clone(), version),
                cancel: cancel.clone(),
                ended,
            });
            (st.engine.clone(), cancel, ended_tx)
        };
        let (Some(engine), cancel, ended_tx) = job else {
            return;
        };
        let flag = cancel.clone();
        let done = tokio::task::spawn_blocking(move || {
            ask_model(engine.as_ref(), &index, &mut asked, Mode::Suggest, &flag)
        })
        .await;
        {
            let mut st = lock_state(&state);
            if let Ok(Ok(done)) = done {
                if !cancel.is_cancelled() {
                    st.results.put(key, done.text);
                    st.stats.computed_ahead += 1;
                }
            }
            if st.ahead.as_ref().is_some_and(|a| a.cancel.is(&cancel)) {
                st.ahead = None;
            }
        }
        let _ = ended_tx.send(true);
    }))
}

/// Where the model is asked once `shown` is accepted at char `cursor` of
/// `text`, and the key its answer is kept under; `None` where an automatic
/// request would not be answered.
fn accepted(
    id: &DocumentId,
    mut text: Rope,
    language: Option<Language>,
    cursor: usize,
    shown: &str,
    config: Config,
    anchor: Option<Anchor>,
) -> Option<(Asked, results::Key)> {
    // The document is matched by its version only, which a client may
    // reuse (a document closed and opened again): its text may be another
    // one, shorter than `cursor`. Its answer is kept under the text around
    // the cursor, so a computation on another text is wasted, never shown.
    let cursor = cursor.min(text.len_chars());
    text.insert(cursor, shown);
    let after = cursor + shown.chars().count();
    let syntax = language.and_then(|language| SyntaxTree::new(language, &text));
    let ctx = cursor_context(&text, syntax.as_ref(), after, &config);
    if ctx.automatic_skip(&config).is_some() {
        return None;
    }
    let key = results::Key::new(id, &ctx);
    // The document's anchor where it serves the accepted text (then the
    // prompt before the middle marker is the one in the KV cache); else
    // the cursor line alone, as a new anchor would be.
    let max = config.completion.anchored_lines as usize;
    let anchor = anchor.filter(|a| max > 0 && a.serves(&text, after, max));
    if shown.contains('\n') && anchor.is_none() {
        return None;
    }
    let asked = Asked {
        id: id.clone(),
        line: text.char_to_line(after),
        ctx,
        config,
        anchor,
        // The session's, set when it is scheduled.
        recent: Arc::default(),
    };
    Some((asked, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cursor past the end of the text (the document's version was
    /// reused for another text) is taken as its end.
    #[test]
    fn a_cursor_past_the_end_is_the_end() {
        let id = DocumentId::new("file:///a.py", Some("/a.py".into()));
        let text = Rope::from_str("x = ");
        let (asked, _) = accepted(
            &id,
            text,
            Some(Language::Python),
            21,
            "1",
            Config::default(),
            None,
        )
        .expect("asked");
        assert_eq!(asked.ctx.prefix, "x = 1");
    }
}
