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
        // A request for the document in flight warms the cache itself, and
        // so does computing ahead of the suggestion it showed: only the
        // suggestion after Enter is left to do once they end, if the
        // document is still as it was.
        let mut waited = false;
        loop {
            let busy = {
                let st = lock_state(&state);
                if st.ready_document(&id, version).is_none() {
                    return;
                }
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
                break;
            }
            waited = true;
            tokio::time::sleep(BUSY_POLL).await;
        }
        let job = {
            let mut st = lock_state(&state);
            let Some(doc) = st.ready_document(&id, version) else {
                return;
            };
            let Some(cursor) = doc.last_edit() else {
                return;
            };
            let ctx = cursor_context(doc.text(), doc.syntax(), cursor, &st.config);
            let enter = ctx
                .enter_here()
                .filter(|_| st.config.completion.compute_ahead);
            // No request comes here (in a comment, say), but one may come
            // after Enter: the prompt is warmed for that one's sake.
            if enter.is_none() && (waited || ctx.automatic_skip(&st.config).is_some()) {
                return;
            }
            let line = doc.text().char_to_line(cursor);
            let text = doc.text().clone();
            // The user accepted the suggestion being computed ahead, which
            // warms the cache right here; an edit since it began makes it
            // useless.
            if let Some(ahead) = st.ahead.take() {
                if ahead.key == results::Key::new(&id, &ctx) {
                    st.ahead = Some(ahead);
                    return;
                }
                ahead.cancel.cancel();
            }
            let flag = CancelFlag::default();
            if let Some(previous) = st.warming.replace(flag.clone()) {
                previous.cancel();
            }
            // A pause is the time to move the anchor, once the lines since
            // it are many (`Anchor::worth_moving`): moved now, before the
            // prompt is evaluated, so that a request that cancels this
            // warm start goes on from what it evaluated.
            let max = st.config.completion.anchored_lines as usize;
            if st
                .anchors
                .get(&id)
                .is_some_and(|a| a.worth_moving(&text, cursor, max))
            {
                st.anchors.remove(&id);
            }
            let anchor = st.anchor_for(&id, &text, cursor);
            let asked = Asked {
                id: id.clone(),
                line,
                ctx,
                config: st.config.clone(),
                anchor,
                recent: st.recent_chunks(),
            };
            (st.engine.clone(), asked, flag, cursor, enter)
        };
        let (Some(engine), mut asked, flag, cursor, enter) = job else {
            return;
        };
        let for_warm_up = index.clone();
        let done = tokio::task::spawn_blocking(move || {
            let done = ask_model(
                engine.as_ref(),
                &for_warm_up,
                &mut asked,
                Mode::WarmUp,
                &flag,
            );
            (done.is_ok(), asked.anchor)
        })
        .await;
        let Ok((warmed, anchor)) = done else {
            return;
        };
        {
            let mut st = lock_state(&state);
            st.pin_context(&id, anchor.as_ref());
            st.stats.warm_starts += u64::from(warmed);
        }
        if let Some(enter) = enter.filter(|_| warmed) {
            ahead::schedule(
                state,
                index,
                id,
                version,
                cursor,
                enter,
                ahead::Length::Budgeted,
            );
        }
    });
}
