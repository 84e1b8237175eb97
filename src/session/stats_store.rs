//! The store of acceptance events (`infill stats` reads it): JSON lines in
//! the user's state directory, `${XDG_STATE_HOME:-~/.local/state}/infill`.
//!
//! Why JSON lines and not SQLite: a line is appended with one `write` to a
//! file opened for appending, so a process killed at any moment (kill -9)
//! leaves at worst one torn last line, which the reader skips (and the
//! writer, on opening, ends with a line break so that the next event starts
//! a line of its own); no C library to build, and the user can read what
//! is stored with any text tool. Bounded: past `MAX_FILE_BYTES` the file
//! becomes `events.1.jsonl` (the one before is dropped), so the store never
//! holds more than twice that. Written by one thread fed by a channel:
//! recording never waits for the disk (a full channel drops the event and
//! counts it).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::stats::aggregate::Today;
use crate::stats::{parse_line, Event};

/// The file events are appended to.
pub const FILE: &str = "events.jsonl";
/// The file before it, after a rotation.
pub const OLD_FILE: &str = "events.1.jsonl";
/// The random salt of file-name hashes.
const SALT_FILE: &str = "salt";
/// Past this size the file is rotated.
pub const MAX_FILE_BYTES: u64 = 8 << 20;
/// Events waiting for the writer at most.
const QUEUE: usize = 4096;

/// `${XDG_STATE_HOME:-~/.local/state}/infill` (a relative `XDG_STATE_HOME`
/// is ignored, as the XDG spec says).
pub fn default_dir() -> Option<PathBuf> {
    // Unit tests and fuzzing never touch the user's store.
    if cfg!(any(test, feature = "fuzzing")) {
        return Some(
            std::env::temp_dir()
                .join("infill-test-state")
                .join("infill"),
        );
    }
    let base = match std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        Some(dir) => dir,
        None => PathBuf::from(std::env::var_os("HOME")?)
            .join(".local")
            .join("state"),
    };
    Some(base.join("infill"))
}

/// The events of the store in `dir`, oldest first, and how many lines were
/// skipped (torn by a crash, or unreadable). A missing store is empty.
pub fn read(dir: &Path) -> std::io::Result<(Vec<Event>, usize)> {
    let mut events = Vec::new();
    let mut skipped = 0;
    for name in [OLD_FILE, FILE] {
        let file = match File::open(dir.join(name)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in BufReader::new(file).split(b'\n') {
            let line = line?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match std::str::from_utf8(&line).ok().and_then(parse_line) {
                Some(e) => events.push(e),
                None => skipped += 1,
            }
        }
    }
    events.sort_by_key(|e| e.t);
    Ok((events, skipped))
}

/// The salt of file-name hashes kept in `dir` (made at random once).
pub fn salt(dir: &Path) -> String {
    if let Ok(s) = std::fs::read_to_string(dir.join(SALT_FILE)) {
        let s = s.trim();
        if !s.is_empty() {
            return s.to_string();
        }
    }
    let salt = random_hex();
    if std::fs::create_dir_all(dir).is_ok() {
        let _ = std::fs::write(dir.join(SALT_FILE), &salt);
    }
    salt
}

/// 32 random hex digits, from the standard library's per-process random
/// hash keys (no dependency for it).
pub fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

enum Msg {
    Event(Box<Event>),
    Flush(std::sync::mpsc::Sender<()>),
}

/// The writer thread's handle: events sent here are appended in order.
#[derive(Clone)]
pub struct Writer {
    tx: SyncSender<Msg>,
    today: Arc<Mutex<Today>>,
    dir: PathBuf,
}

impl Writer {
    /// Starts the thread that appends to the store in `dir`. Today's
    /// figures start from what the store already holds.
    pub fn start(dir: PathBuf) -> Writer {
        let (tx, rx) = sync_channel(QUEUE);
        let today = Arc::new(Mutex::new(Today::default()));
        let thread_dir = dir.clone();
        let thread_today = today.clone();
        let spawned = std::thread::Builder::new()
            .name("infill-stats".into())
            .spawn(move || write_loop(&thread_dir, rx, &thread_today));
        if let Err(e) = spawned {
            tracing::warn!("statistics are not recorded: no writer thread: {e}");
        }
        Writer { tx, today, dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues `event`; never waits (dropped when the queue is full).
    pub fn record(&self, event: Event) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Msg::Event(Box::new(event))) {
            tracing::warn!("statistics: the writer is behind, an event was dropped");
        }
    }

    /// Waits up to `timeout` until what was queued is written.
    pub fn flush(&self, timeout: Duration) {
        let (done, wait) = std::sync::mpsc::channel();
        if self.tx.try_send(Msg::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(timeout);
        }
    }

    /// Today's shown and accepted suggestions (this store, all servers
    /// that wrote to it before this one started, and this one).
    pub fn today(&self) -> Today {
        self.today.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

/// Today, in UTC days since the Unix epoch.
fn day_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64 / crate::stats::aggregate::DAY_MS)
        .unwrap_or(0)
}

fn write_loop(dir: &Path, rx: Receiver<Msg>, today: &Mutex<Today>) {
    if let Ok((events, _)) = read(dir) {
        if let Ok(mut t) = today.lock() {
            for e in &events {
                t.count(e, day_now());
            }
        }
    }
    let mut file: Option<File> = None;
    let mut failed = false;
    loop {
        let msg = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        match msg {
            Msg::Flush(done) => {
                let _ = done.send(());
            }
            Msg::Event(event) => {
                if let Ok(mut t) = today.lock() {
                    t.count(&event, day_now());
                }
                let Ok(mut line) = serde_json::to_string(&event) else {
                    continue;
                };
                line.push('\n');
                match append(dir, &mut file, line.as_bytes()) {
                    Ok(()) => failed = false,
                    Err(e) => {
                        file = None;
                        if !failed {
                            tracing::warn!("statistics: cannot write to {}: {e}", dir.display());
                        }
                        failed = true;
                    }
                }
            }
        }
    }
}

/// Appends `line` with one write, rotating the file first when full.
fn append(dir: &Path, file: &mut Option<File>, line: &[u8]) -> std::io::Result<()> {
    if let Some(f) = file {
        if f.metadata()?.len() + line.len() as u64 > MAX_FILE_BYTES {
            *file = None;
            std::fs::rename(dir.join(FILE), dir.join(OLD_FILE))?;
        }
    }
    if file.is_none() {
        *file = Some(open(dir)?);
    }
    match file {
        Some(f) => f.write_all(line),
        None => Ok(()),
    }
}

/// Opens the store for appending (made private to the user), ending a
/// torn last line first.
fn open(dir: &Path) -> std::io::Result<File> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let mut options = OpenOptions::new();
    options.create(true).append(true).read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(dir.join(FILE))?;
    let len = f.metadata()?.len();
    if len > 0 {
        let mut last = [0u8];
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            f.write_all(b"\n")?;
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Lines, Meta, Source, Trigger, What, VERSION};

    fn event(n: u64) -> Event {
        Event {
            v: VERSION,
            t: 1000 + n,
            session: "s".into(),
            n,
            what: What::Shown,
            meta: Meta {
                language: "python".into(),
                model: "m".into(),
                engine: "e".into(),
                trigger: Trigger::Invoked,
                lines: Lines::Single,
                latency_ms: 1,
                evaluated_tokens: 1,
                chars: 1,
                cross_file: false,
                source: Source::Model,
                file: "f".into(),
            },
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("infill-store-{name}-{}", random_hex()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_torn_line_is_skipped_and_the_next_event_starts_a_line() {
        let dir = scratch("torn");
        let w = Writer::start(dir.clone());
        w.record(event(1));
        w.flush(Duration::from_secs(5));
        drop(w);
        // A crash in the middle of the next line.
        let line = serde_json::to_string(&event(2)).unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join(FILE))
            .unwrap();
        f.write_all(&line.as_bytes()[..line.len() / 2]).unwrap();
        drop(f);
        let w = Writer::start(dir.clone());
        w.record(event(3));
        w.flush(Duration::from_secs(5));
        let (events, skipped) = read(&dir).unwrap();
        assert_eq!(events.iter().map(|e| e.n).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(skipped, 1);
        assert_eq!(w.today().shown, 0, "events of 1970 are not today's");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_full_file_is_rotated_and_the_store_stays_bounded() {
        let dir = scratch("rotate");
        let mut file = None;
        let line = format!("{}\n", serde_json::to_string(&event(1)).unwrap());
        let lines = MAX_FILE_BYTES as usize / line.len() * 2 + 10;
        for _ in 0..lines {
            append(&dir, &mut file, line.as_bytes()).unwrap();
        }
        let size = |n: &str| std::fs::metadata(dir.join(n)).map(|m| m.len()).unwrap_or(0);
        assert!(size(FILE) <= MAX_FILE_BYTES && size(OLD_FILE) <= MAX_FILE_BYTES);
        assert!(size(OLD_FILE) > 0);
        let (events, skipped) = read(&dir).unwrap();
        assert_eq!(skipped, 0);
        assert!(events.len() < lines);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_salt_is_made_once() {
        let dir = scratch("salt");
        let a = salt(&dir);
        assert_eq!(a.len(), 32);
        assert_eq!(salt(&dir), a);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
