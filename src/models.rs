//! Where model files live: the manifest shipped in the repository
//! (`models/manifest.json`, also read by `scripts/fetch-model`) and the
//! per-user model cache.

use std::path::PathBuf;

const MANIFEST: &str = include_str!("../models/manifest.json");

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
    let manifest: serde_json::Value = serde_json::from_str(MANIFEST).ok()?;
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

/// The path the server uses when `model.path` is not set.
pub fn default_model_path() -> PathBuf {
    let file = model_file_name(None).unwrap_or_else(|| "model.gguf".into());
    cache_dir()
        .unwrap_or_else(|| PathBuf::from(".cache/infill/models"))
        .join(file)
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
}
