//! The session's decisions with a scripted engine: typed-through reuse,
//! recent answers, cancellation and ordering, warm starts. No model and no
//! editor; the real model's side is in `tests/`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;

use super::events::{Event, Level};
use super::*;
use crate::engine::scripted::Scripted;
use crate::text::position::LinePosition;

const DOC: &str = "def f(n):\n    return \n";

struct Harness {
    session: Arc<Session>,
    engine: Arc<Scripted>,
    events: UnboundedReceiver<Event>,
    id: DocumentId,
}

/// A started session whose engine answers `answers` in order, with `DOC`
/// open as a Python file (no workspace: in-file completion). Nothing is
/// computed ahead (`harness_computing_ahead`), so that each answer goes to
/// the request the test makes.
fn harness(answers: &[&str]) -> Harness {
    let mut config = Config::default();
    config.completion.compute_ahead = false;
    harness_with(config, answers)
}

fn harness_computing_ahead(answers: &[&str]) -> Harness {
    harness_with(Config::default(), answers)
}

fn harness_with(config: Config, answers: &[&str]) -> Harness {
    let engine = Arc::new(Scripted::new(answers));
    let for_session = engine.clone();
    let (events, receiver) = Events::channel();
    let session = Session::new(
        config,
        events,
        Arc::new(move |_: &Config| for_session.clone() as Arc<dyn Engine>),
    );
    session.connect(ClientSetup {
        encoding: PositionEncoding::Utf16,
        roots: Vec::new(),
        settings: None,
    });
    session.start();
    let id = DocumentId::new("file:///work/a.py", Some("/work/a.py".into()));
    session.open(id.clone(), "python", 1, DOC);
    Harness {
        session: Arc::new(session),
        engine,
        events: receiver,
        id,
    }
}

fn at(line: u32, character: u32) -> LinePosition {
    LinePosition { line, character }
}

/// Inserts `text` at `pos` as an editor's incremental change.
fn type_at(h: &Harness, version: i32, pos: LinePosition, text: &str) {
    h.session.change(
        &h.id,
        version,
        &[TextChange {
            range: Some((pos, pos)),
            text: text.into(),
        }],
    );
}

/// An explicit inline request at `pos`, answered in a task of its own.
fn spawn_ask(
    h: &Harness,
    pos: LinePosition,
) -> tokio::task::JoinHandle<Result<Option<Answer>, RequestError>> {
    let session = h.session.clone();
    let id = h.id.clone();
    tokio::spawn(async move { session.complete(&id, pos, false, RequestKind::Inline).await })
}

async fn ask(h: &Harness, pos: LinePosition) -> Result<Option<Answer>, RequestError> {
    h.session
        .complete(&h.id, pos, true, RequestKind::Inline)
        .await
}

fn text(answer: Result<Option<Answer>, RequestError>) -> Option<String> {
    answer.expect("answered").map(|a| a.text)
}

/// Waits (at most 5 s) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_through_a_suggestion_is_answered_without_the_model() {
    let h = harness(&["fib(n - 1)"]);
    let first = ask(&h, at(1, 11)).await.expect("answered").expect("text");
    assert_eq!(first.text, "fib(n - 1)");
    assert_eq!((first.cursor, first.word_start), (at(1, 11), at(1, 11)));
    type_at(&h, 2, at(1, 11), "fi");
    let rest = ask(&h, at(1, 13)).await.expect("answered").expect("text");
    assert_eq!(rest.text, "b(n - 1)");
    // The word typed so far, for completion lists.
    assert_eq!((rest.word.as_str(), rest.word_start), ("fi", at(1, 11)));
    assert_eq!(h.engine.answering_requests(), 1);
    let stats = h.session.status().stats;
    assert_eq!((stats.model_answers, stats.reused_answers), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_question_again_is_answered_from_recent_answers() {
    let h = harness(&["fib(n - 1)", "0"]);
    assert_eq!(
        text(ask(&h, at(1, 11)).await).as_deref(),
        Some("fib(n - 1)")
    );
    // Type a character that the suggestion does not start with, and
    // delete it again: the text around the cursor is as before.
    type_at(&h, 2, at(1, 11), "x");
    let other = ask(&h, at(1, 12)).await.expect("answered");
    h.session.change(
        &h.id,
        3,
        &[TextChange {
            range: Some((at(1, 11), at(1, 12))),
            text: String::new(),
        }],
    );
    assert_eq!(
        text(ask(&h, at(1, 11)).await).as_deref(),
        Some("fib(n - 1)")
    );
    let stats = h.session.status().stats;
    assert_eq!(stats.cached_answers, 1, "{other:?}");
    assert_eq!(h.engine.answering_requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_request_cancels_the_one_in_flight() {
    let h = harness(&["first", "second"]);
    h.engine.hold();
    let older = spawn_ask(&h, at(1, 11));
    until("the model has the first request", || {
        h.engine.answering_requests() == 1
    })
    .await;
    let newer = spawn_ask(&h, at(1, 11));
    // The older request is answered, as cancelled, while the model still
    // holds the newer one.
    let older = older.await.expect("joined");
    assert_eq!(older, Err(RequestError::Cancelled));
    h.engine.release();
    let newer = newer.await.expect("joined");
    assert_eq!(text(newer).as_deref(), Some("first"));
    assert_eq!(h.engine.cancelled(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_request_does_not_cancel_an_inline_one() {
    let h = harness(&["inline", "list"]);
    h.engine.hold();
    let inline = spawn_ask(&h, at(1, 11));
    until("the model has the inline request", || {
        h.engine.answering_requests() == 1
    })
    .await;
    let session = h.session.clone();
    let id = h.id.clone();
    let list = tokio::spawn(async move {
        session
            .complete(&id, at(1, 11), true, RequestKind::List)
            .await
    });
    until("the model has both", || h.engine.answering_requests() == 2).await;
    h.engine.release();
    assert!(text(inline.await.expect("joined")).is_some());
    assert!(text(list.await.expect("joined")).is_some());
    assert_eq!(h.engine.cancelled(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_cancels_the_requests_on_its_document() {
    let h = harness(&["never shown"]);
    h.engine.hold();
    let asked = spawn_ask(&h, at(1, 11));
    until("the model has the request", || {
        h.engine.answering_requests() == 1
    })
    .await;
    type_at(&h, 2, at(1, 11), "x");
    assert_eq!(asked.await.expect("joined"), Err(RequestError::Cancelled));
    // The edit is in the document, in order.
    let doc = h.session.document(&h.id).expect("open");
    assert_eq!(
        (doc.text.as_str(), doc.version),
        ("def f(n):\n    return x\n", 2)
    );
    h.engine.release();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_request_stops_its_decode() {
    let h = harness(&["never shown"]);
    h.engine.hold();
    // The client cancelled: tower-lsp drops the handler's future.
    let gave_up = tokio::time::timeout(Duration::from_millis(100), ask(&h, at(1, 11))).await;
    assert!(gave_up.is_err());
    until("the decode stopped", || h.engine.cancelled() == 1).await;
    h.engine.release();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_after_typing_warms_the_cache_and_a_request_cancels_it() {
    let h = harness(&["fib(n - 1)"]);
    type_at(&h, 2, at(1, 11), "f");
    until("the warm start ran", || {
        h.session.status().stats.warm_starts == 1
    })
    .await;
    let warm = h.engine.requests();
    assert_eq!(warm.len(), 1);
    assert!(warm[0].evaluate_only);
    assert!(
        warm[0].prefix.ends_with("    return f"),
        "{:?}",
        warm[0].prefix
    );

    // A request while a warm start holds the model cancels it.
    h.engine.hold();
    type_at(&h, 3, at(1, 12), "i");
    until("the second warm start began", || {
        h.engine.requests().len() == 2
    })
    .await;
    let asked = spawn_ask(&h, at(1, 13));
    until("the warm start was cancelled", || h.engine.cancelled() == 1).await;
    h.engine.release();
    assert_eq!(
        text(asked.await.expect("joined")).as_deref(),
        Some("fib(n - 1)")
    );
    assert_eq!(h.session.status().stats.warm_starts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_a_warm_start() {
    // Found by scripts/bench-replay: a warm start went on after `shutdown`
    // (a cold prompt takes tens of seconds on 2 cores), the model still
    // evaluating while the process exited.
    let h = harness(&[]);
    h.engine.hold();
    type_at(&h, 2, at(1, 11), "f");
    until("the warm start began", || h.engine.requests().len() == 1).await;
    h.session.shutdown();
    let started = Instant::now();
    while h.engine.cancelled() == 0 && started.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cancelled = h.engine.cancelled();
    h.engine.release(); // so that a failure does not hang the runtime's end
    assert_eq!(cancelled, 1, "the warm start went on after shutdown");

    // One scheduled before the shutdown does not begin after it.
    type_at(&h, 3, at(1, 12), "i");
    h.session.shutdown();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        h.engine.requests().len(),
        1,
        "a warm start began after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_requests_in_a_comment_do_not_reach_the_model() {
    let h = harness(&[]);
    type_at(&h, 2, at(2, 0), "# note ");
    assert_eq!(text(ask(&h, at(2, 7)).await), None);
    assert_eq!(h.engine.answering_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_documents_not_open_are_errors() {
    let h = harness(&[]);
    let other = DocumentId::new("file:///work/b.py", Some("/work/b.py".into()));
    let asked = h
        .session
        .complete(&other, at(0, 0), false, RequestKind::Inline)
        .await;
    assert_eq!(
        asked,
        Err(RequestError::NotOpen("file:///work/b.py".into()))
    );
    h.session.close(&h.id);
    assert!(h.session.document(&h.id).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_settings_forget_recent_answers_and_bad_ones_are_reported() {
    let mut h = harness(&["fib(n - 1)", "fib(n - 2)"]);
    assert_eq!(
        text(ask(&h, at(1, 11)).await).as_deref(),
        Some("fib(n - 1)")
    );
    h.session
        .configure(&serde_json::json!({"completion": {"maxTokens": 32, "promptTokens": "many"}}));
    assert_eq!(
        text(ask(&h, at(1, 11)).await).as_deref(),
        Some("fib(n - 2)")
    );
    assert_eq!(h.engine.answering_requests(), 2);
    let mut messages = Vec::new();
    while let Ok(event) = h.events.try_recv() {
        if let Event::Message { level, text } = event {
            messages.push((level, text));
        }
    }
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].0, Level::Error);
    assert!(messages[0].1.contains("promptTokens"), "{messages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suggestion_after_an_accept_is_computed_while_one_is_shown() {
    let h = harness_computing_ahead(&["fib(n - 1)", " + fib(n - 2)"]);
    assert_eq!(
        text(ask(&h, at(1, 11)).await).as_deref(),
        Some("fib(n - 1)")
    );
    until("computed ahead", || {
        h.session.status().stats.computed_ahead == 1
    })
    .await;
    let ahead = &h.engine.requests()[1];
    assert!(
        ahead.prefix.ends_with("    return fib(n - 1)"),
        "{:?}",
        ahead.prefix
    );
    // The editor inserts the accepted suggestion and asks at its end.
    type_at(&h, 2, at(1, 11), "fib(n - 1)");
    assert_eq!(
        text(ask(&h, at(1, 21)).await).as_deref(),
        Some(" + fib(n - 2)")
    );
    // Answered from what was computed ahead, not by the model. (The
    // engine may already be computing ahead of this new suggestion, so
    // its request count is not the measure.)
    let stats = h.session.status().stats;
    assert_eq!(
        (stats.model_answers, stats.cached_answers),
        (1, 1),
        "answered without the model"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_at_a_line_end_computes_the_suggestion_after_enter() {
    let h = harness_computing_ahead(&["return m"]);
    // The user finishes the line `    m = n` and pauses.
    h.session.change(
        &h.id,
        2,
        &[TextChange {
            range: Some((at(1, 4), at(1, 11))),
            text: "m = n".into(),
        }],
    );
    until("computed ahead", || {
        h.session.status().stats.computed_ahead == 1
    })
    .await;
    let asked = h.engine.requests();
    assert!(asked[0].evaluate_only, "the warm start comes first");
    assert!(
        asked[1].prefix.ends_with("    m = n\n    "),
        "{:?}",
        asked[1].prefix
    );
    // Cut by the time budget as a request of the user's would be: they
    // may press Enter while it is computed, and then wait for it.
    assert_eq!(asked[1].time_budget, Some(Duration::from_millis(2000)));
    // Enter, auto-indented as the editor does: answered without the model.
    type_at(&h, 3, at(1, 9), "\n    ");
    assert_eq!(text(ask(&h, at(2, 4)).await).as_deref(), Some("return m"));
    let stats = h.session.status().stats;
    assert_eq!((stats.model_answers, stats.cached_answers), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_after_a_comment_line_computes_the_code_after_enter() {
    let h = harness_computing_ahead(&["return 2 * n"]);
    h.session.change(
        &h.id,
        2,
        &[TextChange {
            range: Some((at(1, 4), at(1, 11))),
            text: "# double it".into(),
        }],
    );
    until("computed ahead", || {
        h.session.status().stats.computed_ahead == 1
    })
    .await;
    let asked = h.engine.requests();
    assert!(
        asked[1].prefix.ends_with("    # double it\n    "),
        "{:?}",
        asked[1].prefix
    );
    type_at(&h, 3, at(1, 15), "\n    ");
    assert_eq!(
        text(ask(&h, at(2, 4)).await).as_deref(),
        Some("return 2 * n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_start_leaves_the_computation_ahead_begun_after_its_edit() {
    let h = harness_computing_ahead(&["ib(n - 1)", " + fib(n - 2)"]);
    type_at(&h, 2, at(1, 11), "f");
    h.engine.hold_from(1);
    // The suggestion shown after the edit; computing ahead of it holds.
    assert_eq!(text(ask(&h, at(1, 12)).await).as_deref(), Some("ib(n - 1)"));
    until("the computation ahead began", || {
        h.engine.requests().len() == 2
    })
    .await;
    // The pause after the edit passes: the warm start has nothing to do
    // (the request evaluated the prompt) and must not stop it.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(h.engine.cancelled(), 0);
    assert_eq!(h.engine.requests().len(), 2);
    h.engine.release();
    until("computed ahead", || {
        h.session.status().stats.computed_ahead == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_computed_ahead_is_not_shown_where_the_text_differs() {
    let h = harness_computing_ahead(&["fib(n - 1)", " + 1", " - 2"]);
    assert_eq!(
        text(ask(&h, at(1, 11)).await).as_deref(),
        Some("fib(n - 1)")
    );
    until("computed ahead", || {
        h.session.status().stats.computed_ahead == 1
    })
    .await;
    // Not the suggestion: the user wrote something else of the same length.
    type_at(&h, 2, at(1, 11), "fib(n - 2)");
    // The model's next answer in the script, not what was computed ahead.
    assert_eq!(text(ask(&h, at(1, 21)).await).as_deref(), Some(" - 2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_elsewhere_stops_the_computation_ahead() {
    let h = harness_computing_ahead(&["fib(n - 1)", "never kept", "n"]);
    // The first request is answered; what follows it waits.
    h.engine.hold_from(1);
    assert_eq!(
        text(ask(&h, at(1, 11)).await).as_deref(),
        Some("fib(n - 1)")
    );
    until("the computation ahead began", || {
        h.engine.requests().len() == 2
    })
    .await;
    type_at(&h, 2, at(1, 11), "x");
    let asked = spawn_ask(&h, at(1, 12));
    until("it was stopped", || h.engine.cancelled() == 1).await;
    h.engine.release();
    assert!(asked.await.expect("joined").is_ok());
    assert_eq!(h.session.status().stats.computed_ahead, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accept_before_the_computation_ends_waits_for_it() {
    let h = harness_computing_ahead(&["fib(n - 1)", " + 1"]);
    h.engine.hold_from(1);
    assert_eq!(
        text(ask(&h, at(1, 11)).await).as_deref(),
        Some("fib(n - 1)")
    );
    until("the computation ahead began", || {
        h.engine.requests().len() == 2
    })
    .await;
    type_at(&h, 2, at(1, 11), "fib(n - 1)");
    let asked = spawn_ask(&h, at(1, 21));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.engine.cancelled(), 0, "not started again");
    h.engine.release();
    assert_eq!(text(asked.await.expect("joined")).as_deref(), Some(" + 1"));
    assert_eq!(h.session.status().stats.cached_answers, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_line_suggestions_are_computed_ahead_only_below_an_anchor() {
    // Below the anchor (the line asked on): computed ahead.
    let h = harness_computing_ahead(&["if n < 2:\n        return n", "return n"]);
    type_at(&h, 2, at(0, 9), "\n    ");
    let answer = text(ask(&h, at(1, 4)).await);
    assert!(answer.is_some_and(|a| a.contains('\n')));
    until("computed ahead", || h.engine.answering_requests() == 2).await;
    let ahead = h.engine.requests().pop().expect("asked");
    assert!(ahead.prefix.ends_with("if n < 2:\n        return n"));
    assert_eq!(ahead.shape.middle_from, Some("def f(n):\n".len()));
    // Without anchors: not computed ahead.
    let mut config = Config::default();
    config.completion.anchored_lines = 0;
    let h = harness_with(config, &["if n < 2:\n        return n"]);
    type_at(&h, 2, at(0, 9), "\n    ");
    let answer = text(ask(&h, at(1, 4)).await);
    assert!(answer.is_some_and(|a| a.contains('\n')));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.engine.answering_requests(), 1);
}

/// A workspace of small Python files in a fresh temp folder, removed on drop.
struct Workspace {
    root: PathBuf,
}

impl Workspace {
    fn new(name: &str, files: usize) -> Workspace {
        let dir =
            std::env::temp_dir().join(format!("infill-session-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("pkg")).expect("temp folder");
        let root = dir.canonicalize().expect("canonical");
        for i in 0..files {
            std::fs::write(
                root.join(format!("pkg/m{i}.py")),
                format!("def first_{i}():\n    return {i}\n"),
            )
            .expect("write");
        }
        Workspace { root }
    }

    fn file(&self, i: usize) -> (DocumentId, PathBuf) {
        let path = self.root.join(format!("pkg/m{i}.py"));
        let id = DocumentId::new(&format!("file://{}", path.display()), Some(path.clone()));
        (id, path)
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A started session (scripted engine, cross-file context on) whose
/// workspace is `ws`, once its first walk is done.
async fn workspace_session(ws: &Workspace) -> Session {
    workspace_session_with(ws, Config::default(), Arc::new(Scripted::new(&[]))).await
}

/// `workspace_session` with these settings and engine.
async fn workspace_session_with(ws: &Workspace, config: Config, engine: Arc<Scripted>) -> Session {
    let (events, _) = Events::channel();
    let session = Session::new(
        config,
        events,
        Arc::new(move |_: &Config| engine.clone() as Arc<dyn Engine>),
    );
    session.connect(ClientSetup {
        encoding: PositionEncoding::Utf16,
        roots: vec![workspace_root(ws.root.clone(), None)],
        settings: None,
    });
    session.start();
    let started = Instant::now();
    while !session.index_check().await.expect("checked").indexing_done {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the walk did not end"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    session
}

/// Waits (at most 5 s) until the index agrees with a fresh walk; returns
/// the last check.
async fn index_settles(session: &Session) -> IndexCheck {
    let started = Instant::now();
    loop {
        let check = session.index_check().await.expect("checked");
        let clean = check.missing.is_empty()
            && check.extra.is_empty()
            && check.stale.is_empty()
            && check.not_fresh.is_empty();
        if clean || started.elapsed() > Duration::from_secs(5) {
            return check;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_closed_right_after_its_open_leaves_the_disk_in_charge() {
    // Found by scripts/bench-replay: the open and the close of a file were
    // applied to the index on blocking threads in any order; a close applied
    // first left the file marked open for good, and its later changes on
    // disk were ignored.
    let ws = Workspace::new("open-close", 40);
    let session = workspace_session(&ws).await;
    for i in 0..40 {
        let (id, path) = ws.file(i);
        let text = std::fs::read_to_string(&path).expect("read");
        session.open(id.clone(), "python", 1, &text);
        session.close(&id);
        std::fs::write(&path, format!("def renamed_{i}():\n    return {i}\n")).expect("write");
        session.files_changed(vec![FileChange::Changed(path)]);
    }
    let check = index_settles(&session).await;
    assert_eq!(check.expected_files, 40, "{check:?}");
    assert_eq!(check.indexed_files, 40, "{check:?}");
    assert!(
        check.stale.is_empty() && check.extra.is_empty(),
        "{check:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_deleted_while_open_leaves_the_index_when_closed() {
    // Found by scripts/bench-replay: an open file deleted on disk and then
    // closed at once stayed in the index. The open was applied after the
    // deletion, found the file gone and did not take the buffer; the
    // deletion was skipped as the file was open; the close then did not
    // read the disk again, as the buffer had not been taken.
    let ws = Workspace::new("open-delete-close", 12);
    let session = workspace_session(&ws).await;
    for i in 0..12 {
        let (id, path) = ws.file(i);
        let text = std::fs::read_to_string(&path).expect("read");
        session.open(id.clone(), "python", 1, &text);
        std::fs::remove_file(&path).expect("delete");
        session.files_changed(vec![FileChange::Deleted(path)]);
        session.close(&id);
    }
    let check = index_settles(&session).await;
    assert_eq!(
        (check.expected_files, check.indexed_files),
        (0, 0),
        "{check:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_follows_open_edit_save_and_close_in_their_order() {
    let ws = Workspace::new("in-order", 4);
    let session = workspace_session(&ws).await;
    for i in 0..4 {
        let (id, path) = ws.file(i);
        let text = std::fs::read_to_string(&path).expect("read");
        session.open(id.clone(), "python", 1, &text);
        let typed = format!("def typed_{i}():\n    return {i}\n");
        session.change(
            &id,
            2,
            &[TextChange {
                range: None,
                text: typed.clone(),
            }],
        );
        if i % 2 == 0 {
            // Saved and closed at once: the disk has the buffer.
            std::fs::write(&path, &typed).expect("write");
            session.save(&id);
            session.close(&id);
        }
    }
    // Two buffers stay open with unsaved text: they stand for their files.
    let check = index_settles(&session).await;
    assert_eq!(
        (check.expected_files, check.indexed_files),
        (4, 4),
        "{check:?}"
    );
    assert!(
        check.stale.is_empty() && check.extra.is_empty() && check.not_fresh.is_empty(),
        "{check:?}"
    );
}

/// Found by the `lsp_session` fuzz target: a document opened again (same
/// version, other text) while a request for it was answered got the old
/// text's answer, and computing ahead from it inserted the suggestion past
/// the end of the new text (a panic).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_document_again_stops_its_requests_in_flight() {
    let h = harness_computing_ahead(&["fib(n - 1)", " + 1"]);
    h.engine.hold();
    let asked = spawn_ask(&h, at(1, 11));
    until("asked", || h.engine.requests().len() == 1).await;
    h.session.open(h.id.clone(), "python", 1, "x");
    h.engine.release();
    assert_eq!(asked.await.expect("joined"), Err(RequestError::Cancelled));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.engine.requests().len(), 1, "nothing computed ahead");
    let doc = h.session.document(&h.id).expect("open");
    assert_eq!((doc.text.as_str(), doc.version), ("x", 1));
}

/// The prompt before the middle marker, as the engine would lay it out:
/// the prefix up to the anchor (`Shape::middle_from`), else up to the
/// cursor line.
fn before_middle(req: &crate::engine::EngineRequest) -> &str {
    let end = req
        .shape
        .middle_from
        .unwrap_or_else(|| req.prefix.rfind('\n').map_or(0, |i| i + 1));
    &req.prefix[..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_lines_below_the_anchor_keep_the_prompt_before_the_middle_marker() {
    let h = harness(&["n + 1", "y = 2", "z = 3", "w = 4", "v = 5"]);
    // Asked on the `return` line: the anchor is its start.
    assert_eq!(text(ask(&h, at(1, 11)).await).as_deref(), Some("n + 1"));
    // Enter, and asked on the new line; then once more.
    type_at(&h, 2, at(1, 11), "n\n    ");
    assert_eq!(text(ask(&h, at(2, 4)).await).as_deref(), Some("y = 2"));
    type_at(&h, 3, at(2, 4), "m = n\n    ");
    assert_eq!(text(ask(&h, at(3, 4)).await).as_deref(), Some("z = 3"));
    let seen = h.engine.requests();
    let asked: Vec<_> = seen.iter().filter(|r| !r.evaluate_only).collect();
    assert_eq!(asked.len(), 3);
    for r in &asked {
        assert_eq!(before_middle(r), "def f(n):\n", "{:?}", r.prefix);
    }
    assert!(asked[2].prefix.ends_with("    return n\n    m = n\n    "));

    // Anchors off: each line is the prompt's end by itself.
    h.session
        .configure(&serde_json::json!({"completion": {"anchoredLines": 0}}));
    type_at(&h, 4, at(3, 4), "k = m\n    ");
    assert_eq!(text(ask(&h, at(4, 4)).await).as_deref(), Some("w = 4"));
    let last = h.engine.requests().pop().expect("asked");
    assert_eq!(last.shape.middle_from, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_moves_the_anchor_once_half_its_lines_are_used() {
    let mut config = Config::default();
    config.completion.compute_ahead = false;
    config.completion.anchored_lines = 4;
    let h = harness_with(config, &["n + 1", "y = 2"]);
    assert_eq!(text(ask(&h, at(1, 11)).await).as_deref(), Some("n + 1"));
    // One new line, then a pause: the warm start keeps the anchor.
    type_at(&h, 2, at(1, 11), "n\n    ");
    until("the warm start ran", || {
        h.session.status().stats.warm_starts == 1
    })
    .await;
    let warm = h.engine.requests().pop().expect("warmed");
    assert!(warm.evaluate_only);
    assert_eq!(before_middle(&warm), "def f(n):\n");
    // A second line: the pause moves the anchor to the cursor's line.
    type_at(&h, 3, at(2, 4), "m = n\n    ");
    until("the second warm start ran", || {
        h.session.status().stats.warm_starts == 2
    })
    .await;
    let warm = h.engine.requests().pop().expect("warmed");
    assert_eq!(before_middle(&warm), "def f(n):\n    return n\n    m = n\n");
    // And the next request keeps it.
    assert_eq!(text(ask(&h, at(3, 4)).await).as_deref(), Some("y = 2"));
    let asked = h.engine.requests().pop().expect("asked");
    assert_eq!(before_middle(&asked), before_middle(&warm));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anchor_keeps_where_the_definition_starts() {
    let mut config = Config::default();
    config.completion.compute_ahead = false;
    let h = harness_with(config, &["1", "y = 2", "1", "y = 2"]);
    let doc = "class A:\n    def f(self):\n        x = 1\n";
    h.session.change(
        &h.id,
        2,
        &[TextChange {
            range: None,
            text: doc.into(),
        }],
    );
    let _ = ask(&h, at(2, 13)).await;
    // Enter: the blank line after the method's last statement is outside
    // it for the syntax tree.
    type_at(&h, 3, at(2, 13), "\n        ");
    let _ = ask(&h, at(3, 8)).await;
    let seen = h.engine.requests();
    let def = "class A:\n".len();
    assert_eq!(seen[0].definition_start, Some(def));
    assert_eq!(seen.last().map(|r| r.definition_start), Some(Some(def)));
    // Without anchors the blank line is between the class's members.
    h.session
        .configure(&serde_json::json!({"completion": {"anchoredLines": 0}}));
    let _ = ask(&h, at(3, 8)).await;
    let last = h.engine.requests().pop().expect("asked");
    assert_ne!(last.definition_start, Some(def));
}

/// The snippets open the prompt: with recency context on, typing a line
/// (a request at every keystroke) never changes them, even though the
/// recent chunks are there (an edit in another file) and the edits of the
/// line itself go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_a_line_in_one_place_keeps_the_snippet_set_with_recency() {
    let ws = Workspace::new("recency", 3);
    let mut config = Config::default();
    config.completion.compute_ahead = false;
    // No anchor: the line's own set (`SnippetMemo`) is what keeps it.
    config.completion.anchored_lines = 0;
    assert!(config.context.recency);
    let engine = Arc::new(Scripted::new(&[]));
    let session = workspace_session_with(&ws, config, engine.clone()).await;
    // Edited elsewhere first: a helper added to m1.
    let (m1, path1) = ws.file(1);
    let text1 = std::fs::read_to_string(&path1).expect("read");
    session.open(m1.clone(), "python", 1, &text1);
    let helper = "\n\ndef shared_helper(value):\n    return first_1() + value\n";
    session.change(
        &m1,
        2,
        &[TextChange {
            range: Some((at(2, 0), at(2, 0))),
            text: helper.into(),
        }],
    );
    // The index takes the buffer after its debounce (a recent chunk is
    // shown only while its text is its file's, as the index holds it).
    index_settles(&session).await;
    // Then a line typed in m0, asked at every keystroke.
    let (m0, path0) = ws.file(0);
    let text0 = std::fs::read_to_string(&path0).expect("read");
    // A function of a few lines: the query (the lines around the cursor)
    // is more than the line typed, as in real code.
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    ];
    let body: String = words
        .iter()
        .map(|w| format!("    {w}_total = first_0() + {w}_offset(config)\n"))
        .collect();
    let typed_at = 4 + 10;
    session.open(
        m0.clone(),
        "python",
        1,
        &format!("{text0}\n\ndef use():\n{body}    "),
    );
    let line = "total = shared_helper(juliet_total)";
    for (k, ch) in line.chars().enumerate() {
        let col = 4 + k as u32;
        session.change(
            &m0,
            2 + k as i32,
            &[TextChange {
                range: Some((at(typed_at, col), at(typed_at, col))),
                text: ch.to_string(),
            }],
        );
        session
            .complete(&m0, at(typed_at, col + 1), false, RequestKind::Inline)
            .await
            .expect("answered");
    }
    let asked: Vec<_> = engine
        .requests()
        .into_iter()
        .filter(|r| !r.evaluate_only)
        .collect();
    assert!(asked.len() >= line.len(), "{}", asked.len());
    let first = asked[0].context.clone().expect("cross-file context");
    assert!(
        first
            .snippets
            .iter()
            .any(|s| s.path == "pkg/m1.py" && s.text.contains("def shared_helper(value):")),
        "{:#?}",
        first.snippets
    );
    for r in &asked {
        assert_eq!(r.context.as_ref(), Some(&first));
    }
}
