//! Which of llama-server's slots a request asks for (`id_slot`).
//!
//! llama-server keeps the last prompt of each of its slots (`-np`) in the
//! KV cache. A request that names no slot (`id_slot: -1`) gets the one
//! the server picks: an idle slot holding a similar prompt, else the least
//! recently used. With several editors on one server, a request whose
//! slot is busy then takes another editor's slot, evaluates its whole
//! prompt again there and evicts that editor's prompt, which the next
//! request of that editor evaluates again in turn.
//!
//! The choice: the slot that answered this engine's last request. That is
//! the slot whose cache holds our prompt (the server keeps it after the
//! answer), so a request there evaluates only what changed, and a request
//! that finds it busy (our own superseded request, still ending) waits
//! for it rather than evicting someone else's prompt. Before the first
//! answer no slot is named: the server gives an idle one, so that editors
//! starting together spread over the slots. A hash of the workspace and
//! the process id would be stable too, but blind: four editors would draw
//! four different slots of four only 4!/4⁴ ≈ 9% of the time, and two
//! editors sharing a slot evaluate their prompts again on every switch
//! while another slot stays idle.
//!
//! The server's count of slots (`/props` `total_slots`, read at the
//! probe) bounds the choice: a slot number past it (the server restarted
//! with fewer slots) is dropped. A server that refuses a slot number
//! (llama-server versions that answer "slot unavailable" instead of
//! waiting for a busy slot, or "invalid slot id") is asked for none from
//! then on, without a fault: the request is sent again naming no slot.

use super::http::Fault;

/// The slot to ask for, and what the server said of slots.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SlotChoice {
    /// The server's number of slots, where it says.
    total: Option<usize>,
    /// The slot that answered the last request: it holds our prompt.
    ours: Option<usize>,
    /// The server refused a slot number: none is named any more.
    refused: bool,
}

impl SlotChoice {
    /// The server's number of slots, as the probe read it (`None`: it did
    /// not say).
    pub(crate) fn set_total(&mut self, total: Option<usize>) {
        self.total = total.filter(|&t| t > 0);
        if let (Some(t), Some(o)) = (self.total, self.ours) {
            if o >= t {
                self.ours = None;
            }
        }
    }

    /// The slot the next request names (`None`: `id_slot: -1`).
    pub(crate) fn to_ask(&self) -> Option<usize> {
        if self.refused {
            None
        } else {
            self.ours
        }
    }

    /// The server answered from `slot`: its cache now holds our prompt.
    pub(crate) fn answered_from(&mut self, slot: usize) {
        if self.refused || self.total.is_some_and(|t| slot >= t) {
            return;
        }
        self.ours = Some(slot);
    }

    /// The server refused the slot named: name none from now on.
    pub(crate) fn refused(&mut self) {
        self.refused = true;
        self.ours = None;
    }
}

/// Whether `fault` is the server refusing the slot a request named
/// (rather than a fault of the server): an error status whose message
/// speaks of the slot.
pub(crate) fn refuses_slot(fault: &Fault) -> bool {
    match fault {
        Fault::Status(code, said) => {
            (400..600).contains(code) && said.to_ascii_lowercase().contains("slot")
        }
        _ => false,
    }
}

/// The JSON value of `id_slot`: the slot's number, or -1 (the server picks).
pub(crate) fn id_slot(slot: Option<usize>) -> i64 {
    slot.and_then(|s| i64::try_from(s).ok()).unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn no_slot_is_named_before_the_first_answer_then_the_answering_one() {
        let mut c = SlotChoice::default();
        c.set_total(Some(4));
        assert_eq!(c.to_ask(), None);
        c.answered_from(2);
        assert_eq!(c.to_ask(), Some(2));
        // Stable: the same slot while it answers.
        c.answered_from(2);
        assert_eq!(c.to_ask(), Some(2));
        // An answer from another slot (after a request that named none)
        // moves the choice there: that slot now holds our prompt.
        c.answered_from(3);
        assert_eq!(c.to_ask(), Some(3));
    }

    #[test]
    fn slots_past_the_servers_count_are_never_named() {
        let mut c = SlotChoice::default();
        c.set_total(Some(2));
        c.answered_from(5);
        assert_eq!(c.to_ask(), None);
        c.answered_from(1);
        assert_eq!(c.to_ask(), Some(1));
        // The server restarted with one slot.
        c.set_total(Some(1));
        assert_eq!(c.to_ask(), None);
        // A server that gives no count: the slots that answered are named.
        let mut c = SlotChoice::default();
        c.set_total(None);
        c.answered_from(7);
        assert_eq!(c.to_ask(), Some(7));
        // A count of zero says nothing.
        c.set_total(Some(0));
        assert_eq!(c.to_ask(), Some(7));
    }

    #[test]
    fn a_refused_slot_ends_naming_slots() {
        let mut c = SlotChoice::default();
        c.answered_from(1);
        c.refused();
        assert_eq!(c.to_ask(), None);
        c.answered_from(1);
        assert_eq!(c.to_ask(), None);
    }

    #[test]
    fn refusals_are_told_from_faults() {
        assert!(refuses_slot(&Fault::Status(
            503,
            "Requested slot is unavailable".into()
        )));
        assert!(refuses_slot(&Fault::Status(400, "Invalid slot ID".into())));
        assert!(!refuses_slot(&Fault::Status(
            500,
            "injected failure".into()
        )));
        assert!(!refuses_slot(&Fault::Status(503, "Loading model".into())));
        assert!(!refuses_slot(&Fault::Garbage("slot".into())));
        assert!(!refuses_slot(&Fault::Slow(Duration::from_secs(1))));
    }

    #[test]
    fn id_slot_is_the_number_or_minus_one() {
        assert_eq!(id_slot(None), -1);
        assert_eq!(id_slot(Some(0)), 0);
        assert_eq!(id_slot(Some(3)), 3);
    }
}
