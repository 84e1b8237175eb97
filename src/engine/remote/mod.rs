//! Remote engines: the model on an inference server (llama-server, or an
//! OpenAI-style server such as vLLM), everything else in infill.
//!
//! infill builds the same prompt as the local engine (template, layout,
//! cross-file snippets, token healing) with the remote model's own
//! vocabulary, read from its GGUF without weights (`model.path`): budgets
//! are exact, and the prompt is sent as token ids, so the server
//! evaluates exactly it. The probe checks that vocabulary against the
//! server's `/tokenize` (llama-server always; an OpenAI-style server where
//! it has one, else the vocabulary is unchecked, said once).
//!
//! Text mode: an OpenAI-style server that refuses a token-id prompt (HTTP
//! 400/422: Ollama, TGI take strings only) is sent the same tokens as
//! text from then on, special tokens written as their text, which the
//! server's tokenizer parses back (`Health::text_prompts`). Budgets are
//! still counted with infill's tokenizer; the server's count of the same
//! text may differ by a few tokens where its tokenizer merges across the
//! places infill tokenized separately (the snippets, the cut at the
//! cursor, the healed token). Token healing holds in text mode as far as
//! infill checks it: the answer must begin with the healed text, or it is
//! asked again with the prefix's last token back, exactly as with token
//! ids; what may differ is the server's tokenization of the prompt's end,
//! where the healing cut falls inside a word (`fibon|acci`): its model
//! then continues from other tokens than the local engine's, and its
//! answer may differ (never one that leaves the healed text). Greedy
//! answers stream back; the stop rule, stop
//! tokens, most tokens and time budget are applied as they come
//! (`answer`), and the connection is closed as soon as the answer is
//! complete or no longer wanted (`http`), so the server stops generating.
//!
//! A fault (server down, slow, an error status, a broken or garbled
//! stream) answers the request with nothing, puts the engine in a failed
//! state (`infill/status`) and starts a backoff during which requests are
//! answered at once without contacting the server; the session tells the
//! user once per episode (`Engine::fault_news`). A success ends the
//! episode. During an episode, one thread probes the server on the
//! backoff's schedule (`probe_in_background`), so that the end of the
//! episode is known without waiting for a request; it ends with the
//! episode or with the engine.
//!
//! With llama-server, each request names the slot whose cache holds this
//! engine's prompt (`slots`), so that editors sharing a server keep to
//! their own slots instead of evaluating their prompts again in each
//! other's.

mod answer;
mod http;
mod llama_server;
mod openai;
mod slots;

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::{Duration, Instant};

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use super::llama::vocab::{load_vocab_only, PromptVocab, VocabTokenizer};
use super::{
    healing, CancelFlag, Engine, EngineError, EngineOutput, EngineRequest, EngineState, FaultNews,
    SharedState,
};
use crate::config::EngineKind;
use crate::prompt::fim::known_marker_texts;
use crate::prompt::memo::{Memoized, TokenMemo};
use crate::prompt::repo::build_with_context;
use crate::prompt::{Token, Tokenizer};
use answer::{piece_of, Answer, Step};
use http::{Client, Ended, Fault, Flow};
use slots::SlotChoice;

/// Text tokenized by both sides at the probe: infill's vocabulary must be
/// the server's, or budgets and token ids mean nothing.
const PROBE_TEXT: &str = "def fib(n: int) -> list[int]:\n    \"\"\"Fibonacci numbers.\"\"\"\n\treturn [a + b for a, b in zip(xs, ys)]  # ü€\n";

/// The backoff after the first fault; doubled with each fault after it.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(4);

#[derive(Debug, Clone)]
pub struct RemoteSettings {
    pub kind: EngineKind,
    pub url: String,
    pub model: Option<String>,
    /// Name of the variable holding the API key (never the key).
    pub api_key_env: Option<String>,
    pub timeout: Duration,
    /// The GGUF whose vocabulary is the remote model's.
    pub vocab_path: PathBuf,
    pub fim_template: Option<String>,
    /// Most tokens of one prompt and its answer (`model.contextSize`).
    pub context_size: usize,
}

pub struct RemoteEngine {
    /// The engine itself, for the background probe's thread (which must
    /// not keep a dropped engine alive between probes).
    me: Weak<RemoteEngine>,
    settings: RemoteSettings,
    state: SharedState,
    loaded: Mutex<Option<Arc<Loaded>>>,
    health: Mutex<Health>,
    /// The llama-server slot that requests name.
    slots: Mutex<SlotChoice>,
}

/// The vocabulary and the connection's settings, once ready.
struct Loaded {
    model: LlamaModel,
    vocab: PromptVocab,
    memo: Mutex<RefCell<TokenMemo>>,
    client: Client,
    /// The template's marker texts, cut from text answers.
    markers: Vec<&'static str>,
}

/// The server's health as requests found it.
#[derive(Default)]
struct Health {
    /// The server was found to serve this model with this vocabulary.
    probed: bool,
    /// What the settings get wrong (a model the server does not serve, a
    /// vocabulary that is not the server's): no request is sent until
    /// they change.
    misconfigured: Option<String>,
    /// The fault of the episode under way, if any.
    fault: Option<String>,
    /// Faults in a row.
    failures: u32,
    /// No request reaches the server before this (backoff).
    retry_at: Option<Instant>,
    /// What the user has not been told yet.
    news: Option<FaultNews>,
    /// The model name sent to an OpenAI-style server (from the settings,
    /// or the one the server lists first).
    served_model: Option<String>,
    /// Why the vocabulary could not be checked (an OpenAI-style server
    /// without `/tokenize`): said once in the log and in the description.
    vocab_unchecked: Option<String>,
    /// The server refused a token-id prompt and took the same prompt as
    /// text: every prompt goes as text for the engine's life.
    text_prompts: bool,
    /// The background probe's thread runs (at most one).
    prober: bool,
    /// The probe met a fault during this episode: its endpoints answering
    /// again is news of the episode's end (not so where only completions
    /// failed: a server can answer `/health` and fail every completion).
    probe_faulted: bool,
    /// The episode's fault is that nobody answered at all.
    unreachable: bool,
    /// Fault episodes so far (the background probe's notion of which one
    /// it serves).
    episode: u64,
}

impl RemoteEngine {
    /// Loads the vocabulary and probes the server on a thread of its own;
    /// returns at once.
    pub fn spawn(settings: RemoteSettings) -> Arc<RemoteEngine> {
        let engine = Arc::new_cyclic(|me| RemoteEngine {
            me: me.clone(),
            settings,
            state: SharedState::loading(),
            loaded: Mutex::new(None),
            health: Mutex::new(Health::default()),
            slots: Mutex::new(SlotChoice::default()),
        });
        let loader = engine.clone();
        let spawned = thread::Builder::new()
            .name("infill-remote-load".into())
            .spawn(move || loader.load());
        if let Err(e) = spawned {
            engine.set_state(EngineState::Failed(format!(
                "cannot start the remote engine's thread: {e}"
            )));
        }
        engine
    }

    fn set_state(&self, new: EngineState) {
        self.state.set(new);
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, SlotChoice> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `exchange` of `prompt` naming our slot (llama-server); where
    /// the server refuses the slot, names none from then on and runs it
    /// again, with no fault. `exchange` returns its result, the slot that
    /// answered (which holds our prompt from then on) and the prompt
    /// tokens the server evaluated (which tell whether another client
    /// evicted our prompt from the slot).
    fn in_our_slot<T>(
        &self,
        prompt: &[Token],
        mut exchange: impl FnMut(Option<usize>) -> Result<Exchanged<T>, Ended>,
    ) -> Result<T, Ended> {
        if self.settings.kind != EngineKind::LlamaServer {
            return exchange(None).map(|(t, _, _)| t);
        }
        let mut asked = self.slots().to_ask();
        let (t, answered, evaluated) = match exchange(asked) {
            Err(Ended::Fault(fault)) if asked.is_some() && slots::refuses_slot(&fault) => {
                tracing::info!(
                    "remote engine: the server refused slot {asked:?} ({fault}); requests name no slot from now on"
                );
                self.slots().refused();
                asked = None;
                exchange(None)?
            }
            other => other?,
        };
        let mut slots = self.slots();
        if let Some(slot) = answered {
            slots.answered_from(slot);
        }
        if slots.evaluated(asked, prompt, evaluated) {
            tracing::info!(
                "remote engine: another client evicted our prompt from slot {asked:?} (more editors than slots?); requests name no slot from now on"
            );
        }
        Ok(t)
    }

    fn load(&self) {
        let s = &self.settings;
        if s.url.is_empty() {
            return self.set_state(EngineState::Failed(format!(
                "engine.kind `{}` needs engine.url, the inference server's address",
                s.kind.name()
            )));
        }
        let api_key = match &s.api_key_env {
            None => None,
            Some(var) => match std::env::var(var) {
                Ok(key) if !key.is_empty() => Some(key),
                _ => {
                    return self.set_state(EngineState::Failed(format!(
                        "engine.apiKeyEnv names `{var}`, which is not set in infill's environment"
                    )))
                }
            },
        };
        let model = match load_vocab_only(&s.vocab_path) {
            Ok(m) => m,
            Err(why) => {
                return self.set_state(EngineState::Failed(format!(
                    "{why} (a remote engine counts its prompts with the vocabulary of `model.path`, the GGUF of the model the server runs)"
                )))
            }
        };
        let vocab = PromptVocab::of(&model, s.fim_template.as_deref());
        let markers = known_marker_texts().collect();
        let loaded = Arc::new(Loaded {
            model,
            vocab,
            memo: Mutex::new(RefCell::new(TokenMemo::default())),
            client: Client::new(api_key, s.timeout),
            markers,
        });
        *self.loaded.lock().unwrap_or_else(|p| p.into_inner()) = Some(loaded.clone());
        // The first probe tells the user at once whether the server is
        // there; a fault here is the first of an episode like any other.
        match self.probe(&loaded) {
            Ok(()) => self.set_state(EngineState::Ready {
                description: self.description(&loaded),
            }),
            Err(why) => {
                // Told by the session's model-load watcher (a failed state).
                self.health().news = None;
                self.set_state(EngineState::Failed(why));
            }
        }
    }

    fn description(&self, loaded: &Loaded) -> String {
        let s = &self.settings;
        let (served, unchecked, text) = {
            let h = self.health();
            (
                h.served_model.clone(),
                h.vocab_unchecked.clone(),
                h.text_prompts,
            )
        };
        format!(
            "{} at {}{} ({} template, vocabulary of {}{}){}",
            s.kind.name(),
            s.url,
            served.map(|m| format!(", model {m}")).unwrap_or_default(),
            loaded.vocab.template.family.name(),
            s.vocab_path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            unchecked
                .map(|why| format!(", vocabulary unchecked: {why}"))
                .unwrap_or_default(),
            if text {
                ", prompts sent as text (the server takes no token ids)"
            } else {
                ""
            },
        )
    }

    /// Checks the server (once it answers): up, serving the configured
    /// model, with infill's vocabulary. A fault is recorded as such; a
    /// misconfiguration stops all requests.
    fn probe(&self, loaded: &Loaded) -> Result<(), String> {
        match self.check_server(loaded) {
            Ok(Ok(served)) => {
                let mut h = self.health();
                h.probed = true;
                h.served_model = served;
                Ok(())
            }
            Ok(Err(misconfigured)) => {
                let misconfigured = format!("misconfigured: {misconfigured}");
                tracing::error!("remote engine: {misconfigured}");
                let mut h = self.health();
                h.misconfigured = Some(misconfigured.clone());
                h.news = Some(FaultNews::Began(misconfigured.clone()));
                drop(h);
                self.set_state(EngineState::Failed(misconfigured.clone()));
                Err(misconfigured)
            }
            Err(fault) => {
                let text = self.faulted(&fault);
                self.health().probe_faulted = true;
                Err(text)
            }
        }
    }

    /// `Ok(Ok(model name to send))`, `Ok(Err(what the settings get
    /// wrong))`, or the fault met.
    fn check_server(&self, loaded: &Loaded) -> Result<Result<Option<String>, String>, Fault> {
        let s = &self.settings;
        let client = &loaded.client;
        match s.kind {
            EngineKind::LlamaServer => {
                client.get_json(&http::endpoint(&s.url, llama_server::HEALTH))?;
                let theirs = llama_server::tokens_of(&client.post_json(
                    &http::endpoint(&s.url, llama_server::TOKENIZE),
                    &serde_json::json!({ "content": PROBE_TEXT }),
                )?)?;
                if !self.same_vocabulary(loaded, &theirs) {
                    return Ok(Err(self.vocabulary_mismatch()));
                }
                // The number of slots bounds the slot requests name; a
                // server that does not say (no `/props`, a proxy in
                // front) is served all the same.
                let total = client
                    .get_json(&http::endpoint(&s.url, llama_server::PROPS))
                    .ok()
                    .and_then(|props| llama_server::total_slots(&props));
                tracing::debug!(total_slots = ?total, "remote engine: llama-server's slots");
                self.slots().set_total(total);
                Ok(Ok(None))
            }
            EngineKind::OpenAi => {
                let root = openai::root(&s.url);
                let ids =
                    openai::model_ids(&client.get_json(&http::endpoint(&root, openai::MODELS))?)?;
                let served = match &s.model {
                    Some(m) if ids.contains(m) => m.clone(),
                    Some(m) => {
                        return Ok(Err(format!(
                            "the server at {} does not serve the model `{m}` (engine.model); it serves: {}",
                            s.url,
                            ids.join(", ")
                        )))
                    }
                    None => match ids.first() {
                        Some(first) => first.clone(),
                        None => return Err(Fault::Garbage("`/v1/models` lists no model".into())),
                    },
                };
                // vLLM and llama-server tokenize at their root; other
                // servers (Ollama, TGI, hosted APIs) have no such
                // endpoint, and their vocabulary goes unchecked.
                let tokenized = openai::tokenized(client.post_json(
                    &http::endpoint(openai::server_root(&s.url), openai::TOKENIZE),
                    &openai::tokenize_body(&served, PROBE_TEXT),
                ))?;
                match tokenized {
                    openai::Tokenized::Tokens(theirs) => {
                        if !self.same_vocabulary(loaded, &theirs) {
                            return Ok(Err(self.vocabulary_mismatch()));
                        }
                        self.health().vocab_unchecked = None;
                    }
                    openai::Tokenized::Absent(why) => {
                        let why = format!("the server has no `/tokenize` ({why})");
                        let mut h = self.health();
                        if h.vocab_unchecked.is_none() {
                            tracing::warn!(
                                "remote engine: the vocabulary of {} is unchecked: {why}; budgets and token ids are right only if it is the model's at {}",
                                s.vocab_path.display(),
                                s.url
                            );
                        }
                        h.vocab_unchecked = Some(why);
                    }
                }
                Ok(Ok(Some(served)))
            }
            EngineKind::Local => Ok(Err("not a remote engine kind".into())),
        }
    }

    /// Whether the server's tokens for `PROBE_TEXT` are infill's (a server
    /// that put its BOS first all the same agrees).
    fn same_vocabulary(&self, loaded: &Loaded, theirs: &[Token]) -> bool {
        let ours = VocabTokenizer {
            model: &loaded.model,
            pieces: &loaded.vocab.pieces,
        }
        .tokenize(PROBE_TEXT);
        let theirs = match (loaded.vocab.bos, theirs.split_first()) {
            (Some(bos), Some((&first, rest))) if first == bos && rest.len() == ours.len() => rest,
            _ => theirs,
        };
        theirs == ours
    }

    fn vocabulary_mismatch(&self) -> String {
        format!(
            "the model at {} tokenizes differently from the vocabulary of {}: set `model.path` to the GGUF of the model the server runs",
            self.settings.url,
            self.settings.vocab_path.display()
        )
    }

    /// Records a fault: the episode's first is news; the backoff grows.
    /// Returns the text for the state and the request's error.
    fn faulted(&self, fault: &Fault) -> String {
        let text = format!("{fault} ({})", self.settings.url);
        let mut h = self.health();
        h.failures += 1;
        let backoff = FIRST_BACKOFF
            .saturating_mul(1 << (h.failures - 1).min(8))
            .min(MAX_BACKOFF);
        h.retry_at = Some(Instant::now() + backoff);
        if h.fault.is_none() {
            h.news = Some(FaultNews::Began(text.clone()));
            h.episode += 1;
            h.probe_faulted = false;
            h.unreachable = false;
        }
        h.unreachable |= matches!(fault, Fault::Unreachable(_));
        h.fault = Some(text.clone());
        let start_prober = !h.prober;
        h.prober = true;
        drop(h);
        if start_prober {
            let me = self.me.clone();
            let spawned = thread::Builder::new()
                .name("infill-remote-probe".into())
                .spawn(move || probe_in_background(me));
            if let Err(e) = spawned {
                tracing::warn!("remote engine: cannot start the background probe ({e}); the next request tries again");
                self.health().prober = false;
            }
        }
        tracing::warn!(
            "remote engine: {text}; next try in {} ms",
            backoff.as_millis()
        );
        self.set_state(EngineState::Failed(text.clone()));
        text
    }

    /// Records a success: the episode (if any) ends.
    fn succeeded(&self, loaded: &Loaded) {
        let mut h = self.health();
        h.failures = 0;
        h.retry_at = None;
        if h.fault.take().is_some() {
            h.news = Some(FaultNews::Ended);
            drop(h);
            tracing::info!("remote engine: the server answers again");
            self.set_state(EngineState::Ready {
                description: self.description(loaded),
            });
        }
    }

    /// The background probe's one try (`probe_in_background`): where the
    /// server's probe endpoints answer again and that says the episode is
    /// over (they failed too, or nobody answered at all), it ends; where
    /// it says nothing (only completions failed), the probe stops and
    /// requests decide. Returns whether to go on probing.
    fn probe_again(&self) -> bool {
        let loaded = self
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(loaded) = loaded else {
            return false;
        };
        if self.probe(&loaded).is_err() {
            // A fault (the backoff grew) goes on; a misconfiguration stops.
            return self.health().misconfigured.is_none();
        }
        let telling = {
            let h = self.health();
            h.probe_faulted || h.unreachable
        };
        if telling {
            self.succeeded(&loaded);
        }
        false
    }

    fn run(
        &self,
        loaded: &Loaded,
        req: &EngineRequest,
        cancel: &CancelFlag,
    ) -> Result<EngineOutput, Ended> {
        let started = Instant::now();
        let built = self.build_prompt(loaded, req);
        let build_time = started.elapsed();
        if built.tokens.is_empty() {
            return Ok(EngineOutput::default());
        }
        let marker_tokens = built
            .tokens
            .iter()
            .filter(|t| {
                loaded.vocab.template.stop_tokens.contains(t)
                    || loaded.vocab.template.is_marker(**t)
            })
            .count();
        if req.evaluate_only {
            let evaluated = self.warm(loaded, &built.tokens, cancel)?;
            return Ok(EngineOutput {
                prompt_tokens: built.tokens.len(),
                evaluated_tokens: evaluated,
                elapsed: started.elapsed(),
                build_time,
                eval_time: started.elapsed().saturating_sub(build_time),
                ..EngineOutput::default()
            });
        }
        // The first prompt claims a slot (llama-server): evaluated only,
        // naming none, so that the server's last event says which slot it
        // gave; the answer is then asked there, and so is every request
        // after it.
        let mut claim_evaluated = 0;
        if self.settings.kind == EngineKind::LlamaServer && !req.fresh && self.slots().to_claim() {
            claim_evaluated = self.warm(loaded, &built.tokens, cancel)?;
            self.slots().claimed();
        }
        let mut generated =
            self.answer(loaded, req, &built.tokens, &built.healed, cancel, started)?;
        let mut prompt_tokens = built.tokens.len();
        if generated.diverged {
            // The server's greedy answer left the healed text, where the
            // local engine would have kept to it: ask again with the
            // prefix's last token in the prompt (no healing); healed
            // indentation goes back but for its last blank, which the
            // answer must still begin with (`healing::agrees`).
            let (back, still_healed) = healing::indentation_split(&built.healed)
                .filter(|(back, _)| healed_token(loaded, back).is_some())
                .unwrap_or((&built.healed, &[]));
            let mut unhealed = built.tokens.clone();
            match healed_token(loaded, back) {
                Some(t) => unhealed.push(t),
                None => return Ok(EngineOutput::default()),
            }
            prompt_tokens = unhealed.len();
            generated = self.answer(loaded, req, &unhealed, still_healed, cancel, started)?;
        }
        let answer_text = if generated.diverged || generated.avoided {
            String::new()
        } else {
            generated.text
        };
        Ok(EngineOutput {
            text: answer_text,
            prompt_tokens,
            evaluated_tokens: claim_evaluated + generated.evaluated.unwrap_or(prompt_tokens),
            moved_tokens: 0,
            generated_tokens: generated.tokens,
            marker_tokens,
            elapsed: started.elapsed(),
            build_time,
            eval_time: generated.first_event.saturating_sub(build_time),
            generate_time: started.elapsed().saturating_sub(generated.first_event),
            cut_by_time: generated.cut_by_time,
            // Prompt lookup is the local decode loop's; a server drafts
            // (or not) by its own settings and does not report it.
            drafted_tokens: 0,
            accepted_tokens: 0,
            // One answer only (`EngineRequest::candidates` is the local
            // decode loop's): a server's `n` samples several answers
            // instead of branching greedy ones off the next-best first
            // tokens, and would evaluate the prompt once for each.
            alternatives: Vec::new(),
        })
    }

    fn build_prompt(&self, loaded: &Loaded, req: &EngineRequest) -> Built {
        let vocab = &loaded.vocab;
        let bos_len = usize::from(vocab.bos.is_some());
        let room = self
            .settings
            .context_size
            .saturating_sub(req.max_tokens + 1 + bos_len);
        let budget = req.prompt_budget.min(room);
        let context = req.context.clone().map(|mut c| {
            c.budget = c.budget.min(room - budget);
            c
        });
        let memo = loaded.memo.lock().unwrap_or_else(|p| p.into_inner());
        memo.borrow_mut().next_request();
        let tokenizer = VocabTokenizer {
            model: &loaded.model,
            pieces: &vocab.pieces,
        };
        let (built, _) = build_with_context(
            &Memoized {
                inner: &tokenizer,
                memo: &memo,
            },
            &vocab.template,
            vocab.repo,
            context.as_ref(),
            &req.prefix,
            &req.suffix,
            budget,
            req.shape,
            req.definition_start,
        );
        let mut tokens = Vec::with_capacity(built.tokens.len() + 1);
        tokens.extend(vocab.bos);
        tokens.extend(built.tokens);
        Built {
            tokens,
            healed: built.healed,
        }
    }

    /// Brings `prompt` into the server's cache (llama-server only: an
    /// OpenAI-style server keeps no prompt that infill could address).
    fn warm(&self, loaded: &Loaded, prompt: &[Token], cancel: &CancelFlag) -> Result<usize, Ended> {
        if self.settings.kind != EngineKind::LlamaServer {
            return Ok(0);
        }
        self.in_our_slot(prompt, |slot| {
            let mut evaluated = None;
            let mut answered = None;
            loaded.client.post_stream(
                &http::endpoint(&self.settings.url, llama_server::COMPLETION),
                &llama_server::warm_body(prompt, slot),
                cancel,
                |data| {
                    let event = llama_server::parse(data)?;
                    evaluated = event.evaluated.or(evaluated);
                    answered = event.slot.or(answered);
                    Ok(if event.end { Flow::Stop } else { Flow::More })
                },
            )?;
            Ok((evaluated.unwrap_or(0), answered, evaluated))
        })
    }

    /// One answer to `prompt`: from our slot (llama-server); as token ids,
    /// or as text to an OpenAI-style server that takes no token ids.
    ///
    /// The first HTTP 400/422 to a token-id prompt is met by sending the
    /// same prompt as text: where the server takes that, it is a server of
    /// text prompts (Ollama, TGI), and every prompt goes as text from then
    /// on, said once in the log and in the description. Where it refuses
    /// the text too, the refusal was of something else (a prompt too long,
    /// a parameter): the token-id prompt's error is the fault, and token
    /// ids stay.
    fn answer(
        &self,
        loaded: &Loaded,
        req: &EngineRequest,
        prompt: &[Token],
        healed: &[u8],
        cancel: &CancelFlag,
        started: Instant,
    ) -> Result<Generated, Ended> {
        if self.settings.kind != EngineKind::OpenAi {
            return self.in_our_slot(prompt, |slot| {
                self.generate(loaded, req, prompt, None, healed, cancel, started, slot)
            });
        }
        if self.health().text_prompts {
            return self.generate_text(loaded, req, prompt, healed, cancel, started);
        }
        match self.generate(loaded, req, prompt, None, healed, cancel, started, None) {
            Err(Ended::Fault(refused)) if openai::may_refuse_token_prompts(&refused) => {
                let generated =
                    match self.generate_text(loaded, req, prompt, healed, cancel, started) {
                        Ok(g) => g,
                        Err(Ended::Cancelled) => return Err(Ended::Cancelled),
                        Err(Ended::Fault(_)) => return Err(Ended::Fault(refused)),
                    };
                tracing::warn!(
                    "remote engine: the server refused a prompt of token ids ({refused}) and took it as text: prompts go as text from now on"
                );
                self.health().text_prompts = true;
                self.set_state(EngineState::Ready {
                    description: self.description(loaded),
                });
                Ok(generated)
            }
            other => other.map(|(generated, _, _)| generated),
        }
    }

    /// One answer to `prompt` sent as text (an OpenAI-style server).
    fn generate_text(
        &self,
        loaded: &Loaded,
        req: &EngineRequest,
        prompt: &[Token],
        healed: &[u8],
        cancel: &CancelFlag,
        started: Instant,
    ) -> Result<Generated, Ended> {
        let (text, healed) = openai::text_prompt(text_pieces(loaded, prompt), healed);
        self.generate(
            loaded,
            req,
            prompt,
            Some(&text),
            &healed,
            cancel,
            started,
            None,
        )
        .map(|(generated, _, _)| generated)
    }

    /// One answer to `prompt` (as `text` where given), from `slot` where
    /// it names one (llama-server); with the slot that answered.
    #[allow(clippy::too_many_arguments)]
    fn generate(
        &self,
        loaded: &Loaded,
        req: &EngineRequest,
        prompt: &[Token],
        text: Option<&str>,
        healed: &[u8],
        cancel: &CancelFlag,
        started: Instant,
        slot: Option<usize>,
    ) -> Result<Exchanged<Generated>, Ended> {
        let s = &self.settings;
        let stops = &loaded.vocab.template.stop_tokens;
        let (url, body, parse): (String, serde_json::Value, ParseEvent) = match s.kind {
            EngineKind::OpenAi => {
                let model = self.health().served_model.clone().unwrap_or_default();
                let sent = match text {
                    Some(text) => openai::Prompt::Text(text),
                    None => openai::Prompt::Tokens(prompt),
                };
                (
                    http::endpoint(&openai::root(&s.url), openai::COMPLETIONS),
                    openai::body(&model, sent, req.max_tokens, stops),
                    openai::parse,
                )
            }
            _ => (
                http::endpoint(&s.url, llama_server::COMPLETION),
                llama_server::body(prompt, req.max_tokens, req.fresh, slot),
                llama_server::parse,
            ),
        };
        let mut answer = Answer::new(req, healed, started);
        let mut evaluated = None;
        let mut answered = None;
        let mut first_event = None;
        let mut outcome = Step::More;
        loaded.client.post_stream(&url, &body, cancel, |data| {
            first_event.get_or_insert_with(|| started.elapsed());
            let event = parse(data)?;
            evaluated = event.evaluated.or(evaluated);
            answered = event.slot.or(answered);
            match &event.tokens {
                Some(tokens) => {
                    for &t in tokens {
                        outcome = answer.push_token(piece_of(&loaded.vocab.pieces, stops, t));
                        if outcome != Step::More {
                            break;
                        }
                    }
                }
                None if !event.text.is_empty() => {
                    outcome = answer.push_text(&event.text, &loaded.markers);
                }
                None => {}
            }
            if outcome == Step::More && event.end {
                outcome = answer.end();
            }
            Ok(if outcome == Step::More {
                Flow::More
            } else {
                Flow::Stop
            })
        })?;
        if outcome == Step::More {
            return Err(Ended::Fault(Fault::Broken(
                "the stream ended before the answer did".into(),
            )));
        }
        tracing::debug!(
            generated = answer.generated,
            kept = %answer.text(),
            diverged = outcome == Step::Diverged,
            avoided = answer.avoided(),
            evaluated,
            "remote answer"
        );
        Ok((
            Generated {
                diverged: outcome == Step::Diverged,
                avoided: answer.avoided(),
                text: answer.text(),
                tokens: answer.generated,
                cut_by_time: answer.cut_by_time,
                evaluated,
                first_event: first_event.unwrap_or_else(|| answer.elapsed()),
            },
            answered,
            evaluated,
        ))
    }
}

/// What an exchange gives back: its result, the slot that answered, the
/// prompt tokens evaluated (where the server says).
type Exchanged<T> = (T, Option<usize>, Option<usize>);

/// A prompt as sent.
struct Built {
    tokens: Vec<Token>,
    healed: Vec<u8>,
}

/// What came back for one prompt.
struct Generated {
    diverged: bool,
    avoided: bool,
    text: String,
    tokens: usize,
    cut_by_time: bool,
    /// Prompt tokens the server evaluated (it reused the rest), where it says.
    evaluated: Option<usize>,
    /// When the first event came (the prompt evaluated, the first token out).
    first_event: Duration,
}

/// A protocol's reading of one event of its stream.
type ParseEvent = fn(&str) -> Result<Event, Fault>;

/// One event of a stream, whatever the protocol.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// The answer's next tokens, where the server gives ids.
    pub(crate) tokens: Option<Vec<Token>>,
    /// The answer's next text, where it does not.
    pub(crate) text: String,
    /// The server ended the answer.
    pub(crate) end: bool,
    pub(crate) evaluated: Option<usize>,
    /// The server's slot that answers, where it says (llama-server).
    pub(crate) slot: Option<usize>,
}

/// The bytes of a prompt's tokens as text for a server's tokenizer to
/// parse back: special tokens (the template's markers) written as their
/// text; no BOS (a server that takes text puts its own first, where its
/// model wants one).
fn text_pieces<'a>(loaded: &'a Loaded, prompt: &'a [Token]) -> impl Iterator<Item = Vec<u8>> + 'a {
    let prompt = match (loaded.vocab.bos, prompt.split_first()) {
        (Some(bos), Some((&first, rest))) if first == bos => rest,
        _ => prompt,
    };
    prompt.iter().map(move |&t| {
        match loaded.vocab.pieces.get(t as usize) {
            Some(piece) if !piece.is_empty() => piece.clone(),
            // Special tokens' pieces are empty (`PromptVocab::pieces`).
            _ => loaded
                .model
                .vocab()
                .token_to_piece(LlamaToken(t), true, None),
        }
    })
}

/// During a fault episode: probes the server each time its backoff ends,
/// until the episode ends (by a request or by a probe), the probe says
/// nothing more, or the engine is dropped. Holds the engine only while it
/// probes.
fn probe_in_background(engine: Weak<RemoteEngine>) {
    /// Looks at whether the engine still exists this often while waiting.
    const STEP: Duration = Duration::from_millis(50);
    // The episode whose probing is over (its probe said nothing more).
    let mut given_up = None;
    loop {
        // Whether to go on is decided under the lock that `faulted`
        // takes to start a prober, so that no episode goes without one.
        let (retry_at, episode) = {
            let Some(e) = engine.upgrade() else {
                return;
            };
            let mut h = e.health();
            match (&h.fault, &h.misconfigured, h.retry_at) {
                (Some(_), None, Some(at)) if given_up != Some(h.episode) => (at, h.episode),
                _ => {
                    h.prober = false;
                    return;
                }
            }
        };
        let now = Instant::now();
        if now < retry_at {
            thread::sleep((retry_at - now).min(STEP));
            continue;
        }
        let Some(e) = engine.upgrade() else {
            return;
        };
        if !e.probe_again() {
            given_up = Some(episode);
        }
    }
}

/// The token that the prompt took out for healing, put back.
fn healed_token(loaded: &Loaded, healed: &[u8]) -> Option<Token> {
    if healed.is_empty() {
        return None;
    }
    loaded
        .vocab
        .pieces
        .iter()
        .position(|p| p == healed)
        .and_then(|i| Token::try_from(i).ok())
}

impl Engine for RemoteEngine {
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
        let loaded = self
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(loaded) = loaded else {
            return match self.state() {
                EngineState::Failed(why) => Err(EngineError::Unavailable(why)),
                _ => Err(EngineError::Loading),
            };
        };
        let probed = {
            let h = self.health();
            if let Some(why) = &h.misconfigured {
                return Err(EngineError::Unavailable(why.clone()));
            }
            // In a backoff, nothing reaches the server: the editor gets
            // its (empty) answer at once.
            if let (Some(at), Some(fault)) = (h.retry_at, &h.fault) {
                if Instant::now() < at {
                    return Err(EngineError::Unavailable(fault.clone()));
                }
            }
            h.probed
        };
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        if !probed {
            self.probe(&loaded).map_err(EngineError::Unavailable)?;
        }
        match self.run(&loaded, &req, &cancel) {
            Ok(output) => {
                self.succeeded(&loaded);
                Ok(output)
            }
            Err(Ended::Cancelled) => Err(EngineError::Cancelled),
            Err(Ended::Fault(fault)) => Err(EngineError::Unavailable(self.faulted(&fault))),
        }
    }

    fn fault_news(&self) -> Option<FaultNews> {
        self.health().news.take()
    }

    fn probes_in_background(&self) -> bool {
        true
    }
}
