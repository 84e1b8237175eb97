//! Forwards the session's events to the client: `$/progress` (where the
//! client supports it and accepted the token), `window/showMessage` and
//! `window/logMessage`. One task, in order, started once the client is
//! initialized (LSP allows no such messages before); events from before
//! wait in the channel.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;
use tower_lsp_server::gen_lsp_types::{
    ProgressNotification, ProgressParams, ProgressToken, WorkDoneProgressBegin,
    WorkDoneProgressEnd, WorkDoneProgressReport,
};
use tower_lsp_server::Client;

use super::convert::message_type;
use crate::session::events::{Event, ProgressStep};

/// How long the client may take to accept a progress token. Events go out
/// in order behind that request, so a client that never answered it would
/// hold back every later one (a failed model's error message among them);
/// past this the token counts as refused and its steps are dropped.
const ACCEPT_PROGRESS_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs until the session is gone. `progress`: the client takes
/// `$/progress` (`window.workDoneProgress`).
pub async fn forward(client: Client, mut events: UnboundedReceiver<Event>, progress: bool) {
    // Tokens the client accepted; steps of others are dropped.
    let mut begun: HashSet<&'static str> = HashSet::new();
    while let Some(event) = events.recv().await {
        match event {
            Event::Message { level, text } => client.show_message(message_type(level), text).await,
            Event::Log { level, text } => client.log_message(message_type(level), text).await,
            Event::Progress { token, step } if progress => {
                let lsp_token = ProgressToken::String(token.into());
                let value = match step {
                    ProgressStep::Begin { title, percentage } => {
                        let accepted = tokio::time::timeout(
                            ACCEPT_PROGRESS_TIMEOUT,
                            client.create_work_done_progress(lsp_token.clone()),
                        )
                        .await;
                        if !matches!(accepted, Ok(Ok(()))) {
                            continue;
                        }
                        begun.insert(token);
                        json!(WorkDoneProgressBegin {
                            title,
                            cancellable: Some(false),
                            message: None,
                            percentage,
                        })
                    }
                    ProgressStep::Report {
                        message,
                        percentage,
                    } if begun.contains(token) => json!(WorkDoneProgressReport {
                        message: Some(message),
                        percentage: Some(percentage),
                        ..Default::default()
                    }),
                    ProgressStep::End { message } if begun.remove(token) => {
                        json!(WorkDoneProgressEnd { message })
                    }
                    _ => continue,
                };
                client
                    .send_notification::<ProgressNotification>(ProgressParams {
                        token: lsp_token,
                        value,
                    })
                    .await;
            }
            Event::Progress { .. } => {}
        }
    }
}
