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
//! for it rather than evicting someone else's prompt. The first prompt is
//! sent naming no slot, to be evaluated only (`n_predict: 0`, the stream
//! read to its end: only the server's last event says which slot
//! answered), and the server gives it an idle slot, the least recently
//! used: editors starting together spread over the slots, and editors
//! beyond the slots take them in turn as they free up. A hash of the
//! workspace and the process id would be stable too, but blind: four
//! editors would draw four different slots of four only 4!/4⁴ ≈ 9% of the
//! time, and two editors sharing a slot evaluate their prompts again on
//! every switch while another slot stays idle. A server whose last event
//! names no slot gets no slot named (it picks, as without this).
//!
//! More editors than slots share slots, and an editor's prompt is then
//! evicted by another's: a request named its slot, and the server
//! evaluated more of the prompt than our last prompt there left to do.
//! From then on no slot is named: the server places each request in an
//! idle slot, and the recent llama-server versions bring a prompt back
//! from their RAM prompt cache (`--cache-ram`), where an editor's prompt
//! survives its slot's eviction; two editors that take turns in one slot
//! would evaluate the part their prompts do not share at every turn.
//!
//! The server's count of slots (`/props` `total_slots`, read at the
//! probe) bounds the choice: a slot number past it (the server restarted
//! with fewer slots) is dropped. A server that refuses a slot number
//! (llama-server versions that answer "slot unavailable" instead of
//! waiting for a busy slot, or "invalid slot id") is asked for none from
//! then on, without a fault: the request is sent again naming no slot.

use super::http::Fault;
use crate::prompt::Token;

/// The slot to ask for, and what the server said of slots.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SlotChoice {
    /// The server's number of slots, where it says.
    total: Option<usize>,
    /// The slot that answered the last request: it holds our prompt.
    ours: Option<usize>,
    /// The server refused a slot number: none is named any more.
    refused: bool,
    /// A claim's last event named no slot: none is named any more.
    unreported: bool,
    /// Another client evicted our prompt from our slot: none is named
    /// any more.
    shared: bool,
    /// The last prompt a named slot evaluated (what it holds of ours).
    last_prompt: Vec<Token>,
}

/// Tokens a server may evaluate beyond what our last prompt left to do
/// (a shorter reuse than the common prefix) before it counts as an
/// eviction.
const EVICTION_SLACK: usize = 16;

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

    /// Whether the next request should first claim a slot: evaluate its
    /// prompt naming none, read to the end, to learn which slot the server
    /// gave (`answered_from`), and then `claimed`.
    pub(crate) fn to_claim(&self) -> bool {
        !self.refused && !self.unreported && !self.shared && self.ours.is_none()
    }

    /// A claim ended: where it taught no slot, none will be named.
    pub(crate) fn claimed(&mut self) {
        if self.ours.is_none() {
            self.unreported = true;
        }
    }

    /// The slot the next request names (`None`: `id_slot: -1`).
    pub(crate) fn to_ask(&self) -> Option<usize> {
        if self.refused || self.shared {
            None
        } else {
            self.ours
        }
    }

    /// A request that named `asked` sent `prompt`, and the server evaluated
    /// `evaluated` tokens of it. Returns true where that shows another
    /// client evicted our prompt from the slot (the server evaluated more
    /// than our last prompt there left to do): no slot is named from then
    /// on.
    pub(crate) fn evaluated(
        &mut self,
        asked: Option<usize>,
        prompt: &[Token],
        evaluated: Option<usize>,
    ) -> bool {
        let mut evicted = false;
        if let (Some(_), Some(evaluated)) = (asked, evaluated) {
            if !self.last_prompt.is_empty() {
                let common = self
                    .last_prompt
                    .iter()
                    .zip(prompt)
                    .take_while(|(a, b)| a == b)
                    .count();
                evicted = evaluated > prompt.len() - common + EVICTION_SLACK;
            }
            self.last_prompt.clear();
            self.last_prompt.extend_from_slice(prompt);
        }
        if evicted && !self.shared {
            self.shared = true;
            self.ours = None;
            return true;
        }
        false
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
        assert!(c.to_claim());
        c.answered_from(2);
        c.claimed();
        assert!(!c.to_claim());
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
    fn a_claim_that_learns_no_slot_ends_naming_slots() {
        let mut c = SlotChoice::default();
        c.set_total(Some(4));
        assert!(c.to_claim());
        c.claimed();
        assert!(!c.to_claim());
        assert_eq!(c.to_ask(), None);
        // A slot past the server's count teaches nothing either.
        let mut c = SlotChoice::default();
        c.set_total(Some(2));
        c.answered_from(2);
        c.claimed();
        assert!(!c.to_claim());
        assert_eq!(c.to_ask(), None);
    }

    #[test]
    fn an_evicted_prompt_ends_naming_slots() {
        let mut c = SlotChoice::default();
        c.set_total(Some(4));
        c.answered_from(1);
        c.claimed();
        let first: Vec<Token> = (0..100).collect();
        // The first prompt in the slot: all of it evaluated, no eviction.
        assert!(!c.evaluated(Some(1), &first, Some(100)));
        // Typing: the prompt changes at its end, the rest reused.
        let mut second = first.clone();
        second.truncate(95);
        second.extend([500, 501, 502]);
        assert!(!c.evaluated(Some(1), &second, Some(3)));
        assert_eq!(c.to_ask(), Some(1));
        // The server reused a little less than the common prefix: no
        // eviction either.
        let mut third = second.clone();
        third.push(503);
        assert!(!c.evaluated(Some(1), &third, Some(1 + EVICTION_SLACK)));
        // Another document: little in common, all evaluated, no eviction.
        let other: Vec<Token> = (1000..1080).collect();
        assert!(!c.evaluated(Some(1), &other, Some(80)));
        // Another editor's prompt in our slot: most of ours evaluated again.
        let mut fifth = other.clone();
        fifth.push(504);
        assert!(c.evaluated(Some(1), &fifth, Some(70)));
        assert_eq!(c.to_ask(), None);
        assert!(!c.to_claim());
        // Told once; requests that named no slot say nothing of evictions.
        assert!(!c.evaluated(None, &first, Some(100)));
        c.answered_from(2);
        assert_eq!(c.to_ask(), None);
    }

    #[test]
    fn a_refused_slot_ends_naming_slots() {
        let mut c = SlotChoice::default();
        c.answered_from(1);
        c.refused();
        assert_eq!(c.to_ask(), None);
        assert!(!c.to_claim());
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
