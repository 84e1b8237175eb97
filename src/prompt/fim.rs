//! Fill-in-the-middle templates of the model families we know, chosen from
//! the special tokens a model's vocabulary has.
//!
//! Special tokens are always inserted by id; file text is tokenized with
//! special-token parsing off, so text in a file can never act as a marker.

use super::Token;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FimFamily {
    /// Qwen2.5-Coder: `<|fim_prefix|>P<|fim_suffix|>S<|fim_middle|>`.
    Qwen,
    /// StarCoder / SantaCoder: `<fim_prefix>P<fim_suffix>S<fim_middle>`.
    StarCoder,
    /// Code Llama: `<PRE> P <SUF>S <MID>`.
    CodeLlama,
    /// DeepSeek-Coder: `<｜fim▁begin｜>P<｜fim▁hole｜>S<｜fim▁end｜>`.
    DeepSeek,
    /// Codestral (suffix first): `[SUFFIX]S[PREFIX]P`.
    Codestral,
    /// CodeGemma: `<|fim_prefix|>P<|fim_suffix|>S<|fim_middle|>`.
    CodeGemma,
    /// A model without FIM tokens: the prefix alone, continued.
    PrefixOnly,
}

/// One step of a template's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    Marker(Token),
    /// Literal text the family's format puts between markers.
    Text(&'static str),
    Prefix,
    Suffix,
}

/// The marker token texts of each family: (prefix, suffix, middle).
const MARKERS: &[(FimFamily, [&str; 3])] = &[
    (
        FimFamily::Qwen,
        ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"],
    ),
    (
        FimFamily::CodeGemma,
        ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"],
    ),
    (
        FimFamily::StarCoder,
        ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"],
    ),
    (FimFamily::CodeLlama, ["<PRE>", "<SUF>", "<MID>"]),
    (
        FimFamily::DeepSeek,
        ["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"],
    ),
    (FimFamily::Codestral, ["[PREFIX]", "[SUFFIX]", ""]),
];

/// Tokens that mark a document or repository boundary; generating one means
/// the model has left the gap.
const BOUNDARY_MARKERS: &[&str] = &[
    "<|fim_pad|>",
    "<|file_sep|>",
    "<|repo_name|>",
    "<|endoftext|>",
    "<|file_separator|>",
    "<file_sep>",
    "<reponame>",
    "<filename>",
    "<fim_pad>",
    "<EOT>",
    "<|EOT|>",
    "[MIDDLE]",
];

/// Every special-token text this module may look up; the engine resolves
/// exactly these against the model's vocabulary.
pub fn known_marker_texts() -> impl Iterator<Item = &'static str> {
    MARKERS
        .iter()
        .flat_map(|(_, m)| m.iter().copied())
        .chain(BOUNDARY_MARKERS.iter().copied())
        .chain(["<|repo_name|>", "<|file_sep|>", "<|im_start|>"])
        .filter(|s| !s.is_empty())
}

impl FimFamily {
    pub fn name(self) -> &'static str {
        match self {
            FimFamily::Qwen => "qwen",
            FimFamily::StarCoder => "starcoder",
            FimFamily::CodeLlama => "codellama",
            FimFamily::DeepSeek => "deepseek",
            FimFamily::Codestral => "codestral",
            FimFamily::CodeGemma => "codegemma",
            FimFamily::PrefixOnly => "prefix-only",
        }
    }

    pub fn from_name(name: &str) -> Option<FimFamily> {
        [
            FimFamily::Qwen,
            FimFamily::StarCoder,
            FimFamily::CodeLlama,
            FimFamily::DeepSeek,
            FimFamily::Codestral,
            FimFamily::CodeGemma,
            FimFamily::PrefixOnly,
        ]
        .into_iter()
        .find(|f| f.name() == name)
    }

    fn markers(self) -> Option<[&'static str; 3]> {
        MARKERS.iter().find(|(f, _)| *f == self).map(|(_, m)| *m)
    }
}

/// A family's template with its markers resolved to one model's token ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FimTemplate {
    pub family: FimFamily,
    pub layout: Vec<Piece>,
    /// Tokens that end generation besides the model's end-of-generation set.
    pub stop_tokens: Vec<Token>,
}

impl FimTemplate {
    /// Detects the family from the vocabulary: `lookup` maps a special-token
    /// text to its id. Families sharing marker names are told apart by
    /// tokens only one of them has. `forced` names a family to use instead.
    pub fn detect(lookup: &dyn Fn(&str) -> Option<Token>, forced: Option<&str>) -> FimTemplate {
        let has = |s: &str| lookup(s).is_some();
        let family = match forced.and_then(FimFamily::from_name) {
            Some(f) => f,
            None if has("<｜fim▁begin｜>") => FimFamily::DeepSeek,
            None if has("[SUFFIX]") && has("[PREFIX]") => FimFamily::Codestral,
            None if has("<PRE>") && has("<SUF>") && has("<MID>") => FimFamily::CodeLlama,
            None if has("<fim_prefix>") => FimFamily::StarCoder,
            None if has("<|fim_prefix|>") && has("<|file_separator|>") => FimFamily::CodeGemma,
            None if has("<|fim_prefix|>") => FimFamily::Qwen,
            None => FimFamily::PrefixOnly,
        };
        Self::for_family(family, lookup).unwrap_or_else(|| Self::prefix_only(lookup))
    }

    /// The template of `family`, or `None` if the vocabulary lacks its markers.
    pub fn for_family(
        family: FimFamily,
        lookup: &dyn Fn(&str) -> Option<Token>,
    ) -> Option<FimTemplate> {
        use Piece::*;
        let layout = match family {
            FimFamily::PrefixOnly => vec![Prefix],
            FimFamily::Codestral => vec![
                Marker(lookup("[SUFFIX]")?),
                Suffix,
                Marker(lookup("[PREFIX]")?),
                Prefix,
            ],
            FimFamily::CodeLlama => {
                let [p, s, m] = family.markers()?;
                vec![
                    Marker(lookup(p)?),
                    Text(" "),
                    Prefix,
                    Text(" "),
                    Marker(lookup(s)?),
                    Suffix,
                    Text(" "),
                    Marker(lookup(m)?),
                ]
            }
            _ => {
                let [p, s, m] = family.markers()?;
                vec![
                    Marker(lookup(p)?),
                    Prefix,
                    Marker(lookup(s)?),
                    Suffix,
                    Marker(lookup(m)?),
                ]
            }
        };
        let mut stop_tokens: Vec<Token> = known_marker_texts().filter_map(lookup).collect();
        stop_tokens.sort_unstable();
        stop_tokens.dedup();
        Some(FimTemplate {
            family,
            layout,
            stop_tokens,
        })
    }

    fn prefix_only(lookup: &dyn Fn(&str) -> Option<Token>) -> FimTemplate {
        // PrefixOnly needs no markers, so this cannot fail.
        Self::for_family(FimFamily::PrefixOnly, lookup).unwrap_or(FimTemplate {
            family: FimFamily::PrefixOnly,
            layout: vec![Piece::Prefix],
            stop_tokens: Vec::new(),
        })
    }

    /// Whether `token` is one of the markers of this template's layout.
    pub fn is_marker(&self, token: Token) -> bool {
        self.layout.contains(&Piece::Marker(token))
    }

    pub fn uses_suffix(&self) -> bool {
        self.layout.contains(&Piece::Suffix)
    }

    /// Whether the middle marker ends the prompt (prefix–suffix–middle), so
    /// that text placed after it reads as the start of the answer.
    pub fn middle_last(&self) -> bool {
        self.uses_suffix() && matches!(self.layout.last(), Some(Piece::Marker(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vocab(names: &[&str]) -> HashMap<String, Token> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), 1000 + i as Token))
            .collect()
    }

    fn render(t: &FimTemplate, v: &HashMap<String, Token>) -> String {
        let by_id: HashMap<Token, &str> = v.iter().map(|(k, id)| (*id, k.as_str())).collect();
        t.layout
            .iter()
            .map(|p| match p {
                Piece::Marker(id) => by_id[id].to_string(),
                Piece::Text(s) => s.to_string(),
                Piece::Prefix => "{P}".into(),
                Piece::Suffix => "{S}".into(),
            })
            .collect()
    }

    fn detect(names: &[&str]) -> (FimTemplate, String) {
        let v = vocab(names);
        let t = FimTemplate::detect(&|s| v.get(s).copied(), None);
        let r = render(&t, &v);
        (t, r)
    }

    #[test]
    fn qwen() {
        let (t, r) = detect(&[
            "<|fim_prefix|>",
            "<|fim_suffix|>",
            "<|fim_middle|>",
            "<|fim_pad|>",
            "<|repo_name|>",
            "<|file_sep|>",
            "<|endoftext|>",
        ]);
        assert_eq!(t.family, FimFamily::Qwen);
        assert_eq!(r, "<|fim_prefix|>{P}<|fim_suffix|>{S}<|fim_middle|>");
        assert!(t.stop_tokens.contains(&1005)); // <|file_sep|>
        assert!(t.stop_tokens.contains(&1003)); // <|fim_pad|>
    }

    #[test]
    fn codegemma_is_told_apart_from_qwen() {
        let (t, r) = detect(&[
            "<|fim_prefix|>",
            "<|fim_suffix|>",
            "<|fim_middle|>",
            "<|file_separator|>",
        ]);
        assert_eq!(t.family, FimFamily::CodeGemma);
        assert_eq!(r, "<|fim_prefix|>{P}<|fim_suffix|>{S}<|fim_middle|>");
    }

    #[test]
    fn starcoder() {
        let (t, r) = detect(&["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>"]);
        assert_eq!(t.family, FimFamily::StarCoder);
        assert_eq!(r, "<fim_prefix>{P}<fim_suffix>{S}<fim_middle>");
    }

    #[test]
    fn codellama() {
        let (t, r) = detect(&["<PRE>", "<SUF>", "<MID>", "<EOT>"]);
        assert_eq!(t.family, FimFamily::CodeLlama);
        assert_eq!(r, "<PRE> {P} <SUF>{S} <MID>");
        assert!(t.stop_tokens.contains(&1003));
    }

    #[test]
    fn deepseek() {
        let (t, r) = detect(&["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"]);
        assert_eq!(t.family, FimFamily::DeepSeek);
        assert_eq!(r, "<｜fim▁begin｜>{P}<｜fim▁hole｜>{S}<｜fim▁end｜>");
    }

    #[test]
    fn codestral_puts_suffix_first() {
        let (t, r) = detect(&["[PREFIX]", "[SUFFIX]", "[MIDDLE]"]);
        assert_eq!(t.family, FimFamily::Codestral);
        assert_eq!(r, "[SUFFIX]{S}[PREFIX]{P}");
    }

    #[test]
    fn no_fim_tokens_means_prefix_only() {
        let (t, r) = detect(&["<|im_start|>", "<|endoftext|>"]);
        assert_eq!(t.family, FimFamily::PrefixOnly);
        assert_eq!(r, "{P}");
        assert!(!t.uses_suffix());
    }

    #[test]
    fn forced_family_without_markers_falls_back() {
        let v = vocab(&["<|endoftext|>"]);
        let t = FimTemplate::detect(&|s| v.get(s).copied(), Some("qwen"));
        assert_eq!(t.family, FimFamily::PrefixOnly);
    }
}
