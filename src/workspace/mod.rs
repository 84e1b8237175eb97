//! The files of the workspace that may be shown to the model: which ones
//! (walk rules, secrets, size, binary).
//!
//! This module reads the disk; the index it feeds (`retrieval`) does not.

use std::path::{Path, PathBuf};

/// Why a file is not indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRead {
    Secret,
    TooLarge,
    Binary,
    Unreadable,
}

/// File names that may hold credentials; never read, whatever the ignore
/// files say. Listed in the README. `*` matches any run of characters.
pub const SECRET_PATTERNS: &[&str] = &[
    ".env",
    ".env.*",
    "*.env",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.crt",
    "*.der",
    "*.gpg",
    "*.asc",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".pgpass",
    ".htpasswd",
    ".git-credentials",
    "credentials",
    "credentials.*",
    "secrets.*",
    "*.secret",
    "*.secrets",
];

/// Whether a file name matches one of `SECRET_PATTERNS` (case-insensitive).
pub fn is_secret(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let name = name.to_ascii_lowercase();
    SECRET_PATTERNS.iter().any(|p| glob_match(p, &name))
}

/// `*`-only glob: enough for file-name patterns, and no surprises.
fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || !name[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Reads a workspace file if it may be indexed: not a secret, at most
/// `max_bytes`, text (no NUL byte, valid UTF-8).
pub fn read_text(path: &Path, max_bytes: u64) -> Result<String, NotRead> {
    if is_secret(path) {
        return Err(NotRead::Secret);
    }
    let meta = std::fs::metadata(path).map_err(|_| NotRead::Unreadable)?;
    if meta.len() > max_bytes {
        return Err(NotRead::TooLarge);
    }
    let bytes = std::fs::read(path).map_err(|_| NotRead::Unreadable)?;
    if bytes.len() as u64 > max_bytes {
        return Err(NotRead::TooLarge);
    }
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return Err(NotRead::Binary);
    }
    String::from_utf8(bytes).map_err(|_| NotRead::Binary)
}

/// The files under `root` that the walk admits: `.gitignore`, `.ignore`
/// and git excludes honoured (also outside a git repository), hidden files
/// skipped, secrets skipped by name. Links are never followed: a link's
/// target is either inside the root (indexed under its own path) or
/// outside it (not ours to read).
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let walker = ignore::WalkBuilder::new(root)
        .follow_links(false)
        .require_git(false)
        .hidden(true)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(true)
        .ignore(true)
        .parents(true)
        .build();
    let mut files = Vec::new();
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!("workspace walk: {e}");
                continue;
            }
        };
        // `file_type` is the link itself, not its target (links are not followed).
        let Some(ft) = entry.file_type() else {
            continue;
        };
        if !ft.is_file() || is_secret(entry.path()) {
            continue;
        }
        files.push(entry.into_path());
    }
    files.sort();
    files
}

/// Whether the walk of `root` would admit `path` (for a single file seen
/// later: a new file, a buffer opened before indexing reached it). Each
/// step from the root down is checked against its directory's listing
/// under the same ignore rules, so an ignored folder, a hidden one, a link
/// or a secret anywhere on the way rules it out.
pub fn admitted(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    if is_secret(path) || rel.as_os_str().is_empty() {
        return false;
    }
    let mut dir = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for (i, part) in parts.iter().enumerate() {
        let child = dir.join(part);
        let last = i + 1 == parts.len();
        let listed = ignore::WalkBuilder::new(&dir)
            .max_depth(Some(1))
            .follow_links(false)
            .require_git(false)
            .parents(true)
            .build()
            .filter_map(Result::ok)
            .any(|e| {
                e.path() == child
                    && e.file_type()
                        .is_some_and(|t| if last { t.is_file() } else { t.is_dir() })
            });
        if !listed {
            return false;
        }
        dir = child;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for s in [
            ".env",
            ".env.local",
            "prod.env",
            "server.PEM",
            "tls.key",
            "id_rsa",
            "id_ed25519.pub",
            ".netrc",
            "credentials.json",
        ] {
            assert!(is_secret(Path::new(s)), "{s}");
        }
        for s in [
            "env.py",
            "keys.py",
            "monkey.java",
            "README.md",
            "environment.yml",
        ] {
            assert!(!is_secret(Path::new(s)), "{s}");
        }
    }
}
