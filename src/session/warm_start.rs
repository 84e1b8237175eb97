//! Warm start: once the user has paused after an edit, the prompt at the
//! edit is brought into the KV cache, so that the next keystroke there
//! evaluates only its own tokens.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{ask_model, lock_state, results, Asked, DocumentId, LiveIndex, RequestKind, State};
use crate::completion::cursor_context;
use crate::completion::pipeline::Mode;
use crate::engine::CancelFlag;

/// The pause after an edit before the warm start.
const WARM_AFTER_PAUSE: Duration = Duration::from_millis(300);

/// After a pause in editing `id` (still at `version`), evaluates the prompt
/// at the last edit without generating. Skipped when a request for the
/// document is in flight (it warms the cache itself), where an automatic
/// request would not be answered, or when the model is not ready. Any
/// completion request cancels it.
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
        let job = {
            let mut st = lock_state(&state);
            let busy = [RequestKind::Inline, RequestKind::List]
                .iter()
                .filter_map(|k| st.inflight.get(&(id.clone(), *k)))
                .any(|f| !f.is_cancelled());
            let Some(doc) = st.ready_document(&id, version).filter(|_| !busy) else {
                return;
            };
            let Some(cursor) = doc.last_edit() else {
                return;
            };
            let ctx = cursor_context(doc.text(), doc.syntax(), cursor, &st.config);
            if ctx.automatic_skip(&st.config).is_some() {
                return;
            }
            let line = doc.text().char_to_line(cursor);
            let text = doc.text().clone();
            // The user accepted the suggestion being computed ahead, which
            // warms the cache right here; anything else makes it useless.
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
            (st.engine.clone(), asked, flag)
        };
        let (Some(engine), mut asked, flag) = job else {
            return;
        };
        let done = tokio::task::spawn_blocking(move || {
            let done = ask_model(engine.as_ref(), &index, &mut asked, Mode::WarmUp, &flag);
            (done.is_ok(), asked.anchor)
        })
        .await;
        if let Ok((warmed, anchor)) = done {
            let mut st = lock_state(&state);
            st.pin_context(&id, anchor.as_ref());
            st.stats.warm_starts += u64::from(warmed);
        }
    });
}
