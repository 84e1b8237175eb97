//! The llama.vim arm: llama.cpp's own `llama-server` (the binary
//! `scripts/build-llama-server` builds), asked at `/infill` exactly as the
//! llama.vim plugin asks it for the same cursor, and its answer kept as the
//! plugin would show it. Ported from `autoload/llama.vim` of
//! <https://github.com/ggml-org/llama.vim> at [`LLAMA_VIM_COMMIT`]:
//!
//! - [`local_context`] is `s:fim_ctx_local` for a first request (no
//!   previous suggestion): up to [`N_PREFIX`] lines before the cursor line
//!   as `input_prefix`, the cursor line's text before the cursor as
//!   `prompt`, its rest and up to [`N_SUFFIX`] lines after as
//!   `input_suffix`; a cursor line of blanks only is sent as empty (its
//!   indentation is the model's to write).
//! - [`request_body`] is the body `llama#fim` posts, with two documented
//!   changes: `t_max_predict_ms` raised from the first request's 250 ms to
//!   [`T_MAX_PREDICT_MS`] (the server stops at the first line end after
//!   that time; on a loaded 2-core machine 250 ms would cut the answer's
//!   later lines at load-dependent places, and llama.vim's repeat rules
//!   look at those lines), and a fixed `seed` (llama.vim sends none, so the
//!   server draws one: its samplers sample at temperature 1 from the top
//!   40 / top 0.9 tokens, and a fixed seed makes a run repeatable).
//!   `input_extra` is empty: the ring buffer of chunks starts empty and
//!   fills from yanks, buffer switches and cursor jumps of an editing
//!   session, of which an evaluation has none; the arm is llama.vim's first
//!   request in a freshly opened file, the counterpart of infill in-file.
//! - [`shown`] is `s:fim_render`: trailing empty lines dropped, a blank
//!   cursor line's blanks taken from the answer, the answer dropped where
//!   it repeats the suffix or the next lines, nothing where only blanks
//!   remain.
//! - [`Server`] starts llama-server with the settings llama.vim's README
//!   recommends (`--fim-qwen-*-default`: context of the model's size
//!   (`-c 0`), batch and micro-batch 1024, `--cache-reuse 256`), one slot,
//!   the model file and thread count infill uses, on a free loopback port,
//!   and stops it when dropped (at the end, and on any error).

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// The llama.vim commit whose request and rendering this module copies.
pub const LLAMA_VIM_COMMIT: &str = "a1c8e6e40cb45df59b78add5b65d575386832465";
/// `g:llama_config.n_prefix`: lines before the cursor line.
pub const N_PREFIX: usize = 256;
/// `g:llama_config.n_suffix`: lines after the cursor line.
pub const N_SUFFIX: usize = 64;
/// `g:llama_config.n_predict`.
pub const N_PREDICT: u32 = 128;
/// `g:llama_config.t_max_prompt_ms` (llama-server ignores it: not implemented).
pub const T_MAX_PROMPT_MS: u64 = 500;
/// llama.vim sends 250 for a first request (1000 for the speculative one
/// after it); raised so that the answer does not depend on the machine's load.
pub const T_MAX_PREDICT_MS: u64 = 60_000;
/// Sent as `seed` (llama.vim sends none: a random one).
pub const SEED: u32 = 1234;
/// llama-server's flags besides model, threads, host and port: llama.vim's
/// README recommends `llama-server --fim-qwen-1.5b-default` (or the 3b, 7b,
/// 30b presets), which set these (llama.cpp `common/arg.cpp`), and one slot.
pub const SERVER_FLAGS: &[&str] = &[
    "-c",
    "0",
    "-b",
    "1024",
    "-ub",
    "1024",
    "--cache-reuse",
    "256",
    "-np",
    "1",
    "--no-webui",
];

/// How the server picks tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sampling {
    /// As llama.vim asks: `samplers: [top_k, top_p, infill]`, top_k 40,
    /// top_p 0.90 (temperature 1: the temperature sampler is not in the
    /// list), with a fixed seed.
    #[default]
    AsLlamaVim,
    /// The most likely token each step (`samplers: [top_k]`, top_k 1), as
    /// `scripts/bench-latency` asks.
    Greedy,
}

impl std::str::FromStr for Sampling {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "llama-vim" => Ok(Sampling::AsLlamaVim),
            "greedy" => Ok(Sampling::Greedy),
            other => Err(format!("unknown sampling `{other}`; llama-vim or greedy")),
        }
    }
}

impl std::fmt::Display for Sampling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sampling::AsLlamaVim => "llama-vim",
            Sampling::Greedy => "greedy",
        })
    }
}

/// A document as Vim holds it: lines without their ends (a last line end
/// makes no empty line after it; `\r` of a `\r\n` end is not part of a
/// line), and the cursor's line (0-based) and byte column.
struct Buffer<'a> {
    lines: Vec<&'a str>,
    row: usize,
    col: usize,
}

impl<'a> Buffer<'a> {
    /// `text` with the cursor at byte `cursor`.
    fn new(text: &'a str, cursor: usize) -> Buffer<'a> {
        let cursor = cursor.min(text.len());
        let body = text.strip_suffix('\n').unwrap_or(text);
        let mut lines: Vec<&str> = body
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        let before = &text.as_bytes()[..cursor];
        let row = before.iter().filter(|&&b| b == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        // The cursor on the empty line after a last line end.
        while lines.len() <= row {
            lines.push("");
        }
        let col = (cursor - line_start).min(lines[row].len());
        Buffer { lines, row, col }
    }

    /// `getline(n)` for a 0-based `n`: empty past the end.
    fn line(&self, n: usize) -> &'a str {
        self.lines.get(n).copied().unwrap_or("")
    }

    /// `getline(from, to)`, 0-based, `to` exclusive, clamped to the buffer.
    fn range(&self, from: usize, to: usize) -> &[&'a str] {
        let to = to.min(self.lines.len());
        &self.lines[from.min(to)..to]
    }
}

/// Vim's `'^\s*$'`: only spaces and tabs.
fn blank(s: &str) -> bool {
    s.bytes().all(|b| b == b' ' || b == b'\t')
}

/// Vim's `strlen(matchstr(s, '^\s*'))`.
fn leading_blanks(s: &str) -> usize {
    s.bytes().take_while(|&b| b == b' ' || b == b'\t').count()
}

/// The local context llama.vim sends for a cursor (`s:fim_ctx_local`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalContext {
    /// `input_prefix`: up to `N_PREFIX` lines before the cursor line, each
    /// ended by `\n`.
    pub prefix: String,
    /// `prompt`: the cursor line before the cursor (empty on a line of
    /// blanks).
    pub middle: String,
    /// `input_suffix`: the cursor line's rest, `\n`, up to `N_SUFFIX` lines
    /// after it, each ended by `\n`.
    pub suffix: String,
    /// `n_indent`: the cursor line's leading blanks (0 on a line of blanks).
    pub indent: usize,
}

/// What llama.vim sends for a cursor at byte `cursor` of `text`.
pub fn local_context(text: &str, cursor: usize) -> LocalContext {
    let buf = Buffer::new(text, cursor);
    let line_cur = buf.line(buf.row);
    let (mut cur_prefix, mut cur_suffix) = line_cur.split_at(buf.col);
    let lines_prefix = buf.range(buf.row.saturating_sub(N_PREFIX), buf.row);
    let lines_suffix = buf.range(buf.row + 1, buf.row + 1 + N_SUFFIX);
    let indent = if blank(line_cur) {
        cur_prefix = "";
        cur_suffix = "";
        0
    } else {
        leading_blanks(line_cur)
    };
    LocalContext {
        prefix: format!("{}\n", lines_prefix.join("\n")),
        middle: cur_prefix.to_string(),
        suffix: format!("{cur_suffix}\n{}\n", lines_suffix.join("\n")),
        indent,
    }
}

/// The fields llama.vim asks the server to answer with.
const RESPONSE_FIELDS: &[&str] = &[
    "content",
    "timings/prompt_n",
    "timings/prompt_ms",
    "timings/prompt_per_token_ms",
    "timings/prompt_per_second",
    "timings/predicted_n",
    "timings/predicted_ms",
    "timings/predicted_per_token_ms",
    "timings/predicted_per_second",
    "truncated",
    "tokens_cached",
];

/// The body llama.vim posts to `/infill` for `ctx` (`llama#fim`), with the
/// changes the module's documentation lists.
pub fn request_body(ctx: &LocalContext, sampling: Sampling) -> Value {
    let (top_k, samplers): (u32, &[&str]) = match sampling {
        Sampling::AsLlamaVim => (40, &["top_k", "top_p", "infill"]),
        Sampling::Greedy => (1, &["top_k"]),
    };
    json!({
        "id_slot": 0,
        "input_prefix": ctx.prefix,
        "input_suffix": ctx.suffix,
        "input_extra": [],
        "prompt": ctx.middle,
        "n_predict": N_PREDICT,
        "stop": [],
        "n_indent": ctx.indent,
        "top_k": top_k,
        "top_p": 0.90,
        "samplers": samplers,
        "stream": false,
        "cache_prompt": true,
        "t_max_prompt_ms": T_MAX_PROMPT_MS,
        "t_max_predict_ms": T_MAX_PREDICT_MS,
        "response_fields": RESPONSE_FIELDS,
        "seed": SEED,
    })
}

/// What llama.vim shows of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The text a full accept inserts at the cursor (empty: nothing to
    /// accept).
    pub text: String,
    /// Why nothing is shown, where nothing is.
    pub empty: Option<&'static str>,
}

/// `s:fim_render` for the server's `content` at a cursor at byte `cursor`
/// of `text` (the document the request was made on).
pub fn shown(content: &str, text: &str, cursor: usize) -> Shown {
    let buf = Buffer::new(text, cursor);
    let y = buf.row;
    let mut lines: Vec<String> = content.split('\n').map(str::to_string).collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    if lines.is_empty() {
        return Shown {
            text: String::new(),
            empty: Some("the server answered nothing"),
        };
    }
    let mut line_cur = buf.line(y).to_string();
    // A line of blanks: the answer's own blanks, up to the line's length,
    // become the line's.
    if blank(&line_cur) {
        let lead = leading_blanks(&lines[0]).min(line_cur.len());
        line_cur = lines[0][..lead].to_string();
        lines[0] = lines[0][lead..].to_string();
    }
    let col = buf.col.min(line_cur.len());
    let (cur_prefix, cur_suffix) = line_cur.split_at(col);
    let dropped = |why| Shown {
        text: String::new(),
        empty: Some(why),
    };
    if lines.len() == 1 && blank(&lines[0]) && blank(cur_suffix) {
        return dropped("llama.vim: only blanks");
    }
    // An empty first line, then the lines that follow the cursor's.
    if lines.len() > 1 && lines[0].is_empty() && lines[1..] == *buf.range(y + 1, y + lines.len()) {
        return dropped("llama.vim: repeats the next lines");
    }
    if lines.len() == 1 && lines[0] == cur_suffix {
        return dropped("llama.vim: repeats the line's rest");
    }
    // The first line with text after the cursor's.
    let mut cmp = y + 1;
    while cmp + 1 < buf.lines.len() && blank(buf.line(cmp)) {
        cmp += 1;
    }
    if format!("{cur_prefix}{}", lines[0]) == buf.line(cmp) {
        let repeat = match lines.len() {
            1 => true,
            // Vim's `s[:n - 1]` is the first n bytes, and the whole string
            // for n = 0.
            2 => {
                let (last, next) = (lines[1].as_bytes(), buf.line(cmp + 1).as_bytes());
                last.is_empty() && next.is_empty()
                    || !last.is_empty() && next.get(..last.len()) == Some(last)
            }
            n => lines[1..].join("\n") == buf.range(cmp + 1, cmp + n).join("\n"),
        };
        if repeat {
            return dropped("llama.vim: repeats the next line");
        }
    }
    let text = lines.join("\n");
    // Vim's `=~? '^\s*$'` on the joined lines: `\s` takes no line end,
    // so only a one-line answer of blanks is refused there; an answer of
    // blank lines shows nothing all the same.
    if text.trim().is_empty() || blank(&format!("{text}{cur_suffix}")) {
        return dropped("llama.vim: only blanks");
    }
    Shown { text, empty: None }
}

/// Where `scripts/build-llama-server` puts llama-server.
pub fn default_binary() -> PathBuf {
    let cache = std::env::var_os("INFILL_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/infill")))
        .unwrap_or_else(|| PathBuf::from(".cache/infill"));
    cache.join("llama-server-avx2/build/bin/llama-server")
}

/// The server's answer to one request.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// `content`: the model's text.
    pub content: String,
    /// Prompt tokens (evaluated and reused from the cache).
    pub prompt_tokens: usize,
    /// Prompt tokens evaluated (the rest were in the slot's cache).
    pub evaluated_tokens: usize,
    pub generated_tokens: usize,
    pub elapsed: Duration,
}

/// A running llama-server, stopped when dropped.
pub struct Server {
    child: Child,
    base: String,
    log: PathBuf,
    agent: ureq::Agent,
    pub sampling: Sampling,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("base", &self.base)
            .field("sampling", &self.sampling)
            .finish()
    }
}

/// A free loopback port (the OS picks it; the listener is closed before
/// the server binds it).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
    Ok(listener.local_addr()?.port())
}

fn agent(timeout: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_per_read(Some(timeout))
        .timeout_per_write(Some(timeout))
        .build();
    ureq::Agent::new_with_config(config)
}

impl Server {
    /// Starts `binary` on `model` with `threads` threads and waits (at most
    /// 5 minutes) until it has loaded the model.
    pub fn start(
        binary: &Path,
        model: &Path,
        threads: usize,
        sampling: Sampling,
    ) -> Result<Server> {
        if !binary.is_file() {
            bail!(
                "no llama-server at {}: run scripts/build-llama-server (or give --llama-server PATH)",
                binary.display()
            );
        }
        if !model.is_file() {
            bail!(
                "model file {} does not exist; run scripts/fetch-model",
                model.display()
            );
        }
        let port = free_port()?;
        let log = std::env::temp_dir().join(format!(
            "infill-eval-llama-server-{}-{port}.log",
            std::process::id()
        ));
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let threads = threads.max(1).to_string();
        let child = Command::new(binary)
            .arg("-m")
            .arg(model)
            .args(["-t", &threads, "-tb", &threads])
            .args(SERVER_FLAGS)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            agent: agent(Duration::from_secs(600)),
            sampling,
        };
        server.wait_until_ready(Duration::from_secs(300))?;
        Ok(server)
    }

    /// The flags it was started with, for reports.
    pub fn describe(&self) -> String {
        format!(
            "llama-server {} (llama.vim {}; sampling {}, seed {SEED}, t_max_predict_ms {T_MAX_PREDICT_MS}, no input_extra)",
            SERVER_FLAGS.join(" "),
            &LLAMA_VIM_COMMIT[..7],
            self.sampling
        )
    }

    /// The last lines the server wrote, for error messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join("\n")
    }

    fn wait_until_ready(&mut self, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let health = agent(Duration::from_secs(5));
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "llama-server exited ({status}) before it was ready:\n{}",
                    self.log_tail()
                );
            }
            let ok = health
                .get(&format!("{}/health", self.base))
                .call()
                .is_ok_and(|r| r.status().as_u16() == 200);
            if ok {
                return Ok(());
            }
            if started.elapsed() > timeout {
                bail!(
                    "llama-server was not ready after {} s:\n{}",
                    timeout.as_secs(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Posts `body` to `/infill`.
    pub fn infill(&self, body: &Value) -> Result<Answer> {
        let started = Instant::now();
        let response = self
            .agent
            .post(&format!("{}/infill", self.base))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .map_err(|e| anyhow::anyhow!("llama-server /infill: {e}\n{}", self.log_tail()))?;
        let status = response.status().as_u16();
        let mut text = String::new();
        response
            .into_body()
            .into_reader()
            .take(64 << 20)
            .read_to_string(&mut text)
            .context("llama-server /infill: reading the answer")?;
        if !(200..300).contains(&status) {
            bail!("llama-server /infill answered {status}: {text}");
        }
        let mut answer = parse_answer(&text)?;
        answer.elapsed = started.elapsed();
        Ok(answer)
    }
}

/// The fields of an `/infill` answer asked with llama.vim's
/// `response_fields` (flattened: `timings/prompt_n` is a key).
fn parse_answer(text: &str) -> Result<Answer> {
    let v: Value = serde_json::from_str(text)
        .with_context(|| format!("llama-server /infill: not JSON: {text:.200}"))?;
    let Some(content) = v.get("content").and_then(Value::as_str) else {
        bail!("llama-server /infill: no `content` in {text:.200}");
    };
    let count = |key: &str| v.get(key).and_then(Value::as_u64).unwrap_or(0) as usize;
    let generated = count("timings/predicted_n");
    Ok(Answer {
        content: content.to_string(),
        // The slot's tokens after the answer: the prompt and what it
        // generated but the last token (sampled, never decoded).
        prompt_tokens: (count("tokens_cached") + 1).saturating_sub(generated.max(1)),
        evaluated_tokens: count("timings/prompt_n"),
        generated_tokens: generated,
        elapsed: Duration::ZERO,
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// One cursor asked as llama.vim asks it: what it sent, what the server
/// answered, and what llama.vim shows.
#[derive(Debug, Clone)]
pub struct Asked {
    pub answer: Answer,
    pub shown: Shown,
}

/// Asks `server` at byte `cursor` of `text` as llama.vim does.
pub fn ask(server: &Server, text: &str, cursor: usize) -> Result<Asked> {
    let ctx = local_context(text, cursor);
    let answer = server.infill(&request_body(&ctx, server.sampling))?;
    let shown = shown(&answer.content, text, cursor);
    Ok(Asked { answer, shown })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` with the cursor at the `|`.
    fn at(marked: &str) -> (String, usize) {
        let cursor = marked.find('|').unwrap();
        (marked.replacen('|', "", 1), cursor)
    }

    #[test]
    fn a_blank_line_sends_no_indentation() {
        let (text, cursor) = at("def f(x):\n    |\n    return x\n");
        let ctx = local_context(&text, cursor);
        assert_eq!(ctx.prefix, "def f(x):\n");
        assert_eq!(ctx.middle, "");
        assert_eq!(ctx.suffix, "\n    return x\n");
        assert_eq!(ctx.indent, 0);
    }

    #[test]
    fn mid_line_splits_the_cursor_line() {
        let (text, cursor) = at("class A:\n    def f(self):\n        y = |x + 1\n        return y");
        let ctx = local_context(&text, cursor);
        assert_eq!(ctx.prefix, "class A:\n    def f(self):\n");
        assert_eq!(ctx.middle, "        y = ");
        // A last line without its end gets one, as every line.
        assert_eq!(ctx.suffix, "x + 1\n        return y\n");
        assert_eq!(ctx.indent, 8);
    }

    #[test]
    fn the_first_line_has_an_empty_prefix_line_and_the_last_an_empty_suffix() {
        let (text, cursor) = at("x = |1\n");
        let ctx = local_context(&text, cursor);
        assert_eq!(ctx.prefix, "\n");
        assert_eq!(
            (ctx.middle.as_str(), ctx.suffix.as_str()),
            ("x = ", "1\n\n")
        );
        // At column 0 of an empty last line (after the file's last line end).
        let ctx = local_context("a\n", 2);
        assert_eq!((ctx.prefix.as_str(), ctx.suffix.as_str()), ("a\n", "\n\n"));
        // CRLF ends are not part of the lines.
        let ctx = local_context("a\r\nb = 1\r\nc\r\n", 7);
        assert_eq!(ctx.prefix, "a\n");
        assert_eq!(
            (ctx.middle.as_str(), ctx.suffix.as_str()),
            ("b = ", "1\nc\n")
        );
    }

    #[test]
    fn windows_are_256_lines_before_and_64_after() {
        let lines: Vec<String> = (0..400).map(|i| format!("l{i}")).collect();
        let text = format!("{}\n", lines.join("\n"));
        // The cursor at the start of line 300.
        let cursor = text.find("l300").unwrap();
        let ctx = local_context(&text, cursor);
        assert!(ctx.prefix.starts_with("l44\n") && ctx.prefix.ends_with("l299\n"));
        assert_eq!(ctx.prefix.lines().count(), N_PREFIX);
        assert_eq!(ctx.middle, "");
        assert!(ctx.suffix.starts_with("l300\nl301\n") && ctx.suffix.ends_with("l364\n"));
        assert_eq!(ctx.suffix.lines().count(), 1 + N_SUFFIX);
    }

    #[test]
    fn the_body_is_llama_vims() {
        let (text, cursor) = at("if a:\n    b = |\n");
        let body = request_body(&local_context(&text, cursor), Sampling::AsLlamaVim);
        assert_eq!(body["input_prefix"], "if a:\n");
        assert_eq!(body["prompt"], "    b = ");
        assert_eq!(body["input_suffix"], "\n\n");
        assert_eq!(body["n_indent"], 4);
        assert_eq!(body["n_predict"], 128);
        assert_eq!(body["samplers"], json!(["top_k", "top_p", "infill"]));
        assert_eq!(
            (body["top_k"].clone(), body["top_p"].clone()),
            (json!(40), json!(0.9))
        );
        assert_eq!(body["cache_prompt"], true);
        assert_eq!(body["input_extra"], json!([]));
        assert_eq!(body["id_slot"], 0);
        let greedy = request_body(&local_context(&text, cursor), Sampling::Greedy);
        assert_eq!(greedy["samplers"], json!(["top_k"]));
        assert_eq!(greedy["top_k"], 1);
    }

    #[test]
    fn rendering_drops_repeats_and_blanks() {
        let (text, cursor) = at("def f(x):\n    |\n\n    return x\n    pass\n");
        let show = |content: &str| shown(content, &text, cursor);
        // The model's indentation becomes the line's.
        assert_eq!(show("    y = x\n\n").text, "y = x");
        assert_eq!(show("    y = x\n    z = y").text, "y = x\n    z = y");
        // The next line with text, again.
        assert!(show("    return x").empty.is_some());
        assert!(show("    return x\n    pass").empty.is_some());
        assert!(show("    return x\n    pa").empty.is_some());
        assert!(show("    return x\n    y").empty.is_none());
        // An empty first line and the lines after the cursor's.
        assert!(show("\n\n    return x").empty.is_some());
        assert_eq!(show("").empty, Some("the server answered nothing"));
        assert_eq!(show("   \n\n").empty, Some("llama.vim: only blanks"));
        // Mid-line: the line's rest is not repeated.
        let (text, cursor) = at("a = f(|)\nb = 2\n");
        assert!(shown(")", &text, cursor).empty.is_some());
        assert_eq!(shown("x)", &text, cursor).text, "x)");
    }

    #[test]
    fn answers_are_read_without_trusting_them() {
        let a = parse_answer(
            r#"{"content":"x = 1","timings/prompt_n":7,"timings/predicted_n":3,"tokens_cached":20}"#,
        )
        .unwrap();
        assert_eq!(a.content, "x = 1");
        assert_eq!(
            (a.prompt_tokens, a.evaluated_tokens, a.generated_tokens),
            (18, 7, 3)
        );
        assert!(parse_answer(r#"{"error":"x"}"#).is_err());
        assert!(parse_answer("not json").is_err());
        assert!(parse_answer(r#"{"content":5}"#).is_err());
    }
}
