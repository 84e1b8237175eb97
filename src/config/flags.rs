//! Command-line flags that set the same values as the LSP settings of the
//! same name, shared by the `infill` and `infill-eval` binaries: one
//! validation path for flags and client settings.

use std::path::PathBuf;

use clap::Args;

use super::Config;

/// Flags that set the same values as the LSP settings of the same name;
/// client settings, when sent, take precedence over them.
#[derive(Args, Debug, Clone, Default)]
pub struct SettingFlags {
    /// engine.kind: where the model runs: local (in this process, the
    /// default), llama-server, openai.
    #[arg(long, value_name = "KIND")]
    engine: Option<String>,
    /// engine.url: the inference server's base URL (remote kinds).
    #[arg(long, value_name = "URL")]
    engine_url: Option<String>,
    /// engine.model: the model name an OpenAI-style server serves.
    #[arg(long, value_name = "NAME")]
    engine_model: Option<String>,
    /// engine.apiKeyEnv: the environment variable holding the API key.
    #[arg(long, value_name = "VAR")]
    engine_api_key_env: Option<String>,
    /// engine.timeoutMs: longest wait for a remote answer.
    #[arg(long, value_name = "MS")]
    engine_timeout_ms: Option<u32>,
    /// model.path: the GGUF model file.
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// model.preset: the model where --model is not given: fast
    /// (Qwen2.5-Coder-0.5B, the default) or quality (1.5B).
    #[arg(long, value_name = "PRESET")]
    preset: Option<String>,
    /// model.threads: decode threads (default: physical cores).
    #[arg(long)]
    threads: Option<u32>,
    /// model.contextSize: context window in tokens.
    #[arg(long)]
    context_size: Option<u32>,
    /// model.gpuLayers: layers to offload to a GPU (needs a GPU build).
    #[arg(long)]
    gpu_layers: Option<u32>,
    /// model.fimTemplate: force a FIM template (qwen, starcoder, codellama,
    /// deepseek, codestral, codegemma, prefix-only).
    #[arg(long)]
    fim_template: Option<String>,
    /// completion.maxTokens: most tokens generated per completion.
    #[arg(long)]
    max_tokens: Option<u32>,
    /// completion.draftTokens: most tokens drafted at a time by prompt
    /// lookup (0: no drafts).
    #[arg(long)]
    draft_tokens: Option<u32>,
    /// completion.candidates: most suggestions offered at once (1-5).
    #[arg(long)]
    candidates: Option<u32>,
    /// context.crossFile=false: no snippets from other files.
    #[arg(long)]
    no_cross_file: bool,
    /// completion.promptTokens: prompt budget for the text around the cursor.
    #[arg(long)]
    prompt_tokens: Option<u32>,
    /// context.budgetTokens: prompt budget for cross-file snippets.
    #[arg(long)]
    context_budget: Option<u32>,
    /// Any setting, as KEY=VALUE with a dotted key and a JSON value (a bare
    /// word is taken as a string), e.g. `--setting completion.cursorLineAfterMiddle=false`.
    #[arg(long = "setting", value_name = "KEY=VALUE")]
    settings: Vec<String>,
}

impl SettingFlags {
    /// The settings these flags give, on top of the defaults.
    pub fn config(&self) -> Result<Config, String> {
        self.config_with(&[])
    }

    /// The settings these flags give with `extra` `KEY=VALUE` settings on
    /// top (an evaluation's second arm).
    pub fn config_with(&self, extra: &[String]) -> Result<Config, String> {
        let mut config = Config::default();
        let mut model = serde_json::Map::new();
        if let Some(p) = &self.model {
            model.insert("path".into(), p.to_string_lossy().into_owned().into());
        }
        if let Some(v) = &self.preset {
            model.insert("preset".into(), v.clone().into());
        }
        if let Some(v) = self.threads {
            model.insert("threads".into(), v.into());
        }
        if let Some(v) = self.context_size {
            model.insert("contextSize".into(), v.into());
        }
        if let Some(v) = self.gpu_layers {
            model.insert("gpuLayers".into(), v.into());
        }
        if let Some(v) = &self.fim_template {
            model.insert("fimTemplate".into(), v.clone().into());
        }
        let mut engine = serde_json::Map::new();
        if let Some(v) = &self.engine {
            engine.insert("kind".into(), v.clone().into());
        }
        if let Some(v) = &self.engine_url {
            engine.insert("url".into(), v.clone().into());
        }
        if let Some(v) = &self.engine_model {
            engine.insert("model".into(), v.clone().into());
        }
        if let Some(v) = &self.engine_api_key_env {
            engine.insert("apiKeyEnv".into(), v.clone().into());
        }
        if let Some(v) = self.engine_timeout_ms {
            engine.insert("timeoutMs".into(), v.into());
        }
        let mut settings = serde_json::json!({ "engine": engine, "model": model });
        if let Some(v) = self.max_tokens {
            settings["completion"] = serde_json::json!({ "maxTokens": v });
        }
        if let Some(v) = self.draft_tokens {
            settings["completion"]["draftTokens"] = v.into();
        }
        if let Some(v) = self.candidates {
            settings["completion"]["candidates"] = v.into();
        }
        if self.no_cross_file {
            settings["context"] = serde_json::json!({ "crossFile": false });
        }
        if let Some(v) = self.prompt_tokens {
            settings["completion"]["promptTokens"] = v.into();
        }
        if let Some(v) = self.context_budget {
            settings["context"]["budgetTokens"] = v.into();
        }
        for item in self.settings.iter().chain(extra) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("setting `{item}`: expected KEY=VALUE"))?;
            let value = serde_json::from_str(value)
                .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
            let mut at = &mut settings;
            for part in key.split('.') {
                if !at.is_object() {
                    *at = serde_json::json!({});
                }
                at = &mut at[part];
            }
            *at = value;
        }
        // One validation path for flags and client settings.
        let report = config.merge_json(&settings);
        if let Some(err) = report.errors.first() {
            return Err(format!("invalid flag: {err}"));
        }
        Ok(config)
    }
}
