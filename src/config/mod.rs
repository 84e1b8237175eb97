//! Settings, as camelCase JSON from `initializationOptions` or
//! `workspace/didChangeConfiguration`, and from CLI flags.
//!
//! Merging is hand-written rather than serde-derived because a client's
//! settings must be applied key by key: an unknown key is ignored with a
//! warning and a wrongly typed value is reported and skipped, while every
//! good key still takes effect. A derived deserializer fails as a whole.

pub mod flags;

use std::path::PathBuf;

use serde_json::Value;

/// Most suggestions offered at once (`completion.candidates`).
pub const MAX_CANDIDATES: u32 = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// GGUF file; `None` means the preset's model in the model cache.
    pub path: Option<PathBuf>,
    /// Which model of the manifest to load where `path` is not set.
    pub preset: ModelPreset,
    /// Decode threads; `None` means the machine's physical cores.
    pub threads: Option<u32>,
    pub context_size: u32,
    /// Prompts kept in the KV cache besides the one in use, so that
    /// returning to a recently used file costs about a keystroke; each
    /// holds up to `context_size` tokens of KV memory.
    pub kept_prompts: u32,
    pub gpu_layers: u32,
    /// FIM template name; `None` means detect from the model's vocabulary.
    pub fim_template: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CompletionConfig {
    pub max_tokens: u32,
    /// Most lines in a multi-line suggestion.
    pub max_lines: u32,
    /// Prompt budget for the text around the cursor, in model tokens.
    pub prompt_tokens: u32,
    /// How long a request waits for a model that is still loading.
    pub load_wait_ms: u64,
    pub multiline: Multiline,
    /// Answer automatic requests inside comments and strings too.
    pub in_comments_and_strings: bool,
    /// Past this much time a multi-line answer ends at its next line end
    /// (0: no limit): a late suggestion is never seen.
    pub time_budget_ms: u64,
    /// Lay out the cursor line after the FIM middle marker (see
    /// `prompt::Shape`); `false` is the plain layout, kept for comparison.
    pub cursor_line_after_middle: bool,
    /// With `cursor_line_after_middle`: most lines typed since the
    /// prompt's anchor that go after the middle marker with the cursor
    /// line, so that a new line does not evaluate the suffix again
    /// (`session::anchor`); 0: the cursor line alone.
    pub anchored_lines: u32,
    /// Keep cached tokens that moved (a line entered or deleted before
    /// them) by shifting their positions instead of evaluating them again
    /// (see `engine::reuse`); `false` keeps only the exact common prefix.
    pub move_cached_tokens: bool,
    /// On a blank line, when the answer is dropped (it repeats the next
    /// line or breaks the syntax), ask once more with that start forbidden
    /// (see `CursorContext::second_try`).
    pub second_try: bool,
    /// On a blank line of code, the model may not answer nothing: it must
    /// write on the line (`engine::EngineRequest::require_content`).
    pub answer_blank_lines: bool,
    /// Most tokens drafted at a time by prompt lookup, checked by the
    /// model in one batch (`engine::EngineRequest::draft_tokens`); 0 turns
    /// drafting off. Off by default: on a CPU a batch of n tokens costs
    /// about 0.8 n single decodes, so drafts made generation slower
    /// (docs/benchmarks.md, "Prompt lookup").
    pub draft_tokens: u32,
    /// Most suggestions offered at once (1–5): the greedy answer, then
    /// answers that start with the model's next-best first tokens, decoded
    /// alongside it in the same batches (`engine::EngineRequest::candidates`),
    /// cleaned, de-duplicated and ranked (`completion::pipeline`).
    pub candidates: u32,
    /// While a suggestion is shown, compute the one that follows it
    /// (as if it were accepted), so that accepting shows the next at once
    /// (`session::ahead`).
    pub compute_ahead: bool,
}

/// Whether suggestions may span several lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Multiline {
    /// Several lines where the cursor starts an empty block body, else one.
    Auto,
    Always,
    Never,
}

/// A model chosen by what it is for, where `model.path` is not set
/// (`models/manifest.json` names each preset's model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModelPreset {
    /// Qwen2.5-Coder-0.5B: answers within a keystroke's patience on a
    /// laptop's cores.
    #[default]
    Fast,
    /// Qwen2.5-Coder-1.5B: better answers, about three times the compute
    /// and twice the memory.
    Quality,
}

impl ModelPreset {
    /// The setting's value, also the preset's key in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            ModelPreset::Fast => "fast",
            ModelPreset::Quality => "quality",
        }
    }
}

/// Largest file indexed by default (bytes): bigger ones are generated or data.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1 << 20;

/// The most memory the workspace index may take (its own estimate, checked
/// as the first walk goes): enough for about 150,000 typical source files
/// of 3 KB, while a monorepo cannot take the machine's memory.
pub const DEFAULT_MAX_INDEX_BYTES: u64 = 512 << 20;

/// How snippets are shown to a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContextLayout {
    /// The repository format for a base model that has its tokens; comments
    /// for every other model, also for one tuned for chat after its
    /// repository-level training: Qwen2.5-Coder-0.5B-Instruct, the default
    /// model, answered worse with the repository format than with comments
    /// (`infill-eval eval-cross`, numbers in docs/evaluation.md).
    #[default]
    Auto,
    /// The repository format wherever the model has its tokens.
    Repo,
    /// Comments with a path header for every model.
    Comments,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContextConfig {
    pub cross_file: bool,
    /// Code around the user's recent edits and requests ranked with the
    /// workspace's snippets (with `cross_file` only).
    pub recency: bool,
    /// Prompt tokens for snippets of other files, on top of `promptTokens`.
    pub budget_tokens: u32,
    /// Workspace files larger than this are not indexed.
    pub max_file_bytes: u64,
    /// The index's memory bound: once reached, no further files are added.
    pub max_index_bytes: u64,
    pub layout: ContextLayout,
}

/// Where the model runs (`engine.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    pub kind: EngineKind,
    /// Base URL of the inference server (`http://host:port`, maybe with a
    /// path prefix such as `/v1`'s parent); required by the remote kinds.
    pub url: Option<String>,
    /// Model name sent to an OpenAI-style server (`model` field), and
    /// checked against its `/v1/models` list.
    pub model: Option<String>,
    /// Name of the environment variable holding the API key (sent as a
    /// bearer token). The key itself is never a setting, so that it is in
    /// no settings file, log line or status.
    pub api_key_env: Option<String>,
    /// Longest wait for a remote answer (connect, first byte, whole
    /// stream) before the request counts as failed.
    pub timeout_ms: u64,
}

/// Which engine answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// llama.cpp in this process (the default: no socket is opened).
    Local,
    /// llama.cpp's `llama-server`, through its `/completion` endpoint.
    LlamaServer,
    /// An OpenAI-style `/v1/completions` endpoint (vLLM, llama-server, ...).
    OpenAi,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Local => "local",
            EngineKind::LlamaServer => "llama-server",
            EngineKind::OpenAi => "openai",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub engine: EngineConfig,
    pub model: ModelConfig,
    pub completion: CompletionConfig,
    pub context: ContextConfig,
    pub stats: StatsConfig,
}

/// Acceptance and persistence measured locally (`infill stats`).
#[derive(Debug, Clone, PartialEq)]
pub struct StatsConfig {
    /// Record events in the user's state directory. Off: nothing more is
    /// recorded, and what was recorded stays (the user is told where).
    pub enabled: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            engine: EngineConfig {
                kind: EngineKind::Local,
                url: None,
                model: None,
                api_key_env: None,
                timeout_ms: 5000,
            },
            model: ModelConfig {
                path: None,
                preset: ModelPreset::Fast,
                threads: None,
                context_size: 4096,
                kept_prompts: 2,
                gpu_layers: 0,
                fim_template: None,
            },
            completion: CompletionConfig {
                max_tokens: 64,
                max_lines: 8,
                prompt_tokens: 1536,
                load_wait_ms: 10_000,
                multiline: Multiline::Auto,
                in_comments_and_strings: false,
                time_budget_ms: 2000,
                cursor_line_after_middle: true,
                anchored_lines: 8,
                move_cached_tokens: false,
                second_try: true,
                answer_blank_lines: false,
                compute_ahead: true,
                draft_tokens: 0,
                candidates: 1,
            },
            context: ContextConfig {
                cross_file: true,
                recency: true,
                budget_tokens: 1024,
                max_file_bytes: DEFAULT_MAX_FILE_BYTES,
                max_index_bytes: DEFAULT_MAX_INDEX_BYTES,
                layout: ContextLayout::Auto,
            },
            stats: StatsConfig { enabled: true },
        }
    }
}

/// What a merge had to say about the settings it was given.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MergeReport {
    /// Keys that no setting has; ignored.
    pub unknown: Vec<String>,
    /// Values of the wrong type or out of range; the old value is kept.
    pub errors: Vec<String>,
}

impl Config {
    /// True when a change between `self` and `other` needs the model reloaded.
    pub fn model_changed(&self, other: &Config) -> bool {
        self.model != other.model || self.engine != other.engine
    }

    /// Applies the keys present in `settings`. Accepts the settings object
    /// itself or one wrapped in `{"infill": {...}}` (how VS Code sends a section).
    pub fn merge_json(&mut self, settings: &Value) -> MergeReport {
        let mut report = MergeReport::default();
        let settings = match settings.get("infill") {
            Some(inner) if inner.is_object() => inner,
            _ => settings,
        };
        let Some(top) = settings.as_object() else {
            if !settings.is_null() {
                report
                    .errors
                    .push(format!("settings must be a JSON object, got {settings}"));
            }
            return report;
        };
        for (section, value) in top {
            let Some(fields) = value.as_object() else {
                report
                    .errors
                    .push(format!("`{section}` must be an object, got {value}"));
                continue;
            };
            for (key, value) in fields {
                let name = format!("{section}.{key}");
                if let Err(e) = self.set(&name, value) {
                    match e {
                        SetError::Unknown => report.unknown.push(name),
                        SetError::Invalid(why) => {
                            report.errors.push(format!("`{name}`: {why}, got {value}"))
                        }
                    }
                }
            }
        }
        report
    }

    /// Every setting's dotted name, in `set`'s order (a test checks that
    /// `set` knows each; the fuzz target draws keys from here).
    pub const KEYS: &'static [&'static str] = &[
        "engine.kind",
        "engine.url",
        "engine.model",
        "engine.apiKeyEnv",
        "engine.timeoutMs",
        "model.path",
        "model.preset",
        "model.threads",
        "model.contextSize",
        "model.keptPrompts",
        "model.gpuLayers",
        "model.fimTemplate",
        "completion.maxTokens",
        "completion.maxLines",
        "completion.promptTokens",
        "completion.loadWaitMs",
        "completion.multiline",
        "completion.timeBudgetMs",
        "completion.cursorLineAfterMiddle",
        "completion.anchoredLines",
        "completion.moveCachedTokens",
        "completion.secondTry",
        "completion.answerBlankLines",
        "completion.computeAhead",
        "completion.draftTokens",
        "completion.candidates",
        "completion.inCommentsAndStrings",
        "context.crossFile",
        "context.recency",
        "context.budgetTokens",
        "context.layout",
        "context.maxFileBytes",
        "context.maxIndexMegabytes",
        "stats.enabled",
    ];

    fn set(&mut self, name: &str, v: &Value) -> Result<(), SetError> {
        match name {
            "engine.kind" => {
                self.engine.kind = match v.as_str() {
                    Some("local") => EngineKind::Local,
                    Some("llama-server") => EngineKind::LlamaServer,
                    Some("openai") => EngineKind::OpenAi,
                    _ => {
                        return Err(SetError::Invalid(
                            "expected \"local\", \"llama-server\" or \"openai\"",
                        ))
                    }
                }
            }
            "engine.url" => {
                let url = opt_string(v)?;
                // Only http(s): the one address a remote engine contacts
                // must be plain to see in the settings.
                if url
                    .as_deref()
                    .is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://")))
                {
                    return Err(SetError::Invalid("expected an http:// or https:// URL"));
                }
                self.engine.url = url.map(|u| u.trim_end_matches('/').to_string());
            }
            "engine.model" => self.engine.model = opt_string(v)?,
            "engine.apiKeyEnv" => self.engine.api_key_env = opt_string(v)?,
            "engine.timeoutMs" => self.engine.timeout_ms = u64::from(u32_in(v, 100, 600_000)?),
            "model.path" => self.model.path = opt_string(v)?.map(PathBuf::from),
            "model.preset" => {
                self.model.preset = match v.as_str() {
                    Some("fast") => ModelPreset::Fast,
                    Some("quality") => ModelPreset::Quality,
                    _ => return Err(SetError::Invalid("expected \"fast\" or \"quality\"")),
                }
            }
            "model.threads" => self.model.threads = opt_u32(v, 1, 1024)?,
            "model.contextSize" => self.model.context_size = u32_in(v, 256, 1 << 20)?,
            "model.keptPrompts" => self.model.kept_prompts = u32_in(v, 0, 16)?,
            "model.gpuLayers" => self.model.gpu_layers = u32_in(v, 0, 100_000)?,
            "model.fimTemplate" => self.model.fim_template = opt_string(v)?,
            "completion.maxTokens" => self.completion.max_tokens = u32_in(v, 1, 4096)?,
            "completion.anchoredLines" => self.completion.anchored_lines = u32_in(v, 0, 64)?,
            "completion.maxLines" => self.completion.max_lines = u32_in(v, 1, 1000)?,
            "completion.promptTokens" => self.completion.prompt_tokens = u32_in(v, 16, 1 << 20)?,
            "completion.loadWaitMs" => {
                self.completion.load_wait_ms = u64::from(u32_in(v, 0, 600_000)?)
            }
            "completion.multiline" => {
                self.completion.multiline = match v.as_str() {
                    Some("auto") => Multiline::Auto,
                    Some("always") => Multiline::Always,
                    Some("never") => Multiline::Never,
                    _ => {
                        return Err(SetError::Invalid(
                            "expected \"auto\", \"always\" or \"never\"",
                        ))
                    }
                }
            }
            "completion.timeBudgetMs" => {
                self.completion.time_budget_ms = u64::from(u32_in(v, 0, 600_000)?)
            }
            "completion.cursorLineAfterMiddle" => {
                self.completion.cursor_line_after_middle = bool_of(v)?
            }
            "completion.moveCachedTokens" => self.completion.move_cached_tokens = bool_of(v)?,
            "completion.secondTry" => self.completion.second_try = bool_of(v)?,
            "completion.answerBlankLines" => self.completion.answer_blank_lines = bool_of(v)?,
            "completion.computeAhead" => self.completion.compute_ahead = bool_of(v)?,
            "completion.draftTokens" => self.completion.draft_tokens = u32_in(v, 0, 32)?,
            "completion.candidates" => self.completion.candidates = u32_in(v, 1, MAX_CANDIDATES)?,
            "completion.inCommentsAndStrings" => {
                self.completion.in_comments_and_strings = bool_of(v)?
            }
            "context.crossFile" => self.context.cross_file = bool_of(v)?,
            "context.recency" => self.context.recency = bool_of(v)?,
            "context.budgetTokens" => self.context.budget_tokens = u32_in(v, 0, 1 << 20)?,
            "context.layout" => {
                self.context.layout = match v.as_str() {
                    Some("auto") => ContextLayout::Auto,
                    Some("repo") => ContextLayout::Repo,
                    Some("comments") => ContextLayout::Comments,
                    _ => {
                        return Err(SetError::Invalid(
                            "expected \"auto\", \"repo\" or \"comments\"",
                        ))
                    }
                }
            }
            "context.maxFileBytes" => {
                self.context.max_file_bytes = u64::from(u32_in(v, 1, u32::MAX)?)
            }
            "context.maxIndexMegabytes" => {
                self.context.max_index_bytes = u64::from(u32_in(v, 1, 1 << 20)?) << 20
            }
            "stats.enabled" => self.stats.enabled = bool_of(v)?,
            _ => return Err(SetError::Unknown),
        }
        Ok(())
    }
}

enum SetError {
    Unknown,
    Invalid(&'static str),
}

fn opt_string(v: &Value) -> Result<Option<String>, SetError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(SetError::Invalid("expected a string")),
    }
}

fn bool_of(v: &Value) -> Result<bool, SetError> {
    v.as_bool()
        .ok_or(SetError::Invalid("expected true or false"))
}

fn u32_in(v: &Value, min: u32, max: u32) -> Result<u32, SetError> {
    let n = v
        .as_u64()
        .ok_or(SetError::Invalid("expected a whole number"))?;
    if n < u64::from(min) || n > u64::from(max) {
        return Err(SetError::Invalid("number out of range"));
    }
    Ok(n as u32)
}

fn opt_u32(v: &Value, min: u32, max: u32) -> Result<Option<u32>, SetError> {
    if v.is_null() {
        return Ok(None);
    }
    u32_in(v, min, max).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_known_keys_and_reports_the_rest() {
        let mut c = Config::default();
        let r = c.merge_json(&json!({
            "model": {"path": "/m.gguf", "threads": 3, "contextSize": "big", "colour": 1},
            "completion": {"maxTokens": 32, "multiline": "never", "secondTry": false},
            "context": {"crossFile": false, "recency": false, "budgetTokens": 512, "maxFileBytes": -1},
            "telemetry": 5
        }));
        assert_eq!(c.model.path, Some(PathBuf::from("/m.gguf")));
        assert_eq!(c.model.threads, Some(3));
        assert_eq!(c.model.context_size, 4096);
        assert_eq!(c.completion.max_tokens, 32);
        assert_eq!(c.completion.multiline, Multiline::Never);
        assert!(!c.completion.second_try);
        assert_eq!(c.completion.candidates, 1);
        assert!(!c.context.cross_file);
        assert!(!c.context.recency && Config::default().context.recency);
        assert_eq!(c.context.budget_tokens, 512);
        assert_eq!(c.context.max_file_bytes, 1 << 20);
        assert_eq!(r.unknown, vec!["model.colour".to_string()]);
        assert_eq!(r.errors.len(), 3, "{:?}", r.errors);
        assert!(r.errors.iter().any(|e| e.contains("model.contextSize")));
        assert!(r.errors.iter().any(|e| e.contains("context.maxFileBytes")));
    }

    /// The VS Code extension's settings are the server's: each one it
    /// declares (with its default) is a setting the server takes, and the
    /// extension forwards exactly those.
    #[test]
    fn vscode_settings_are_server_settings() {
        let manifest: Value =
            serde_json::from_str(include_str!("../../editors/vscode/package.json")).unwrap();
        let props = manifest["contributes"]["configuration"]["properties"]
            .as_object()
            .unwrap();
        let mut declared = Vec::new();
        let mut defaults = json!({});
        for (key, spec) in props {
            let Some(setting) = key.strip_prefix("infill.") else {
                continue;
            };
            let Some((section, name)) = setting.split_once('.') else {
                continue;
            };
            if !["engine", "model", "completion", "context", "stats"].contains(&section) {
                continue;
            }
            let default = spec.get("default").cloned().unwrap_or(Value::Null);
            defaults[section][name] = default;
            declared.push(setting.to_string());
        }
        // The extension's defaults are the server's.
        let mut c = Config::default();
        assert_eq!(c.merge_json(&defaults), MergeReport::default());
        assert_eq!(c, Config::default());
        let source = include_str!("../../editors/vscode/src/extension.ts");
        let list = source
            .split_once("const SERVER_SETTINGS = [")
            .and_then(|(_, rest)| rest.split_once("];"))
            .map(|(list, _)| list)
            .unwrap();
        let forwarded: Vec<String> = list
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_string())
            .filter(|s| !s.is_empty())
            .collect();
        declared.sort();
        let mut sorted = forwarded.clone();
        sorted.sort();
        assert_eq!(sorted, declared);
    }

    #[test]
    fn engine_settings_take_a_kind_and_an_http_url() {
        let mut c = Config::default();
        assert_eq!(c.engine.kind, EngineKind::Local);
        let r = c.merge_json(&json!({"engine": {
            "kind": "openai", "url": "https://gpu.example:8000/", "model": "qwen",
            "apiKeyEnv": "TEAM_KEY", "timeoutMs": 3000
        }}));
        assert_eq!(r, MergeReport::default());
        assert_eq!(c.engine.kind, EngineKind::OpenAi);
        assert_eq!(c.engine.url.as_deref(), Some("https://gpu.example:8000"));
        assert_eq!(c.engine.model.as_deref(), Some("qwen"));
        assert_eq!(c.engine.api_key_env.as_deref(), Some("TEAM_KEY"));
        assert_eq!(c.engine.timeout_ms, 3000);
        let r =
            c.merge_json(&json!({"engine": {"kind": "vllm", "url": "gpu:8000", "timeoutMs": 5}}));
        assert_eq!(r.errors.len(), 3, "{:?}", r.errors);
        assert_eq!(c.engine.kind, EngineKind::OpenAi);
        assert_eq!(c.engine.url.as_deref(), Some("https://gpu.example:8000"));
        let before = c.clone();
        c.merge_json(&json!({"engine": {"kind": "llama-server"}}));
        assert!(c.model_changed(&before), "a new engine is a new model");
    }

    #[test]
    fn context_layout_takes_auto_repo_or_comments() {
        let mut c = Config::default();
        assert_eq!(c.context.layout, ContextLayout::Auto);
        c.merge_json(&json!({"context": {"layout": "repo"}}));
        assert_eq!(c.context.layout, ContextLayout::Repo);
        let r = c.merge_json(&json!({"context": {"layout": "comments"}}));
        assert_eq!(
            (c.context.layout, r),
            (ContextLayout::Comments, MergeReport::default())
        );
        let r = c.merge_json(&json!({"context": {"layout": "repository"}}));
        assert_eq!(c.context.layout, ContextLayout::Comments);
        assert!(r.errors[0].contains("context.layout"), "{:?}", r.errors);
    }

    #[test]
    fn accepts_vscode_style_section_and_null() {
        let mut c = Config::default();
        assert_eq!(c.model.preset, ModelPreset::Fast);
        let r = c.merge_json(&json!({"infill": {"model": {"gpuLayers": 99, "preset": "quality"}}}));
        assert_eq!(c.model.gpu_layers, 99);
        assert_eq!(c.model.preset, ModelPreset::Quality);
        assert_eq!(r, MergeReport::default());
        assert_eq!(c.merge_json(&Value::Null), MergeReport::default());
        assert_eq!(c.merge_json(&json!([1])).errors.len(), 1);
    }

    #[test]
    fn every_listed_key_is_a_setting() {
        for key in Config::KEYS {
            let mut c = Config::default();
            let err = c.set(key, &serde_json::json!({"not": "a value"})).err();
            assert!(matches!(err, Some(SetError::Invalid(_))), "{key}");
        }
    }
}
