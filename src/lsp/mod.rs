//! `infill serve`: the protocol layer over stdio. LSP types, position
//! encodings and request routing live here; the state and the work live
//! in `session`, which knows nothing of LSP.
//!
//! Invariant: no module outside `lsp` imports tower-lsp, and `lsp` calls
//! only the session's public API (plus `convert`'s core types).

mod client_events;
pub mod convert;
pub mod framing;
mod lifecycle;
mod server;
pub mod transport;

pub use server::LspServer;

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tower_lsp_server::{ClientSocket, LspService, Server};

use crate::config::Config;
use crate::session::EngineStarter;
use lifecycle::Lifecycle;

/// Pipe capacity between the guard in `transport` and tower-lsp.
const PIPE_BYTES: usize = 1 << 20;

/// Messages tower-lsp handles at once. Its default, 4, lets four pending
/// completion requests (waiting for the model) hold up every message after
/// them, the `didChange` that would cancel them included: in a burst of
/// typing each of them then ran its whole prompt before the next edit was
/// even read. Enough room that edits are always read, so that superseded
/// requests are cancelled at once; pending requests cost a few hundred
/// bytes each (a superseded one ends as soon as it is cancelled).
const MAX_CONCURRENT_MESSAGES: usize = 256;

/// Serves LSP on stdin/stdout until the client sends `exit` or closes stdin.
pub async fn serve_stdio(base: Config) {
    let start_engine: EngineStarter = Arc::new(crate::engine::start);
    serve(base, start_engine, tokio::io::stdin(), tokio::io::stdout()).await;
}

/// Serves LSP exactly as `serve_stdio` does, over `input` and `output`, with
/// the engines `start_engine` makes instead of the model (the fuzz target
/// gives it the scripted engine). Not in the shipped binary.
#[cfg(feature = "fuzzing")]
pub async fn serve_with_engine<I, O>(base: Config, start_engine: EngineStarter, input: I, output: O)
where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite + Unpin + Send + 'static,
{
    serve(base, start_engine, input, output).await;
}

/// The service with infill's own methods, and its socket to the client.
fn service(
    base: Config,
    start_engine: EngineStarter,
) -> (Lifecycle<LspService<LspServer>>, ClientSocket) {
    let (service, socket) =
        LspService::build(move |client| LspServer::new(client, base, start_engine))
            .custom_method("infill/documentText", LspServer::document_text)
            .custom_method("infill/status", LspServer::status)
            .custom_method("infill/context", LspServer::context)
            .custom_method("infill/indexCheck", LspServer::index_check)
            .finish();
    (Lifecycle::new(service), socket)
}

/// Serves LSP on `input`/`output` through the guard in `transport` until
/// the client sends `exit` or closes `input`.
async fn serve<I, O>(base: Config, start_engine: EngineStarter, input: I, output: O)
where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite + Unpin + Send + 'static,
{
    let (service, socket) = service(base, start_engine);
    let (to_server, server_in) = tokio::io::duplex(PIPE_BYTES);
    let (server_out, from_server) = tokio::io::duplex(PIPE_BYTES);
    let (replies_tx, replies_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(transport::relay_input(input, to_server, replies_tx));
    let output = tokio::spawn(transport::merge_output(from_server, output, replies_rx));
    Server::new(server_in, server_out, socket)
        .concurrency_level(MAX_CONCURRENT_MESSAGES)
        .serve(service)
        .await;
    // Whatever tower-lsp wrote last (the shutdown response) still goes out.
    let _ = output.await;
}

#[cfg(test)]
mod tests;
