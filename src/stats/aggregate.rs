//! The figures of `infill stats`, made of events: per group (all, or by
//! language, model, trigger or lines) and per day.
//!
//! - shown: suggestions shown (`Shown` events);
//! - accepted: suggestions with at least one accept; acceptance rate =
//!   accepted / shown (a suggestion accepted without a `Shown` event, whose
//!   answer was overtaken by an edit yet shown by the editor, counts as
//!   shown too);
//! - persistence at each checkpoint: the mean edit similarity of the
//!   accepted texts measured there, and the share deleted;
//! - latency p50/p90: of the shown answers computed by the model;
//! - from cache: the share of shown answers that came from the recent
//!   answers instead of the model.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{Event, What};

/// How events are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Language,
    Model,
    Trigger,
    Lines,
}

impl By {
    pub fn parse(s: &str) -> Option<By> {
        match s {
            "language" => Some(By::Language),
            "model" => Some(By::Model),
            "trigger" => Some(By::Trigger),
            "lines" => Some(By::Lines),
            _ => None,
        }
    }

    fn key(self, e: &Event) -> String {
        match self {
            By::Language => e.meta.language.clone(),
            By::Model => e.meta.model.clone(),
            By::Trigger => e.meta.trigger.name().to_string(),
            By::Lines => e.meta.lines.name().to_string(),
        }
    }
}

/// The persistence measured at one checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Persistence {
    pub checkpoint_secs: u64,
    /// Accepted texts measured there.
    pub measured: u64,
    /// Their mean edit similarity (0 to 1).
    pub similarity: f64,
    /// The share of them deleted.
    pub deleted: f64,
}

/// The figures of one group of events.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    /// The group's name (`all` without grouping).
    pub key: String,
    pub shown: u64,
    pub accepted: u64,
    /// Of the accepted, those accepted only in part.
    pub partly_accepted: u64,
    pub accepted_chars: u64,
    pub dismissed: u64,
    pub acceptance_rate: f64,
    pub persistence: Vec<Persistence>,
    pub latency_p50_ms: Option<u64>,
    pub latency_p90_ms: Option<u64>,
    pub from_cache: f64,
}

#[derive(Default)]
struct Acc {
    shown: BTreeSet<(String, u64)>,
    accepted: BTreeSet<(String, u64)>,
    whole: BTreeSet<(String, u64)>,
    accepted_chars: u64,
    dismissed: u64,
    cached: u64,
    latencies: Vec<u64>,
    /// checkpoint → (count, similarity sum, deleted)
    persisted: BTreeMap<u64, (u64, f64, u64)>,
}

impl Acc {
    fn add(&mut self, e: &Event) {
        let id = (e.session.clone(), e.n);
        match &e.what {
            What::Shown => {
                if self.shown.insert(id) {
                    if e.meta.source == super::Source::Cache {
                        self.cached += 1;
                    }
                    if e.meta.source == super::Source::Model {
                        self.latencies.push(e.meta.latency_ms);
                    }
                }
            }
            What::Accepted {
                accepted_chars,
                partial,
            } => {
                self.accepted_chars += accepted_chars;
                if !partial {
                    self.whole.insert(id.clone());
                }
                self.accepted.insert(id);
            }
            What::Dismissed { .. } => self.dismissed += 1,
            What::Persisted {
                checkpoint_secs,
                similarity,
                deleted,
                ..
            } => {
                let slot = self.persisted.entry(*checkpoint_secs).or_default();
                slot.0 += 1;
                slot.1 += similarity.clamp(0.0, 1.0);
                slot.2 += u64::from(*deleted);
            }
        }
    }

    fn figures(mut self, key: String) -> Figures {
        let shown_ids: BTreeSet<_> = self.shown.union(&self.accepted).cloned().collect();
        let shown = shown_ids.len() as u64;
        let accepted = self.accepted.len() as u64;
        self.latencies.sort_unstable();
        Figures {
            key,
            shown,
            accepted,
            partly_accepted: self.accepted.difference(&self.whole).count() as u64,
            accepted_chars: self.accepted_chars,
            dismissed: self.dismissed,
            acceptance_rate: ratio(accepted, shown),
            persistence: self
                .persisted
                .iter()
                .map(|(&secs, &(n, sum, deleted))| Persistence {
                    checkpoint_secs: secs,
                    measured: n,
                    similarity: if n == 0 { 0.0 } else { sum / n as f64 },
                    deleted: ratio(deleted, n),
                })
                .collect(),
            latency_p50_ms: percentile(&self.latencies, 50),
            latency_p90_ms: percentile(&self.latencies, 90),
            from_cache: ratio(self.cached, self.shown.len() as u64),
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u64], p: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// The figures of `events` at or after `since_ms`, all together or by `by`
/// (groups by name).
pub fn figures(events: &[Event], since_ms: u64, by: Option<By>) -> Vec<Figures> {
    let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
    for e in events.iter().filter(|e| e.t >= since_ms) {
        let key = by.map_or_else(|| "all".to_string(), |b| b.key(e));
        groups.entry(key).or_default().add(e);
    }
    if groups.is_empty() && by.is_none() {
        groups.insert("all".into(), Acc::default());
    }
    groups
        .into_iter()
        .map(|(key, acc)| acc.figures(key))
        .collect()
}

/// Milliseconds in a day.
pub const DAY_MS: u64 = 24 * 3600 * 1000;

/// The figures of each day (UTC days, keyed by the day's number since the
/// Unix epoch) with events at or after `since_ms`.
pub fn by_day(events: &[Event], since_ms: u64) -> Vec<(u64, Figures)> {
    let mut days: BTreeMap<u64, Acc> = BTreeMap::new();
    for e in events.iter().filter(|e| e.t >= since_ms) {
        days.entry(e.t / DAY_MS).or_default().add(e);
    }
    days.into_iter()
        .map(|(day, acc)| (day, acc.figures(day.to_string())))
        .collect()
}

/// The latencies (ms) of the shown model answers at or after `since_ms`.
pub fn latencies(events: &[Event], since_ms: u64) -> Vec<u64> {
    let mut acc = Acc::default();
    for e in events.iter().filter(|e| e.t >= since_ms) {
        if matches!(e.what, What::Shown) {
            acc.add(e);
        }
    }
    let mut l = acc.latencies;
    l.sort_unstable();
    l
}

/// Today's acceptance as `infill/status` reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Today {
    /// The UTC day (days since the Unix epoch).
    #[serde(skip)]
    pub day: u64,
    /// The suggestions accepted today.
    #[serde(skip)]
    accepted_ids: BTreeSet<(String, u64)>,
    pub shown: u64,
    pub accepted: u64,
    pub acceptance_rate: f64,
}

impl Today {
    /// Counts `e` if it is of day `today` (UTC days since the Unix epoch,
    /// the day now); a new day starts afresh.
    pub fn count(&mut self, e: &Event, today: u64) {
        if today != self.day {
            *self = Today {
                day: today,
                ..Today::default()
            };
        }
        if e.t / DAY_MS != today {
            return;
        }
        match &e.what {
            What::Shown => self.shown += 1,
            // The first accept of a suggestion (a whole accept after
            // partial ones is not another suggestion accepted).
            What::Accepted { .. } if self.accepted_ids.insert((e.session.clone(), e.n)) => {
                self.accepted += 1;
            }
            _ => {}
        }
        self.acceptance_rate = ratio(self.accepted, self.shown);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::meta;
    use super::super::{Source, Trigger, VERSION};
    use super::*;

    fn ev(t: u64, n: u64, what: What) -> Event {
        Event {
            v: VERSION,
            t,
            session: "s".into(),
            n,
            what,
            meta: meta(),
        }
    }

    fn accepted(chars: u64, partial: bool) -> What {
        What::Accepted {
            accepted_chars: chars,
            partial,
        }
    }

    fn persisted(secs: u64, similarity: f64, deleted: bool) -> What {
        What::Persisted {
            checkpoint_secs: secs,
            similarity,
            deleted,
            early: None,
        }
    }

    #[test]
    fn figures_count_suggestions_not_events() {
        let mut events = vec![
            ev(10, 1, What::Shown),
            ev(11, 1, accepted(4, true)),
            ev(12, 1, accepted(6, false)),
            ev(20, 2, What::Shown),
            ev(21, 2, What::Dismissed { typed_chars: 0 }),
            ev(30, 3, What::Shown),
            ev(31, 3, accepted(3, true)),
            ev(40, 4, What::Shown),
            ev(50, 1, persisted(30, 1.0, false)),
            ev(51, 3, persisted(30, 0.5, false)),
            ev(52, 1, persisted(120, 0.0, true)),
        ];
        events[6].meta.source = Source::Cache;
        events[5].meta.source = Source::Cache;
        events[3].meta.latency_ms = 300;
        let f = figures(&events, 0, None);
        assert_eq!(f.len(), 1);
        let f = &f[0];
        assert_eq!((f.shown, f.accepted, f.partly_accepted), (4, 2, 1));
        assert_eq!(f.accepted_chars, 13);
        assert_eq!(f.acceptance_rate, 0.5);
        assert_eq!(f.dismissed, 1);
        assert_eq!(f.from_cache, 0.25);
        // Model answers: 1, 2, 4 (120, 300, 120 ms).
        assert_eq!((f.latency_p50_ms, f.latency_p90_ms), (Some(120), Some(300)));
        assert_eq!(
            f.persistence,
            vec![
                Persistence {
                    checkpoint_secs: 30,
                    measured: 2,
                    similarity: 0.75,
                    deleted: 0.0
                },
                Persistence {
                    checkpoint_secs: 120,
                    measured: 1,
                    similarity: 0.0,
                    deleted: 1.0
                },
            ]
        );
        // --since leaves out what came before.
        assert_eq!(figures(&events, 20, None)[0].shown, 3);
    }

    #[test]
    fn grouping_and_days() {
        let mut events = vec![
            ev(10, 1, What::Shown),
            ev(DAY_MS + 5, 2, What::Shown),
            ev(DAY_MS + 6, 2, accepted(2, false)),
        ];
        events[1].meta.trigger = Trigger::Invoked;
        events[2].meta.trigger = Trigger::Invoked;
        let f = figures(&events, 0, Some(By::Trigger));
        assert_eq!(
            f.iter()
                .map(|g| (g.key.as_str(), g.shown, g.accepted))
                .collect::<Vec<_>>(),
            vec![("automatic", 1, 0), ("invoked", 1, 1)]
        );
        let days = by_day(&events, 0);
        assert_eq!(days.len(), 2);
        assert_eq!((days[1].0, days[1].1.acceptance_rate), (1, 1.0));
        let mut today = Today::default();
        for e in &events {
            today.count(e, 1);
        }
        assert_eq!((today.day, today.shown, today.accepted), (1, 1, 1));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50), Some(5));
        assert_eq!(percentile(&v, 90), Some(9));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }
}
