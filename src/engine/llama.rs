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

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaModel, RopeType};
use llama_cpp_2::token::LlamaToken;

use super::reuse::{Moved, Staleness};
use super::{CancelFlag, Engine, EngineError, EngineOutput, EngineRequest, EngineState};
use crate::prompt::fim::{known_marker_texts, FimTemplate};
use crate::prompt::memo::{Memoized, TokenMemo};
use crate::prompt::repo::{build_with_context, RepoTokens};
use crate::prompt::{Token, Tokenizer};

/// The sequence id text inserted before a moved run is evaluated under.
const SCRATCH_SEQ: i32 = 1;

/// Prompt tokens evaluated per decode call. Small enough that a cancelled
/// request frees the engine quickly, large enough to keep the CPU busy.
const EVAL_CHUNK: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct LlamaSettings {
    pub path: PathBuf,
    pub threads: usize,
    pub context_size: u32,
    pub gpu_layers: u32,
    pub fim_template: Option<String>,
}

struct Job {
    req: EngineRequest,
    cancel: CancelFlag,
    reply: mpsc::Sender<Result<EngineOutput, EngineError>>,
}

type SharedState = Arc<(Mutex<EngineState>, Condvar)>;

pub struct LlamaEngine {
    state: SharedState,
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl LlamaEngine {
    /// Starts loading the model on a new thread and returns at once.
    pub fn spawn(settings: LlamaSettings) -> Arc<LlamaEngine> {
        let state: SharedState = Arc::new((Mutex::new(EngineState::Loading), Condvar::new()));
        let (tx, rx) = mpsc::channel::<Job>();
        let thread_state = state.clone();
        let spawned = thread::Builder::new()
            .name("infill-engine".into())
            .spawn(move || worker(settings, thread_state, rx));
        if let Err(e) = spawned {
            set_state(
                &state,
                EngineState::Failed(format!("cannot start engine thread: {e}")),
            );
        }
        Arc::new(LlamaEngine {
            state,
            jobs: Mutex::new(tx),
        })
    }
}

fn set_state(state: &SharedState, new: EngineState) {
    let (lock, cvar) = &**state;
    if let Ok(mut s) = lock.lock() {
        *s = new;
    }
    cvar.notify_all();
}

impl Engine for LlamaEngine {
    fn state(&self) -> EngineState {
        match self.state.0.lock() {
            Ok(s) => s.clone(),
            Err(_) => EngineState::Failed("engine state poisoned".into()),
        }
    }

    fn wait_ready(&self, timeout: Duration) -> EngineState {
        let (lock, cvar) = &*self.state;
        let Ok(guard) = lock.lock() else {
            return EngineState::Failed("engine state poisoned".into());
        };
        match cvar.wait_timeout_while(guard, timeout, |s| *s == EngineState::Loading) {
            Ok((s, _)) => s.clone(),
            Err(_) => EngineState::Failed("engine state poisoned".into()),
        }
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
        let sent = self
            .jobs
            .lock()
            .map_err(|_| EngineError::Failed("engine queue poisoned".into()))?
            .send(Job { req, cancel, reply });
        if sent.is_err() {
            return Err(EngineError::Failed("the engine thread has stopped".into()));
        }
        answer
            .recv()
            .unwrap_or_else(|_| Err(EngineError::Failed("the engine thread has stopped".into())))
    }
}

fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp logs go through `tracing` (stderr, filtered) rather
            // than straight to stderr.
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| format!("cannot initialise llama.cpp: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Checks what llama.cpp would otherwise report only as a null pointer.
fn check_model_file(path: &Path) -> Result<(), String> {
    let mut file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "model file {} does not exist; run `scripts/fetch-model` or set `model.path`",
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
        "{file} ({} template, {} threads)",
        session.template.family.name(),
        settings.threads
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

/// The model's tokenizer, with special-token parsing off.
struct VocabTokenizer<'m> {
    model: &'m LlamaModel,
    pieces: &'m [Vec<u8>],
}

impl Tokenizer for VocabTokenizer<'_> {
    fn piece(&self, token: Token) -> Vec<u8> {
        self.pieces.get(token as usize).cloned().unwrap_or_default()
    }

    fn tokenize(&self, text: &str) -> Vec<Token> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, false)
            .into_iter()
            .map(|t| t.0)
            .collect()
    }
}

struct Session<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    template: FimTemplate,
    /// The model's repository-level tokens, if it has them.
    repo: Option<RepoTokens>,
    bos: Option<Token>,
    /// Bytes of every token (empty for special ones), for token healing.
    pieces: Vec<Vec<u8>>,
    /// Tokens whose keys and values the context holds, in order from position 0.
    cached: Vec<Token>,
    /// Tokenizations of the last requests' long texts.
    memo: RefCell<TokenMemo>,
    /// How approximate the moved part of the KV cache is.
    staleness: Staleness,
    /// Whether the model's cache can be shifted (plain RoPE positions;
    /// llama.cpp aborts on a shift it cannot do).
    can_move: bool,
}

impl<'m> Session<'m> {
    fn new(model: &'m LlamaModel, settings: &LlamaSettings) -> Result<Session<'m>, String> {
        let backend = backend()?;
        let threads = i32::try_from(settings.threads.max(1)).unwrap_or(1);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(settings.context_size))
            .with_n_batch(512)
            .with_n_ubatch(512)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            // A second sequence, sharing the cells of the first (one
            // unified cache), to evaluate text inserted before a moved run
            // (see `insert`).
            .with_n_seq_max(2)
            .with_kv_unified(true);
        let ctx = model.new_context(backend, params).map_err(|e| {
            format!(
                "cannot create a llama.cpp context of {} tokens: {e}",
                settings.context_size
            )
        })?;

        let vocab = model.vocab();
        let wanted: Vec<&str> = known_marker_texts().collect();
        let mut specials: HashMap<String, Token> = HashMap::new();
        for t in vocab.tokens() {
            if let Some(text) = vocab.text(t).and_then(|c| c.to_str().ok()) {
                if wanted.contains(&text) {
                    specials.insert(text.to_string(), t.0);
                }
            }
        }
        let template = FimTemplate::detect(
            &|s| specials.get(s).copied(),
            settings.fim_template.as_deref(),
        );
        let names: Vec<String> = ["general.name", "general.finetune"]
            .iter()
            .filter_map(|key| model.meta_val_str(key).ok())
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let repo = RepoTokens::detect(&template, &|s| specials.get(s).copied(), &names);
        let bos = vocab.should_add_bos().then(|| vocab.bos().0);
        let pieces = vocab
            .tokens()
            .map(|t| {
                if vocab.is_control(t) || vocab.is_eog(t) {
                    Vec::new()
                } else {
                    vocab.token_to_piece(t, false, None)
                }
            })
            .collect();
        Ok(Session {
            model,
            ctx,
            template,
            repo,
            bos,
            pieces,
            cached: Vec::new(),
            memo: RefCell::new(TokenMemo::default()),
            staleness: Staleness::default(),
            can_move: matches!(model.rope_type(), Some(RopeType::Norm | RopeType::NeoX)),
        })
    }

    /// Forgets the KV cache: its content is unknown after a failure.
    fn reset(&mut self) {
        self.ctx.clear_kv_cache();
        self.cached.clear();
        self.staleness.reset();
    }

    fn complete(
        &mut self,
        req: &EngineRequest,
        cancel: &CancelFlag,
    ) -> Result<EngineOutput, EngineError> {
        let started = Instant::now();
        let result = self.run(req, cancel, started);
        if let Err(EngineError::Failed(_)) = &result {
            self.reset();
        }
        result
    }

    fn run(
        &mut self,
        req: &EngineRequest,
        cancel: &CancelFlag,
        started: Instant,
    ) -> Result<EngineOutput, EngineError> {
        let n_ctx = self.ctx.n_ctx() as usize;
        let bos_len = usize::from(self.bos.is_some());
        let room = n_ctx.saturating_sub(req.max_tokens + 1 + bos_len);
        let budget = req.prompt_budget.min(room);
        // Cross-file snippets get their own budget, from what the FIM part leaves.
        let context = req.context.clone().map(|mut c| {
            c.budget = c.budget.min(room - budget);
            c
        });
        self.memo.borrow_mut().next_request();
        let vocab_tokenizer = VocabTokenizer {
            model: self.model,
            pieces: &self.pieces,
        };
        let (built, _) = build_with_context(
            &Memoized {
                inner: &vocab_tokenizer,
                memo: &self.memo,
            },
            &self.template,
            self.repo,
            context.as_ref(),
            &req.prefix,
            &req.suffix,
            budget,
            req.shape,
            req.definition_start,
        );
        let build_time = started.elapsed();
        // The prompt as text (special tokens show as nothing), to see what
        // the model was shown: `INFILL_LOG=infill::engine=trace`.
        if tracing::enabled!(tracing::Level::TRACE) {
            let text: Vec<u8> = built
                .tokens
                .iter()
                .flat_map(|&t| self.pieces.get(t as usize).cloned().unwrap_or_default())
                .collect();
            tracing::trace!(prompt = %String::from_utf8_lossy(&text), "prompt");
        }
        let mut tokens = Vec::with_capacity(built.tokens.len() + 1);
        tokens.extend(self.bos);
        tokens.extend(built.tokens);
        if tokens.is_empty() {
            return Ok(EngineOutput::default());
        }

        if req.fresh {
            self.reset();
        }
        // Keep the cached prefix, and a run of the old prompt that moved
        // (see `reuse`); always evaluate at least the last prompt token,
        // whose logits start generation.
        let plan = self
            .staleness
            .plan(&self.cached, &tokens, req.move_cache && self.can_move);
        let common = plan.common;
        let mut evaluated = 0;
        let mut batch = LlamaBatch::new(EVAL_CHUNK, 1);
        let rest = match plan.moved {
            Some(m) => {
                self.move_run(common, m)?;
                self.cached.truncate(common);
                evaluated += self.insert(&mut batch, common, &tokens[common..m.to], cancel)?;
                self.cached.extend_from_slice(&tokens[m.to..m.to + m.len]);
                m.to + m.len
            }
            None => {
                self.ctx
                    .clear_kv_cache_seq(Some(0), Some(position(common)?), None)
                    .map_err(kv_failed)?;
                self.cached.truncate(common);
                common
            }
        };
        evaluated += self.evaluate(&mut batch, &tokens[rest..], cancel)?;
        let moved_tokens = plan.moved.map_or(0, |m| m.len);
        let eval_time = started.elapsed().saturating_sub(build_time);
        if req.evaluate_only {
            return Ok(EngineOutput {
                prompt_tokens: tokens.len(),
                evaluated_tokens: evaluated,
                moved_tokens,
                elapsed: started.elapsed(),
                build_time,
                eval_time,
                ..EngineOutput::default()
            });
        }

        let vocab = self.model.vocab();
        // Bytes of the healed token not yet matched by generated tokens.
        let healed = built.healed;
        let mut pending: &[u8] = &healed;
        let mut bytes: Vec<u8> = Vec::new();
        let mut text_len = 0;
        let mut generated = 0;
        let mut cut_by_time = false;
        let avoid = req
            .avoid
            .as_deref()
            .map(|a| a.trim().as_bytes())
            .filter(|a| !a.is_empty());
        let mut has_content = false;
        while generated < req.max_tokens {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            let logits = self.ctx.get_logits_ith(batch.n_tokens() - 1);
            let avoiding = avoid.filter(|_| !has_content);
            let next = if pending.is_empty() && avoiding.is_none() {
                argmax(logits)
            } else {
                let pieces = &self.pieces;
                let stops = &self.template.stop_tokens;
                argmax_where(logits, |t| {
                    pieces.get(t as usize).is_some_and(|p| {
                        // Only tokens that agree with the healed text may come next.
                        let heals = pending.is_empty()
                            || (!p.is_empty()
                                && (p.starts_with(pending) || pending.starts_with(p)));
                        // The answer may not end yet: no special token (they
                        // have no bytes) and no template stop token (a model
                        // may give those text).
                        heals
                            && avoiding.is_none_or(|a| {
                                !p.is_empty()
                                    && !stops.contains(&t)
                                    && !takes_avoided_start(
                                        p.get(pending.len()..).unwrap_or(&[]),
                                        a,
                                    )
                            })
                    })
                })
            };
            let Some(next) = next else { break };
            let token = LlamaToken(next);
            if vocab.is_eog(token)
                || vocab.is_control(token)
                || self.template.stop_tokens.contains(&next)
            {
                break;
            }
            generated += 1;
            let piece = self
                .pieces
                .get(next as usize)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            pending = &pending[piece.len().min(pending.len())..];
            bytes.extend_from_slice(piece);
            // The answer is what follows the healed text.
            let answer = bytes.get(healed.len()..).unwrap_or(&[]);
            let valid = match std::str::from_utf8(answer) {
                Ok(s) => s,
                Err(e) => std::str::from_utf8(&answer[..e.valid_up_to()]).unwrap_or(""),
            };
            text_len = valid.len();
            has_content = !valid.trim().is_empty();
            if let Some(cut) = req.stop.cut(valid) {
                text_len = cut;
                break;
            }
            let over_time = req.time_budget.is_some_and(|b| started.elapsed() > b);
            if over_time
                && valid.trim_end_matches([' ', '\t']).ends_with('\n')
                && !valid.trim().is_empty()
            {
                text_len = valid.trim_end().len();
                cut_by_time = true;
                break;
            }
            self.decode(&mut batch, &[next])?;
        }
        let answer = bytes.get(healed.len()..).unwrap_or(&[]);
        let answer = &answer[..text_len.min(answer.len())];
        Ok(EngineOutput {
            text: String::from_utf8_lossy(answer).into_owned(),
            prompt_tokens: tokens.len(),
            evaluated_tokens: evaluated,
            moved_tokens,
            generated_tokens: generated,
            marker_tokens: tokens
                .iter()
                .filter(|t| self.template.stop_tokens.contains(t) || self.template.is_marker(**t))
                .count(),
            elapsed: started.elapsed(),
            build_time,
            eval_time,
            generate_time: started.elapsed().saturating_sub(build_time + eval_time),
            cut_by_time,
        })
    }

    /// Evaluates `tokens` after the cached ones in chunks, checking for
    /// cancellation between them. Returns how many were evaluated.
    fn evaluate(
        &mut self,
        batch: &mut LlamaBatch,
        tokens: &[Token],
        cancel: &CancelFlag,
    ) -> Result<usize, EngineError> {
        for chunk in tokens.chunks(EVAL_CHUNK) {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            self.decode(batch, chunk)?;
        }
        Ok(tokens.len())
    }

    /// Evaluates `tokens` (text inserted before a moved run; none for a
    /// deletion) at positions from `at`, where the cache already holds the
    /// run after them. llama.cpp evaluates a sequence only at positions after
    /// its last cached one, so they go through scratch sequence 1, which
    /// shares the cells of the first `at` positions, and their cells are then
    /// given to sequence 0. The run is not in sequence 1: they do not see it,
    /// as in a causal evaluation.
    fn insert(
        &mut self,
        batch: &mut LlamaBatch,
        at: usize,
        tokens: &[Token],
        cancel: &CancelFlag,
    ) -> Result<usize, EngineError> {
        if tokens.is_empty() {
            return Ok(0);
        }
        self.ctx
            .clear_kv_cache_seq(Some(SCRATCH_SEQ as u32), None, None)
            .map_err(kv_failed)?;
        self.ctx
            .copy_kv_cache_seq(0, SCRATCH_SEQ, None, Some(position(at)?))
            .map_err(kv_failed)?;
        let mut next = at;
        for chunk in tokens.chunks(EVAL_CHUNK) {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            self.decode_at(batch, chunk, SCRATCH_SEQ, next, false)?;
            next += chunk.len();
        }
        self.ctx
            .copy_kv_cache_seq(SCRATCH_SEQ, 0, Some(position(at)?), Some(position(next)?))
            .map_err(kv_failed)?;
        self.ctx
            .clear_kv_cache_seq(Some(SCRATCH_SEQ as u32), None, None)
            .map_err(kv_failed)?;
        self.cached.extend_from_slice(tokens);
        Ok(tokens.len())
    }

    /// Moves the cached run `m` to its place in the new prompt: drops the
    /// cells after `common` that are not in it, then shifts its positions.
    fn move_run(&mut self, common: usize, m: Moved) -> Result<(), EngineError> {
        if m.from > common {
            self.ctx
                .clear_kv_cache_seq(Some(0), Some(position(common)?), Some(position(m.from)?))
                .map_err(kv_failed)?;
        }
        self.ctx
            .clear_kv_cache_seq(Some(0), Some(position(m.from + m.len)?), None)
            .map_err(kv_failed)?;
        let delta = i32::try_from(m.to as i64 - m.from as i64)
            .map_err(|_| EngineError::Failed("shift overflow".into()))?;
        self.ctx
            .kv_cache_seq_add(
                0,
                Some(position(m.from)?),
                Some(position(m.from + m.len)?),
                delta,
            )
            .map_err(|e| EngineError::Failed(format!("KV shift: {e}")))?;
        Ok(())
    }

    /// Evaluates `tokens` after the cached ones; logits only for the last.
    fn decode(&mut self, batch: &mut LlamaBatch, tokens: &[Token]) -> Result<(), EngineError> {
        self.decode_at(batch, tokens, 0, self.cached.len(), true)?;
        self.cached.extend_from_slice(tokens);
        Ok(())
    }

    /// Evaluates `tokens` in sequence `seq` at positions from `start`, with
    /// logits for the last one if `logits`.
    fn decode_at(
        &mut self,
        batch: &mut LlamaBatch,
        tokens: &[Token],
        seq: i32,
        start: usize,
        logits: bool,
    ) -> Result<(), EngineError> {
        batch.clear();
        for (i, t) in tokens.iter().enumerate() {
            let pos = i32::try_from(start + i)
                .map_err(|_| EngineError::Failed("position overflow".into()))?;
            batch
                .add(LlamaToken(*t), pos, &[seq], logits && i + 1 == tokens.len())
                .map_err(|e| EngineError::Failed(format!("batch: {e}")))?;
        }
        self.ctx
            .decode(batch)
            .map_err(|e| EngineError::Failed(format!("decode: {e}")))
    }
}

/// A KV cache position as llama-cpp-2 takes it.
fn position(p: usize) -> Result<u32, EngineError> {
    u32::try_from(p).map_err(|_| EngineError::Failed("position overflow".into()))
}

fn kv_failed(e: impl std::fmt::Display) -> EngineError {
    EngineError::Failed(format!("KV cache: {e}"))
}

fn argmax(logits: &[f32]) -> Option<Token> {
    argmax_where(logits, |_| true)
}

/// The most likely token among those `allowed`.
fn argmax_where(logits: &[f32], allowed: impl Fn(Token) -> bool) -> Option<Token> {
    logits
        .iter()
        .enumerate()
        .filter_map(|(i, l)| Token::try_from(i).ok().map(|t| (t, l)))
        .filter(|(t, _)| allowed(*t))
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(t, _)| t)
}

/// Whether answer bytes `part`, coming after nothing but blanks, start
/// down the avoided text: their first non-blank bytes begin `avoid`, or
/// contain all of it.
fn takes_avoided_start(part: &[u8], avoid: &[u8]) -> bool {
    let start = part.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return false;
    };
    let content = &part[start..];
    avoid.starts_with(content) || content.starts_with(avoid)
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
        let dir = std::env::temp_dir().join(format!("infill-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("fake.gguf");
        std::fs::write(&fake, b"PK\x03\x04 not a model").unwrap();
        let err = check_model_file(&fake).unwrap_err();
        assert!(err.contains("not a GGUF"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_avoided_start_is_recognised_after_blanks() {
        let avoid = b"for (IKey c : map.keySet()) {";
        assert!(takes_avoided_start(b"for", avoid));
        assert!(takes_avoided_start(b"  f", avoid));
        assert!(takes_avoided_start(b"\n    for (", avoid));
        assert!(!takes_avoided_start(b"  ", avoid));
        assert!(!takes_avoided_start(b"", avoid));
        assert!(!takes_avoided_start(b"Map", avoid));
        assert!(!takes_avoided_start(b"fore", avoid));
        assert!(takes_avoided_start(b"x = 1\n", b"x = 1"));
    }

    #[test]
    fn argmax_picks_the_largest() {
        assert_eq!(argmax(&[0.1, 3.0, -1.0]), Some(1));
        assert_eq!(argmax(&[]), None);
    }
}
