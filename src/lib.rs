//! infill: code completions from a local model, served over LSP.
//!
//! See ARCHITECTURE.md for the code map.

pub mod completion;
pub mod config;
pub mod engine;
pub mod logging;
pub mod lsp;
pub mod models;
pub mod prompt;
pub mod retrieval;
pub mod session;
pub mod stats;
pub mod text;
pub mod workspace;
