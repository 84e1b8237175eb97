//! `infill bench-index DIR`: how the workspace index performs on a real
//! tree: time to walk and index it, memory, time per incremental update of
//! an edited file, time per retrieval query. A measurement, not a test.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::retrieval::{Index, Query, Root};
use crate::text::syntax::Language;
use crate::workspace;

/// Resident memory of this process (Linux), in bytes.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(name: &str, mut times: Vec<Duration>) -> String {
    times.sort();
    let mean = times.iter().sum::<Duration>() / times.len().max(1) as u32;
    format!(
        "{name:<28} n={:<5} mean {:>9.3} ms  p50 {:>9.3} ms  p95 {:>9.3} ms  max {:>9.3} ms",
        times.len(),
        mean.as_secs_f64() * 1e3,
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.95).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    )
}

/// Runs the benchmark on `root` with `samples` updates and queries.
pub fn run(root: &Path, samples: usize) -> Result<String> {
    let root = root.canonicalize()?;
    let rss_before = rss_bytes().unwrap_or(0);
    let t = Instant::now();
    let files = workspace::walk(&root);
    let walked = t.elapsed();
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut index = Index::new(vec![Root {
        path: root.clone(),
        name,
    }]);
    let mut code: Vec<(PathBuf, String)> = Vec::new();
    let mut bytes = 0u64;
    for path in &files {
        if let Ok(text) = workspace::read_text(path, workspace::DEFAULT_MAX_FILE_BYTES) {
            bytes += text.len() as u64;
            index.update(path, &text);
            if Language::detect(None, &path.to_string_lossy()).is_some() {
                code.push((path.clone(), text));
            }
        }
    }
    let indexed = t.elapsed();
    let rss_after = rss_bytes().unwrap_or(0);
    if code.is_empty() {
        bail!("no Python or Java files under {}", root.display());
    }
    // Spread the samples over the code files, deterministically.
    let pick = |k: usize| &code[(k * 7919) % code.len()];

    // An edit: one line inserted in the middle of the file, then re-indexed.
    let mut updates = Vec::with_capacity(samples);
    let mut update_sizes = 0usize;
    for k in 0..samples {
        let (path, text) = pick(k);
        let mid = text[..text.len() / 2].rfind('\n').map_or(0, |i| i + 1);
        let edited = format!(
            "{}    value = compute_total(items)\n{}",
            &text[..mid],
            &text[mid..]
        );
        let t = Instant::now();
        index.update(path, &edited);
        updates.push(t.elapsed());
        update_sizes += edited.len();
        index.update(path, text);
    }
    let mut queries = Vec::with_capacity(samples);
    let mut returned = 0;
    for k in 0..samples {
        let (path, text) = pick(k * 31 + 5);
        let cut = text[..text.len() * 2 / 3].rfind('\n').map_or(0, |i| i + 1);
        let (prefix, suffix) = text.split_at(cut);
        let q = Query {
            path,
            line: prefix.matches('\n').count(),
            prefix,
            suffix,
            prompt_tokens: 1536,
        };
        let t = Instant::now();
        returned += index.retrieve(&q).len();
        queries.push(t.elapsed());
    }
    let mut out = String::new();
    out.push_str(&format!(
        "workspace: {} ({} files walked, {} indexed, {} code files, {:.1} MB of text)\n",
        root.display(),
        files.len(),
        index.file_count(),
        code.len(),
        bytes as f64 / 1e6
    ));
    out.push_str(&format!(
        "chunks: {}\nwalk: {:.2} s; walk + read + index: {:.2} s\n",
        index.chunk_count(),
        walked.as_secs_f64(),
        indexed.as_secs_f64()
    ));
    out.push_str(&format!(
        "memory: index heap ≈ {:.1} MB; process RSS grew {:.1} MB (to {:.1} MB)\n",
        index.heap_bytes() as f64 / 1e6,
        (rss_after.saturating_sub(rss_before)) as f64 / 1e6,
        rss_after as f64 / 1e6
    ));
    out.push_str(&summary("incremental update (1 file)", updates));
    out.push_str(&format!(
        "  (mean edited file {:.1} KB)\n",
        update_sizes as f64 / samples.max(1) as f64 / 1e3
    ));
    out.push_str(&summary("query (retrieve)", queries));
    out.push_str(&format!(
        "  (mean {:.1} snippets returned)\n",
        returned as f64 / samples.max(1) as f64
    ));
    Ok(out)
}
