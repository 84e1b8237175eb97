//! `infill complete FILE:LINE:COL`: one completion without an editor,
//! through the same pipeline as the server (`completion::pipeline`).

use std::io::Read;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ropey::Rope;

use infill::completion::cursor_context;
use infill::completion::pipeline::{self, Extras, Mode};
use infill::config::Config;
use infill::engine::{self, CancelFlag};
use infill::text::document::Document;

/// `FILE:LINE:COL`, 1-based; COL counts characters (Unicode scalar values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl std::str::FromStr for Location {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let mut parts = s.rsplitn(3, ':');
        let (Some(col), Some(line), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("expected FILE:LINE:COL, got `{s}`"));
        };
        let num = |v: &str, what: &str| -> std::result::Result<usize, String> {
            match v.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(format!("{what} must be a number from 1, got `{v}`")),
            }
        };
        Ok(Location {
            file: file.to_string(),
            line: num(line, "LINE")?,
            column: num(col, "COL")?,
        })
    }
}

/// Char index of a 1-based line and column, or an error if out of range.
pub fn char_index(text: &Rope, line: usize, column: usize) -> Result<usize> {
    if line > text.len_lines() {
        bail!(
            "line {line} is past the end of the file ({} lines)",
            text.len_lines()
        );
    }
    let start = text.line_to_char(line - 1);
    let line_text = text.line(line - 1);
    let len = line_text
        .chars()
        .take_while(|c| *c != '\n' && *c != '\r')
        .count();
    if column > len + 1 {
        bail!("column {column} is past the end of line {line} ({len} characters)");
    }
    Ok(start + column - 1)
}

/// Reads the text (from the file or stdin), runs the pipeline, returns the completion.
pub fn complete(loc: &Location, from_stdin: bool, config: &Config) -> Result<String> {
    let bytes = if from_stdin {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read stdin")?;
        buf
    } else {
        std::fs::read(&loc.file).with_context(|| format!("cannot read {}", loc.file))?
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "infill: warning: {} is not valid UTF-8; invalid bytes replaced",
                loc.file
            );
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        }
    };
    let doc = Document::new(&loc.file, None, 0, &text);
    let cursor = char_index(doc.text(), loc.line, loc.column)?;
    let ctx = cursor_context(doc.text(), doc.syntax(), cursor, config);

    let engine = engine::start(config);
    engine::wait_until_ready(engine.as_ref(), Duration::from_secs(600)).map_err(|e| anyhow!(e))?;
    let cancel = CancelFlag::default();
    let done = pipeline::run(
        engine.as_ref(),
        &ctx,
        config,
        Extras::default(),
        Mode::Suggest,
        &cancel,
    )
    .map_err(|e| anyhow!("{e}"))?;
    Ok(done.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations_with_colons_in_paths() {
        let loc: Location = "C:/a:b.py:3:7".parse().unwrap();
        assert_eq!(loc.file, "C:/a:b.py");
        assert_eq!((loc.line, loc.column), (3, 7));
        assert!("a.py:0:1".parse::<Location>().is_err());
        assert!("a.py:1".parse::<Location>().is_err());
    }

    #[test]
    fn columns_count_characters_and_are_checked() {
        let rope = Rope::from_str("é😀x\r\nab");
        assert_eq!(char_index(&rope, 1, 3).unwrap(), 2);
        assert_eq!(char_index(&rope, 2, 3).unwrap(), 7);
        assert!(char_index(&rope, 1, 9).is_err());
        assert!(char_index(&rope, 5, 1).is_err());
    }
}
