//! `infill-eval eval-replay`: recency context (`context.recency`) on an
//! edit replay. The difference between two released versions of a
//! package is typed into a copy of the older one through the session, as
//! an editor sends it (file by file: open, each hunk's old lines deleted,
//! its new lines typed one by one, save, close), and a completion is
//! asked at the start of added lines that use a name an earlier hunk
//! touched (a distinctive identifier on one of its removed or added
//! lines). The same replay runs with recency off and on; the answers'
//! first lines are scored against the typed lines, paired.
//!
//! The package versions are read in place (see `scripts/fetch-replay`);
//! the copy the session edits is a temporary folder, removed at the end.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use infill::config::Config;
use infill::retrieval::tokens::identifiers;
use infill::session::events::Events;
use infill::session::{workspace_root, ClientSetup, DocumentId, RequestKind, Session};
use infill::text::document::TextChange;
use infill::text::position::{LinePosition, PositionEncoding};
use infill::text::syntax::Language;

use crate::cross::{distinctive, line_facts, predictable, score, write_paired, Paired};

/// Lines before and after an item whose names the prompt's window shows
/// (about: its budget is in tokens).
const WINDOW_BEFORE: usize = 100;
const WINDOW_AFTER: usize = 30;

/// The pause before each request, longer than the live index's debounce
/// (300 ms), so that the index holds what was typed before, as it would
/// for a user (and the replay is the same from run to run).
const SETTLE: Duration = Duration::from_millis(400);

/// A changed file: its old text and the hunks that make the new one.
struct FileDiff {
    rel: String,
    old: String,
    hunks: Vec<Hunk>,
}

/// Old lines `old_start..old_start + old_len` become `new` (with their
/// line ends), and which of the new lines are items.
struct Hunk {
    old_start: usize,
    old_len: usize,
    new: Vec<String>,
    items: Vec<bool>,
    /// Per new line: the names earlier hunks touched that it uses and
    /// its file's old text lacks.
    needed: Vec<Vec<String>>,
}

/// One asked line.
struct Asked {
    id: String,
    expected: String,
    answer: String,
    millis: u128,
    /// Retrieval only: a needed name (`Hunk::needed`) is in the snippets
    /// that fit the budget, and those snippets' texts.
    needed_shown: bool,
    shown: String,
}

/// What the replay does at an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// Asks the model (a completion request, as an editor's).
    Model,
    /// Asks retrieval only (`infill/context`): which snippets, no model.
    Retrieval,
}

/// Source files of `language` under `dir`, by relative path.
fn sources(dir: &Path, language: Language) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if Language::detect(None, &p.to_string_lossy()) == Some(language) {
                if let (Ok(text), Ok(rel)) = (std::fs::read_to_string(&p), p.strip_prefix(dir)) {
                    out.push((rel.to_string_lossy().replace('\\', "/"), text));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The hunks that turn `old` into `new` (lines with their ends): common
/// lines by a longest common subsequence between the first and last
/// difference (one hunk where that middle is too large to compare).
fn diff(old: &[&str], new: &[&str]) -> Vec<(usize, usize, usize, usize)> {
    let pre = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let suf = old[pre..]
        .iter()
        .rev()
        .zip(new[pre..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (a, b) = (&old[pre..old.len() - suf], &new[pre..new.len() - suf]);
    if a.is_empty() && b.is_empty() {
        return Vec::new();
    }
    if a.len() * b.len() > 16_000_000 {
        return vec![(pre, a.len(), pre, b.len())];
    }
    // lcs[i][j]: of a[i..] and b[j..].
    let w = b.len() + 1;
    let mut lcs = vec![0u32; (a.len() + 1) * w];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i * w + j] = if a[i] == b[j] {
                lcs[(i + 1) * w + j + 1] + 1
            } else {
                lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
            };
        }
    }
    let mut hunks = Vec::new();
    let (mut i, mut j) = (0, 0);
    let mut open: Option<(usize, usize)> = None;
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            if let Some((oi, oj)) = open.take() {
                hunks.push((pre + oi, i - oi, pre + oj, j - oj));
            }
            i += 1;
            j += 1;
            continue;
        }
        open.get_or_insert((i, j));
        if j < b.len() && (i == a.len() || lcs[i * w + j + 1] >= lcs[(i + 1) * w + j]) {
            j += 1;
        } else {
            i += 1;
        }
    }
    if let Some((oi, oj)) = open {
        hunks.push((pre + oi, a.len() - oi, pre + oj, b.len() - oj));
    }
    hunks
}

/// The replay's files in order, with the items chosen: added lines that
/// can be predicted (`cross::predictable`) and use a distinctive name
/// that a removed or added line of an earlier hunk (of this file or an
/// earlier one) holds, where neither the current file's old text nor the
/// new text's lines around it (about the prompt's window) have it: the
/// name is new to the file and out of sight, it must come from the earlier
/// edits.
fn plan(old_dir: &Path, new_dir: &Path, language: Language) -> Result<Vec<FileDiff>> {
    let old: std::collections::BTreeMap<String, String> =
        sources(old_dir, language)?.into_iter().collect();
    let mut touched: HashSet<String> = HashSet::new();
    let mut files = Vec::new();
    for (rel, new_text) in sources(new_dir, language)? {
        let old_text = old.get(&rel).cloned().unwrap_or_default();
        if old_text == new_text {
            continue;
        }
        let o: Vec<&str> = old_text.split_inclusive('\n').collect();
        let n: Vec<&str> = new_text.split_inclusive('\n').collect();
        let facts = line_facts(language, &new_text);
        let old_names: HashSet<&str> = identifiers(&old_text).collect();
        let mut hunks = Vec::new();
        for (os, ol, ns, nl) in diff(&o, &n) {
            let new: Vec<String> = n[ns..ns + nl].iter().map(|s| s.to_string()).collect();
            let needed: Vec<Vec<String>> = new
                .iter()
                .enumerate()
                .map(|(k, line)| {
                    // Not in the prompt's window either (about: the new
                    // text's lines around it).
                    let row = ns + k;
                    let around: HashSet<&str> = n[row.saturating_sub(WINDOW_BEFORE)..row]
                        .iter()
                        .chain(
                            n.get(row + 1..(row + 1 + WINDOW_AFTER).min(n.len()))
                                .unwrap_or(&[]),
                        )
                        .flat_map(|l| identifiers(l))
                        .collect();
                    let mut names: Vec<String> = identifiers(line)
                        .filter(|id| {
                            touched.contains(*id) && !old_names.contains(id) && !around.contains(id)
                        })
                        .map(str::to_string)
                        .collect();
                    names.dedup();
                    names
                })
                .collect();
            let items = new
                .iter()
                .enumerate()
                .map(|(k, line)| {
                    facts
                        .get(ns + k)
                        .is_some_and(|f| predictable(f, line.trim()))
                        && !needed[k].is_empty()
                })
                .collect();
            for line in o[os..os + ol].iter().chain(&n[ns..ns + nl]) {
                touched.extend(
                    identifiers(line)
                        .filter(|id| distinctive(id))
                        .map(str::to_string),
                );
            }
            hunks.push(Hunk {
                old_start: os,
                old_len: ol,
                new,
                items,
                needed,
            });
        }
        files.push(FileDiff {
            rel,
            old: old_text,
            hunks,
        });
    }
    Ok(files)
}

/// Copies the old version's sources of `language` into a fresh folder.
fn workspace(old_dir: &Path, language: Language, tag: &str) -> Result<PathBuf> {
    let root = std::env::temp_dir().join(format!("infill-replay-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (rel, text) in sources(old_dir, language)? {
        let p = root.join(&rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, text)?;
    }
    Ok(root.canonicalize()?)
}

fn at(line: usize, character: usize) -> LinePosition {
    LinePosition {
        line: line as u32,
        character: character as u32,
    }
}

/// Replays `files` through a session with `config` in a copy of
/// `old_dir`; asks at most `limit` items. The answers in item order.
async fn replay(
    files: &[FileDiff],
    old_dir: &Path,
    language: Language,
    config: Config,
    (limit, ask, only): (usize, Ask, &[String]),
    verbose: bool,
) -> Result<Vec<Asked>> {
    let tag = if config.context.recency { "on" } else { "off" };
    let budget_tokens = config.context.budget_tokens as usize;
    let root = workspace(old_dir, language, tag)?;
    let (events, _rx) = Events::channel();
    let session = Session::new(config, events, Arc::new(infill::engine::start));
    session.connect(ClientSetup {
        encoding: PositionEncoding::Utf32,
        roots: vec![workspace_root(root.clone(), None)],
        settings: None,
    });
    session.start();
    // Ready once the model is loaded and the first walk done (asked of the
    // first file to replay, opened for it, so it is the same in both arms).
    let lang_id = language.name();
    let Some(first) = files.first() else {
        bail!("nothing to replay");
    };
    let first_path = root.join(&first.rel);
    let probe = DocumentId::new(
        &format!("file://{}", first_path.display()),
        Some(first_path.clone()),
    );
    session.open(probe.clone(), lang_id, 1, &first.old);
    let started = Instant::now();
    loop {
        let status = session.status();
        let context = session
            .context(&probe, at(0, 0))
            .await
            .map_err(anyhow::Error::msg)?;
        if status.model == "failed" && ask == Ask::Model {
            bail!("the model failed to load: {}", status.detail);
        }
        let model_ready = status.model == "ready" || ask == Ask::Retrieval;
        if model_ready && context.indexing_done {
            break;
        }
        if started.elapsed() > Duration::from_secs(900) {
            bail!("the model or the index was not ready after 15 minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    session.close(&probe);
    eprintln!("ready after {:.1} s", started.elapsed().as_secs_f64());
    let mut asked = Vec::new();
    'files: for f in files {
        let path = root.join(&f.rel);
        let id = DocumentId::new(&format!("file://{}", path.display()), Some(path.clone()));
        let mut version = 1;
        session.open(id.clone(), lang_id, version, &f.old);
        // Old line numbers move by what earlier hunks added or removed.
        let mut shift: isize = 0;
        let mut change = |session: &Session, range: (LinePosition, LinePosition), text: &str| {
            version += 1;
            session.change(
                &id,
                version,
                &[TextChange {
                    range: Some(range),
                    text: text.to_string(),
                }],
            );
        };
        for h in &f.hunks {
            let start = (h.old_start as isize + shift).max(0) as usize;
            if h.old_len > 0 {
                change(&session, (at(start, 0), at(start + h.old_len, 0)), "");
            }
            for (k, line) in h.new.iter().enumerate() {
                let row = start + k;
                let ends = line.ends_with('\n');
                let body = line.trim_end_matches(['\n', '\r']);
                let indent = &body[..body.len() - body.trim_start().len()];
                let id_k = format!("{}:{}", f.rel, row + 1);
                let picked = only.is_empty() || only.iter().any(|o| id_k.contains(o.as_str()));
                if !h.items[k] || asked.len() >= limit || !picked {
                    change(&session, (at(row, 0), at(row, 0)), line);
                    continue;
                }
                // Enter, the indentation, then the request.
                let eol = if ends { "\n" } else { "" };
                change(
                    &session,
                    (at(row, 0), at(row, 0)),
                    &format!("{indent}{eol}"),
                );
                let col = indent.chars().count();
                let expected = body.trim().to_string();
                // A user takes longer than the index's debounce to get
                // here: what was typed before is in the index.
                tokio::time::sleep(SETTLE).await;
                let t = Instant::now();
                let (got, needed_shown, shown) = match ask {
                    Ask::Model => {
                        let answer = session
                            .complete(&id, at(row, col), false, RequestKind::Inline)
                            .await;
                        let text = match answer {
                            Ok(Some(a)) => a.text,
                            Ok(None) => String::new(),
                            Err(e) => bail!("{id_k}: {e}"),
                        };
                        let got = text.lines().next().unwrap_or("").trim().to_string();
                        (got, false, String::new())
                    }
                    Ask::Retrieval => {
                        let report = session
                            .context(&id, at(row, col))
                            .await
                            .map_err(anyhow::Error::msg)?;
                        // What fits the budget, at about 3 chars a token.
                        let mut room = 3 * budget_tokens;
                        let mut shown = String::new();
                        for s in &report.snippets {
                            let cost = s.text.len() + s.path.len() + 12;
                            if cost <= room {
                                room -= cost;
                                shown.push_str(&format!("# {}:{}\n{}\n", s.path, s.line, s.text));
                            }
                        }
                        if verbose && !only.is_empty() {
                            eprintln!(
                                "  {} snippets ({} files indexed)",
                                report.snippets.len(),
                                report.indexed_files
                            );
                            for s in &report.snippets {
                                let first = s.text.lines().next().unwrap_or("");
                                eprintln!("  {}:{} {first:?}", s.path, s.line);
                            }
                        }
                        let needed =
                            identifiers(&shown).any(|n| h.needed[k].iter().any(|x| x == n));
                        (String::new(), needed, shown)
                    }
                };
                let millis = t.elapsed().as_millis();
                if verbose {
                    eprintln!(
                        "[{tag} {}] {id_k} ({millis} ms) expected {expected:?} got {got:?} needed {:?} shown {needed_shown}",
                        asked.len() + 1,
                        h.needed[k],
                    );
                }
                asked.push(Asked {
                    id: id_k,
                    expected,
                    answer: got,
                    millis,
                    needed_shown,
                    shown,
                });
                change(&session, (at(row, col), at(row, col)), body.trim_start());
            }
            shift += h.new.len() as isize - h.old_len as isize;
            if asked.len() >= limit {
                session.close(&id);
                break 'files;
            }
        }
        // Saved as an editor saves: the file written, then `didSave`.
        let saved = session.document(&id).map_err(anyhow::Error::msg)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, saved.text)?;
        session.save(&id);
        session.close(&id);
    }
    session.shutdown();
    let _ = std::fs::remove_dir_all(&root);
    Ok(asked)
}

/// Runs the replay of `old_dir` → `new_dir` with recency off, then on,
/// and prints the paired scores.
pub fn run(
    old_dir: &Path,
    new_dir: &Path,
    language: Language,
    (limit, only): (usize, &[String]),
    (plan_only, retrieval_only): (bool, bool),
    verbose: bool,
    base: &Config,
) -> Result<()> {
    let mut files = plan(old_dir, new_dir, language)?;
    spread(&mut files, limit);
    let hunks: usize = files.iter().map(|f| f.hunks.len()).sum();
    let items: usize = files
        .iter()
        .flat_map(|f| &f.hunks)
        .map(|h| h.items.iter().filter(|&&i| i).count())
        .sum();
    println!(
        "replay {} -> {}: {} files changed, {hunks} hunks, {items} items asked (at most {limit}, spread over the replay)",
        old_dir.display(),
        new_dir.display(),
        files.len()
    );
    if plan_only {
        for f in &files {
            let mut shift: isize = 0;
            for h in &f.hunks {
                let start = (h.old_start as isize + shift).max(0) as usize;
                for (k, line) in h.new.iter().enumerate() {
                    if h.items[k] {
                        println!("  {}:{}  {}", f.rel, start + k + 1, line.trim());
                    }
                }
                shift += h.new.len() as isize - h.old_len as isize;
            }
        }
        return Ok(());
    }
    let mut config = base.clone();
    // Answers depend on the prompt alone: no time budget, nothing ahead;
    // one line (what is scored).
    config.completion.time_budget_ms = 0;
    config.completion.multiline = infill::config::Multiline::Never;
    // An evaluation records nothing in the user's statistics.
    config.stats.enabled = false;
    config.completion.compute_ahead = false;
    if !config.context.cross_file {
        bail!("recency context needs cross-file context (drop --no-cross-file)");
    }
    if retrieval_only {
        // No model: nothing to load, and no warm start in the pauses.
        config.model.path = Some(PathBuf::from(
            "/nonexistent/infill-eval-retrieval-only.gguf",
        ));
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let mut arms = Vec::new();
    for recency in [false, true] {
        let mut c = config.clone();
        c.context.recency = recency;
        let t = Instant::now();
        let ask = if retrieval_only {
            Ask::Retrieval
        } else {
            Ask::Model
        };
        let asked = runtime.block_on(replay(
            &files,
            old_dir,
            language,
            c,
            (limit, ask, only),
            verbose,
        ))?;
        println!(
            "recency {}: {} items in {:.0} s (median {} ms per request)",
            if recency { "on" } else { "off" },
            asked.len(),
            t.elapsed().as_secs_f64(),
            median(asked.iter().map(|a| a.millis).collect()),
        );
        arms.push(asked);
    }
    let (off, on) = (&arms[0], &arms[1]);
    if retrieval_only {
        let pairs: Vec<(bool, bool)> = off
            .iter()
            .zip(on)
            .map(|(a, b)| (a.needed_shown, b.needed_shown))
            .collect();
        let differ: Vec<&str> = off
            .iter()
            .zip(on)
            .filter(|(a, b)| a.shown != b.shown)
            .map(|(a, _)| a.id.as_str())
            .collect();
        let (lost, gained) = crate::stats::discordant(pairs.iter().copied());
        let n = pairs.len();
        println!(
            "{n} items: a needed name in the snippets that fit the budget: off {}, on {} (McNemar p={}: {lost} lost, {gained} gained); the snippets differ on {} items",
            pairs.iter().filter(|p| p.0).count(),
            pairs.iter().filter(|p| p.1).count(),
            crate::stats::format_p(crate::stats::mcnemar_exact(lost, gained)),
            differ.len()
        );
        if verbose {
            println!("differing: {}", differ.join(" "));
        }
        return Ok(());
    }
    let paired: Vec<Paired> = off
        .iter()
        .zip(on)
        .filter(|(a, b)| a.id == b.id)
        .map(|(a, b)| Paired {
            off: score(&a.answer, &a.expected),
            on: score(&b.answer, &b.expected),
            cceval: false,
        })
        .collect();
    if verbose {
        for (a, b) in off.iter().zip(on) {
            if a.answer != b.answer {
                eprintln!(
                    "{}: expected {:?}\n  off {:?}\n  on  {:?}",
                    a.id, a.expected, a.answer, b.answer
                );
            }
        }
    }
    let mut out = String::new();
    write_paired(&mut out, &paired)?;
    println!("{} paired items (recency off, on):\n{out}", paired.len());
    Ok(())
}

/// Keeps at most `limit` items, evenly spread over the replay's order.
fn spread(files: &mut [FileDiff], limit: usize) {
    let total: usize = files
        .iter()
        .flat_map(|f| &f.hunks)
        .map(|h| h.items.iter().filter(|&&i| i).count())
        .sum();
    if total <= limit {
        return;
    }
    let keep: HashSet<usize> = (0..limit).map(|k| k * total / limit).collect();
    for (n, item) in files
        .iter_mut()
        .flat_map(|f| &mut f.hunks)
        .flat_map(|h| &mut h.items)
        .filter(|i| **i)
        .enumerate()
    {
        *item = keep.contains(&n);
    }
}

fn median(mut v: Vec<u128>) -> u128 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_use_a_name_an_earlier_hunk_touched_out_of_sight() {
        let dir = std::env::temp_dir().join(format!("infill-replay-plan-{}", std::process::id()));
        let (old, new) = (dir.join("old"), dir.join("new"));
        for d in [&old, &new] {
            std::fs::create_dir_all(d.join("pkg")).expect("folder");
        }
        let filler: String = (0..50).map(|i| format!("value_{i} = {i}\n")).collect();
        std::fs::write(old.join("pkg/a.py"), "def old_helper(x):\n    return x\n").expect("write");
        std::fs::write(
            new.join("pkg/a.py"),
            "def normalize_header_key(x):\n    return x.lower()\n",
        )
        .expect("write");
        std::fs::write(
            old.join("pkg/b.py"),
            format!("def f(k):\n    return k\n{filler}"),
        )
        .expect("write");
        std::fs::write(
            new.join("pkg/b.py"),
            format!("def f(k):\n    key = normalize_header_key(k)\n    return k\n{filler}    other = normalize_header_key(k)\n"),
        )
        .expect("write");
        let files = plan(&old, &new, Language::Python).expect("planned");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            files.iter().map(|f| f.rel.as_str()).collect::<Vec<_>>(),
            ["pkg/a.py", "pkg/b.py"]
        );
        let b = &files[1];
        let asked: Vec<(&str, &Vec<String>)> = b
            .hunks
            .iter()
            .flat_map(|h| h.new.iter().zip(&h.items).zip(&h.needed))
            .filter(|((_, item), _)| **item)
            .map(|((line, _), needed)| (line.trim(), needed))
            .collect();
        // The first use is an item; the second has the first in sight
        // (within the window): not one.
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert_eq!(asked[0].0, "key = normalize_header_key(k)");
        assert_eq!(asked[0].1, &vec!["normalize_header_key".to_string()]);
        // Nothing of a.py: no earlier hunk touched its names.
        assert!(files[0].hunks.iter().all(|h| h.items.iter().all(|i| !i)));
    }

    #[test]
    fn the_diff_finds_each_hunk() {
        let old = ["a\n", "b\n", "c\n", "d\n", "e\n"];
        let new = ["a\n", "B\n", "c\n", "d\n", "x\n", "e\n", "f\n"];
        assert_eq!(
            diff(&old, &new),
            vec![(1, 1, 1, 1), (4, 0, 4, 1), (5, 0, 6, 1)]
        );
        assert_eq!(diff(&old, &old), vec![]);
        assert_eq!(diff(&[], &["a\n"]), vec![(0, 0, 0, 1)]);
    }
}
