//! The session: all mutable state of one client, and what happens to it.
//! Open documents, the suggestion shown (typed-through reuse), recent
//! answers, requests in flight, warm starts, statistics, the live workspace
//! index and the engine. The protocol layer (`lsp`) converts messages to
//! calls here and results back; nothing here knows LSP's types.
//!
//! Invariants:
//! - Nothing here blocks its caller on the model or the disk: model work
//!   and indexing run on blocking threads (`tokio::task::spawn_blocking`).
//! - Document-changing calls (`open`, `change`, `close`) are synchronous
//!   and take the state lock at once, so edits apply in the order the
//!   protocol layer makes the calls.
//! - Every request is answered, also when cancelled: a newer request of
//!   the same kind for a document, an edit of it, or dropping the future
//!   of `complete` (the client's `$/cancelRequest`) stops its decode.
//! - A warm start never delays a request: any request cancels it.
//! - Imports nothing from `lsp` or tower-lsp.

mod acceptance;
mod ahead;
mod anchor;
mod document_id;
pub mod events;
pub mod live_index;
mod recency;
mod results;
pub mod stats_store;
mod typed_through;
mod warm_start;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ropey::Rope;
use serde::Serialize;

use anchor::{Anchor, Pinned};
pub use document_id::DocumentId;
use events::{Events, Level, ProgressStep};
pub use live_index::{FileChange, IndexCheck, LiveIndex};
use results::ResultCache;
use typed_through::ShownSuggestion;

use crate::completion::pipeline::{self, Extras, Mode};
use crate::completion::{cursor_context, CursorContext};
use crate::config::{Config, MergeReport};
use crate::engine::{
    CancelFlag, CancelOnDrop, Engine, EngineError, EngineOutput, EngineState, FaultNews,
};
use crate::retrieval::{RecentChunk, Root, Snippet};
use crate::stats::aggregate::Today;
use crate::stats::{Lines, Meta, Source, Trigger};
use crate::text::document::{Document, TextChange};
use crate::text::position::{from_char_index, LinePosition, PositionEncoding};

/// Starts the engine a configuration describes (`engine::start` in the
/// server; a scripted engine in tests).
pub type EngineStarter = Arc<dyn Fn(&Config) -> Arc<dyn Engine> + Send + Sync>;

/// The progress token of the model load.
const MODEL_LOAD_TOKEN: &str = "infill/model-load";

/// Which kind of completion request: clients may send both on every
/// keystroke, so each kind has its own request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// Ghost text (`textDocument/inlineCompletion`).
    Inline,
    /// A completion list item (`textDocument/completion`).
    List,
}

/// A cleaned completion and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    pub cursor: LinePosition,
    /// Start of the identifier the cursor is in, for completion lists.
    pub word_start: LinePosition,
    pub word: String,
    /// The suggestion's number, which the client sends back when it is
    /// accepted (`Session::accepted`); `None` when statistics are off.
    pub id: Option<u64>,
    /// Other answers to offer after `text`, best first
    /// (`completion.candidates`): the editor cycles through them. They
    /// carry no suggestion number: acceptance statistics follow `text`.
    pub alternatives: Vec<String>,
}

/// Why a request was not answered with a completion (an empty answer is
/// `Ok(None)`, not an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("document {0} is not open")]
    NotOpen(String),
    #[error("the request was cancelled")]
    Cancelled,
    /// Bad parameters from the client (an unknown suggestion number).
    #[error("{0}")]
    Invalid(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What the client told us of itself when it connected.
#[derive(Debug, Clone)]
pub struct ClientSetup {
    pub encoding: PositionEncoding,
    /// Workspace folders.
    pub roots: Vec<Root>,
    /// Settings sent with the connection (`initializationOptions`).
    pub settings: Option<serde_json::Value>,
}

/// A document as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentSnapshot {
    pub text: String,
    pub version: i32,
    /// The syntax tree kept for the document, as an S-expression.
    pub tree: Option<String>,
}

/// What cross-file retrieval finds at a position now.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextReport {
    pub indexing_done: bool,
    pub indexed_files: usize,
    /// Files the first walk left out: the index reached
    /// `context.maxIndexMegabytes`.
    pub left_out_files: usize,
    pub snippets: Vec<Snippet>,
}

/// The model's state and how requests were answered.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// `loading`, `ready`, `failed` or `none` (before the session started).
    pub model: &'static str,
    pub detail: String,
    #[serde(flatten)]
    pub stats: Stats,
    /// Today's suggestions shown and accepted (the local store: every
    /// server that records into it), while statistics are recorded.
    pub today: Option<Today>,
}

/// How completions were answered so far.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Completions computed by the model.
    pub model_answers: u64,
    /// Completions answered from the suggestion already shown.
    pub reused_answers: u64,
    /// Completions answered from the cache of recent answers.
    pub cached_answers: u64,
    /// Prompts brought into the KV cache after a pause in typing (counted
    /// when done).
    pub warm_starts: u64,
    /// Suggestions computed ahead, as if the one shown were accepted
    /// (counted when done; answered later as cached answers).
    pub computed_ahead: u64,
    /// Token counts and time of the last model answer.
    pub last_request: Option<EngineOutput>,
}

pub struct Session {
    /// Shared with the warm-start tasks that outlive a call.
    state: Arc<Mutex<State>>,
    /// The workspace index for cross-file context (its own locks).
    index: Arc<LiveIndex>,
    events: Events,
    start_engine: EngineStarter,
}

struct State {
    encoding: PositionEncoding,
    config: Config,
    /// Whether `start` ran: the engine and the index exist.
    started: bool,
    roots: Vec<Root>,
    documents: HashMap<DocumentId, Document>,
    engine: Option<Arc<dyn Engine>>,
    /// The request in flight per document and kind; a newer one of the
    /// same kind cancels it.
    inflight: HashMap<(DocumentId, RequestKind), CancelFlag>,
    /// The last suggestion answered, for typed-through reuse.
    shown: Option<ShownSuggestion>,
    /// Recent answers by the text around the cursor.
    results: ResultCache,
    /// Each document's prompt anchor (`anchor`).
    anchors: HashMap<DocumentId, Anchor>,
    /// The warm start in progress, cancelled by any completion request.
    warming: Option<CancelFlag>,
    /// The suggestion after the one shown, being computed (`ahead`).
    ahead: Option<ahead::Ahead>,
    /// `shutdown` was called: the session starts no work of its own.
    shut_down: bool,
    stats: Stats,
    /// Acceptance and persistence events (`stats.enabled`).
    recorder: acceptance::Recorder,
    /// Code around recent edits and requests (`context.recency`).
    recency: recency::Recency,
}

impl State {
    /// Whether a suggestion is being computed ahead (one at a time: the
    /// one running was scheduled for a newer suggestion, or is this one).
    fn ahead_running(&self) -> bool {
        self.ahead
            .as_ref()
            .is_some_and(|a| !a.cancel.is_cancelled())
    }

    /// The anchor for a request at char `cursor` (context `ctx`) of
    /// document `id` (its `text`): the document's own where it serves,
    /// else the document's moved there (`move_anchor`). `None` with
    /// anchors off.
    fn anchor_for(
        &mut self,
        id: &DocumentId,
        text: &Rope,
        cursor: usize,
        ctx: &CursorContext,
    ) -> Option<Anchor> {
        let max = self.config.completion.anchored_lines as usize;
        if max == 0 || !self.config.completion.cursor_line_after_middle {
            return None;
        }
        match self.anchors.get(id) {
            Some(a) if a.serves(text, cursor, max) => Some(a.clone()),
            _ => Some(self.move_anchor(id, text, cursor, ctx)),
        }
    }

    /// Moves document `id`'s anchor to `cursor`'s line, keeping what is
    /// pinned within the definition the cursor is in (`Anchor::moved_to`),
    /// or sets its first one there.
    fn move_anchor(
        &mut self,
        id: &DocumentId,
        text: &Rope,
        cursor: usize,
        ctx: &CursorContext,
    ) -> Anchor {
        let moved = match self.anchors.get(id) {
            Some(old) => old.moved_to(text, cursor, ctx.definition_char()),
            None => Anchor::at_line_of(text, cursor),
        };
        self.anchors.insert(id.clone(), moved.clone());
        moved
    }

    /// Document `id`, if it is still at `version` and the model is ready
    /// (and the session not shut down): what work started by the session
    /// itself (warm starts, computing ahead) needs before it begins.
    /// The recent chunks requests use now (none with `context.recency`
    /// or `context.crossFile` off).
    fn recent_chunks(&self) -> Arc<Vec<RecentChunk>> {
        if self.config.context.recency && self.config.context.cross_file {
            self.recency.chunks()
        } else {
            Arc::default()
        }
    }

    fn ready_document(&self, id: &DocumentId, version: i32) -> Option<&Document> {
        let ready = !self.shut_down
            && self
                .engine
                .as_ref()
                .is_some_and(|e| matches!(e.state(), EngineState::Ready { .. }));
        self.documents
            .get(id)
            .filter(|d| ready && d.version == version)
    }
}

/// Where the model is asked: the cursor's context on line `line` of `id`,
/// with the settings of the moment and the document's prompt anchor.
struct Asked {
    id: DocumentId,
    line: usize,
    ctx: CursorContext,
    config: Config,
    anchor: Option<Anchor>,
    /// The recent chunks (`recency`) as they were when it was asked.
    recent: Arc<Vec<RecentChunk>>,
}

/// Asks the model at `at` as the session does: with the live index's
/// cross-file context (the one pinned to the anchor, else found now and
/// pinned to it in `at`), the anchor, and the document's name (so that
/// the engine keeps its prompt when another document is asked next).
/// Blocking.
fn ask_model(
    engine: &dyn Engine,
    index: &LiveIndex,
    at: &mut Asked,
    mode: Mode,
    cancel: &CancelFlag,
) -> Result<pipeline::Suggestion, EngineError> {
    ask_model_with_context(engine, index, at, mode, cancel).map(|(s, _)| s)
}

/// `ask_model`, and whether cross-file snippets went to the model.
fn ask_model_with_context(
    engine: &dyn Engine,
    index: &LiveIndex,
    at: &mut Asked,
    mode: Mode,
    cancel: &CancelFlag,
) -> Result<(pipeline::Suggestion, bool), EngineError> {
    // Superseded while it waited for a thread: no retrieval, no engine.
    if cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    let _walk_waits = index.answering();
    let find = |at: &Asked| {
        index.context_for(
            &at.id,
            at.line,
            &at.ctx.prefix,
            &at.ctx.suffix,
            &at.config,
            &at.recent,
        )
    };
    let context = match at.anchor.clone() {
        Some(anchor) => {
            // Found once per anchor, by the first request there.
            let pinned = anchor.pinned.get_or_init(|| Pinned {
                context: find(at),
                definition: at.ctx.definition_char(),
            });
            at.ctx.definition_start = pinned.definition.and_then(|d| at.ctx.prefix_offset(d));
            pinned.context.clone()
        }
        None => find(at),
    };
    let extras = Extras {
        context,
        document: Some(at.id.name().to_string()),
        anchor: at.anchor.as_ref().map(|a| a.at),
    };
    let cross_file = extras
        .context
        .as_ref()
        .is_some_and(|c| !c.snippets.is_empty());
    pipeline::run(engine, &at.ctx, &at.config, extras, mode, cancel).map(|s| (s, cross_file))
}

/// The text of the open document whose file is `path`.
fn documents_text(
    documents: &HashMap<DocumentId, Document>,
    path: &std::path::Path,
) -> Option<Rope> {
    documents
        .iter()
        .find(|(id, _)| id.path() == Some(path))
        .map(|(_, d)| d.text().clone())
}

fn lock_state(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A call that panicked while holding the lock leaves the state as it
    // was between two whole operations; keep serving it.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl Session {
    /// A session with `base` settings (from the command line), telling the
    /// user what it does through `events`.
    pub fn new(base: Config, events: Events, start_engine: EngineStarter) -> Session {
        Session {
            state: Arc::new(Mutex::new(State {
                encoding: PositionEncoding::Utf16,
                config: base,
                started: false,
                roots: Vec::new(),
                documents: HashMap::new(),
                engine: None,
                inflight: HashMap::new(),
                shown: None,
                results: ResultCache::default(),
                anchors: HashMap::new(),
                warming: None,
                ahead: None,
                shut_down: false,
                stats: Stats::default(),
                recorder: acceptance::Recorder::default(),
                recency: recency::Recency::default(),
            })),
            index: Arc::new(LiveIndex::default()),
            events,
            start_engine,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock_state(&self.state)
    }

    /// The client connected: how it counts positions, its folders and its
    /// settings.
    pub fn connect(&self, setup: ClientSetup) {
        let mut st = self.lock();
        st.encoding = setup.encoding;
        st.roots = setup.roots;
        if let Some(settings) = &setup.settings {
            let report = st.config.merge_json(settings);
            self.report_settings(report);
        }
    }

    /// Starts the model load and the first walk of the workspace.
    pub fn start(&self) {
        let engine = {
            let mut st = self.lock();
            st.started = true;
            if st.config.stats.enabled {
                self.record_stats(&mut st, true);
            }
            let engine = (self.start_engine)(&st.config);
            st.engine = Some(engine.clone());
            if st.config.context.cross_file {
                self.index
                    .start(self.events.clone(), st.roots.clone(), &st.config);
            }
            engine
        };
        self.watch_engine(engine);
    }

    /// The workspace folders (from `connect`).
    pub fn roots(&self) -> Vec<Root> {
        self.lock().roots.clone()
    }

    /// New settings from the client; the model is loaded again when its
    /// settings changed.
    pub fn configure(&self, settings: &serde_json::Value) {
        let restarted = {
            let mut st = self.lock();
            let before = st.config.clone();
            let report = st.config.merge_json(settings);
            self.report_settings(report);
            if st.config.context != before.context {
                // Pinned cross-file contexts were found with the old ones.
                st.anchors.clear();
            }
            if st.started && st.config.stats.enabled != before.stats.enabled {
                let on = st.config.stats.enabled;
                self.record_stats(&mut st, on);
            }
            let mut answers_before = before.clone();
            answers_before.stats = st.config.stats.clone();
            if st.config != answers_before {
                // Answers depend on the settings (budgets, layout, model).
                st.results.clear();
                st.shown = None;
                if let Some(ahead) = st.ahead.take() {
                    ahead.cancel.cancel();
                }
            }
            if st.started && st.config.context.cross_file && !before.context.cross_file {
                self.index
                    .start(self.events.clone(), st.roots.clone(), &st.config);
            }
            if st.started && before.model_changed(&st.config) {
                tracing::info!("model settings changed: reloading the model");
                let engine = (self.start_engine)(&st.config);
                st.engine = Some(engine.clone());
                Some(engine)
            } else {
                None
            }
        };
        if let Some(engine) = restarted {
            self.watch_engine(engine);
        }
    }

    /// Starts (`on`) or stops recording acceptance events; stopping wipes
    /// nothing and says where the store is.
    fn record_stats(&self, st: &mut State, on: bool) {
        let dir = stats_store::default_dir();
        if on {
            match &dir {
                Some(dir) => {
                    st.recorder.set_store(Some(dir.clone()));
                    self.schedule_checkpoints();
                }
                None => self.events.log(
                    Level::Warning,
                    "infill: statistics are not recorded: no state directory (HOME is not set)"
                        .into(),
                ),
            }
        } else if st.recorder.recording() {
            st.recorder.set_store(None);
            let place = dir.map_or_else(String::new, |d| format!(" in {}", d.display()));
            self.events.message(
                Level::Info,
                format!(
                    "infill: statistics are off: nothing more is recorded; what was recorded stays{place} (delete the folder to remove it)"
                ),
            );
        }
    }

    /// Measures the accepted texts at their checkpoints while statistics
    /// are recorded (a task on the runtime; ends with the session).
    fn schedule_checkpoints(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let state = Arc::downgrade(&self.state);
        runtime.spawn(async move {
            loop {
                let every = {
                    let Some(state) = state.upgrade() else { return };
                    let st = lock_state(&state);
                    if st.shut_down || !st.recorder.recording() {
                        return;
                    }
                    st.recorder.tick_every()
                };
                tokio::time::sleep(every).await;
                let Some(state) = state.upgrade() else { return };
                let mut st = lock_state(&state);
                let State {
                    recorder,
                    documents,
                    ..
                } = &mut *st;
                recorder.tick(|id| documents.get(id).map(|d| d.text().clone()));
            }
        });
    }

    /// Suggestion `n` was accepted, whole or its first `length` chars.
    pub fn accepted(&self, n: u64, length: Option<u64>) -> Result<(), RequestError> {
        let mut st = self.lock();
        let State {
            recorder,
            documents,
            ..
        } = &mut *st;
        recorder
            .accepted(n, length, |id| documents.get(id).map(|d| d.text().clone()))
            .map_err(|e| RequestError::Invalid(e.to_string()))
    }

    fn report_settings(&self, report: MergeReport) {
        for key in report.unknown {
            tracing::warn!("ignoring unknown setting `{key}`");
        }
        for err in report.errors {
            self.events
                .message(Level::Error, format!("infill: invalid setting {err}"));
        }
    }

    /// Tells the user of an engine fault once per episode (a remote
    /// server down, overloaded, garbled): a message when it begins, a log
    /// line when it ends.
    fn tell_fault_news(&self, news: Option<FaultNews>) {
        tell_fault_news(&self.events, news);
    }

    /// Reports the model load: progress while it runs, an error message
    /// once if it fails.
    /// Then, for an engine whose health changes between requests (a
    /// remote engine's background probe), tells its news as it comes,
    /// until the engine is dropped.
    fn watch_engine(&self, engine: Arc<dyn Engine>) {
        let events = self.events.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let watched = Arc::downgrade(&engine);
        let probes = engine.probes_in_background();
        runtime.spawn(async move {
            events.progress(
                MODEL_LOAD_TOKEN,
                ProgressStep::Begin {
                    title: "infill: loading model".into(),
                    percentage: None,
                },
            );
            let waited = tokio::task::spawn_blocking(move || {
                engine.wait_ready(Duration::from_secs(24 * 3600))
            })
            .await;
            let state = waited
                .unwrap_or_else(|e| EngineState::Failed(format!("model loader crashed: {e}")));
            events.progress(MODEL_LOAD_TOKEN, ProgressStep::End { message: None });
            match state {
                EngineState::Failed(why) => events.message(Level::Error, format!("infill: {why}")),
                EngineState::Ready { description } => {
                    events.log(Level::Info, format!("infill: model ready: {description}"))
                }
                EngineState::Loading => {}
            }
            if !probes {
                return;
            }
            loop {
                tokio::time::sleep(FAULT_NEWS_POLL).await;
                // Not held between looks: a replaced engine is dropped.
                let Some(engine) = watched.upgrade() else {
                    break;
                };
                let news = engine.fault_news();
                drop(engine);
                tell_fault_news(&events, news);
            }
        });
    }

    pub fn open(&self, id: DocumentId, language_id: &str, version: i32, text: &str) {
        let named = id
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| id.name().to_string());
        let doc = Document::new(&named, Some(language_id), version, text);
        self.index
            .opened(&id, doc.text().clone(), doc.tree_snapshot());
        let mut st = self.lock();
        st.recorder.opened(&id, language_id);
        // Opened again: the text under any request in flight is gone.
        cancel_document_requests(&mut st.inflight, &id);
        st.anchors.remove(&id);
        st.documents.insert(id, doc);
    }

    pub fn change(&self, id: &DocumentId, version: i32, changes: &[TextChange]) {
        let mut st = self.lock();
        let encoding = st.encoding;
        let recency_on = st.config.context.recency && st.config.context.cross_file;
        let State {
            documents,
            recorder,
            inflight,
            recency,
            ..
        } = &mut *st;
        // Where the edit was, for the recent chunks (`recency`).
        let mut edited_lines = None;
        match documents.get_mut(id) {
            Some(doc) => {
                let lines_before = doc.text().len_lines();
                let edits = doc.apply_changes(version, changes, encoding);
                recorder.edited(id, &edits);
                if recency_on {
                    let text = doc.text();
                    let line = |c: usize| text.char_to_line(c.min(text.len_chars()));
                    let lo = edits.iter().map(|e| line(e.start)).min().unwrap_or(0);
                    let hi = edits
                        .iter()
                        .map(|e| line(e.start + e.inserted))
                        .max()
                        .unwrap_or(lo);
                    let delta = text.len_lines() as isize - lines_before as isize;
                    edited_lines = Some((lo, hi.max(lo), delta));
                }
                // Rope and tree clones are O(1): the copy to text happens after the debounce.
                self.index
                    .changed(id, doc.text().clone(), doc.tree_snapshot());
                warm_start::schedule(
                    self.state.clone(),
                    self.index.clone(),
                    id.clone(),
                    doc.version,
                );
            }
            None => tracing::warn!("a change for a document that is not open: {id}"),
        }
        if let (Some((lo, hi, delta)), Some(path)) = (edited_lines, id.path()) {
            recency.edited(path, (lo, hi), delta, |p| documents_text(documents, p));
        }
        // The text under any request in flight is gone: stop it.
        cancel_document_requests(inflight, id);
    }

    pub fn save(&self, id: &DocumentId) {
        let st = self.lock();
        if let Some(doc) = st.documents.get(id) {
            self.index.saved(id, doc.text().clone());
        }
    }

    pub fn close(&self, id: &DocumentId) {
        let mut st = self.lock();
        if let Some(doc) = st.documents.remove(id) {
            st.recorder.closed(id, doc.text());
            if let Some(path) = id.path() {
                st.recency.closing(path, doc.text());
            }
        }
        st.anchors.remove(id);
        self.index.closed(id);
        cancel_document_requests(&mut st.inflight, id);
    }

    pub fn files_changed(&self, changes: Vec<FileChange>) {
        self.index.files_changed(changes);
    }

    /// Stops all work for the model: every request in flight, the
    /// computation ahead and a warm start.
    pub fn shutdown(&self) {
        let mut st = self.lock();
        st.shut_down = true;
        {
            let State {
                recorder,
                documents,
                ..
            } = &mut *st;
            recorder.shutdown(|id| documents.get(id).map(|d| d.text().clone()));
        }
        for flag in st.inflight.values() {
            flag.cancel();
        }
        st.inflight.clear();
        if let Some(ahead) = st.ahead.take() {
            ahead.cancel.cancel();
        }
        if let Some(warming) = st.warming.take() {
            warming.cancel();
        }
    }

    /// The server's copy of a document.
    pub fn document(&self, id: &DocumentId) -> Result<DocumentSnapshot, RequestError> {
        let st = self.lock();
        let doc = st
            .documents
            .get(id)
            .ok_or_else(|| RequestError::NotOpen(id.to_string()))?;
        Ok(DocumentSnapshot {
            text: doc.text().to_string(),
            version: doc.version,
            tree: doc
                .syntax()
                .and_then(|st| st.tree())
                .map(|t| t.root_node().to_sexp()),
        })
    }

    /// The snippets cross-file retrieval finds at a position now (fresh,
    /// not the set kept for the line).
    pub async fn context(
        &self,
        id: &DocumentId,
        position: LinePosition,
    ) -> Result<ContextReport, RequestError> {
        let (prefix, suffix, config, recent) = {
            let st = self.lock();
            let doc = st
                .documents
                .get(id)
                .ok_or_else(|| RequestError::NotOpen(id.to_string()))?;
            let cursor = doc.char_index(position, st.encoding);
            let ctx = cursor_context(doc.text(), doc.syntax(), cursor, &st.config);
            (
                ctx.prefix,
                ctx.suffix,
                st.config.clone(),
                st.recent_chunks(),
            )
        };
        let index = self.index.clone();
        let line = position.line as usize;
        let for_id = id.clone();
        let snippets = tokio::task::spawn_blocking(move || {
            index.retrieve(&for_id, line, &prefix, &suffix, &config, &recent)
        })
        .await
        .map_err(|e| RequestError::Internal(format!("retrieval crashed: {e}")))?;
        Ok(ContextReport {
            indexing_done: self.index.indexing_done(),
            indexed_files: self.index.index().file_count(),
            left_out_files: self.index.left_out(),
            snippets,
        })
    }

    /// How the live index compares with indexing the workspace afresh,
    /// the open documents standing for their files (`LiveIndex::check`).
    pub async fn index_check(&self) -> Result<IndexCheck, RequestError> {
        let buffers: HashMap<PathBuf, String> = {
            let st = self.lock();
            st.documents
                .iter()
                .filter_map(|(id, doc)| Some((id.path()?.to_path_buf(), doc.text().to_string())))
                .collect()
        };
        let index = self.index.clone();
        tokio::task::spawn_blocking(move || index.check(&buffers))
            .await
            .map_err(|e| RequestError::Internal(format!("index check crashed: {e}")))
    }

    pub fn status(&self) -> Status {
        let (engine, stats, today) = {
            let st = self.lock();
            (st.engine.clone(), st.stats.clone(), st.recorder.today())
        };
        let (model, detail) = match engine.map(|e| e.state()) {
            None => ("none", String::new()),
            Some(EngineState::Loading) => ("loading", String::new()),
            Some(EngineState::Ready { description }) => ("ready", description),
            Some(EngineState::Failed(why)) => ("failed", why),
        };
        Status {
            model,
            detail,
            stats,
            today,
        }
    }

    /// The completion at `position` of `id`: typed through the suggestion
    /// shown, from recent answers, or from the model. `automatic`: the
    /// editor asked by itself, not at the user's request; such requests
    /// are not answered where a suggestion would not help.
    pub async fn complete(
        &self,
        id: &DocumentId,
        position: LinePosition,
        automatic: bool,
        kind: RequestKind,
    ) -> Result<Option<Answer>, RequestError> {
        let asked_at = Instant::now();
        let trigger = match (kind, automatic) {
            (RequestKind::List, _) => Trigger::List,
            (RequestKind::Inline, true) => Trigger::Automatic,
            (RequestKind::Inline, false) => Trigger::Invoked,
        };
        let flight = (id.clone(), kind);
        let mut may_wait = true;
        let job = loop {
            match self.answer_without_model(
                id,
                position,
                automatic,
                &flight,
                may_wait,
                (trigger, asked_at),
            )? {
                Lookup::Answered(answer) => return Ok(answer),
                Lookup::AskModel(job) => break *job,
                Lookup::WaitAhead(mut ended) => {
                    // What is being computed ahead is this very question:
                    // its answer is in the recent answers once it ends.
                    let _ = ended.wait_for(|ended| *ended).await;
                    may_wait = false;
                }
            }
        };
        let ModelJob {
            recent,
            ctx,
            config,
            engine,
            place,
            flag,
            version,
            cursor,
            anchor,
        } = job;
        let Some(engine) = engine else {
            return Ok(None);
        };
        // Dropped when this future is dropped ($/cancelRequest) or done.
        let guard = CancelOnDrop(flag.clone());
        let wait = Duration::from_millis(config.completion.load_wait_ms);
        let index = self.index.clone();
        let mut asked = Asked {
            id: id.clone(),
            line: position.line as usize,
            ctx: ctx.clone(),
            config,
            anchor,
            recent,
        };
        let result = tokio::task::spawn_blocking(move || {
            if engine.wait_ready(wait) == EngineState::Loading {
                return (Err(EngineError::Loading), None);
            }
            let done =
                ask_model_with_context(engine.as_ref(), &index, &mut asked, Mode::Suggest, &flag);
            (done, engine.fault_news())
        })
        .await;
        drop(guard);
        let result = result.map(|(done, news)| {
            self.tell_fault_news(news);
            done
        });
        {
            let mut st = self.lock();
            if st.inflight.get(&flight).is_some_and(|f| f.is_cancelled()) {
                st.inflight.remove(&flight);
            }
        }
        let done = match result {
            Ok(Ok(done)) => done,
            Ok(Err(EngineError::Cancelled)) => return Err(RequestError::Cancelled),
            Ok(Err(EngineError::Loading)) => {
                tracing::info!("completion skipped: the model is still loading");
                return Ok(None);
            }
            Ok(Err(EngineError::Unavailable(_))) => return Ok(None),
            Ok(Err(e @ EngineError::Failed(_))) => {
                tracing::error!("{e}");
                return Ok(None);
            }
            Err(e) => {
                tracing::error!("completion task crashed: {e}");
                return Err(RequestError::Internal(format!(
                    "completion task crashed: {e}"
                )));
            }
        };
        let (done, cross_file) = done;
        let second_try = done.second_try();
        let (output, text, alternatives) = (done.output, done.text, done.alternatives);
        // Where the greedy answer has nothing, its first alternative is shown.
        let (text, alternatives) = promote_alternative(text, alternatives);
        tracing::debug!(
            second_try,
            prompt = output.prompt_tokens,
            evaluated = output.evaluated_tokens,
            generated = output.generated_tokens,
            ms = output.elapsed.as_millis() as u64,
            build_ms = output.build_time.as_millis() as u64,
            eval_ms = output.eval_time.as_millis() as u64,
            generate_ms = output.generate_time.as_millis() as u64,
            "completion"
        );
        let suggestion;
        {
            let mut st = self.lock();
            st.stats.model_answers += 1;
            st.stats.last_request = Some(output.clone());
            // An answer cut short by the time budget is not the model's
            // full answer: do not serve it again.
            if !output.cut_by_time {
                st.results.put_all(
                    results::Key::new(id, &ctx),
                    text.clone(),
                    alternatives.clone(),
                );
            }
            st.shown = shown(id, &ctx, &text, &alternatives);
            // Shown only if no edit overtook it (see `acceptance`).
            let current = st.documents.get(id).is_some_and(|d| d.version == version);
            let meta = answer_meta(
                &st,
                id,
                &ctx,
                (trigger, asked_at),
                Source::Model,
                &text,
                output.evaluated_tokens,
                cross_file,
            );
            suggestion = st.recorder.answered(id, cursor, &text, meta, current);
        }
        if text.is_empty() {
            return Ok(None);
        }
        self.compute_ahead(id, version, cursor, &text);
        Ok(Some(place.answer(text, suggestion).with(alternatives)))
    }

    /// Starts computing the suggestion that follows `text`, shown at char
    /// `cursor` of `id` at `version` (`ahead`).
    fn compute_ahead(&self, id: &DocumentId, version: i32, cursor: usize, text: &str) {
        ahead::schedule(
            self.state.clone(),
            self.index.clone(),
            id.clone(),
            version,
            cursor,
            text.to_string(),
            ahead::Length::Whole,
        );
    }

    /// The part of `complete` under the state lock: where the cursor is,
    /// whether to answer here at all, typed-through reuse and recent
    /// answers; else the request is registered in flight for the model.
    fn answer_without_model(
        &self,
        id: &DocumentId,
        position: LinePosition,
        automatic: bool,
        flight: &(DocumentId, RequestKind),
        may_wait: bool,
        asked: (Trigger, Instant),
    ) -> Result<Lookup, RequestError> {
        let mut st = self.lock();
        // A real request goes before any warm start.
        if let Some(warming) = st.warming.take() {
            warming.cancel();
        }
        let encoding = st.encoding;
        let doc = st
            .documents
            .get(id)
            .ok_or_else(|| RequestError::NotOpen(id.to_string()))?;
        let cursor = doc.char_index(position, encoding);
        let version = doc.version;
        let place = Place::at(doc, cursor, encoding);
        let ctx: CursorContext = cursor_context(doc.text(), doc.syntax(), cursor, &st.config);
        // An O(1) copy, for the anchor (`State::anchor_for`).
        let text = doc.text().clone();
        if automatic {
            if let Some(skip) = ctx.automatic_skip(&st.config) {
                tracing::debug!("no automatic completion here: {skip:?}");
                return Ok(Lookup::Answered(None));
            }
        }
        let reusable = st.shown.as_ref().and_then(|shown| {
            let rest = shown.rest_after_typing(id, &ctx)?;
            Some((rest, shown.alternatives_after_typing(&ctx)))
        });
        if let Some((rest, alternatives)) = reusable {
            // The user typed the start of what is shown: the rest stands.
            st.stats.reused_answers += 1;
            if let Some(previous) = st.inflight.remove(flight) {
                previous.cancel();
            }
            let suggestion = st.recorder.typed_through(id, cursor, &rest);
            return Ok(Lookup::Answered(Some(
                place.answer(rest, suggestion).with(alternatives),
            )));
        }
        let key = results::Key::new(id, &ctx);
        if let Some(text) = st.results.get(key) {
            let alternatives = st.results.alternatives(key);
            st.stats.cached_answers += 1;
            if let Some(previous) = st.inflight.remove(flight) {
                previous.cancel();
            }
            st.shown = shown(id, &ctx, &text, &alternatives);
            if text.is_empty() {
                return Ok(Lookup::Answered(None));
            }
            let meta = answer_meta(&st, id, &ctx, asked, Source::Cache, &text, 0, false);
            let suggestion = st.recorder.answered(id, cursor, &text, meta, true);
            drop(st);
            self.compute_ahead(id, version, cursor, &text);
            return Ok(Lookup::Answered(Some(
                place.answer(text, suggestion).with(alternatives),
            )));
        }
        // The model is needed: what is computed ahead goes first only if
        // it is this very question.
        if let Some(ahead) = st.ahead.take() {
            if may_wait && ahead.key == key && !ahead.cancel.is_cancelled() {
                let ended = ahead.ended.clone();
                st.ahead = Some(ahead);
                return Ok(Lookup::WaitAhead(ended));
            }
            ahead.cancel.cancel();
        }
        let flag = CancelFlag::default();
        if let Some(previous) = st.inflight.insert(flight.clone(), flag.clone()) {
            previous.cancel();
        }
        let anchor = st.anchor_for(id, &text, cursor, &ctx);
        let recency_on = st.config.context.recency && st.config.context.cross_file;
        if let (true, Some(path)) = (recency_on, id.path()) {
            let line = text.char_to_line(cursor.min(text.len_chars()));
            let State {
                recency, documents, ..
            } = &mut *st;
            recency.viewed(path, line, |p| documents_text(documents, p));
        }
        Ok(Lookup::AskModel(Box::new(ModelJob {
            recent: st.recent_chunks(),
            anchor,
            config: st.config.clone(),
            engine: st.engine.clone(),
            ctx,
            place,
            flag,
            version,
            cursor,
        })))
    }
}

/// What `answer_without_model` found.
enum Lookup {
    Answered(Option<Answer>),
    AskModel(Box<ModelJob>),
    /// The question is being computed ahead: wait until that ends.
    WaitAhead(tokio::sync::watch::Receiver<bool>),
}

/// A request for the model, registered in flight under `flag`.
struct ModelJob {
    recent: Arc<Vec<RecentChunk>>,
    ctx: CursorContext,
    config: Config,
    engine: Option<Arc<dyn Engine>>,
    place: Place,
    flag: CancelFlag,
    /// The document's prompt anchor (`anchor`).
    anchor: Option<Anchor>,
    /// The document's version and the cursor (a char index) asked at.
    version: i32,
    cursor: usize,
}

/// Where an answer goes: the cursor, and the identifier it is in.
struct Place {
    cursor: LinePosition,
    word_start: LinePosition,
    word: String,
}

impl Place {
    fn at(doc: &Document, cursor: usize, encoding: PositionEncoding) -> Place {
        let text = doc.text();
        let word_len = text
            .chars_at(cursor)
            .reversed()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .count();
        Place {
            word: text.slice(cursor - word_len..cursor).to_string(),
            word_start: from_char_index(text, cursor - word_len, encoding),
            cursor: from_char_index(text, cursor, encoding),
        }
    }

    fn answer(self, text: String, id: Option<u64>) -> Answer {
        Answer {
            text,
            cursor: self.cursor,
            word_start: self.word_start,
            word: self.word,
            id,
            alternatives: Vec::new(),
        }
    }
}

impl Answer {
    fn with(mut self, alternatives: Vec<String>) -> Answer {
        self.alternatives = alternatives;
        self
    }
}

/// The answer and the others to offer: where the answer is empty, the
/// first alternative takes its place.
fn promote_alternative(text: String, mut alternatives: Vec<String>) -> (String, Vec<String>) {
    if text.is_empty() && !alternatives.is_empty() {
        let first = alternatives.remove(0);
        (first, alternatives)
    } else {
        (text, alternatives)
    }
}

/// What the events of a suggestion carry (`stats::Meta`).
#[allow(clippy::too_many_arguments)]
fn answer_meta(
    st: &State,
    id: &DocumentId,
    ctx: &CursorContext,
    (trigger, asked_at): (Trigger, Instant),
    source: Source,
    text: &str,
    evaluated_tokens: usize,
    cross_file: bool,
) -> Meta {
    let (file, language) = st.recorder.describe(id);
    let model = crate::models::model_path(
        st.config.model.path.as_deref(),
        st.config.model.preset.name(),
    )
    .file_name()
    .map(|n| n.to_string_lossy().into_owned())
    .unwrap_or_default();
    Meta {
        language,
        model,
        engine: if cfg!(feature = "llama") {
            "llama.cpp"
        } else {
            "none"
        }
        .into(),
        trigger,
        lines: if ctx.stop.multiline {
            Lines::Multi
        } else {
            Lines::Single
        },
        latency_ms: asked_at.elapsed().as_millis() as u64,
        evaluated_tokens: evaluated_tokens as u64,
        chars: text.chars().count() as u64,
        cross_file,
        source,
        file,
    }
}

/// The suggestion now shown at `ctx`, if `text` shows anything.
fn shown(
    id: &DocumentId,
    ctx: &CursorContext,
    text: &str,
    alternatives: &[String],
) -> Option<ShownSuggestion> {
    (!text.is_empty()).then(|| ShownSuggestion {
        document: id.clone(),
        prefix: ctx.prefix.clone(),
        suffix: ctx.suffix.clone(),
        text: text.to_string(),
        alternatives: alternatives.to_vec(),
    })
}

fn cancel_document_requests(
    inflight: &mut HashMap<(DocumentId, RequestKind), CancelFlag>,
    id: &DocumentId,
) {
    inflight.retain(|(d, _), flag| {
        if d == id {
            flag.cancel();
        }
        d != id
    });
}

/// A root for each workspace folder, named after it unless the client
/// named it.
pub fn workspace_root(path: PathBuf, name: Option<String>) -> Root {
    let path = path.canonicalize().unwrap_or(path);
    let name = name
        .filter(|n| !n.is_empty())
        .or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "workspace".into());
    Root { path, name }
}

/// How often the session looks for news of an engine that probes in the
/// background (`Engine::probes_in_background`).
const FAULT_NEWS_POLL: Duration = Duration::from_millis(250);

/// Tells the user of an engine fault once per episode (a remote server
/// down, overloaded, garbled): a message when it begins, a log line when
/// it ends.
fn tell_fault_news(events: &Events, news: Option<FaultNews>) {
    match news {
        Some(FaultNews::Began(why)) => events.message(
            Level::Warning,
            format!("infill: {why}; completions are off until it answers again (retrying)"),
        ),
        Some(FaultNews::Ended) => events.log(
            Level::Info,
            "infill: the inference server answers again".to_string(),
        ),
        None => {}
    }
}

#[cfg(test)]
mod tests;
