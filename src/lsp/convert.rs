//! Every conversion between LSP's types and the session's, in one place
//! (as rust-analyzer's `from_proto`/`to_proto`): URIs to document ids and
//! paths, positions, content changes, file events, answers to inline and
//! list items, session errors to JSON-RPC errors.

use std::path::PathBuf;

use tower_lsp_server::gen_lsp_types::*;
use tower_lsp_server::jsonrpc::Error;

use crate::retrieval::Root;
use crate::session::events::Level;
use crate::session::{self, Answer, DocumentId, FileChange, RequestError};
use crate::text::document::TextChange;
use crate::text::position::LinePosition;

/// The file path of a `file:` URI (percent-decoded), `None` for other schemes.
pub fn uri_to_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok().map(PathBuf::from)
}

pub fn document_id(uri: &Uri) -> DocumentId {
    DocumentId::new(&uri.0, uri_to_path(&uri.0))
}

pub fn line_position(p: Position) -> LinePosition {
    LinePosition {
        line: p.line,
        character: p.character,
    }
}

pub fn position(p: LinePosition) -> Position {
    Position {
        line: p.line,
        character: p.character,
    }
}

pub fn text_change(event: TextDocumentContentChangeEvent) -> TextChange {
    match event {
        TextDocumentContentChangeEvent::TextDocumentContentChangePartial(p) => TextChange {
            range: Some((line_position(p.range.start), line_position(p.range.end))),
            text: p.text,
        },
        TextDocumentContentChangeEvent::TextDocumentContentChangeWholeDocument(w) => TextChange {
            range: None,
            text: w.text,
        },
    }
}

pub fn file_changes(events: Vec<FileEvent>) -> Vec<FileChange> {
    events
        .into_iter()
        .filter_map(|e| {
            let path = uri_to_path(&e.uri.0)?;
            Some(if e.kind == FileChangeType::Deleted {
                FileChange::Deleted(path)
            } else {
                FileChange::Changed(path)
            })
        })
        .collect()
}

/// Workspace folders of `initialize` (or its older `rootUri`), as roots
/// named after their folders.
#[allow(deprecated)]
pub fn workspace_roots(params: &InitializeParams) -> Vec<Root> {
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
        .filter_map(|(uri, name)| Some(session::workspace_root(uri_to_path(&uri)?, name)))
        .collect()
}

pub fn message_type(level: Level) -> MessageType {
    match level {
        Level::Error => MessageType::Error,
        Level::Warning => MessageType::Warning,
        Level::Info => MessageType::Info,
    }
}

pub fn error(e: RequestError) -> Error {
    match e {
        RequestError::NotOpen(_) | RequestError::Invalid(_) => Error::invalid_params(e.to_string()),
        RequestError::Cancelled => Error::request_cancelled(),
        RequestError::Internal(why) => {
            tracing::error!("{why}");
            Error::internal_error()
        }
    }
}

/// An answer as ghost text at the cursor: one item for it and one for
/// each alternative after it (`completion.candidates`), which editors
/// cycle through. Only the first carries the accepted command.
pub fn inline_items(answer: Option<Answer>) -> InlineCompletionList {
    let Some(answer) = answer else {
        return InlineCompletionList { items: Vec::new() };
    };
    let at = Range {
        start: position(answer.cursor),
        end: position(answer.cursor),
    };
    let first = InlineCompletionItem {
        insert_text: InsertText::String(answer.text),
        filter_text: None,
        range: Some(at),
        command: answer.id.map(accepted_command),
    };
    let others = answer
        .alternatives
        .into_iter()
        .map(|text| InlineCompletionItem {
            insert_text: InsertText::String(text),
            filter_text: None,
            range: Some(at),
            command: None,
        });
    InlineCompletionList {
        items: std::iter::once(first).chain(others).collect(),
    }
}

/// The command a client runs when it accepts a suggestion: LSP 3.18 runs
/// an inline item's command after inserting it, and a completion item's.
pub const ACCEPTED_COMMAND: &str = "infill.accepted";

fn accepted_command(id: u64) -> Command {
    Command {
        title: "infill: suggestion accepted".into(),
        command: ACCEPTED_COMMAND.into(),
        arguments: Some(vec![serde_json::json!({ "id": id })]),
        tooltip: None,
    }
}

/// The suggestion number and accepted length (chars; none: the whole
/// rest) of an `infill.accepted` command: `[{"id": N, "length": L}]`.
pub fn accepted_params(params: &ExecuteCommandParams) -> Result<(u64, Option<u64>), Error> {
    if params.command != ACCEPTED_COMMAND {
        return Err(Error::invalid_params(format!(
            "unknown command `{}`",
            params.command
        )));
    }
    let arg = params.arguments.as_ref().and_then(|a| a.first());
    let id = arg
        .and_then(|a| a.get("id"))
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| Error::invalid_params("infill.accepted needs [{\"id\": N}]"))?;
    let length = match arg.and_then(|a| a.get("length")) {
        None | Some(serde_json::Value::Null) => None,
        Some(l) => Some(l.as_u64().ok_or_else(|| {
            Error::invalid_params("infill.accepted: `length` must be a whole number")
        })?),
    };
    Ok((id, length))
}

/// An answer as completion list items: one, then one for each
/// alternative (`completion.candidates`), in their order.
pub fn list_items(answer: Option<Answer>) -> CompletionList {
    let items = answer
        .map(|answer| {
            let texts = std::iter::once(answer.text.clone()).chain(answer.alternatives.clone());
            texts
                .enumerate()
                .map(|(i, text)| list_item(&answer, text, i))
                .collect()
        })
        .unwrap_or_default();
    CompletionList {
        is_incomplete: true,
        items,
        ..Default::default()
    }
}

/// Answer `text` of `answer` as the `rank`th list item (0: the answer).
fn list_item(answer: &Answer, text: String, rank: usize) -> CompletionItem {
    // The edit replaces the identifier being typed, and the
    // filter text starts with it, so clients that filter items
    // by the word at the cursor keep this one.
    let full = format!("{}{}", answer.word, text);
    let label: String = full
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(80)
        .collect();
    CompletionItem {
        label,
        kind: Some(CompletionItemKind::Text),
        detail: Some("infill".into()),
        filter_text: Some(full.clone()),
        // Kept in the model's order by clients that sort.
        sort_text: (!answer.alternatives.is_empty()).then(|| format!("{rank}")),
        text_edit: Some(CompletionItemTextEdit::TextEdit(TextEdit {
            range: Range {
                start: position(answer.word_start),
                end: position(answer.cursor),
            },
            new_text: full,
        })),
        preselect: Some(rank == 0),
        command: answer.id.filter(|_| rank == 0).map(accepted_command),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_to_paths() {
        assert_eq!(
            uri_to_path("file:///a/b%20c/d.py"),
            Some(PathBuf::from("/a/b c/d.py"))
        );
        assert_eq!(uri_to_path("file:///x%2"), Some(PathBuf::from("/x%2")));
        assert_eq!(uri_to_path("untitled:1"), None);
    }
}
