//! Typing through a suggestion: while the user types exactly the start of
//! what is shown, the rest stands, and is answered without the model.

use super::DocumentId;
use crate::completion::CursorContext;

/// The suggestion last shown for a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownSuggestion {
    pub document: DocumentId,
    pub prefix: String,
    pub suffix: String,
    pub text: String,
    /// The other answers offered with it (`completion.candidates`).
    pub alternatives: Vec<String>,
}

impl ShownSuggestion {
    /// The rest of the suggestion if, since it was shown, the user typed
    /// exactly its start and nothing else changed.
    pub fn rest_after_typing(&self, document: &DocumentId, ctx: &CursorContext) -> Option<String> {
        if *document != self.document || ctx.suffix != self.suffix {
            return None;
        }
        let typed = ctx.prefix.strip_prefix(&self.prefix)?;
        let rest = self.text.strip_prefix(typed)?;
        (!rest.trim().is_empty()).then(|| rest.to_string())
    }

    /// The rests of the alternatives the user's typing (as in
    /// `rest_after_typing`) is also the start of.
    pub fn alternatives_after_typing(&self, ctx: &CursorContext) -> Vec<String> {
        let Some(typed) = ctx.prefix.strip_prefix(&self.prefix) else {
            return Vec::new();
        };
        self.alternatives
            .iter()
            .filter_map(|a| a.strip_prefix(typed))
            .filter(|rest| !rest.trim().is_empty())
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use ropey::Rope;

    use super::*;
    use crate::completion::cursor_context;
    use crate::config::Config;

    fn ctx(before: &str, after: &str) -> CursorContext {
        let text = format!("{before}{after}");
        let rope = Rope::from_str(&text);
        cursor_context(&rope, None, before.chars().count(), &Config::default())
    }

    fn id(name: &str) -> DocumentId {
        DocumentId::new(name, None)
    }

    #[test]
    fn typing_through_a_suggestion_keeps_its_rest() {
        let shown = ShownSuggestion {
            document: id("u"),
            prefix: "    return ".into(),
            suffix: "\n".into(),
            text: "fibonacci(n - 1) + fibonacci(n - 2)".into(),
            alternatives: vec!["fib(n - 1)".into(), "n".into()],
        };
        let typed = ctx("    return fib", "\n");
        assert_eq!(
            shown.rest_after_typing(&id("u"), &typed).as_deref(),
            Some("onacci(n - 1) + fibonacci(n - 2)")
        );
        assert_eq!(shown.alternatives_after_typing(&typed), ["(n - 1)"]);
        assert_eq!(shown.rest_after_typing(&id("v"), &typed), None);
        assert_eq!(
            shown.rest_after_typing(&id("u"), &ctx("    return fix", "\n")),
            None
        );
        assert_eq!(
            shown.rest_after_typing(&id("u"), &ctx("    return fib", "\nx")),
            None
        );
        let all = ctx("    return fibonacci(n - 1) + fibonacci(n - 2)", "\n");
        assert_eq!(shown.rest_after_typing(&id("u"), &all), None);
    }
}
