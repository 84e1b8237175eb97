//! The LSP handlers: capability negotiation, then for each message convert
//! (`convert`) → the session → convert back. State and work live in the
//! session; this file only routes.
//!
//! Invariant: notification handlers that change documents call the session
//! without awaiting first, so edits apply in the order they arrive.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::AbortHandle;
use tower_lsp_server::gen_lsp_types::*;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::{Client, LanguageServer};

use super::{client_events, convert};
use crate::config::Config;
use crate::session::events::{Event, Events};
use crate::session::{
    ClientSetup, ContextReport, EngineStarter, IndexCheck, RequestKind, Session, Status,
};
use crate::text::position::PositionEncoding;

pub struct LspServer {
    client: Client,
    session: Session,
    /// Set by `initialize`; a second one is refused.
    initialized: Mutex<bool>,
    /// Client capabilities `initialized` needs.
    capabilities: Mutex<Negotiated>,
    /// The session's events, until `initialized` starts forwarding them.
    events: Mutex<Option<UnboundedReceiver<Event>>>,
    /// Tasks that talk to the client or watch the editor: they end with
    /// the server (after `exit`), whatever they wait for.
    tasks: Mutex<Vec<AbortHandle>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Negotiated {
    work_done_progress: bool,
    watch_files: bool,
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

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LspServer {
    /// A server for `client` with `base` settings, whose session starts its
    /// engines with `start_engine` (`engine::start`: the model).
    pub fn new(client: Client, base: Config, start_engine: EngineStarter) -> LspServer {
        let (events, receiver) = Events::channel();
        LspServer {
            client,
            session: Session::new(base, events, start_engine),
            initialized: Mutex::new(false),
            capabilities: Mutex::new(Negotiated::default()),
            events: Mutex::new(Some(receiver)),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Runs `task` until it ends or the server is dropped.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task).abort_handle();
        let mut tasks = locked(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    /// `infill/documentText`: the server's copy of a document, so that any
    /// client can check that it matches its own.
    pub async fn document_text(&self, params: DocumentTextParams) -> Result<DocumentTextResult> {
        catching("infill/documentText", async move {
            let id = convert::document_id(&Uri(params.uri));
            let doc = self.session.document(&id).map_err(convert::error)?;
            Ok(DocumentTextResult {
                text: doc.text,
                version: doc.version,
                tree: doc.tree,
            })
        })
        .await
    }

    /// `infill/context`: the snippets cross-file retrieval finds at a
    /// position now, so that a client or a test can see what the model
    /// would be shown.
    pub async fn context(&self, params: TextDocumentPositionParams) -> Result<ContextReport> {
        let id = convert::document_id(&params.text_document.uri);
        let position = convert::line_position(params.position);
        self.session
            .context(&id, position)
            .await
            .map_err(convert::error)
    }

    /// `infill/indexCheck`: how the workspace index compares with indexing
    /// the workspace afresh now, so that a client or a test can check that
    /// the live updates kept it right.
    pub async fn index_check(&self, _: Option<Value>) -> Result<IndexCheck> {
        self.session.index_check().await.map_err(convert::error)
    }

    /// `infill/status`: whether the model is loaded, and how requests
    /// were answered.
    pub async fn status(&self, _: Option<Value>) -> Result<Status> {
        Ok(self.session.status())
    }

    async fn complete(
        &self,
        at: TextDocumentPositionParams,
        automatic: bool,
        kind: RequestKind,
    ) -> Result<Option<crate::session::Answer>> {
        let id = convert::document_id(&at.text_document.uri);
        let position = convert::line_position(at.position);
        self.session
            .complete(&id, position, automatic, kind)
            .await
            .map_err(convert::error)
    }
}

/// Asks the client to report changes to workspace files.
async fn register_file_watcher(client: Client) {
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
    if let Err(e) = client.register_capability(vec![registration]).await {
        tracing::warn!("the client refused file watching: {e}");
    }
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
async fn watch_parent(pid: i32) {
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if !process_alive(pid) {
            tracing::warn!("the editor process {pid} is gone: exiting");
            std::process::exit(1);
        }
    }
}

/// Whether the editor process that started us still runs.
fn process_alive(pid: i32) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

impl Drop for LspServer {
    fn drop(&mut self) {
        for task in locked(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

impl LanguageServer for LspServer {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        {
            let mut initialized = locked(&self.initialized);
            if *initialized {
                return Err(Error::invalid_params("initialize was already called"));
            }
            *initialized = true;
        }
        let offered: Vec<String> = params
            .capabilities
            .general
            .as_ref()
            .and_then(|g| g.position_encodings.clone())
            .unwrap_or_default()
            .into_iter()
            .map(String::from)
            .collect();
        let encoding = PositionEncoding::negotiate(offered.iter().map(String::as_str));
        if let Some(pid) = params.process_id {
            self.spawn(watch_parent(pid));
        }
        *locked(&self.capabilities) = Negotiated {
            work_done_progress: params
                .capabilities
                .window
                .as_ref()
                .and_then(|w| w.work_done_progress)
                .unwrap_or(false),
            watch_files: params
                .capabilities
                .workspace
                .as_ref()
                .and_then(|w| w.did_change_watched_files.as_ref())
                .and_then(|d| d.dynamic_registration)
                .unwrap_or(false),
        };
        self.session.connect(ClientSetup {
            encoding,
            roots: convert::workspace_roots(&params),
            settings: params.initialization_options.clone(),
        });
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
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: vec![convert::ACCEPTED_COMMAND.into()],
                    ..Default::default()
                }),
                ..Default::default()
            },
            server_info: Some(ServerInfo {
                name: "infill".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        let negotiated = *locked(&self.capabilities);
        if let Some(events) = locked(&self.events).take() {
            self.spawn(client_events::forward(
                self.client.clone(),
                events,
                negotiated.work_done_progress,
            ));
        }
        self.session.start();
        // Not awaited here: a client that does not answer (or sends `exit`
        // first) would hold this handler, and tower-lsp does not end after
        // `exit` until every handler has.
        if negotiated.watch_files && !self.session.roots().is_empty() {
            self.spawn(register_file_watcher(self.client.clone()));
        }
    }

    async fn shutdown(&self) -> Result<()> {
        self.session.shutdown();
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        catching_notification("didOpen", || {
            let item = params.text_document;
            let language_id = String::from(item.language_id);
            self.session.open(
                convert::document_id(&item.uri),
                &language_id,
                item.version,
                &item.text,
            );
        });
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        catching_notification("didChange", || {
            let document = params.text_document;
            let changes: Vec<_> = params
                .content_changes
                .into_iter()
                .map(convert::text_change)
                .collect();
            let id = convert::document_id(&document.text_document_identifier.uri);
            self.session.change(&id, document.version, &changes);
        });
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        self.session
            .save(&convert::document_id(&params.text_document.uri));
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        self.session
            .files_changed(convert::file_changes(params.changes));
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        catching_notification("didClose", || {
            self.session
                .close(&convert::document_id(&params.text_document.uri));
        });
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        self.session.configure(&params.settings);
    }

    async fn inline_completion(
        &self,
        params: InlineCompletionParams,
    ) -> Result<Option<InlineCompletionResponse>> {
        catching("inlineCompletion", async move {
            let automatic = params.context.trigger_kind == InlineCompletionTriggerKind::Automatic;
            let answer = self
                .complete(
                    params.text_document_position_params,
                    automatic,
                    RequestKind::Inline,
                )
                .await?;
            Ok(Some(convert::inline_items(answer).into()))
        })
        .await
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<Value>> {
        catching("executeCommand", async move {
            let (id, length) = convert::accepted_params(&params)?;
            // An unknown number (too old, or made up) is answered as bad
            // parameters; nothing is recorded.
            self.session.accepted(id, length).map_err(convert::error)?;
            Ok(None)
        })
        .await
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        catching("completion", async move {
            // Completion lists are requested as the user types, whatever the
            // trigger kind says: treat them all as automatic.
            let answer = self
                .complete(
                    params.text_document_position_params,
                    true,
                    RequestKind::List,
                )
                .await?;
            Ok(Some(convert::list_items(answer).into()))
        })
        .await
    }
}
