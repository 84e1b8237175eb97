//! The LSP protocol layer: capability negotiation, document sync, request
//! routing. Everything heavy is delegated: text handling to `text`, what to
//! ask and how to clean the answer to `completion`, the model to `engine`
//! (on blocking threads, never on the message loop).
//!
//! Invariant: notification handlers that change documents take the state
//! lock without awaiting first, so edits apply in the order they arrive.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::FutureExt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_lsp_server::gen_lsp_types::*;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::{Client, LanguageServer};

use crate::completion::cache::{self, ResultCache};
use crate::completion::{cursor_context, CursorContext, ShownSuggestion};
use crate::config::{Config, MergeReport};
use crate::engine::{
    self, complete_finished, CancelFlag, CancelOnDrop, Engine, EngineError, EngineState,
};
use crate::lsp::crossfile::{self, uri_to_path, CrossFile};
use crate::retrieval::{Root, Snippet};
use crate::text::document::{Document, TextChange};
use crate::text::position::{from_char_index, LinePosition, PositionEncoding};

pub struct Backend {
    client: Client,
    /// Shared with the warm-start tasks that outlive a handler.
    state: Arc<Mutex<State>>,
    /// The workspace index for cross-file context (its own locks).
    xfile: Arc<CrossFile>,
}

struct State {
    initialized: bool,
    encoding: PositionEncoding,
    config: Config,
    documents: HashMap<String, Document>,
    engine: Option<Arc<dyn Engine>>,
    /// The request in flight per document and kind (inline or list); a
    /// newer one of the same kind cancels it. Kinds are kept apart because
    /// clients may send both on every keystroke.
    inflight: HashMap<(String, RequestKind), CancelFlag>,
    work_done_progress: bool,
    /// The last suggestion answered, for typed-through reuse.
    shown: Option<ShownSuggestion>,
    /// Recent answers by the text around the cursor.
    results: ResultCache,
    /// The warm start in progress, cancelled by any completion request.
    warming: Option<CancelFlag>,
    warm_starts: u64,
    /// Answers computed by the model, answered from `shown`, and answered
    /// from `results`.
    model_answers: u64,
    reused_answers: u64,
    cached_answers: u64,
    /// Token counts and time of the last model answer.
    last_output: Option<crate::engine::EngineOutput>,
    /// Messages found before the client may be told (during `initialize`).
    pending_messages: Vec<(MessageType, String)>,
    /// Workspace folders from `initialize`.
    roots: Vec<Root>,
    /// Whether the client lets us register file watchers.
    watch_files: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum RequestKind {
    Inline,
    List,
}

/// A cleaned completion and where it goes.
struct Answer {
    text: String,
    cursor: Position,
    /// Start of the identifier the cursor is in, for `textDocument/completion`.
    word_start: Position,
    word: String,
}

#[derive(Debug, Deserialize)]
pub struct DocumentTextParams {
    pub uri: String,
}

#[derive(Debug, Serialize)]
pub struct DocumentTextResult {
    pub text: String,
    pub version: i32,
    /// The syntax tree kept for the document, as an S-expression (null for
    /// languages without a grammar), so that tests can compare it with a
    /// fresh parse of `text`.
    pub tree: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextResult {
    pub indexing_done: bool,
    pub indexed_files: usize,
    pub snippets: Vec<Snippet>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusResult {
    /// `loading`, `ready`, `failed` or `none` (before `initialize`).
    pub model: &'static str,
    pub detail: String,
    /// Completions computed by the model.
    pub model_answers: u64,
    /// Completions answered from the suggestion already shown.
    pub reused_answers: u64,
    /// Completions answered from the cache of recent answers.
    pub cached_answers: u64,
    /// Prompts brought into the KV cache after a pause in typing (counted
    /// when done).
    pub warm_starts: u64,
    /// Token counts and time of the last model answer.
    pub last_request: Option<crate::engine::EngineOutput>,
}

impl Backend {
    pub fn new(client: Client, base: Config) -> Backend {
        Backend {
            client,
            state: Arc::new(Mutex::new(State {
                initialized: false,
                encoding: PositionEncoding::Utf16,
                config: base,
                documents: HashMap::new(),
                engine: None,
                inflight: HashMap::new(),
                work_done_progress: false,
                shown: None,
                results: ResultCache::default(),
                warming: None,
                warm_starts: 0,
                model_answers: 0,
                reused_answers: 0,
                cached_answers: 0,
                last_output: None,
                pending_messages: Vec::new(),
                roots: Vec::new(),
                watch_files: false,
            })),
            xfile: Arc::new(CrossFile::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock_state(&self.state)
    }

    /// `infill/documentText`: the server's copy of a document, so that any
    /// client can check that it matches its own.
    pub async fn document_text(&self, params: DocumentTextParams) -> Result<DocumentTextResult> {
        catching("infill/documentText", async move {
            let st = self.lock();
            match st.documents.get(&params.uri) {
                Some(doc) => Ok(DocumentTextResult {
                    text: doc.text().to_string(),
                    version: doc.version,
                    tree: doc
                        .syntax()
                        .and_then(|st| st.tree())
                        .map(|t| t.root_node().to_sexp()),
                }),
                None => Err(Error::invalid_params(format!(
                    "document {} is not open",
                    params.uri
                ))),
            }
        })
        .await
    }

    /// `infill/context`: the snippets cross-file retrieval finds at a
    /// position now (fresh, not the set kept for the line), so that a client
    /// or a test can see what the model would be shown.
    pub async fn context(&self, params: TextDocumentPositionParams) -> Result<ContextResult> {
        let key = params.text_document.uri.0.clone();
        let (prefix, suffix, config) = {
            let st = self.lock();
            let Some(doc) = st.documents.get(&key) else {
                return Err(Error::invalid_params(format!("document {key} is not open")));
            };
            let pos = LinePosition {
                line: params.position.line,
                character: params.position.character,
            };
            let cursor = doc.char_index(pos, st.encoding);
            let ctx = cursor_context(doc.text(), doc.syntax(), cursor, &st.config);
            (ctx.prefix, ctx.suffix, st.config.clone())
        };
        let xfile = self.xfile.clone();
        let line = params.position.line as usize;
        let snippets = tokio::task::spawn_blocking(move || {
            xfile.retrieve(&key, line, &prefix, &suffix, &config)
        })
        .await
        .map_err(|_| Error::internal_error())?;
        Ok(ContextResult {
            indexing_done: self.xfile.indexing_done(),
            indexed_files: self.xfile.index().file_count(),
            snippets,
        })
    }

    /// `infill/status`: whether the model is loaded.
    pub async fn status(&self, _: Option<Value>) -> Result<StatusResult> {
        let (engine, model_answers, reused_answers, cached_answers, warm_starts, last_request) = {
            let st = self.lock();
            (
                st.engine.clone(),
                st.model_answers,
                st.reused_answers,
                st.cached_answers,
                st.warm_starts,
                st.last_output.clone(),
            )
        };
        let (model, detail) = match engine.map(|e| e.state()) {
            None => ("none", String::new()),
            Some(EngineState::Loading) => ("loading", String::new()),
            Some(EngineState::Ready { description }) => ("ready", description),
            Some(EngineState::Failed(why)) => ("failed", why),
        };
        Ok(StatusResult {
            model,
            detail,
            model_answers,
            reused_answers,
            cached_answers,
            warm_starts,
            last_request,
        })
    }

    /// Asks the client to report changes to workspace files.
    async fn register_file_watcher(&self) {
        let options = DidChangeWatchedFilesRegistrationOptions {
            watchers: vec![FileSystemWatcher {
                glob_pattern: GlobPattern::Pattern("**/*".into()),
                kind: None,
            }],
        };
        let registration = Registration {
            id: "infill/watch".into(),
            method: "workspace/didChangeWatchedFiles".into(),
            register_options: serde_json::to_value(options).ok(),
        };
        if let Err(e) = self.client.register_capability(vec![registration]).await {
            tracing::warn!("the client refused file watching: {e}");
        }
    }

    fn report_settings(st: &mut State, report: MergeReport) {
        for key in report.unknown {
            tracing::warn!("ignoring unknown setting `{key}`");
        }
        for err in report.errors {
            st.pending_messages
                .push((MessageType::Error, format!("infill: invalid setting {err}")));
        }
    }

    async fn flush_messages(&self) {
        let messages = std::mem::take(&mut self.lock().pending_messages);
        for (kind, msg) in messages {
            self.client.show_message(kind, msg).await;
        }
    }

    /// Reports the model load: progress while it runs, an error message
    /// once if it fails.
    fn watch_engine(&self, engine: Arc<dyn Engine>) {
        let client = self.client.clone();
        let progress = self.lock().work_done_progress;
        tokio::spawn(async move {
            let token = ProgressToken::String("infill/model-load".into());
            let ongoing = if progress
                && client
                    .create_work_done_progress(token.clone())
                    .await
                    .is_ok()
            {
                Some(
                    client
                        .progress(token, "infill: loading model")
                        .begin()
                        .await,
                )
            } else {
                None
            };
            let waited = tokio::task::spawn_blocking(move || {
                engine.wait_ready(Duration::from_secs(24 * 3600))
            })
            .await;
            let state = waited
                .unwrap_or_else(|e| EngineState::Failed(format!("model loader crashed: {e}")));
            if let Some(p) = ongoing {
                p.finish().await;
            }
            match state {
                EngineState::Failed(why) => {
                    client
                        .show_message(MessageType::Error, format!("infill: {why}"))
                        .await
                }
                EngineState::Ready { description } => {
                    client
                        .log_message(
                            MessageType::Info,
                            format!("infill: model ready: {description}"),
                        )
                        .await
                }
                EngineState::Loading => {}
            }
        });
    }

    fn apply_did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.text_document_identifier.uri.0.clone();
        let changes: Vec<TextChange> = params
            .content_changes
            .into_iter()
            .map(text_change)
            .collect();
        let mut st = self.lock();
        let enc = st.encoding;
        match st.documents.get_mut(&uri) {
            Some(doc) => {
                doc.apply_changes(params.text_document.version, &changes, enc);
                // Rope and tree clones are O(1): the copy to text happens after the debounce.
                self.xfile
                    .changed(&uri, doc.text().clone(), crossfile::tree_of(doc));
                schedule_warm_start(
                    self.state.clone(),
                    self.xfile.clone(),
                    uri.clone(),
                    doc.version,
                );
            }
            None => tracing::warn!("didChange for a document that is not open: {uri}"),
        }
        // The text under any request in flight is gone: stop it.
        cancel_document_requests(&mut st.inflight, &uri);
    }

    /// Runs the completion pipeline at `position` of `uri`.
    /// `automatic`: the editor asked by itself, not at the user's request;
    /// such requests are not answered where a suggestion would not help.
    async fn complete_at(
        &self,
        uri: &Uri,
        position: Position,
        automatic: bool,
        kind: RequestKind,
    ) -> Result<Option<Answer>> {
        let key = uri.0.clone();
        let line = position.line as usize;
        let flight = (key.clone(), kind);
        let (ctx, config, engine, cursor, word_start, word, flag) = {
            let mut st = self.lock();
            // A real request goes before any warm start.
            if let Some(warming) = st.warming.take() {
                warming.cancel();
            }
            let enc = st.encoding;
            let Some(doc) = st.documents.get(&key) else {
                return Err(Error::invalid_params(format!("document {key} is not open")));
            };
            let pos = LinePosition {
                line: position.line,
                character: position.character,
            };
            let cursor = doc.char_index(pos, enc);
            let text = doc.text();
            let word_len = text
                .chars_at(cursor)
                .reversed()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .count();
            let word = text.slice(cursor - word_len..cursor).to_string();
            let word_start = lsp_position(from_char_index(text, cursor - word_len, enc));
            let cursor_pos = lsp_position(from_char_index(text, cursor, enc));
            let ctx: CursorContext = cursor_context(text, doc.syntax(), cursor, &st.config);
            if automatic {
                if let Some(skip) = ctx.automatic_skip(&st.config) {
                    tracing::debug!("no automatic completion here: {skip:?}");
                    return Ok(None);
                }
            }
            let reusable = st
                .shown
                .as_ref()
                .and_then(|shown| shown.rest_after_typing(&key, &ctx));
            if let Some(rest) = reusable {
                // The user typed the start of what is shown: the rest stands.
                st.reused_answers += 1;
                if let Some(previous) = st.inflight.remove(&flight) {
                    previous.cancel();
                }
                return Ok(Some(Answer {
                    text: rest,
                    cursor: cursor_pos,
                    word_start,
                    word,
                }));
            }
            let cache_key = cache::Key::new(&key, &ctx);
            if let Some(text) = st.results.get(cache_key) {
                st.cached_answers += 1;
                if let Some(previous) = st.inflight.remove(&flight) {
                    previous.cancel();
                }
                st.shown = (!text.is_empty()).then(|| ShownSuggestion {
                    uri: key.clone(),
                    prefix: ctx.prefix.clone(),
                    suffix: ctx.suffix.clone(),
                    text: text.clone(),
                });
                return Ok((!text.is_empty()).then_some(Answer {
                    text,
                    cursor: cursor_pos,
                    word_start,
                    word,
                }));
            }
            let config = st.config.clone();
            let engine = st.engine.clone();
            let flag = CancelFlag::default();
            if let Some(previous) = st.inflight.insert(flight.clone(), flag.clone()) {
                previous.cancel();
            }
            (ctx, config, engine, cursor_pos, word_start, word, flag)
        };
        let Some(engine) = engine else {
            return Ok(None);
        };
        let key_for_context = key.clone();
        // Dropped when this handler is dropped ($/cancelRequest) or done.
        let guard = CancelOnDrop(flag.clone());
        let mut req = ctx.engine_request(&config);
        let wait = Duration::from_millis(config.completion.load_wait_ms);
        let xfile = self.xfile.clone();
        let finish_ctx = ctx.clone();
        let result = tokio::task::spawn_blocking(move || {
            if engine.wait_ready(wait) == EngineState::Loading {
                return Err(EngineError::Loading);
            }
            req.context =
                xfile.context_for(&key_for_context, line, &req.prefix, &req.suffix, &config);
            let second_try = config.completion.second_try;
            complete_finished(engine.as_ref(), &finish_ctx, req, &flag, second_try)
        })
        .await;
        drop(guard);
        {
            let mut st = self.lock();
            if st.inflight.get(&flight).is_some_and(|f| f.is_cancelled()) {
                st.inflight.remove(&flight);
            }
        }
        let done = match result {
            Ok(Ok(done)) => done,
            Ok(Err(EngineError::Cancelled)) => return Err(Error::request_cancelled()),
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
                return Err(Error::internal_error());
            }
        };
        let second_try = done.second_try();
        let (output, text) = (done.output, done.text);
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
        {
            let mut st = self.lock();
            st.model_answers += 1;
            st.last_output = Some(output.clone());
            // An answer cut short by the time budget is not the model's
            // full answer: do not serve it again.
            if !output.cut_by_time {
                st.results.put(cache::Key::new(&key, &ctx), text.clone());
            }
            st.shown = (!text.is_empty()).then(|| ShownSuggestion {
                uri: key.clone(),
                prefix: ctx.prefix.clone(),
                suffix: ctx.suffix.clone(),
                text: text.clone(),
            });
        }
        if text.is_empty() {
            return Ok(None);
        }
        Ok(Some(Answer {
            text,
            cursor,
            word_start,
            word,
        }))
    }
}

fn lock_state(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A handler that panicked while holding the lock leaves the state as
    // it was between two whole operations; keep serving it.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Warm start: once the user has paused this long after an edit, the
/// prompt at the edit is brought into the KV cache, so that the next
/// keystroke there evaluates only its own tokens.
const WARM_AFTER_PAUSE: Duration = Duration::from_millis(300);

/// After a pause in editing `uri` (still at `version`), evaluates the prompt
/// at the last edit without generating. Skipped when a request for the
/// document is in flight (it warms the cache itself), where an automatic
/// request would not be answered, or when the model is not ready. Any
/// completion request cancels it.
fn schedule_warm_start(state: Arc<Mutex<State>>, xfile: Arc<CrossFile>, uri: String, version: i32) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        tokio::time::sleep(WARM_AFTER_PAUSE).await;
        let job = {
            let mut st = lock_state(&state);
            let busy = [RequestKind::Inline, RequestKind::List]
                .iter()
                .filter_map(|k| st.inflight.get(&(uri.clone(), *k)))
                .any(|f| !f.is_cancelled());
            let ready = st
                .engine
                .as_ref()
                .is_some_and(|e| matches!(e.state(), EngineState::Ready { .. }));
            let Some(doc) = st.documents.get(&uri).filter(|d| d.version == version) else {
                return;
            };
            let Some(cursor) = doc.last_edit() else {
                return;
            };
            if busy || !ready {
                return;
            }
            let ctx = cursor_context(doc.text(), doc.syntax(), cursor, &st.config);
            if ctx.automatic_skip(&st.config).is_some() {
                return;
            }
            let line = doc.text().char_to_line(cursor);
            let mut req = ctx.engine_request(&st.config);
            req.evaluate_only = true;
            let flag = CancelFlag::default();
            if let Some(previous) = st.warming.replace(flag.clone()) {
                previous.cancel();
            }
            (st.engine.clone(), req, flag, st.config.clone(), line)
        };
        let (Some(engine), mut req, flag, config, line) = job else {
            return;
        };
        let done = tokio::task::spawn_blocking(move || {
            req.context = xfile.context_for(&uri, line, &req.prefix, &req.suffix, &config);
            engine.complete(req, flag)
        })
        .await;
        if let Ok(Ok(_)) = done {
            lock_state(&state).warm_starts += 1;
        }
    });
}

/// Workspace folders of `initialize` (or its older `rootUri`), as roots
/// named after their folders.
#[allow(deprecated)]
fn workspace_roots(params: &InitializeParams) -> Vec<Root> {
    let listed = match &params.workspace_folders_initialize_params.workspace_folders {
        Some(WorkspaceFolders::WorkspaceFolderList(f)) => f.as_slice(),
        _ => &[],
    };
    let folders: Vec<(String, Option<String>)> = match listed {
        f if !f.is_empty() => f
            .iter()
            .map(|w| (w.uri.0.clone(), Some(w.name.clone())))
            .collect(),
        _ => params
            .root_uri
            .iter()
            .map(|u| (u.0.clone(), None))
            .collect(),
    };
    folders
        .into_iter()
        .filter_map(|(uri, name)| {
            let path = uri_to_path(&uri)?;
            let path = path.canonicalize().unwrap_or(path);
            let name = name
                .filter(|n| !n.is_empty())
                .or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "workspace".into());
            Some(Root { path, name })
        })
        .collect()
}

fn cancel_document_requests(inflight: &mut HashMap<(String, RequestKind), CancelFlag>, uri: &str) {
    inflight.retain(|(u, _), flag| {
        if u == uri {
            flag.cancel();
        }
        u != uri
    });
}

/// Runs a request handler; a panic in it is logged and answered as an
/// internal error instead of taking the server down.
async fn catching<T>(what: &str, fut: impl Future<Output = Result<T>>) -> Result<T> {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            tracing::error!("{what} panicked: {}", panic_message(&*panic));
            Err(Error::internal_error())
        }
    }
}

/// Runs a notification handler; a panic in it is logged.
fn catching_notification(what: &str, f: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(f)) {
        tracing::error!("{what} panicked: {}", panic_message(&*panic));
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Exits when the editor process dies, as LSP asks: an orphaned server
/// would otherwise hold the model in memory forever.
fn watch_parent(pid: i32) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if !process_alive(pid) {
                tracing::warn!("the editor process {pid} is gone: exiting");
                std::process::exit(1);
            }
        }
    });
}

/// Whether the editor process that started us still runs.
fn process_alive(pid: i32) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

fn lsp_position(p: LinePosition) -> Position {
    Position {
        line: p.line,
        character: p.character,
    }
}

fn text_change(event: TextDocumentContentChangeEvent) -> TextChange {
    match event {
        TextDocumentContentChangeEvent::TextDocumentContentChangePartial(p) => TextChange {
            range: Some((
                LinePosition {
                    line: p.range.start.line,
                    character: p.range.start.character,
                },
                LinePosition {
                    line: p.range.end.line,
                    character: p.range.end.character,
                },
            )),
            text: p.text,
        },
        TextDocumentContentChangeEvent::TextDocumentContentChangeWholeDocument(w) => TextChange {
            range: None,
            text: w.text,
        },
    }
}

/// The `path` part of a `file:` URI, for language detection and messages.
fn uri_path(uri: &str) -> &str {
    uri.strip_prefix("file://").unwrap_or(uri)
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let encoding = {
            let mut st = self.lock();
            if st.initialized {
                return Err(Error::invalid_params("initialize was already called"));
            }
            st.initialized = true;
            let offered: Vec<String> = params
                .capabilities
                .general
                .as_ref()
                .and_then(|g| g.position_encodings.clone())
                .unwrap_or_default()
                .into_iter()
                .map(String::from)
                .collect();
            st.encoding = PositionEncoding::negotiate(offered.iter().map(String::as_str));
            if let Some(opts) = &params.initialization_options {
                let report = st.config.merge_json(opts);
                Self::report_settings(&mut st, report);
            }
            if let Some(pid) = params.process_id {
                watch_parent(pid);
            }
            st.work_done_progress = params
                .capabilities
                .window
                .as_ref()
                .and_then(|w| w.work_done_progress)
                .unwrap_or(false);
            st.watch_files = params
                .capabilities
                .workspace
                .as_ref()
                .and_then(|w| w.did_change_watched_files.as_ref())
                .and_then(|d| d.dynamic_registration)
                .unwrap_or(false);
            st.roots = workspace_roots(&params);
            st.encoding
        };
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                position_encoding: Some(PositionEncodingKind::from(
                    encoding.lsp_name().to_string(),
                )),
                text_document_sync: Some(
                    TextDocumentSyncOptions {
                        open_close: Some(true),
                        change: Some(TextDocumentSyncKind::Incremental),
                        save: Some(Save::Bool(true)),
                        ..Default::default()
                    }
                    .into(),
                ),
                completion_provider: Some(CompletionOptions::default()),
                inline_completion_provider: Some(true.into()),
                ..Default::default()
            },
            server_info: Some(ServerInfo {
                name: "infill".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        let (engine, watch) = {
            let mut st = self.lock();
            let engine = engine::start(&st.config);
            st.engine = Some(engine.clone());
            if st.config.context.cross_file {
                self.xfile.start(
                    self.client.clone(),
                    st.roots.clone(),
                    &st.config,
                    st.work_done_progress,
                );
            }
            (engine, st.watch_files && !st.roots.is_empty())
        };
        self.watch_engine(engine);
        if watch {
            self.register_file_watcher().await;
        }
        self.flush_messages().await;
    }

    async fn shutdown(&self) -> Result<()> {
        let mut st = self.lock();
        for flag in st.inflight.values() {
            flag.cancel();
        }
        st.inflight.clear();
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        catching_notification("didOpen", || {
            let item = params.text_document;
            let uri = item.uri.0.clone();
            let language_id = String::from(item.language_id);
            let doc = Document::new(uri_path(&uri), Some(&language_id), item.version, &item.text);
            self.xfile
                .opened(&uri, doc.text().clone(), crossfile::tree_of(&doc));
            self.lock().documents.insert(uri, doc);
        });
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        catching_notification("didChange", || self.apply_did_change(params));
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        let uri = params.text_document.uri.0.clone();
        let st = self.lock();
        if let Some(doc) = st.documents.get(&uri) {
            self.xfile.saved(&uri, doc.text().clone());
        }
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        self.xfile.files_changed(params.changes);
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        catching_notification("didClose", || {
            let uri = params.text_document.uri.0.clone();
            let mut st = self.lock();
            st.documents.remove(&uri);
            self.xfile.closed(&uri);
            cancel_document_requests(&mut st.inflight, &uri);
        });
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        let restarted = {
            let mut st = self.lock();
            let before = st.config.clone();
            let report = st.config.merge_json(&params.settings);
            Self::report_settings(&mut st, report);
            if st.config != before {
                // Answers depend on the settings (budgets, layout, model).
                st.results.clear();
                st.shown = None;
            }
            if st.initialized && st.config.context.cross_file && !before.context.cross_file {
                self.xfile.start(
                    self.client.clone(),
                    st.roots.clone(),
                    &st.config,
                    st.work_done_progress,
                );
            }
            if st.initialized && before.model_changed(&st.config) {
                tracing::info!("model settings changed: reloading the model");
                let engine = engine::start(&st.config);
                st.engine = Some(engine.clone());
                Some(engine)
            } else {
                None
            }
        };
        if let Some(engine) = restarted {
            self.watch_engine(engine);
        }
        self.flush_messages().await;
    }

    async fn inline_completion(
        &self,
        params: InlineCompletionParams,
    ) -> Result<Option<InlineCompletionResponse>> {
        catching("inlineCompletion", async move {
            let at = params.text_document_position_params;
            let automatic = params.context.trigger_kind == InlineCompletionTriggerKind::Automatic;
            let items = match self
                .complete_at(
                    &at.text_document.uri,
                    at.position,
                    automatic,
                    RequestKind::Inline,
                )
                .await?
            {
                Some(answer) => vec![InlineCompletionItem {
                    insert_text: InsertText::String(answer.text),
                    filter_text: None,
                    range: Some(Range {
                        start: answer.cursor,
                        end: answer.cursor,
                    }),
                    command: None,
                }],
                None => Vec::new(),
            };
            Ok(Some(InlineCompletionList { items }.into()))
        })
        .await
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        catching("completion", async move {
            let at = params.text_document_position_params;
            // Completion lists are requested as the user types, whatever the
            // trigger kind says: treat them all as automatic.
            let items = match self
                .complete_at(&at.text_document.uri, at.position, true, RequestKind::List)
                .await?
            {
                Some(answer) => {
                    // The edit replaces the identifier being typed, and the
                    // filter text starts with it, so clients that filter items
                    // by the word at the cursor keep this one.
                    let full = format!("{}{}", answer.word, answer.text);
                    let label: String = full
                        .lines()
                        .map(str::trim)
                        .find(|l| !l.is_empty())
                        .unwrap_or("")
                        .chars()
                        .take(80)
                        .collect();
                    vec![CompletionItem {
                        label,
                        kind: Some(CompletionItemKind::Text),
                        detail: Some("infill".into()),
                        filter_text: Some(full.clone()),
                        text_edit: Some(CompletionItemTextEdit::TextEdit(TextEdit {
                            range: Range {
                                start: answer.word_start,
                                end: answer.cursor,
                            },
                            new_text: full,
                        })),
                        preselect: Some(true),
                        ..Default::default()
                    }]
                }
                None => Vec::new(),
            };
            Ok(Some(
                CompletionList {
                    is_incomplete: true,
                    items,
                    ..Default::default()
                }
                .into(),
            ))
        })
        .await
    }
}
