//! `infill-eval bench-draft`: prompt lookup (`completion.draftTokens`)
//! against plain decoding on the same items: whether the answers are the
//! same, token for token, and how fast each generates.
//!
//! Each item is asked twice, drafts off and on, both evaluating the whole
//! prompt afresh (`EngineRequest::fresh`), so that an answer depends on its
//! prompt and the drafts alone; which arm goes first alternates from item
//! to item, so that the machine's load falls on both alike.

use std::time::Duration;

use anyhow::Result;

use infill::config::Config;
use infill::engine::{CancelFlag, Engine, EngineOutput};

use crate::humaneval::{item_context, Item};

/// Generation figures of one arm over the items.
#[derive(Debug, Default, Clone)]
pub struct Arm {
    pub generated: usize,
    pub generate_time: Duration,
    pub drafted: usize,
    pub accepted: usize,
}

impl Arm {
    fn add(&mut self, out: &EngineOutput) {
        self.generated += out.generated_tokens;
        self.generate_time += out.generate_time;
        self.drafted += out.drafted_tokens;
        self.accepted += out.accepted_tokens;
    }

    fn tokens_per_second(&self) -> f64 {
        self.generated as f64 / self.generate_time.as_secs_f64().max(1e-9)
    }
}

/// Both arms over all items, and over the items whose plain answer spans
/// several lines (where drafts are meant to pay).
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub draft_tokens: usize,
    pub items: usize,
    pub identical: usize,
    pub multi_line: usize,
    pub multi_line_identical: usize,
    pub off: Arm,
    pub on: Arm,
    pub multi_off: Arm,
    pub multi_on: Arm,
    /// Per multi-line item: generation tokens/s with drafts over without
    /// (a ratio of the same item's two runs, next to each other in time,
    /// so that a slow spell of the machine weighs one item, not the sum).
    pub multi_ratios: Vec<f64>,
    /// Items answered differently: id, answer without and with drafts.
    pub differing: Vec<(String, String, String)>,
}

/// Asks every item with drafts off and with `draft_tokens`, alternating
/// which goes first; `progress` sees each item's two outputs.
pub fn run(
    items: &[Item],
    engine: &dyn Engine,
    config: &Config,
    draft_tokens: usize,
    mut progress: impl FnMut(usize, &Item, &EngineOutput, &EngineOutput),
) -> Result<Report> {
    let mut report = Report {
        draft_tokens,
        items: items.len(),
        ..Report::default()
    };
    for (i, item) in items.iter().enumerate() {
        // Speed of generation is measured, not latency: no time budget,
        // which would cut the two arms' answers at different places.
        let (cfg, ctx) = item_context(item, config);
        let mut req = ctx.engine_request(&cfg);
        req.fresh = true;
        let ask = |draft: usize| {
            let mut req = req.clone();
            req.draft_tokens = draft;
            engine
                .complete(req, CancelFlag::default())
                .map_err(|e| anyhow::anyhow!("{}: {e}", item.id))
        };
        let (off, on) = if i % 2 == 0 {
            let off = ask(0)?;
            (off, ask(draft_tokens)?)
        } else {
            let on = ask(draft_tokens)?;
            (ask(0)?, on)
        };
        let same = off.text == on.text;
        report.identical += usize::from(same);
        report.off.add(&off);
        report.on.add(&on);
        if off.text.trim().contains('\n') {
            report.multi_line += 1;
            report.multi_line_identical += usize::from(same);
            report.multi_off.add(&off);
            report.multi_on.add(&on);
            let rate = |o: &EngineOutput| {
                o.generated_tokens as f64 / o.generate_time.as_secs_f64().max(1e-9)
            };
            report.multi_ratios.push(rate(&on) / rate(&off).max(1e-9));
        }
        if !same {
            report
                .differing
                .push((item.id.clone(), off.text.clone(), on.text.clone()));
        }
        progress(i, item, &off, &on);
    }
    Ok(report)
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "items: {}, identical answers: {} ({:.1}%); multi-line answers: {}, identical: {}",
            self.items,
            self.identical,
            100.0 * self.identical as f64 / self.items.max(1) as f64,
            self.multi_line,
            self.multi_line_identical,
        )?;
        writeln!(
            f,
            "{:<22} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
            "answers", "tokens", "off tok/s", "on tok/s", "ratio", "drafted", "accepted"
        )?;
        for (name, off, on) in [
            ("all", &self.off, &self.on),
            ("multi-line", &self.multi_off, &self.multi_on),
        ] {
            writeln!(
                f,
                "{:<22} {:>10} {:>10.1} {:>10.1} {:>9.2}× {:>10} {:>7.1}%",
                name,
                off.generated,
                off.tokens_per_second(),
                on.tokens_per_second(),
                on.tokens_per_second() / off.tokens_per_second().max(1e-9),
                on.drafted,
                100.0 * on.accepted as f64 / on.drafted.max(1) as f64,
            )?;
        }
        let mut ratios = self.multi_ratios.clone();
        ratios.sort_by(f64::total_cmp);
        if let Some(median) = ratios.get(ratios.len() / 2) {
            writeln!(
                f,
                "multi-line, per item: median ratio {median:.2}×, {} of {} faster with drafts",
                ratios.iter().filter(|r| **r > 1.0).count(),
                ratios.len()
            )?;
        }
        write!(f, "draft tokens: {}", self.draft_tokens)
    }
}
