//! `infill serve`: the language server over stdio.

mod server;

pub use server::Backend;

use tower_lsp_server::{LspService, Server};

use crate::config::Config;

/// Serves LSP on stdin/stdout until the client sends `exit` or closes stdin.
pub async fn serve_stdio(base: Config) {
    let (service, socket) = LspService::build(move |client| Backend::new(client, base.clone()))
        .custom_method("infill/documentText", Backend::document_text)
        .custom_method("infill/status", Backend::status)
        .finish();
    Server::new(tokio::io::stdin(), tokio::io::stdout(), socket)
        .serve(service)
        .await;
}
