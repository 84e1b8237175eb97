//! Warm start: once the user has paused after an edit, the prompt at the
//! edit is brought into the KV cache, so that the next keystroke there
//! evaluates only its own tokens. Where the pause ends a line of code, the
//! suggestion for the line that Enter would begin is computed next
//! (`ahead`): a new line is where a multi-line suggestion is worth most
//! and takes longest, and users often pause before it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{
    ahead, ask_model, lock_state, results, Asked, DocumentId, LiveIndex, RequestKind, State,
};
use crate::completion::cursor_context;
use crate::completion::pipeline::Mode;
use crate::engine::CancelFlag;

/// The pause after an edit before the warm start.
const WARM_AFTER_PAUSE: Duration = Duration::from_millis(300);
/// How often a warm start looks whether the model is still busy for the
/// document.
const BUSY_POLL: Duration = Duration::from_millis(20);

/// After a pause in editing `id` (still at `version`), evaluates the prompt
/// at the last edit without generating, then, at the end of a line of
/// code, computes the suggestion after Enter. Skipped where an automatic
/// request would not be answered or when the model is not ready; after a
/// request for the document that was in flight (it warmed the cache
/// itself) only the suggestion after Enter is computed. Any completion
/// request cancels it.
pub(super) fn schedule(
    state: Arc<Mutex<State>>,
    index: Arc<LiveIndex>,
    id: DocumentId,
    version: i32,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        tokio::time::sleep(WARM_AFTER_PAUSE).await;
        let Some(waited) = until_idle(&state, &id, version).await else {
            return;
        };
        let Some(Some(enter)) = warm(&state, &index, &id, version, Step::First { waited }).await
        else {
            return;
        };
        // The anchor's move waited for the suggestion after Enter (which
        // used the anchor as it was): it is made if the pause lasts.
        let _ = enter.await;
        if until_idle(&state, &id, version).await.is_some() {
            warm(&state, &index, &id, version, Step::MoveAnchor).await;
        }
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The warm start proper, after `waited` for the model to be done
    /// with the document.
    First { waited: bool },
    /// The anchor's move, put off until the suggestion after Enter was
    /// computed.
    MoveAnchor,
}

/// Waits while the model works for the document at `version`: a request
/// in flight, or computing ahead begun at this version. Whether it had to
/// wait; `None` once the document changed (or the model is not ready).
async fn until_idle(state: &Mutex<State>, id: &DocumentId, version: i32) -> Option<bool> {
    let mut waited = false;
    loop {
        let busy = {
            let st = lock_state(state);
            st.ready_document(id, version)?;
            let asking = [RequestKind::Inline, RequestKind::List]
                .iter()
                .filter_map(|k| st.inflight.get(&(id.clone(), *k)))
                .any(|f| !f.is_cancelled());
            asking
                || st.ahead.as_ref().is_some_and(|a| {
                    a.started_at == (id.clone(), version) && !a.cancel.is_cancelled()
                })
        };
        if !busy {
            return Some(waited);
        }
        waited = true;
        tokio::time::sleep(BUSY_POLL).await;
    }
}

/// One warm-up at the last edit of `id`. At `Step::First`, where the edit
/// ends a line of code, the suggestion after Enter is then computed ahead:
/// its task, when the anchor's move was put off for it. `None` where
/// nothing was done.
async fn warm(
    state: &Arc<Mutex<State>>,
    index: &Arc<LiveIndex>,
    id: &DocumentId,
    version: i32,
    step: Step,
) -> Option<Option<tokio::task::JoinHandle<()>>> {
    let (engine, mut asked, flag, cursor, enter, move_put_off) = {
        let mut st = lock_state(state);
        let doc = st.ready_document(id, version)?;
        let cursor = doc.last_edit()?;
        let ctx = cursor_context(doc.text(), doc.syntax(), cursor, &st.config);
        let line = doc.text().char_to_line(cursor);
        let text = doc.text().clone();
        let max = st.config.completion.anchored_lines as usize;
        let worth_moving = st
            .anchors
            .get(id)
            .is_some_and(|a| a.worth_moving(&text, cursor, max));
        let enter = match step {
            Step::First { waited } => {
                let enter = ctx
                    .enter_here()
                    .filter(|_| st.config.completion.compute_ahead);
                // No request comes here (in a comment, say), but one may
                // come after Enter: the prompt is warmed for that one.
                if enter.is_none() && (waited || ctx.automatic_skip(&st.config).is_some()) {
                    return None;
                }
                enter
            }
            // Nothing to move, or another computation began since.
            Step::MoveAnchor if !worth_moving || st.ahead_running() => return None,
            Step::MoveAnchor => None,
        };
        // The user accepted the suggestion being computed ahead, which
        // warms the cache right here; an edit since it began makes it
        // useless.
        if let Some(ahead) = st.ahead.take() {
            if ahead.key == results::Key::new(id, &ctx) {
                st.ahead = Some(ahead);
                return None;
            }
            ahead.cancel.cancel();
        }
        let flag = CancelFlag::default();
        if let Some(previous) = st.warming.replace(flag.clone()) {
            previous.cancel();
        }
        // A pause is the time to move the anchor, once the lines since it
        // are many (`Anchor::worth_moving`): the move costs an evaluation
        // of the suffix, which the next request pays where the pause is
        // shorter. Where the anchor serves the line after Enter, the
        // suggestion there comes first and the move after it.
        let serves_enter = enter.as_ref().is_some_and(|enter| {
            let mut after = text.clone();
            after.insert(cursor, enter);
            st.anchors
                .get(id)
                .is_some_and(|a| a.serves(&after, cursor + enter.chars().count(), max))
        });
        let move_put_off = worth_moving && serves_enter;
        if worth_moving && !move_put_off {
            // Moved now, before the prompt is evaluated, so that a request
            // that cancels this warm start goes on from what it evaluated.
            st.move_anchor(id, &text, cursor, &ctx);
        }
        let anchor = st.anchor_for(id, &text, cursor, &ctx);
        let asked = Asked {
            id: id.clone(),
            line,
            ctx,
            config: st.config.clone(),
            anchor,
            recent: st.recent_chunks(),
        };
        (st.engine.clone()?, asked, flag, cursor, enter, move_put_off)
    };
    let for_warm_up = index.clone();
    let warmed = tokio::task::spawn_blocking(move || {
        ask_model(
            engine.as_ref(),
            &for_warm_up,
            &mut asked,
            Mode::WarmUp,
            &flag,
        )
        .is_ok()
    })
    .await
    .ok()?;
    lock_state(state).stats.warm_starts += u64::from(warmed);
    let enter = enter.filter(|_| warmed)?;
    let computing = ahead::schedule(
        state.clone(),
        index.clone(),
        id.clone(),
        version,
        cursor,
        enter,
        ahead::Length::Budgeted,
    );
    Some(computing.filter(|_| move_put_off))
}
