//! OpenAI-style servers (vLLM, llama-server, others): `/v1/completions`
//! with the prompt as token ids (vLLM and llama-server take a list of
//! ints) or, where the server takes only text (Ollama, TGI), as text with
//! the special tokens written out; greedy, streamed; `/v1/models` and
//! `/tokenize` (where the server has one) for the probe.

use serde_json::{json, Value};

use super::http::Fault;
use super::Event;
use crate::prompt::Token;

pub(crate) const COMPLETIONS: &str = "/completions";
pub(crate) const MODELS: &str = "/models";
/// Not under `/v1`: at the server's root (vLLM, llama-server).
pub(crate) const TOKENIZE: &str = "/tokenize";

/// The API's root: `base` itself where it already ends in `/v1` (as
/// OpenAI clients are often configured), else `base/v1`.
pub(crate) fn root(base: &str) -> String {
    if base.ends_with("/v1") {
        base.to_string()
    } else {
        format!("{base}/v1")
    }
}

/// The server's root, where vLLM and llama-server serve `/tokenize`:
/// `base` without the API's `/v1`.
pub(crate) fn server_root(base: &str) -> &str {
    base.strip_suffix("/v1").unwrap_or(base)
}

/// The probe's `/tokenize` request, in both dialects at once: vLLM reads
/// `model` and `prompt` (`add_special_tokens` off: no BOS), llama-server
/// `content` (`add_special` off); each ignores the other's fields.
pub(crate) fn tokenize_body(model: &str, text: &str) -> Value {
    json!({
        "model": model,
        "prompt": text,
        "add_special_tokens": false,
        "content": text,
        "add_special": false,
    })
}

/// What the server's `/tokenize` told the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tokenized {
    /// The server's token ids for the probe text.
    Tokens(Vec<Token>),
    /// The server has no such endpoint (or no answer infill can read):
    /// the vocabulary stays unchecked, for this reason.
    Absent(String),
}

/// Reads `/tokenize`'s outcome: token ids, an endpoint the server does
/// not have (a client error status such as 404 or 405, or an answer
/// without token ids), or a fault of the server (unreachable, slow, 408,
/// 429, 5xx: the probe tries again later).
pub(crate) fn tokenized(outcome: Result<Value, Fault>) -> Result<Tokenized, Fault> {
    match outcome {
        Ok(v) => Ok(match super::llama_server::tokens_of(&v) {
            Ok(tokens) => Tokenized::Tokens(tokens),
            Err(why) => Tokenized::Absent(why.to_string()),
        }),
        Err(Fault::Status(code, _)) if (400..500).contains(&code) && code != 408 && code != 429 => {
            Ok(Tokenized::Absent(format!(
                "`/tokenize` answered HTTP {code}"
            )))
        }
        Err(Fault::Garbage(what)) => Ok(Tokenized::Absent(format!("`/tokenize`: {what}"))),
        Err(fault) => Err(fault),
    }
}

/// How a prompt goes to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prompt<'a> {
    /// Token ids: the server evaluates exactly them.
    Tokens(&'a [Token]),
    /// Text, special tokens written as their text, for servers that take
    /// no token ids; the server's tokenizer parses it.
    Text(&'a str),
}

/// A prompt's text from its tokens' bytes (special tokens as their text),
/// and the healed bytes the answer must begin with. Where token healing
/// took out the second half of a character (a byte token), the prompt's
/// text cannot end in its first half: those bytes move from the prompt
/// to the healed text, so the server is asked for the whole character.
pub(crate) fn text_prompt(
    pieces: impl IntoIterator<Item = Vec<u8>>,
    healed: &[u8],
) -> (String, Vec<u8>) {
    let mut bytes: Vec<u8> = pieces.into_iter().flatten().collect();
    let mut healed = healed.to_vec();
    if let Err(e) = std::str::from_utf8(&bytes) {
        if e.error_len().is_none() {
            let cut = bytes.split_off(e.valid_up_to());
            healed.splice(0..0, cut);
        }
    }
    (String::from_utf8_lossy(&bytes).into_owned(), healed)
}

/// Whether a server's error to a token-id prompt may mean it takes text
/// prompts only (an HTTP 400 or 422: the request is what it refuses).
pub(crate) fn may_refuse_token_prompts(fault: &Fault) -> bool {
    matches!(fault, Fault::Status(400 | 422, _))
}

/// The request: the prompt (token ids or text), greedy, streamed.
/// `stop_token_ids` (vLLM's extension; others ignore it) ends the answer
/// on the template's stop tokens, which such servers may not count as the
/// end of generation.
pub(crate) fn body(model: &str, prompt: Prompt<'_>, max_tokens: usize, stops: &[Token]) -> Value {
    let prompt = match prompt {
        Prompt::Tokens(ids) => json!(ids),
        Prompt::Text(text) => json!(text),
    };
    json!({
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "top_p": 1.0,
        "stream": true,
        "stop_token_ids": stops,
    })
}

/// One event of the stream: `{"choices": [{"text", "finish_reason"}],
/// "usage"}`, `[DONE]`, or `{"error": ...}`.
pub(crate) fn parse(data: &str) -> Result<Event, Fault> {
    if data == "[DONE]" {
        return Ok(Event {
            end: true,
            ..Event::default()
        });
    }
    let v: Value = serde_json::from_str(data)
        .map_err(|e| Fault::Garbage(format!("an event that is not JSON ({e})")))?;
    if let Some(err) = v.get("error") {
        return Err(super::llama_server::server_error(err));
    }
    let evaluated = v
        .get("usage")
        .and_then(|u| u.get("prompt_tokens"))
        .and_then(Value::as_u64)
        .map(|n| n as usize);
    let choice = match v.get("choices") {
        Some(Value::Array(c)) => c.first(),
        _ => return Err(Fault::Garbage("an event without `choices`".into())),
    };
    let Some(choice) = choice else {
        // The usage event of `stream_options` has no choices.
        return Ok(Event {
            evaluated,
            ..Event::default()
        });
    };
    let text = match choice.get("text") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(Fault::Garbage(format!("`text` is {other}"))),
    };
    let end = choice.get("finish_reason").is_some_and(|r| !r.is_null());
    Ok(Event {
        tokens: None,
        text,
        end,
        evaluated,
        slot: None,
    })
}

/// The model ids `/v1/models` lists.
pub(crate) fn model_ids(v: &Value) -> Result<Vec<String>, Fault> {
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| Fault::Garbage("`/v1/models` gave no `data` list".into()))?;
    Ok(data
        .iter()
        .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_or_are_faults() {
        let e = parse(r#"{"choices":[{"text":"x = ","finish_reason":null}]}"#).unwrap();
        assert_eq!((e.text.as_str(), e.end), ("x = ", false));
        let e = parse(r#"{"choices":[{"text":"1","finish_reason":"stop"}]}"#).unwrap();
        assert!(e.end);
        assert!(parse("[DONE]").unwrap().end);
        assert!(matches!(parse("<html>"), Err(Fault::Garbage(_))));
        assert!(matches!(parse(r#"{"id":1}"#), Err(Fault::Garbage(_))));
        assert_eq!(
            parse(r#"{"error":{"message":"The model `x` does not exist.","code":404}}"#),
            Err(Fault::Status(404, "The model `x` does not exist.".into()))
        );
        assert_eq!(root("http://h:8000"), "http://h:8000/v1");
        assert_eq!(server_root("http://h:8000/v1"), "http://h:8000");
        assert_eq!(server_root("http://h:8000"), "http://h:8000");
        assert_eq!(root("http://h:8000/v1"), "http://h:8000/v1");
        assert_eq!(
            model_ids(&serde_json::json!({"data": [{"id": "a"}, {"id": "b"}]})).unwrap(),
            vec!["a", "b"]
        );
    }

    #[test]
    fn prompts_go_as_token_ids_or_text() {
        let b = body("m", Prompt::Tokens(&[1, 2]), 8, &[3]);
        assert_eq!(b["prompt"], json!([1, 2]));
        assert_eq!(b["stop_token_ids"], json!([3]));
        let b = body("m", Prompt::Text("<|fim_prefix|>x"), 8, &[3]);
        assert_eq!(b["prompt"], "<|fim_prefix|>x");
        assert!(may_refuse_token_prompts(&Fault::Status(400, "bad".into())));
        assert!(may_refuse_token_prompts(&Fault::Status(422, "".into())));
        assert!(!may_refuse_token_prompts(&Fault::Status(500, "".into())));
        assert!(!may_refuse_token_prompts(&Fault::Broken("".into())));
    }

    #[test]
    fn a_text_prompt_keeps_whole_characters() {
        let pieces = |p: &[&[u8]]| p.iter().map(|b| b.to_vec()).collect::<Vec<_>>();
        let (text, healed) = text_prompt(pieces(&[b"<|fim_middle|>", b"x = "]), b"1");
        assert_eq!(
            (text.as_str(), healed.as_slice()),
            ("<|fim_middle|>x = ", &b"1"[..])
        );
        // "ü" is C3 BC: the healed token took BC.
        let (text, healed) = text_prompt(pieces(&[b"# ", b"\xc3"]), b"\xbc");
        assert_eq!((text.as_str(), healed.as_slice()), ("# ", "ü".as_bytes()));
    }

    #[test]
    fn a_missing_tokenize_endpoint_leaves_the_vocabulary_unchecked() {
        let t = tokenize_body("m", "x");
        assert_eq!(
            (t["prompt"].as_str(), t["content"].as_str()),
            (Some("x"), Some("x"))
        );
        assert_eq!(
            tokenized(Ok(json!({"count": 2, "tokens": [5, 6]}))),
            Ok(Tokenized::Tokens(vec![5, 6]))
        );
        for absent in [
            Err(Fault::Status(404, "Not Found".into())),
            Err(Fault::Status(405, "".into())),
            Err(Fault::Garbage("not JSON".into())),
            Ok(json!({"detail": "Not Found"})),
        ] {
            assert!(
                matches!(tokenized(absent.clone()), Ok(Tokenized::Absent(_))),
                "{absent:?}"
            );
        }
        for fault in [
            Fault::Status(503, "".into()),
            Fault::Status(429, "".into()),
            Fault::Slow(std::time::Duration::from_secs(1)),
            Fault::Unreachable("".into()),
        ] {
            assert_eq!(tokenized(Err(fault.clone())), Err(fault));
        }
    }
}
