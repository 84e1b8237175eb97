//! Document text: ropes, LSP positions, syntax trees. No I/O.

pub mod document;
pub mod position;
pub mod syntax;
