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
            let asked = Asked {
                id: id.clone(),
                line,
                ctx,
                config: st.config.clone(),
            };
            (st.engine.clone(), asked, flag)
        };
        let (Some(engine), asked, flag) = job else {
            return;
        };
        let done = tokio::task::spawn_blocking(move || {
            ask_model(engine.as_ref(), &index, &asked, Mode::WarmUp, &flag)
        })
        .await;
        if let Ok(Ok(_)) = done {
            lock_state(&state).stats.warm_starts += 1;
        }
    });
}
