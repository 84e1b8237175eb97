//! Token healing's rule for the answer's first tokens, shared by the
//! local decode loop (which constrains its choice by it) and the remote
//! engines (which check a server's choice against it afterwards).

/// Whether a token of bytes `piece` may come next while the healed bytes
/// `pending` are not yet matched: it agrees with them (begins with them,
/// or is a start of them). Except that healed indentation may not be
/// matched by one token of blanks that covers all of it: code after an
/// indentation is tokenized as the indentation but its last blank, then a
/// token that begins with that blank (`" return"`), so in the text a model
/// learned from, a token of the whole indentation is followed by a line
/// break or more blanks, never by code. Chosen, it led the model on to
/// blanks only, to the token limit (an empty answer on a blank line where
/// code was wanted); the shorter run of blanks leads to the code.
pub fn agrees(piece: &[u8], pending: &[u8]) -> bool {
    let agrees = !piece.is_empty() && (piece.starts_with(pending) || pending.starts_with(piece));
    agrees && !covers_indentation(piece, pending)
}

/// `pending` is blanks only and `piece`, blanks only too, covers it.
pub fn covers_indentation(piece: &[u8], pending: &[u8]) -> bool {
    let blanks = |b: &[u8]| !b.is_empty() && b.iter().all(|c| *c == b' ' || *c == b'\t');
    blanks(pending) && blanks(piece) && piece.len() >= pending.len()
}

/// Where a server's first token covered healed indentation (which the
/// local engine does not allow), the split of that indentation to ask
/// again with: all of it but its last blank goes into the prompt, and the
/// answer must start with that blank. `None` where the indentation is a
/// single blank.
pub fn indentation_split(healed: &[u8]) -> Option<(&[u8], &[u8])> {
    (healed.len() >= 2 && covers_indentation(healed, healed))
        .then(|| healed.split_at(healed.len() - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healed_indentation_is_not_matched_by_one_token_of_blanks() {
        let indent = b"            ";
        // The indentation but its last blank, then a token with that blank.
        assert!(agrees(b"           ", indent));
        assert!(!agrees(b" ", b" "));
        // One token of the whole indentation, or more blanks: never code after.
        assert!(!agrees(indent, indent));
        assert!(!agrees(b"                ", indent));
        assert!(!agrees(b"\t\t", b"\t\t"));
        assert!(agrees(b"\t", b"\t\t"));
        // Healed text with more than blanks heals as before.
        assert!(agrees(b" foo", b" f"));
        assert!(agrees(b" ", b" f"));
        assert!(!agrees(b"x", b" f"));
        assert!(!agrees(b"", b" f"));
        assert!(agrees(b" \n", b" "));
    }

    #[test]
    fn indentation_splits_before_its_last_blank() {
        assert_eq!(indentation_split(b"    "), Some((&b"   "[..], &b" "[..])));
        assert_eq!(indentation_split(b" "), None);
        assert_eq!(indentation_split(b" x"), None);
        assert_eq!(indentation_split(b""), None);
    }
}
