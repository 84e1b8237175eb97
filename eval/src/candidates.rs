//! `infill-eval eval --versus-candidates N`: one answer against N
//! candidates (`completion.candidates`) on the same items. Each item is
//! asked both ways, afresh (the whole prompt evaluated, so the second ask
//! gains nothing from the first's cache), which goes first alternating,
//! so that a machine's load that changes over the run weighs on both
//! alike. Reported: the answer's first line exact with one candidate and
//! with N (the first candidate, which should be the same answer), any
//! candidate's first line exact, and the time in the engine (whole, and
//! generation alone: a keystroke with the prompt already in the KV cache
//! costs about the generation) as paired ratios.

use anyhow::Result;

use infill::completion::pipeline::{Mode, Suggestion};
use infill::config::Config;
use infill::engine::Engine;

use crate::humaneval::{ask, first_line_exact, Item};

/// One item asked both ways.
#[derive(Debug, Clone)]
pub struct Paired {
    pub single: Suggestion,
    pub several: Suggestion,
}

#[derive(Debug, Default, Clone)]
pub struct Report {
    pub candidates: u32,
    pub items: usize,
    /// The single answer's first line exact.
    pub single_exact: usize,
    /// The first of the N candidates' first line exact.
    pub first_exact: usize,
    /// Any of the N candidates' first line exact.
    pub any_exact: usize,
    /// Items whose first candidate is the single answer.
    pub same_first: usize,
    /// Answers offered with N candidates (none empty).
    pub offered: usize,
    /// Time in the engine, milliseconds: (single, several) per item.
    pub elapsed_ms: Vec<(f64, f64)>,
    /// Generation alone, milliseconds: (single, several) per item.
    pub generate_ms: Vec<(f64, f64)>,
}

/// Asks every item with one candidate and with `candidates`.
pub fn run(
    items: &[Item],
    engine: &dyn Engine,
    config: &Config,
    candidates: u32,
    mut progress: impl FnMut(usize, &Item, &Paired),
) -> Result<Report> {
    let mut report = Report {
        candidates,
        items: items.len(),
        ..Report::default()
    };
    let mut one = config.clone();
    one.completion.candidates = 1;
    let mut several = config.clone();
    several.completion.candidates = candidates;
    for (i, item) in items.iter().enumerate() {
        let (single, many) = if i % 2 == 0 {
            let single = ask(item, engine, &one, Mode::Fresh)?;
            (single, ask(item, engine, &several, Mode::Fresh)?)
        } else {
            let many = ask(item, engine, &several, Mode::Fresh)?;
            (ask(item, engine, &one, Mode::Fresh)?, many)
        };
        report.single_exact += usize::from(first_line_exact(&single.text, &item.expected));
        report.first_exact += usize::from(first_line_exact(&many.text, &item.expected));
        report.same_first += usize::from(single.text == many.text);
        let offered: Vec<&String> = std::iter::once(&many.text)
            .chain(&many.alternatives)
            .filter(|t| !t.trim().is_empty())
            .collect();
        report.offered += offered.len();
        report.any_exact +=
            usize::from(offered.iter().any(|t| first_line_exact(t, &item.expected)));
        let ms = |s: &Suggestion| s.output.elapsed.as_secs_f64() * 1000.0;
        let gen_ms = |s: &Suggestion| s.output.generate_time.as_secs_f64() * 1000.0;
        report.elapsed_ms.push((ms(&single), ms(&many)));
        report.generate_ms.push((gen_ms(&single), gen_ms(&many)));
        progress(
            i,
            item,
            &Paired {
                single,
                several: many,
            },
        );
    }
    Ok(report)
}

/// Sum of the second over sum of the first, and the median of per-item
/// ratios.
fn ratios(pairs: &[(f64, f64)]) -> (f64, f64) {
    let (a, b) = pairs
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let mut each: Vec<f64> = pairs
        .iter()
        .filter(|(x, _)| *x > 0.0)
        .map(|(x, y)| y / x)
        .collect();
    each.sort_by(f64::total_cmp);
    let median = each.get(each.len() / 2).copied().unwrap_or(0.0);
    (if a > 0.0 { b / a } else { 0.0 }, median)
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.items.max(1) as f64;
        let pct = |k: usize| 100.0 * k as f64 / n;
        writeln!(
            f,
            "items: {}, candidates 1 vs {}",
            self.items, self.candidates
        )?;
        writeln!(
            f,
            "first line exact, one candidate:        {:.1}%",
            pct(self.single_exact)
        )?;
        writeln!(
            f,
            "first line exact, first of {}:           {:.1}% (the same answer on {} of {})",
            self.candidates,
            pct(self.first_exact),
            self.same_first,
            self.items
        )?;
        writeln!(
            f,
            "any candidate's first line exact:       {:.1}% ({:.2} answers offered an item)",
            pct(self.any_exact),
            self.offered as f64 / n
        )?;
        let mean = |v: &[(f64, f64)], second: bool| {
            v.iter()
                .map(|p| if second { p.1 } else { p.0 })
                .sum::<f64>()
                / v.len().max(1) as f64
        };
        let (total, median) = ratios(&self.elapsed_ms);
        writeln!(
            f,
            "time in the engine: {:.0} ms vs {:.0} ms a request, ratio {:.2} (median of items {:.2})",
            mean(&self.elapsed_ms, false),
            mean(&self.elapsed_ms, true),
            total,
            median
        )?;
        let (total, median) = ratios(&self.generate_ms);
        write!(
            f,
            "generation alone:   {:.0} ms vs {:.0} ms a request, ratio {:.2} (median of items {:.2})",
            mean(&self.generate_ms, false),
            mean(&self.generate_ms, true),
            total,
            median
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_of_sums_and_the_median_of_items() {
        let (total, median) = ratios(&[(100.0, 120.0), (200.0, 200.0), (100.0, 150.0)]);
        assert!((total - 470.0 / 400.0).abs() < 1e-9);
        assert!((median - 1.2).abs() < 1e-9);
        assert_eq!(ratios(&[]), (0.0, 0.0));
    }
}
