//! The names a file imports from elsewhere, read from its text: Python
//! `from m import a, b as c` (parenthesised over several lines too) and
//! Java `import p.C;` / `import static p.C.m;`. The line that completes a
//! call to an imported name often has no other trace of it near the
//! cursor, and in a long file the import block is far outside the prompt's
//! window: its definitions are what cross-file context can add.
//!
//! A scan of lines, not a parse: it runs on the current file at each query.

use crate::text::syntax::Language;

/// One imported name: how the file calls it, and the module path it
/// comes from (`.utils`, `org.jsoup.helper`), for choosing its definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub name: String,
    pub module: String,
}

/// The names `text` imports, in file order (module imports like
/// `import os` name no definition and are left out).
pub fn imports(language: Language, text: &str) -> Vec<Import> {
    match language {
        Language::Python => python(text),
        Language::Java => java(text),
    }
}

fn python(text: &str) -> Vec<Import> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim_start().strip_prefix("from ") else {
            continue;
        };
        let Some((module, names)) = rest.split_once(" import ") else {
            continue;
        };
        let mut names = names.trim().to_string();
        if let Some(open) = names.strip_prefix('(') {
            // `from m import (` ... `)`, over several lines.
            let mut all = open.to_string();
            while !all.contains(')') {
                match lines.next() {
                    Some(l) => {
                        all.push(' ');
                        all.push_str(l.split('#').next().unwrap_or(""));
                    }
                    None => break,
                }
            }
            names = all.split(')').next().unwrap_or("").to_string();
        } else {
            names = names.split('#').next().unwrap_or("").replace('\\', " ");
        }
        for part in names.split(',') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let name = match words.as_slice() {
                [name] => *name,
                [_, "as", alias] => *alias,
                _ => continue,
            };
            if name != "*" && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                out.push(Import {
                    name: name.to_string(),
                    module: module.trim().to_string(),
                });
            }
        }
    }
    out
}

fn java(text: &str) -> Vec<Import> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix("import ") else {
            continue;
        };
        let rest = rest.trim_start();
        let rest = rest.strip_prefix("static ").unwrap_or(rest);
        let path = rest.split(';').next().unwrap_or("").trim();
        let Some((module, name)) = path.rsplit_once('.') else {
            continue;
        };
        if name != "*" && !name.is_empty() {
            out.push(Import {
                name: name.to_string(),
                module: module.to_string(),
            });
        }
    }
    out
}

/// Whether the file at `rel` (`/`-separated, relative to its root) could be
/// where `module` (`pkg.sub`, `.sub`, `org.x.y`) lives: its last component
/// names the file or the folder holding it.
pub fn module_matches(module: &str, rel: &str) -> bool {
    let last = module.rsplit('.').next().unwrap_or("");
    if last.is_empty() {
        return false;
    }
    let mut parts = rel.rsplit('/');
    let file = parts.next().unwrap_or("");
    let stem = file.split('.').next().unwrap_or("");
    let dir = parts.next().unwrap_or("");
    // `m/last.py`, or any file in `last/` (its `__init__.py`, a Java package).
    stem == last || dir == last
}

/// The module an import says `name` comes from, if one names it.
pub fn module_of<'a>(imported: &'a [Import], name: &str) -> Option<&'a str> {
    imported
        .iter()
        .find(|i| i.name == name)
        .map(|i| i.module.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_imports_of_every_shape() {
        let text = "import os\nfrom .utils import (\n    to_str,  # text\n    parse as p,\n)\nfrom a.b import X, Y as Z\nfrom m import *\n    from x import y\n";
        let got: Vec<(String, String)> = imports(Language::Python, text)
            .into_iter()
            .map(|i| (i.name, i.module))
            .collect();
        let want: Vec<(String, String)> = [
            ("to_str", ".utils"),
            ("p", ".utils"),
            ("X", "a.b"),
            ("Z", "a.b"),
            ("y", "x"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
        assert!(module_matches(".utils", "src/pkg/utils.py"));
        assert!(module_matches("pkg.sub", "pkg/sub/__init__.py"));
        assert!(!module_matches("pkg.sub", "pkg/other.py"));
    }

    #[test]
    fn java_imports() {
        let text = "package p;\nimport java.util.List;\nimport static org.x.Util.check;\nimport org.y.*;\n";
        let got: Vec<String> = imports(Language::Java, text)
            .into_iter()
            .map(|i| format!("{} {}", i.name, i.module))
            .collect();
        assert_eq!(got, vec!["List java.util", "check org.x.Util"]);
        assert!(module_matches("org.x.Util", "src/org/x/Util.java"));
    }
}
