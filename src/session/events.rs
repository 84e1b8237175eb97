//! What the session tells the user, as events the protocol layer turns
//! into `$/progress`, `window/showMessage` and `window/logMessage` (or
//! drops, where the client does not support them). A channel, so that the
//! session needs no client and its tests can read what it said.

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A step of long work (model load, workspace walk), by its token.
    Progress {
        token: &'static str,
        step: ProgressStep,
    },
    /// Something the user must see (a bad setting, a model that failed).
    Message { level: Level, text: String },
    /// Something for the client's log.
    Log { level: Level, text: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressStep {
    Begin {
        title: String,
        percentage: Option<u32>,
    },
    Report {
        message: String,
        percentage: u32,
    },
    End {
        message: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Info,
}

/// Where the session's events go; sending never blocks, and events sent
/// after the receiver is gone are dropped.
#[derive(Debug, Clone)]
pub struct Events(UnboundedSender<Event>);

impl Events {
    pub fn channel() -> (Events, UnboundedReceiver<Event>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Events(tx), rx)
    }

    pub fn send(&self, event: Event) {
        let _ = self.0.send(event);
    }

    pub fn progress(&self, token: &'static str, step: ProgressStep) {
        self.send(Event::Progress { token, step });
    }

    pub fn message(&self, level: Level, text: String) {
        self.send(Event::Message { level, text });
    }

    pub fn log(&self, level: Level, text: String) {
        self.send(Event::Log { level, text });
    }
}
