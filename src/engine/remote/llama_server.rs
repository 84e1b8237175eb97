//! llama.cpp's `llama-server`: `/completion` with the prompt as token ids,
//! greedy, streamed, with the server's prompt cache; its `/health` and
//! `/tokenize` and `/props` (its number of slots) for the probe.

use serde_json::{json, Value};

use super::http::Fault;
use super::slots::id_slot;
use super::Event;
use crate::prompt::Token;

pub(crate) const COMPLETION: &str = "/completion";
pub(crate) const HEALTH: &str = "/health";
pub(crate) const TOKENIZE: &str = "/tokenize";
pub(crate) const PROPS: &str = "/props";

/// The request: exactly the prompt's tokens (no BOS or template added by
/// the server: a token array is taken as it is), greedy decoding with no
/// penalties, the slot's KV cache reused for the common prefix
/// (`cache_prompt`: the same discipline as the local engine, since
/// prompts change only at their end as the user types), and the token
/// ids of the answer (`return_tokens`), so that the answer's bytes and its
/// stop tokens are judged by infill's own vocabulary.
/// `fresh` (evaluations) turns the cache off, so that an answer depends on
/// its prompt alone, as in process (`EngineRequest::fresh`).
/// `slot`: the slot whose cache holds our prompt (`slots`), or none (-1,
/// the server picks).
pub(crate) fn body(prompt: &[Token], max_tokens: usize, fresh: bool, slot: Option<usize>) -> Value {
    json!({
        "prompt": prompt,
        "id_slot": id_slot(slot),
        "n_predict": max_tokens,
        "stream": true,
        "cache_prompt": !fresh,
        "return_tokens": true,
        "temperature": 0.0,
        "top_k": 1,
        "top_p": 1.0,
        "min_p": 0.0,
        "repeat_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "dry_multiplier": 0.0,
        "n_probs": 0,
        // Timings in every event, not only the last: infill closes the
        // stream as soon as its stop rule ends the answer, before the
        // server's last event, and still learns what was evaluated.
        "timings_per_token": true,
    })
}

/// Only the prompt into the slot's cache (a warm start), nothing generated.
pub(crate) fn warm_body(prompt: &[Token], slot: Option<usize>) -> Value {
    json!({
        "prompt": prompt,
        "id_slot": id_slot(slot),
        "n_predict": 0,
        "stream": true,
        "cache_prompt": true,
    })
}

/// One event of `/completion`'s stream: `{"content", "tokens", "stop",
/// "id_slot", "timings": {"prompt_n"}}`, or `{"error": {...}}`.
pub(crate) fn parse(data: &str) -> Result<Event, Fault> {
    let v: Value = serde_json::from_str(data)
        .map_err(|e| Fault::Garbage(format!("an event that is not JSON ({e})")))?;
    if let Some(err) = v.get("error") {
        return Err(server_error(err));
    }
    let Some(obj) = v.as_object() else {
        return Err(Fault::Garbage("an event that is not an object".into()));
    };
    let tokens = match obj.get("tokens") {
        None | Some(Value::Null) => None,
        Some(Value::Array(ids)) => Some(
            ids.iter()
                .map(|t| {
                    t.as_i64()
                        .and_then(|t| Token::try_from(t).ok())
                        .ok_or_else(|| Fault::Garbage(format!("a token id {t}")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(other) => return Err(Fault::Garbage(format!("`tokens` is {other}"))),
    };
    let text = match obj.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(Fault::Garbage(format!("`content` is {other}"))),
    };
    let end = obj.get("stop").and_then(Value::as_bool).unwrap_or(false);
    let evaluated = obj
        .get("timings")
        .and_then(|t| t.get("prompt_n"))
        .and_then(Value::as_u64)
        .map(|n| n as usize);
    // The slot that answers (a negative or missing number: none said).
    let slot = obj
        .get("id_slot")
        .and_then(Value::as_u64)
        .and_then(|s| usize::try_from(s).ok());
    Ok(Event {
        tokens,
        text,
        end,
        evaluated,
        slot,
    })
}

/// The server's number of slots, from `/props` (`total_slots`); `None`
/// where it does not say.
pub(crate) fn total_slots(props: &Value) -> Option<usize> {
    props
        .get("total_slots")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
}

pub(crate) fn server_error(err: &Value) -> Fault {
    let code = err
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(500);
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| err.to_string());
    Fault::Status(code, message)
}

/// The token ids of `/tokenize`'s answer.
pub(crate) fn tokens_of(v: &Value) -> Result<Vec<Token>, Fault> {
    v.get("tokens")
        .and_then(Value::as_array)
        .ok_or_else(|| Fault::Garbage("`/tokenize` gave no `tokens`".into()))?
        .iter()
        .map(|t| {
            t.as_i64()
                .and_then(|t| Token::try_from(t).ok())
                .ok_or_else(|| Fault::Garbage(format!("`/tokenize` gave the token {t}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_our_slot_or_none() {
        let b = body(&[1, 2, 3], 16, false, Some(2));
        assert_eq!(b["id_slot"], 2);
        assert_eq!(b["prompt"], json!([1, 2, 3]));
        assert_eq!(b["n_predict"], 16);
        assert_eq!(b["cache_prompt"], true);
        assert_eq!(b["stream"], true);
        assert_eq!(b["temperature"], 0.0);
        let b = body(&[1], 16, true, None);
        assert_eq!(b["id_slot"], -1);
        assert_eq!(b["cache_prompt"], false);
        let w = warm_body(&[1, 2], Some(0));
        assert_eq!(w["id_slot"], 0);
        assert_eq!(w["n_predict"], 0);
        assert_eq!(w["cache_prompt"], true);
        assert_eq!(warm_body(&[1], None)["id_slot"], -1);
    }

    #[test]
    fn the_number_of_slots_is_read_from_props() {
        assert_eq!(total_slots(&json!({"total_slots": 4})), Some(4));
        assert_eq!(total_slots(&json!({"total_slots": -1})), None);
        assert_eq!(total_slots(&json!({"total_slots": "4"})), None);
        assert_eq!(total_slots(&json!({})), None);
    }

    #[test]
    fn events_parse_or_are_faults() {
        let e = parse(r#"{"content":"ab","tokens":[1,2],"stop":false}"#).unwrap();
        assert_eq!(e.tokens, Some(vec![1, 2]));
        assert_eq!(e.text, "ab");
        assert!(!e.end);
        let e = parse(r#"{"content":"","stop":true,"timings":{"prompt_n":7}}"#).unwrap();
        assert!(e.end);
        assert_eq!(e.evaluated, Some(7));
        assert_eq!(e.slot, None);
        let e = parse(r#"{"content":"a","id_slot":3,"stop":false}"#).unwrap();
        assert_eq!(e.slot, Some(3));
        let e = parse(r#"{"content":"a","id_slot":-1,"stop":false}"#).unwrap();
        assert_eq!(e.slot, None);
        assert!(matches!(parse("{not json"), Err(Fault::Garbage(_))));
        assert!(matches!(
            parse(r#"{"tokens":["x"]}"#),
            Err(Fault::Garbage(_))
        ));
        assert_eq!(
            parse(r#"{"error":{"code":503,"message":"Loading model"}}"#),
            Err(Fault::Status(503, "Loading model".into()))
        );
    }
}
