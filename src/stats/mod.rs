//! Acceptance and persistence of suggestions, measured on the user's own
//! machine (`infill stats`): the events the server records, the accepted
//! text's range tracked through later edits, its edit similarity at the
//! checkpoints, and the figures made of a store of events.
//!
//! Pure: no I/O, no clock. The session records (`session::stats`), the
//! store reads and writes the file (`session::stats_store`), the binary
//! prints (`infill stats`); times are given to everything here.

pub mod aggregate;
pub mod track;

use serde::{Deserialize, Serialize};

/// The version of an event line; a reader skips lines of other versions.
pub const VERSION: u32 = 1;

/// The default checkpoints after an accept, in seconds: 30 s, 2, 5 and 10
/// minutes.
pub const CHECKPOINTS: &[u64] = &[30, 120, 300, 600];

/// One line of the store. Never file text: the file is a salted hash of its
/// path, everything else is counts, times and names of settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub v: u32,
    /// Unix time, milliseconds.
    pub t: u64,
    /// The server process that recorded it (random), so that a suggestion
    /// is `(session, n)`.
    pub session: String,
    /// The suggestion's number within its session.
    pub n: u64,
    #[serde(flatten)]
    pub what: What,
    #[serde(flatten)]
    pub meta: Meta,
}

/// What happened to a suggestion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum What {
    /// A non-empty suggestion answered for the document version it was
    /// asked at (not overtaken by an edit or a cancellation).
    Shown,
    /// Accepted whole (`partial: false`: the rest of the suggestion) or in
    /// part; `acceptedChars`: characters inserted by this accept.
    #[serde(rename_all = "camelCase")]
    Accepted { accepted_chars: u64, partial: bool },
    /// Replaced by another suggestion, its document closed or the server
    /// ended, never accepted; `typedChars`: how much of it the user typed
    /// by hand before it went.
    #[serde(rename_all = "camelCase")]
    Dismissed { typed_chars: u64 },
    /// A checkpoint after an accept: the edit similarity (0 to 1) of what
    /// stands in the accepted text's range now with what was accepted.
    /// `early`: recorded before its time because the document was closed
    /// (`close`) or the server ended (`exit`): what stood there then.
    #[serde(rename_all = "camelCase")]
    Persisted {
        checkpoint_secs: u64,
        similarity: f64,
        deleted: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        early: Option<Early>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Early {
    Close,
    Exit,
}

/// What is known of a suggestion, carried by each of its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// The editor's language id (`python`, `java`, ...).
    pub language: String,
    /// The model file's name (no directory).
    pub model: String,
    /// `llama.cpp`, or another engine's name.
    pub engine: String,
    pub trigger: Trigger,
    pub lines: Lines,
    /// From the request to the answer.
    pub latency_ms: u64,
    /// Prompt tokens the model evaluated (0 for answers without the model).
    pub evaluated_tokens: u64,
    /// The suggestion's length in characters (when shown).
    pub chars: u64,
    /// Cross-file snippets were in the prompt.
    pub cross_file: bool,
    pub source: Source,
    /// A salted hash of the file's path (never the path).
    pub file: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Trigger {
    /// An inline request the editor made as the user typed.
    Automatic,
    /// An inline request the user asked for.
    Invoked,
    /// A completion list item.
    List,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Lines {
    Single,
    Multi,
}

/// Where the answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Computed by the model for this request.
    Model,
    /// From the recent answers (also what was computed ahead).
    Cache,
    /// The rest of a suggestion the user typed the start of (accepts and
    /// dismissals only: typing through keeps a suggestion shown, it is not
    /// shown again).
    TypedThrough,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Automatic => "automatic",
            Trigger::Invoked => "invoked",
            Trigger::List => "list",
        }
    }
}

impl Lines {
    pub fn name(self) -> &'static str {
        match self {
            Lines::Single => "single",
            Lines::Multi => "multi",
        }
    }
}

/// Parses one line of the store: `None` for a torn line (the process was
/// killed while writing it), another version, or anything else unreadable.
pub fn parse_line(line: &str) -> Option<Event> {
    let event: Event = serde_json::from_str(line.trim()).ok()?;
    (event.v == VERSION).then_some(event)
}

/// 64-bit FNV-1a of `salt` then `text`, as 16 hex digits: file names are
/// stored only as this (the salt is random per user, so the hash of a
/// well-known path cannot be looked up).
pub fn file_hash(salt: &str, text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in salt.bytes().chain([0u8]).chain(text.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn meta() -> Meta {
        Meta {
            language: "python".into(),
            model: "m.gguf".into(),
            engine: "llama.cpp".into(),
            trigger: Trigger::Automatic,
            lines: Lines::Single,
            latency_ms: 120,
            evaluated_tokens: 7,
            chars: 12,
            cross_file: false,
            source: Source::Model,
            file: file_hash("salt", "/a/b.py"),
        }
    }

    #[test]
    fn events_round_trip_as_one_json_line() {
        for what in [
            What::Shown,
            What::Accepted {
                accepted_chars: 4,
                partial: true,
            },
            What::Dismissed { typed_chars: 2 },
            What::Persisted {
                checkpoint_secs: 30,
                similarity: 0.5,
                deleted: false,
                early: Some(Early::Close),
            },
        ] {
            let e = Event {
                v: VERSION,
                t: 1,
                session: "s".into(),
                n: 3,
                what,
                meta: meta(),
            };
            let line = serde_json::to_string(&e).unwrap();
            assert!(!line.contains('\n'));
            assert_eq!(parse_line(&line), Some(e));
        }
    }

    #[test]
    fn torn_and_foreign_lines_are_skipped() {
        let e = Event {
            v: VERSION,
            t: 1,
            session: "s".into(),
            n: 3,
            what: What::Shown,
            meta: meta(),
        };
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(parse_line(&line[..line.len() / 2]), None);
        assert_eq!(parse_line(&line.replace("\"v\":1", "\"v\":99")), None);
        assert_eq!(parse_line(""), None);
    }

    #[test]
    fn file_hashes_depend_on_the_salt() {
        assert_ne!(file_hash("a", "/x.py"), file_hash("b", "/x.py"));
        assert_eq!(file_hash("a", "/x.py"), file_hash("a", "/x.py"));
        assert_eq!(file_hash("a", "/x.py").len(), 16);
    }
}
