//! What retrieval hands to the prompt: a piece of another file, with where
//! it comes from.

/// A piece of another file, shown to the model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Snippet {
    /// Path relative to its workspace folder, `/`-separated.
    pub path: String,
    pub text: String,
    /// Where it starts in its file (0-based line), to lay out pieces of
    /// one file in their order.
    pub line: usize,
}
