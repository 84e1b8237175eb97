//! What prompts need of a model's vocabulary: the FIM template and
//! repository tokens found in it, the BOS token, every token's bytes, and
//! a tokenizer. Shared by the in-process engine and the remote engines,
//! which count and build their prompts with the remote model's vocabulary
//! loaded from its GGUF alone (`load_vocab_only`, no weights).

use std::collections::HashMap;
use std::path::Path;

use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;

use super::{backend, check_model_file};
use crate::prompt::fim::{known_marker_texts, FimTemplate};
use crate::prompt::repo::RepoTokens;
use crate::prompt::{Token, Tokenizer};

pub(crate) struct PromptVocab {
    pub(crate) template: FimTemplate,
    /// The model's repository-level tokens, if it has them.
    pub(crate) repo: Option<RepoTokens>,
    pub(crate) bos: Option<Token>,
    /// Bytes of every token (empty for special ones), for token healing.
    pub(crate) pieces: Vec<Vec<u8>>,
}

impl PromptVocab {
    pub(crate) fn of(model: &LlamaModel, fim_template: Option<&str>) -> PromptVocab {
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
        let template = FimTemplate::detect(&|s| specials.get(s).copied(), fim_template);
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
        PromptVocab {
            template,
            repo,
            bos,
            pieces,
        }
    }
}

/// The model's tokenizer, with special-token parsing off.
pub(crate) struct VocabTokenizer<'m> {
    pub(crate) model: &'m LlamaModel,
    pub(crate) pieces: &'m [Vec<u8>],
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

/// The vocabulary of the GGUF at `path`, without its weights (a few MB
/// of memory, well under a second).
pub(crate) fn load_vocab_only(path: &Path) -> Result<LlamaModel, String> {
    check_model_file(path)?;
    let backend = backend()?;
    let params = LlamaModelParams::default().with_vocab_only(true);
    LlamaModel::load_from_file(backend, path, &params).map_err(|e| {
        format!(
            "llama.cpp could not read the vocabulary of {} ({e})",
            path.display()
        )
    })
}
