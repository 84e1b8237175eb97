//! Two rules of LSP's message flow that tower-lsp's `LspService` leaves
//! open, kept by a thin layer around it (found by the `lsp_session` fuzz
//! target):
//!
//! - Nothing is read while `initialize` is being answered. tower-lsp checks
//!   its state when it reads a message, and never marks `initialize` as in
//!   progress: a second `initialize` read before the first is answered got
//!   through, was refused by `LspServer`, and tower-lsp then reset its state
//!   to "not initialized" after any failed `initialize`, so that every later
//!   request was refused and every notification dropped, for good. Held
//!   back until the first is answered, a second `initialize` is refused as
//!   a duplicate, and messages a client sends before the answer (against
//!   the spec, but harmless) are served as initialized ones.
//! - Every request is answered. tower-lsp swallows the `MethodNotFound`
//!   answer of any `$/` method, right for notifications but not for
//!   requests, which LSP says must get that error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use futures_util::task::AtomicWaker;
use tower_lsp_server::jsonrpc::{Error, Request, Response};
use tower_service::Service;

/// `inner`, with the rules above.
pub struct Lifecycle<S> {
    inner: S,
    initializing: Arc<Initializing>,
}

/// Whether an `initialize` is being answered, and who waits for its end.
#[derive(Default)]
struct Initializing {
    busy: AtomicBool,
    ended: AtomicWaker,
}

/// Marks the end of an `initialize`, also when its future is dropped.
struct InitializeEnd(Arc<Initializing>);

impl Drop for InitializeEnd {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::SeqCst);
        self.0.ended.wake();
    }
}

impl<S> Lifecycle<S> {
    pub fn new(inner: S) -> Lifecycle<S> {
        Lifecycle {
            inner,
            initializing: Arc::default(),
        }
    }
}

impl<S> Service<Request> for Lifecycle<S>
where
    S: Service<Request, Response = Option<Response>>,
    S::Future: Send + 'static,
{
    type Response = Option<Response>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Option<Response>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        if self.initializing.busy.load(Ordering::SeqCst) {
            self.initializing.ended.register(cx.waker());
            // Ended between the check and the registration: go on.
            if self.initializing.busy.load(Ordering::SeqCst) {
                return Poll::Pending;
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let end = (req.method() == "initialize").then(|| {
            self.initializing.busy.store(true, Ordering::SeqCst);
            InitializeEnd(self.initializing.clone())
        });
        let dollar_request = req.id().filter(|_| req.method().starts_with("$/")).cloned();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let response = fut.await;
            drop(end);
            match (response, dollar_request) {
                (Ok(None), Some(id)) => {
                    Ok(Some(Response::from_error(id, Error::method_not_found())))
                }
                (response, _) => response,
            }
        })
    }
}
