//! The live workspace index behind cross-file context: the first walk (off
//! the message loop, its progress reported as events), open buffers
//! replacing their disk versions (debounced), saves, closes and changes of
//! files on disk.
//!
//! The session calls in here without awaiting anything heavy: the walk and
//! every re-index run on blocking threads. The editor's events (open, a
//! buffer change once typing pauses, save, close, files changed on disk)
//! are applied one at a time in the order they came, so that a close is
//! never applied before the open it follows. Completions query the index as
//! it is; before the walk is done that is whatever it has reached (at
//! worst nothing: in-file completion).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use ropey::Rope;
use tree_sitter::Tree;

use super::events::{Events, Level, ProgressStep};
use super::DocumentId;
use crate::config::Config;
use crate::prompt::repo::CrossFileContext;
use crate::retrieval::{self, Index, Query, RecentChunk, Root, Snippet, SnippetMemo};
use crate::text::syntax::Language;
use crate::workspace;

/// A document's syntax tree as it stands (an O(1) copy,
/// `Document::tree_snapshot`): the index's update reuses it instead of
/// parsing the buffer again.
pub type BufferTree = Option<(Language, Tree)>;

/// The progress token of the first walk.
pub const PROGRESS_TOKEN: &str = "infill/index";

/// A file that changed on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChange {
    /// Created or changed: read it again.
    Changed(PathBuf),
    Deleted(PathBuf),
}

/// How the index compares with indexing the workspace afresh
/// (`infill/indexCheck`): what a fresh walk would index now, with each open
/// buffer standing for its file. Paths are relative to their workspace
/// folder. Updates still pending (the debounce after a keystroke, a save or
/// a file event not yet handled) show up as differences: ask after a pause.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexCheck {
    pub indexing_done: bool,
    pub indexed_files: usize,
    /// Files a fresh walk would index.
    pub expected_files: usize,
    /// Expected but not indexed.
    pub missing: Vec<String>,
    /// Indexed but not expected (deleted, ignored, no longer text).
    pub extra: Vec<String>,
    /// Indexed with another text than the file's, or its open buffer's.
    pub stale: Vec<String>,
    /// The text is right, but the chunks or symbols are not what indexing
    /// it from scratch gives.
    pub not_fresh: Vec<String>,
}

/// Quiet time after the last keystroke before a buffer is re-indexed.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Files the walk indexes between two measures of the index's memory
/// (`Index::heap_bytes` visits the whole index, so not after every file).
const MEASURE_EVERY: usize = 128;

/// How long the walk sleeps before looking again while a request is
/// being answered.
const YIELD: Duration = Duration::from_millis(5);

/// An update of the index for an editor's event.
type Job = Box<dyn FnOnce(&LiveIndex) + Send>;

#[derive(Default)]
pub struct LiveIndex {
    index: Mutex<Index>,
    snippet_memo: Mutex<SnippetMemo>,
    /// Open documents and whether they may be indexed (inside a root,
    /// admitted by the walk rules); their buffers win over the disk.
    open: Mutex<HashMap<PathBuf, bool>>,
    /// Per path, the number of the latest buffer change.
    changes: Mutex<HashMap<PathBuf, u64>>,
    change_counter: AtomicU64,
    started: AtomicBool,
    indexing_done: AtomicBool,
    max_file_bytes: AtomicU64,
    max_index_bytes: AtomicU64,
    /// The index reached `max_index_bytes`: files not in it stay out.
    full: AtomicBool,
    /// Files the walk left out because the index was full.
    left_out: AtomicUsize,
    /// The index's roots (fixed at the start), so that a completion finds
    /// its file's place without the index's lock.
    roots: OnceLock<Vec<Root>>,
    /// Requests being answered now: the walk waits while there are any.
    answering: AtomicUsize,
    /// The editor's events, applied in order by one task (`enqueue`).
    jobs: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Job>>>,
}

/// Marks a request as being answered until dropped (`LiveIndex::answering`).
pub struct Answering<'a>(&'a AtomicUsize);

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data whole; a panic in one does
    // not make the data unusable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LiveIndex {
    pub fn index(&self) -> MutexGuard<'_, Index> {
        locked(&self.index)
    }

    pub fn indexing_done(&self) -> bool {
        self.indexing_done.load(Ordering::Relaxed)
    }

    /// The first walk pauses while the returned guard lives: a request
    /// being answered never shares the CPU, or the index's lock, with it.
    /// (A lower thread priority was tried: a walk at nice 19 holding the
    /// lock was starved by the model's threads, and by anything else the
    /// machine ran, so requests waited seconds for it.)
    pub fn answering(&self) -> Answering<'_> {
        self.answering.fetch_add(1, Ordering::SeqCst);
        Answering(&self.answering)
    }

    /// Files the first walk left out because the index reached its bound.
    pub fn left_out(&self) -> usize {
        self.left_out.load(Ordering::Relaxed)
    }

    fn max_bytes(&self) -> u64 {
        self.max_file_bytes.load(Ordering::Relaxed)
    }

    /// Runs `job` on a blocking thread after every job enqueued before it
    /// (one at a time). Separate blocking tasks could run in any order: a
    /// close applied before its open left the file marked open for good,
    /// its buffer standing for it and changes on disk ignored.
    fn enqueue(self: &Arc<Self>, job: impl FnOnce(&LiveIndex) + Send + 'static) {
        let mut jobs = locked(&self.jobs);
        let tx = jobs.get_or_insert_with(|| {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
            // Weak: the queue must not keep the index alive.
            let index: Weak<LiveIndex> = Arc::downgrade(self);
            tokio::spawn(async move {
                while let Some(job) = rx.recv().await {
                    let Some(index) = index.upgrade() else {
                        return;
                    };
                    let _ = tokio::task::spawn_blocking(move || job(&index)).await;
                }
            });
            tx
        });
        let _ = tx.send(Box::new(job));
    }

    /// Starts the first walk of `roots` once, reporting its progress.
    pub fn start(self: &Arc<Self>, events: Events, roots: Vec<Root>, config: &Config) {
        self.max_file_bytes
            .store(config.context.max_file_bytes, Ordering::Relaxed);
        self.max_index_bytes
            .store(config.context.max_index_bytes, Ordering::Relaxed);
        if roots.is_empty() || self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        *self.index() = Index::new(roots.clone());
        let _ = self.roots.set(roots.clone());
        let me = self.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u32, usize)>();
        tokio::spawn(async move {
            events.progress(
                PROGRESS_TOKEN,
                ProgressStep::Begin {
                    title: "infill: indexing workspace".into(),
                    percentage: Some(0),
                },
            );
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            tokio::task::spawn_blocking(move || {
                let _ = done_tx.send(me.walk_all(&roots, &tx));
            });
            while let Some((percentage, files)) = rx.recv().await {
                events.progress(
                    PROGRESS_TOKEN,
                    ProgressStep::Report {
                        message: format!("{files} files"),
                        percentage,
                    },
                );
            }
            let (files, left_out) = done_rx.await.unwrap_or((0, 0));
            let message = if left_out > 0 {
                let text = format!(
                    "infill: the workspace index reached its memory bound \
                     (context.maxIndexMegabytes) after {files} files; {left_out} files \
                     are left out of cross-file context"
                );
                events.message(Level::Warning, text);
                format!("{files} files indexed, {left_out} left out")
            } else {
                format!("{files} files indexed")
            };
            events.progress(
                PROGRESS_TOKEN,
                ProgressStep::End {
                    message: Some(message),
                },
            );
            tracing::info!("workspace indexed: {files} files, {left_out} left out");
        });
    }

    /// The first walk; returns the number of files indexed and left out.
    fn walk_all(
        &self,
        roots: &[Root],
        progress: &tokio::sync::mpsc::UnboundedSender<(u32, usize)>,
    ) -> (usize, usize) {
        let started = std::time::Instant::now();
        let files: Vec<PathBuf> = roots
            .iter()
            .flat_map(|r| workspace::walk(&r.path))
            .collect();
        let total = files.len().max(1);
        let mut last_pct = 0;
        let mut indexed = 0;
        let mut since_measure = 0;
        for (i, path) in files.iter().enumerate() {
            while self.answering.load(Ordering::SeqCst) > 0 {
                std::thread::sleep(YIELD);
            }
            if since_measure >= MEASURE_EVERY {
                since_measure = 0;
                // Read each time: a settings change applies to the walk.
                let max_index = self.max_index_bytes.load(Ordering::Relaxed);
                if self.index().heap_bytes() as u64 >= max_index {
                    let left = files.len() - i;
                    self.full.store(true, Ordering::Relaxed);
                    self.left_out.store(left, Ordering::Relaxed);
                    tracing::warn!(
                        "the index reached {} MiB after {indexed} files: {left} left out",
                        max_index >> 20
                    );
                    break;
                }
            }
            // Read and parsed before the index's lock is taken: a request
            // that starts meanwhile waits at most for one file's insertion.
            let prepared = workspace::read_text(path, self.max_bytes())
                .ok()
                .and_then(|text| retrieval::prepare(roots, path, text));
            if let Some(file) = prepared {
                // An open buffer is newer than the disk: keep it.
                let open = locked(&self.open).contains_key(path);
                if !open && self.index().add_prepared(file) {
                    indexed += 1;
                    since_measure += 1;
                }
            }
            let pct = ((i + 1) * 100 / total) as u32;
            if pct > last_pct {
                last_pct = pct;
                let _ = progress.send((pct, i + 1));
            }
        }
        self.indexing_done.store(true, Ordering::Relaxed);
        tracing::debug!(
            "indexed {indexed} of {} files in {:?}",
            files.len(),
            started.elapsed()
        );
        (indexed, self.left_out())
    }

    /// A document was opened: its buffer stands for the file from now on,
    /// if the file may be indexed at all.
    pub fn opened(self: &Arc<Self>, id: &DocumentId, text: Rope, tree: BufferTree) {
        let Some(path) = id.path().map(Path::to_path_buf) else {
            return;
        };
        self.enqueue(move |me| {
            let root = me.index().locate(&path).map(|(r, _)| r);
            let roots: Vec<PathBuf> = me.index().roots().iter().map(|r| r.path.clone()).collect();
            let ok = root.is_some_and(|r| workspace::admitted(&roots[r], &path))
                && text.len_bytes() as u64 <= me.max_bytes();
            locked(&me.open).insert(path.clone(), ok);
            if ok {
                me.index_buffer(&path, &text, tree);
            }
        });
    }

    /// A buffer changed: re-index it once typing pauses.
    pub fn changed(self: &Arc<Self>, id: &DocumentId, text: Rope, tree: BufferTree) {
        let Some(path) = id.path().map(Path::to_path_buf) else {
            return;
        };
        let n = self.change_counter.fetch_add(1, Ordering::Relaxed) + 1;
        locked(&self.changes).insert(path.clone(), n);
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(DEBOUNCE).await;
            if locked(&me.changes).get(&path) != Some(&n) {
                return; // a later change will do it, or the document closed
            }
            me.enqueue(move |me| me.index_buffer(&path, &text, tree));
        });
    }

    /// A document was saved: its buffer is what the disk has. It is
    /// parsed afresh here: an incrementally parsed tree can differ from a
    /// fresh parse where tree-sitter recovered from syntax errors along
    /// another path, and a save puts the index back in step with the file.
    pub fn saved(self: &Arc<Self>, id: &DocumentId, text: Rope) {
        let Some(path) = id.path().map(Path::to_path_buf) else {
            return;
        };
        self.enqueue(move |me| {
            me.index().forget_parse(&path);
            me.index_buffer(&path, &text, None);
        });
    }

    /// What the server does with a buffer after a pause in typing (also
    /// what `infill-eval bench-index` times).
    pub fn index_buffer(&self, path: &Path, text: &Rope, tree: BufferTree) {
        if locked(&self.open).get(path) == Some(&true)
            && text.len_bytes() as u64 <= self.max_bytes()
        {
            // The copy is made before the lock is taken.
            let text = text.to_string();
            self.index().update_buffer(path, &text, tree);
        }
    }

    /// A document was closed: the disk version stands for it again.
    pub fn closed(self: &Arc<Self>, id: &DocumentId) {
        let Some(path) = id.path().map(Path::to_path_buf) else {
            return;
        };
        // A change still in its debounce is dropped: the disk stands now.
        locked(&self.changes).remove(&path);
        self.enqueue(move |me| {
            // Read again also where the buffer was not taken (the file
            // was gone or not admitted when it opened): disk events were
            // skipped meanwhile.
            if locked(&me.open).remove(&path).is_some() {
                me.reload(&path);
            }
        });
    }

    /// Files changed on disk (the client watches them).
    pub fn files_changed(self: &Arc<Self>, changes: Vec<FileChange>) {
        self.enqueue(move |me| {
            for change in changes {
                let (FileChange::Changed(path) | FileChange::Deleted(path)) = &change;
                if locked(&me.open).get(path) == Some(&true) {
                    continue; // the buffer the index took wins until it is closed
                }
                match change {
                    FileChange::Deleted(path) => me.index().remove(&path),
                    FileChange::Changed(path) => me.reload(&path),
                }
            }
        });
    }

    /// Re-reads `path` from disk if the walk rules admit it, else forgets it.
    fn reload(&self, path: &Path) {
        let root = {
            let ix = self.index();
            ix.locate(path)
                .and_then(|(r, _)| ix.roots().get(r).map(|r| r.path.clone()))
        };
        let text = root
            .filter(|r| workspace::admitted(r, path))
            .and_then(|_| workspace::read_text(path, self.max_bytes()).ok());
        let mut ix = self.index();
        if self.full.load(Ordering::Relaxed) && !ix.contains(path) && text.is_some() {
            return; // a new file, and the index is at its bound
        }
        match text {
            Some(t) => {
                ix.update(path, &t);
            }
            None => ix.remove(path),
        }
    }

    /// Compares the index with a fresh walk of its roots, `buffers` (the
    /// open documents' texts by path, as the session holds them) standing
    /// for their files. Blocking (reads the workspace): call it off the
    /// message loop.
    pub fn check(&self, buffers: &HashMap<PathBuf, String>) -> IndexCheck {
        let roots: Vec<PathBuf> = self
            .index()
            .roots()
            .iter()
            .map(|r| r.path.clone())
            .collect();
        let max = self.max_bytes();
        let mut expected: HashMap<PathBuf, String> = HashMap::new();
        for path in roots.iter().flat_map(|r| workspace::walk(r)) {
            let text = match buffers.get(&path) {
                Some(buffer) => (buffer.len() as u64 <= max).then(|| buffer.clone()),
                None => workspace::read_text(&path, max).ok(),
            };
            if let Some(text) = text {
                expected.insert(path, text);
            }
        }
        // A buffer the index took when it was opened stands for its file
        // until it is closed, also once the disk no longer has the file.
        for (path, took) in locked(&self.open).iter() {
            if let (true, Some(buffer)) = (*took, buffers.get(path)) {
                if buffer.len() as u64 <= max {
                    expected
                        .entry(path.clone())
                        .or_insert_with(|| buffer.clone());
                }
            }
        }
        let ix = self.index();
        let rel = |path: &Path| {
            ix.locate(path)
                .map(|(_, rel)| rel)
                .unwrap_or_else(|| path.display().to_string())
        };
        let mut check = IndexCheck {
            indexing_done: self.indexing_done(),
            indexed_files: ix.file_count(),
            expected_files: expected.len(),
            ..IndexCheck::default()
        };
        for (path, text) in &expected {
            match ix.text(path) {
                None => check.missing.push(rel(path)),
                Some(indexed) if indexed != text => check.stale.push(rel(path)),
                Some(_) if !ix.matches_fresh_outline(path, text) => check.not_fresh.push(rel(path)),
                Some(_) => {}
            }
        }
        for (path, _) in ix.texts() {
            if !expected.contains_key(path) {
                check.extra.push(rel(path));
            }
        }
        for list in [
            &mut check.missing,
            &mut check.extra,
            &mut check.stale,
            &mut check.not_fresh,
        ] {
            list.sort();
        }
        check
    }

    /// Cross-file context for a completion at `line` of `id` (`recent`
    /// ranked in with `context.recency`; a line keeps its set while the
    /// user types on it, `SnippetMemo`), or `None`
    /// when it is off or the file is outside the workspace. Blocking (takes
    /// the index lock): call it off the message loop.
    pub fn context_for(
        &self,
        id: &DocumentId,
        line: usize,
        prefix: &str,
        suffix: &str,
        config: &Config,
        recent: &[RecentChunk],
    ) -> Option<CrossFileContext> {
        if !config.context.cross_file || config.context.budget_tokens == 0 {
            return None;
        }
        let path = id.path()?;
        let q = Query {
            path,
            line,
            prefix,
            suffix,
        };
        // The index's lock only where retrieval must run (the walk may
        // be adding files).
        let (repo_name, rel) = retrieval::repo_and_path(self.roots.get()?, path)?;
        let recent = if config.context.recency { recent } else { &[] };
        let (snippets, _) = locked(&self.snippet_memo).get(&q, || {
            self.index().retrieve_with(&q, recent, window_chars(config))
        });
        Some(CrossFileContext::new(
            repo_name,
            rel,
            Vec::clone(&snippets),
            &config.context,
        ))
    }

    /// What retrieval returns at a position, fresh (for `infill/context`),
    /// `recent` ranked in with `context.recency`;
    /// nothing when cross-file context is off.
    pub fn retrieve(
        &self,
        id: &DocumentId,
        line: usize,
        prefix: &str,
        suffix: &str,
        config: &Config,
        recent: &[RecentChunk],
    ) -> Vec<Snippet> {
        let Some(path) = id.path().filter(|_| config.context.cross_file) else {
            return Vec::new();
        };
        let q = Query {
            path,
            line,
            prefix,
            suffix,
        };
        let recent = if config.context.recency { recent } else { &[] };
        self.index().retrieve_with(&q, recent, window_chars(config))
    }
}

/// Chars on either side of the cursor that the prompt's window may show:
/// its token budget at 5 chars a token (code runs 3 to 4), so that a
/// recent chunk outside it is surely not in the prompt already.
fn window_chars(config: &Config) -> usize {
    config.completion.prompt_tokens as usize * 5
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_stops_at_the_memory_bound_and_new_files_stay_out() {
        let dir = std::env::temp_dir().join(format!("infill-bound-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..1500 {
            let body: String = (0..40)
                .map(|j| format!("def f{i}_{j}(x):\n    return x + {j}\n"))
                .collect();
            std::fs::write(dir.join(format!("m{i}.py")), body).unwrap();
        }
        let live = LiveIndex::default();
        let bound: u64 = 2 << 20;
        live.max_index_bytes.store(bound, Ordering::Relaxed);
        live.max_file_bytes.store(1 << 20, Ordering::Relaxed);
        *live.index() = Index::new(vec![Root {
            name: "w".into(),
            path: dir.clone(),
        }]);
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let roots = live.index().roots().to_vec();
        let (indexed, left_out) = live.walk_all(&roots, &tx);
        assert!(
            left_out > 0 && indexed + left_out <= 1500,
            "{indexed} + {left_out}"
        );
        let heap = live.index().heap_bytes() as u64;
        // At most one measuring interval past the bound.
        assert!(heap < bound * 2, "{heap} bytes for a bound of {bound}");
        assert!(heap >= bound, "stopped early at {heap} bytes");
        // A file created later stays out; one already in is updated.
        let new = dir.join("new.py");
        std::fs::write(&new, "def brand_new():\n    pass\n").unwrap();
        live.reload(&new);
        assert!(!live.index().contains(&new));
        let old = dir.join("m0.py");
        std::fs::write(&old, "def changed():\n    pass\n").unwrap();
        live.reload(&old);
        assert!(live
            .index()
            .matches_fresh_outline(&old, "def changed():\n    pass\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_walk_waits_while_a_request_is_answered() {
        let dir = std::env::temp_dir().join(format!("infill-yield-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..20 {
            std::fs::write(
                dir.join(format!("m{i}.py")),
                format!("def f{i}():\n    pass\n"),
            )
            .unwrap();
        }
        let live = Arc::new(LiveIndex::default());
        live.max_index_bytes.store(1 << 30, Ordering::Relaxed);
        live.max_file_bytes.store(1 << 20, Ordering::Relaxed);
        let roots = vec![Root {
            name: "w".into(),
            path: dir.clone(),
        }];
        *live.index() = Index::new(roots.clone());
        let answering = live.answering();
        let walker = {
            let live = live.clone();
            std::thread::spawn(move || {
                let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
                live.walk_all(&roots, &tx)
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(live.index().file_count(), 0, "the walk went on meanwhile");
        drop(answering);
        assert_eq!(walker.join().unwrap(), (20, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
