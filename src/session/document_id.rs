//! How the session names an open document: the client's name for it
//! (its URI, made once by the protocol layer) and, for a file, its path,
//! resolved once when the id is made. Every map of the session and the
//! workspace index is keyed by this, never by converting names again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DocumentId {
    name: Arc<str>,
    path: Option<Arc<Path>>,
}

impl DocumentId {
    /// `name` identifies the document for the client; `path` is the file
    /// it stands for, `None` for an unsaved buffer or another scheme.
    pub fn new(name: &str, path: Option<PathBuf>) -> DocumentId {
        DocumentId {
            name: name.into(),
            path: path.map(Arc::from),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

impl std::fmt::Display for DocumentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}
