//! Cross-file retrieval: an in-memory index of the workspace's chunks
//! (BM25) and symbols, kept current file by file, and the choice of what
//! to show the model for one cursor position.
//!
//! Pure: the index is given file texts (by `workspace` or by the editor's
//! buffers) and never reads the disk itself.
//!
//! `outline` cuts one file into chunks and symbols; `index` keeps them for
//! every file; `query` chooses what to show for a cursor position and
//! `render` turns a symbol or chunk into the text shown; `memo` keeps one
//! line's choice while the user types on it; `recent` is the code around
//! the user's recent edits that `query` ranks with the BM25 chunks.

pub mod bm25;
pub mod imports;
pub mod outline;
pub mod tokens;

#[cfg(test)]
mod fixtures;
mod index;
mod memo;
mod query;
mod recent;
mod render;
mod snippet;

pub use index::{prepare, repo_and_path, Index, PreparedFile, Root};
pub use memo::SnippetMemo;
pub use query::Query;
pub use recent::RecentChunk;
pub use snippet::Snippet;
