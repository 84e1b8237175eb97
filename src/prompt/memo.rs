//! Tokenizations remembered from one request to the next.
//!
//! Laying out a prompt tokenizes the same long texts several times (the
//! whole prefix, then tails of it in a binary search for what fits), and
//! while the user types within a line the text before that line and after
//! it do not change at all. With Qwen's tokenizer those calls cost about
//! 100 ms per request on a 2-core machine, more than evaluating the one new
//! token the KV cache leaves; remembered, they cost a hash of the text.
//!
//! Exact by construction: a text is looked up by its whole content, so a
//! remembered tokenization is the one the tokenizer would give.

use std::cell::RefCell;
use std::collections::HashMap;

use super::{Token, Tokenizer};

/// Texts shorter than this are tokenized again: cheaper than keeping them.
const MIN_REMEMBERED_BYTES: usize = 256;

/// The tokenizations used by the current request and by the one before.
/// Anything older is dropped, so memory stays at about two prompts' worth
/// of text, with no eviction policy to tune.
#[derive(Debug, Default)]
pub struct TokenMemo {
    current: HashMap<String, Vec<Token>>,
    previous: HashMap<String, Vec<Token>>,
    hits: u64,
    misses: u64,
}

impl TokenMemo {
    /// Starts a new request: what the last one used stays available.
    pub fn next_request(&mut self) {
        self.previous = std::mem::take(&mut self.current);
    }

    /// Lookups answered from memory, and lookups that tokenized.
    pub fn counts(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    fn get_or_tokenize(&mut self, text: &str, inner: &dyn Tokenizer) -> Vec<Token> {
        if text.len() < MIN_REMEMBERED_BYTES {
            return inner.tokenize(text);
        }
        if let Some(t) = self.current.get(text) {
            self.hits += 1;
            return t.clone();
        }
        let tokens = match self.previous.remove(text) {
            Some(t) => {
                self.hits += 1;
                t
            }
            None => {
                self.misses += 1;
                inner.tokenize(text)
            }
        };
        self.current.insert(text.to_string(), tokens.clone());
        tokens
    }
}

/// `inner`, answering from `memo` where it can.
pub struct Memoized<'a> {
    pub inner: &'a dyn Tokenizer,
    pub memo: &'a RefCell<TokenMemo>,
}

impl Tokenizer for Memoized<'_> {
    fn tokenize(&self, text: &str) -> Vec<Token> {
        self.memo.borrow_mut().get_or_tokenize(text, self.inner)
    }

    fn piece(&self, token: Token) -> Vec<u8> {
        self.inner.piece(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// One token per byte; counts its calls.
    struct Bytes {
        calls: Cell<usize>,
    }

    impl Tokenizer for Bytes {
        fn tokenize(&self, text: &str) -> Vec<Token> {
            self.calls.set(self.calls.get() + 1);
            text.bytes().map(Token::from).collect()
        }
    }

    #[test]
    fn remembers_long_texts_for_one_request_more_and_answers_exactly() {
        let inner = Bytes {
            calls: Cell::new(0),
        };
        let memo = RefCell::new(TokenMemo::default());
        let tok = Memoized {
            inner: &inner,
            memo: &memo,
        };
        let a = "a".repeat(300);
        let b = "b".repeat(300);
        assert_eq!(tok.tokenize(&a), inner.tokenize(&a));
        let calls = inner.calls.get();
        assert_eq!(tok.tokenize(&a), inner.tokenize(&a));
        assert_eq!(inner.calls.get(), calls + 1, "second lookup is remembered");

        // Used in the next request: still there, and kept for the one after.
        memo.borrow_mut().next_request();
        let calls = inner.calls.get();
        tok.tokenize(&a);
        assert_eq!(inner.calls.get(), calls);
        memo.borrow_mut().next_request();
        tok.tokenize(&b);
        memo.borrow_mut().next_request();
        let calls = inner.calls.get();
        tok.tokenize(&a);
        assert_eq!(
            inner.calls.get(),
            calls + 1,
            "unused for two requests: dropped"
        );
        tok.tokenize(&b);
        assert_eq!(
            inner.calls.get(),
            calls + 1,
            "b was used by the last request"
        );

        // Short texts are tokenized every time, never kept.
        let (hits, misses) = memo.borrow().counts();
        tok.tokenize("short");
        tok.tokenize("short");
        assert_eq!(inner.calls.get(), calls + 3);
        assert_eq!(memo.borrow().counts(), (hits, misses));
    }
}
