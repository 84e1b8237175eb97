//! Where model files live: the manifest shipped in the repository
//! (`models/manifest.json`, also read by `scripts/fetch-model`) and the
//! per-user model cache.

use std::path::{Path, PathBuf};

const MANIFEST: &str = include_str!("../models/manifest.json");

/// The manifest, parsed once: the model's file name is looked up for
/// every answer's statistics (`session::answer_meta`).
fn manifest() -> Option<&'static serde_json::Value> {
    static PARSED: std::sync::OnceLock<Option<serde_json::Value>> = std::sync::OnceLock::new();
    PARSED
        .get_or_init(|| serde_json::from_str(MANIFEST).ok())
        .as_ref()
}

/// `${XDG_CACHE_HOME:-~/.cache}/infill/models`.
pub fn cache_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
    };
    Some(base.join("infill").join("models"))
}

/// File name of a manifest model, or of the default one for `None`.
pub fn model_file_name(name: Option<&str>) -> Option<String> {
    let manifest = manifest()?;
    let name = match name {
        Some(n) => n.to_string(),
        None => manifest.get("default")?.as_str()?.to_string(),
    };
    manifest
        .get("models")?
        .get(&name)?
        .get("file")?
        .as_str()
        .map(str::to_string)
}

/// The manifest model a preset (`model.preset`: `fast`, `quality`) names.
pub fn preset_model(preset: &str) -> Option<String> {
    manifest()?
        .get("presets")?
        .get(preset)?
        .as_str()
        .map(str::to_string)
}

/// The manifest name of the model stored in a file of this name (for
/// telling which `scripts/fetch-model NAME` brings a missing file).
pub fn name_of_file(file: &str) -> Option<String> {
    manifest()?
        .get("models")?
        .as_object()?
        .iter()
        .find(|(_, m)| m.get("file").and_then(|f| f.as_str()) == Some(file))
        .map(|(name, _)| name.clone())
}

/// The model file the server loads: `model.path` where set, else the
/// preset's model in the model cache (the manifest's default where the
/// preset is unknown to it).
pub fn model_path(path: Option<&Path>, preset: &str) -> PathBuf {
    if let Some(p) = path {
        return p.to_path_buf();
    }
    let name = preset_model(preset);
    let file = model_file_name(name.as_deref()).unwrap_or_else(|| "model.gguf".into());
    cache_dir()
        .unwrap_or_else(|| PathBuf::from(".cache/infill/models"))
        .join(file)
}

/// The path the server uses when `model.path` is not set and the preset
/// is the default one.
pub fn default_model_path() -> PathBuf {
    model_path(None, "fast")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_names_the_default_model() {
        assert_eq!(
            model_file_name(None).as_deref(),
            Some("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
        );
        assert!(model_file_name(Some("smollm2-135m")).is_some());
        assert!(model_file_name(Some("nope")).is_none());
    }

    #[test]
    fn presets_name_manifest_models_and_a_set_path_wins() {
        assert_eq!(preset_model("fast").as_deref(), Some("qwen2.5-coder-0.5b"));
        assert_eq!(
            preset_model("quality").as_deref(),
            Some("qwen2.5-coder-1.5b")
        );
        assert_eq!(
            model_path(None, "quality")
                .file_name()
                .and_then(|f| f.to_str()),
            Some("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
        );
        assert_eq!(model_path(None, "fast"), default_model_path());
        assert_eq!(
            model_path(Some(Path::new("/m.gguf")), "quality"),
            PathBuf::from("/m.gguf")
        );
        assert_eq!(
            name_of_file("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf").as_deref(),
            Some("qwen2.5-coder-1.5b")
        );
        assert!(name_of_file("other.gguf").is_none());
    }
}
