//! The in-process engine: llama.cpp (through llama-cpp-2) running a GGUF
//! model on one dedicated thread.
//!
//! Why one thread: the llama context borrows the model and is not `Sync`,
//! and the backend may be initialised only once per process. The thread owns
//! model and context for their whole life and takes jobs from a channel, so
//! loading and decoding never run on the LSP message loop.
//!
//! The context is long-lived: the tokens it holds are remembered, and a new
//! prompt re-evaluates only what differs after their common prefix.
//!
//! This file holds the thread, the model load and the backend; a request
//! runs in `session` through its three steps: `prompt_build`,
//! `cache_sync` and `generate` (with `draft`'s prompt lookup, or
//! `candidates` for several answers at once).

mod cache_sync;
mod candidates;
mod cpu_variants;
mod draft;
mod generate;
mod parked;
mod prompt_build;
mod session;
pub(crate) mod vocab;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;

use super::{
    CancelFlag, Engine, EngineError, EngineOutput, EngineRequest, EngineState, SharedState,
};
use session::Session;

#[derive(Debug, Clone, PartialEq)]
pub struct LlamaSettings {
    pub path: PathBuf,
    pub threads: usize,
    pub context_size: u32,
    /// Prompts kept in the KV cache besides the one in use.
    pub kept_prompts: usize,
    pub gpu_layers: u32,
    pub fim_template: Option<String>,
}

/// How often a caller waiting for its answer looks at its cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(5);

/// The engine threads, so that the process can wait for them before it
/// exits (`wait_for_threads`): llama.cpp still working (a last prompt
/// chunk, or freeing the model) while the process exits races with the
/// exit's C++ static destructors, which free what it uses.
static THREADS: Mutex<Vec<thread::JoinHandle<()>>> = Mutex::new(Vec::new());

struct Job {
    req: EngineRequest,
    cancel: CancelFlag,
    reply: mpsc::Sender<Result<EngineOutput, EngineError>>,
}

pub struct LlamaEngine {
    state: SharedState,
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl LlamaEngine {
    /// Starts loading the model on a new thread and returns at once.
    pub fn spawn(settings: LlamaSettings) -> Arc<LlamaEngine> {
        let state = SharedState::loading();
        let (tx, rx) = mpsc::channel::<Job>();
        let thread_state = state.clone();
        let spawned = thread::Builder::new()
            .name("infill-engine".into())
            .spawn(move || worker(settings, thread_state, rx));
        match spawned {
            Ok(handle) => THREADS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(handle),
            Err(e) => set_state(
                &state,
                EngineState::Failed(format!("cannot start engine thread: {e}")),
            ),
        }
        Arc::new(LlamaEngine {
            state,
            jobs: Mutex::new(tx),
        })
    }
}

/// Waits until every engine thread has ended (its engine dropped: the jobs
/// done or cancelled, the model and context freed), at most `timeout`;
/// returns whether they all did.
pub fn wait_for_threads(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let handles = std::mem::take(&mut *THREADS.lock().unwrap_or_else(|p| p.into_inner()));
    let mut all = true;
    for handle in handles {
        while !handle.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        if handle.is_finished() {
            let _ = handle.join();
        } else {
            all = false;
        }
    }
    all
}

fn set_state(state: &SharedState, new: EngineState) {
    state.set(new);
}

impl Engine for LlamaEngine {
    fn state(&self) -> EngineState {
        self.state.get()
    }

    fn wait_ready(&self, timeout: Duration) -> EngineState {
        self.state.wait_ready(timeout)
    }

    fn complete(
        &self,
        req: EngineRequest,
        cancel: CancelFlag,
    ) -> Result<EngineOutput, EngineError> {
        match self.state() {
            EngineState::Loading => return Err(EngineError::Loading),
            EngineState::Failed(why) => return Err(EngineError::Unavailable(why)),
            EngineState::Ready { .. } => {}
        }
        let (reply, answer) = mpsc::channel();
        let flag = cancel.clone();
        let sent = self
            .jobs
            .lock()
            .map_err(|_| EngineError::Failed("engine queue poisoned".into()))?
            .send(Job { req, cancel, reply });
        if sent.is_err() {
            return Err(EngineError::Failed("the engine thread has stopped".into()));
        }
        // A request cancelled while it waits in the queue is answered at
        // once, so that its caller's thread is free (in a storm of
        // keystrokes hundreds wait); the worker skips it when it gets there,
        // or stops it within a token if it is running.
        loop {
            match answer.recv_timeout(CANCEL_POLL) {
                Ok(result) => return result,
                Err(mpsc::RecvTimeoutError::Timeout) if flag.is_cancelled() => {
                    return Err(EngineError::Cancelled)
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(EngineError::Failed("the engine thread has stopped".into()))
                }
            }
        }
    }
}

pub(crate) fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp logs go through `tracing` (stderr, filtered) rather
            // than straight to stderr.
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            #[cfg(feature = "cpu-variants")]
            cpu_variants::load()?;
            LlamaBackend::init().map_err(|e| format!("cannot initialise llama.cpp: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Checks what llama.cpp would otherwise report only as a null pointer.
pub(crate) fn check_model_file(path: &Path) -> Result<(), String> {
    let mut file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            // Name the manifest model the file is (a preset's), so that
            // the fetch command given is the one that brings it.
            let fetch = path
                .file_name()
                .and_then(|f| f.to_str())
                .and_then(crate::models::name_of_file)
                .map(|name| format!("scripts/fetch-model {name}"))
                .unwrap_or_else(|| "scripts/fetch-model".into());
            format!(
                "model file {} does not exist; run `{fetch}` or set `model.path`",
                path.display()
            )
        } else {
            format!("cannot open model file {}: {e}", path.display())
        }
    })?;
    let mut magic = [0u8; 4];
    if file.read_exact(&mut magic).is_err() || &magic != b"GGUF" {
        return Err(format!(
            "{} is not a GGUF model file; set `model.path` to a .gguf file",
            path.display()
        ));
    }
    Ok(())
}

fn worker(settings: LlamaSettings, state: SharedState, jobs: mpsc::Receiver<Job>) {
    let loaded = load(&settings);
    let model = match loaded {
        Ok(m) => m,
        Err(why) => {
            tracing::error!("model load failed: {why}");
            set_state(&state, EngineState::Failed(why.clone()));
            for job in jobs {
                let _ = job.reply.send(Err(EngineError::Unavailable(why.clone())));
            }
            return;
        }
    };
    let mut session = match Session::new(&model, &settings) {
        Ok(s) => s,
        Err(why) => {
            set_state(&state, EngineState::Failed(why.clone()));
            for job in jobs {
                let _ = job.reply.send(Err(EngineError::Unavailable(why.clone())));
            }
            return;
        }
    };
    let file = settings
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let description = format!(
        "{file} ({} template, {}{} threads, KV cache {} tokens in {} MiB: {} prompt(s) of {} kept besides the one in use)",
        session.template.family.name(),
        cpu_variants::described(),
        settings.threads,
        session.ctx.n_ctx(),
        session.kv_cache_bytes() >> 20,
        session.kept.capacity,
        settings.context_size,
    );
    tracing::info!("model ready: {description}");
    set_state(&state, EngineState::Ready { description });

    for job in jobs {
        // A request superseded while it waited in the queue costs nothing.
        let result = if job.cancel.is_cancelled() {
            Err(EngineError::Cancelled)
        } else {
            // A panic in one request must not take the engine down with it.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                session.complete(&job.req, &job.cancel)
            }))
            .unwrap_or_else(|_| {
                session.reset();
                Err(EngineError::Failed(
                    "the completion panicked; see the log".into(),
                ))
            })
        };
        let _ = job.reply.send(result);
    }
}

fn load(settings: &LlamaSettings) -> Result<LlamaModel, String> {
    check_model_file(&settings.path)?;
    let backend = backend()?;
    let params = LlamaModelParams::default().with_n_gpu_layers(settings.gpu_layers);
    let model = LlamaModel::load_from_file(backend, &settings.path, &params).map_err(|e| {
        format!(
            "llama.cpp could not load {} ({e}): the file may be truncated or of an unsupported architecture",
            settings.path.display()
        )
    })?;
    Ok(model)
}

/// Physical cores: llama.cpp gains nothing from hyper-threads, and loses
/// badly when its threads outnumber free cores.
pub fn physical_cores() -> usize {
    let logical = thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return logical;
    };
    let mut cores = std::collections::HashSet::new();
    let mut physical = "";
    for line in info.lines() {
        let mut kv = line.splitn(2, ':').map(str::trim);
        match (kv.next(), kv.next()) {
            (Some("physical id"), Some(v)) => physical = v,
            (Some("core id"), Some(v)) => {
                cores.insert((physical.to_string(), v.to_string()));
            }
            _ => {}
        }
    }
    if cores.is_empty() {
        logical
    } else {
        cores.len().min(logical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_missing_and_non_gguf_files() {
        let missing = check_model_file(Path::new("/nonexistent/model.gguf")).unwrap_err();
        assert!(missing.contains("does not exist"), "{missing}");
        // A preset's model that is not fetched yet: the command that brings it.
        let quality = crate::models::model_path(None, "quality");
        let file = quality.file_name().unwrap_or_default();
        let missing = check_model_file(&Path::new("/nonexistent").join(file)).unwrap_err();
        assert!(
            missing.contains("scripts/fetch-model qwen2.5-coder-1.5b"),
            "{missing}"
        );
        let dir = std::env::temp_dir().join(format!("infill-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("fake.gguf");
        std::fs::write(&fake, b"PK\x03\x04 not a model").unwrap();
        let err = check_model_file(&fake).unwrap_err();
        assert!(err.contains("not a GGUF"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
