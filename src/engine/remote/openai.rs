//! OpenAI-style servers (vLLM, llama-server, others): `/v1/completions`
//! with the prompt as token ids (vLLM and llama-server take a list of
//! ints), greedy, streamed; `/v1/models` for the probe.

use serde_json::{json, Value};

use super::http::Fault;
use super::Event;
use crate::prompt::Token;

pub(crate) const COMPLETIONS: &str = "/completions";
pub(crate) const MODELS: &str = "/models";

/// The API's root: `base` itself where it already ends in `/v1` (as
/// OpenAI clients are often configured), else `base/v1`.
pub(crate) fn root(base: &str) -> String {
    if base.ends_with("/v1") {
        base.to_string()
    } else {
        format!("{base}/v1")
    }
}

/// The request: the prompt's token ids, greedy, streamed. `stop_token_ids`
/// (vLLM's extension; others ignore it) ends the answer on the template's
/// stop tokens, which such servers may not count as the end of generation.
pub(crate) fn body(model: &str, prompt: &[Token], max_tokens: usize, stops: &[Token]) -> Value {
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
        assert_eq!(root("http://h:8000/v1"), "http://h:8000/v1");
        assert_eq!(
            model_ids(&serde_json::json!({"data": [{"id": "a"}, {"id": "b"}]})).unwrap(),
            vec!["a", "b"]
        );
    }
}
