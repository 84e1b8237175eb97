//! Paired significance for two arms scored on the same items (crossFile off
//! and on, before and after): whether a difference is more than the noise of
//! which items happened to be drawn.
//!
//! - Exact match (a yes or no per item): the exact McNemar test. Only the
//!   discordant items count, `b` (right in the first arm only) and `c` (right
//!   in the second only); under "no difference" each is a fair coin, so the
//!   two-sided p is twice the binomial tail of the smaller count, at most 1.
//! - Edit similarity and other scores in [0, 1]: a paired bootstrap of the
//!   mean difference (second minus first): items drawn with replacement,
//!   the differences' mean each time; the 2.5th and 97.5th percentiles are a
//!   95% interval. A fixed seed makes a report the same on every run.

/// Two-sided exact McNemar p-value for `b` and `c` discordant pairs.
pub fn mcnemar_exact(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // log of C(n, i) / 2^n, summed for i = 0..=k in log space (no
    // underflow for large n).
    let mut log_term = n as f64 * 0.5f64.ln();
    let mut terms = vec![log_term];
    for i in 1..=k {
        log_term += ((n - i + 1) as f64).ln() - (i as f64).ln();
        terms.push(log_term);
    }
    let max = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let tail = max.exp() * terms.iter().map(|t| (t - max).exp()).sum::<f64>();
    (2.0 * tail).min(1.0)
}

/// Discordant counts of paired yes/no results: (first only, second only).
pub fn discordant(pairs: impl IntoIterator<Item = (bool, bool)>) -> (usize, usize) {
    pairs
        .into_iter()
        .fold((0, 0), |(b, c), (x, y)| match (x, y) {
            (true, false) => (b + 1, c),
            (false, true) => (b, c + 1),
            _ => (b, c),
        })
}

/// A paired bootstrap of a mean difference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    /// The observed mean difference (second minus first).
    pub mean: f64,
    /// The 95% interval (2.5th and 97.5th percentiles of the resampled means).
    pub low: f64,
    pub high: f64,
    /// Two-sided: twice the share of resampled means on the far side of 0
    /// (at most 1).
    pub p: f64,
}

/// Resamples used by reports.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;
/// The seed used by reports.
pub const BOOTSTRAP_SEED: u64 = 17;

/// Paired bootstrap of the mean of `diffs` (per item: second arm minus
/// first), `resamples` times from `seed`.
pub fn paired_bootstrap(diffs: &[f64], resamples: usize, seed: u64) -> Bootstrap {
    let n = diffs.len();
    if n == 0 || resamples == 0 {
        return Bootstrap {
            mean: 0.0,
            low: 0.0,
            high: 0.0,
            p: 1.0,
        };
    }
    let mean = diffs.iter().sum::<f64>() / n as f64;
    let mut rng = SplitMix64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| diffs[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * resamples as f64) as usize).min(resamples - 1)];
    let below = means.iter().filter(|m| **m <= 0.0).count() as f64;
    let above = means.iter().filter(|m| **m >= 0.0).count() as f64;
    Bootstrap {
        mean,
        low: at(0.025),
        high: at(0.975),
        p: (2.0 * below.min(above) / resamples as f64).min(1.0),
    }
}

/// SplitMix64: a small, fast generator, the same on every platform.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0; the modulo bias is below 2^-50 for any n
    /// an evaluation has).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `p` for a report: three significant digits, `<0.001` below that.
pub fn format_p(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn mcnemar_known_values() {
        // n = 7, k = 1: 2 * (1 + 7) / 128.
        assert!(close(mcnemar_exact(1, 6), 0.125, 1e-12));
        assert!(close(mcnemar_exact(6, 1), 0.125, 1e-12));
        // Symmetric and no difference: p = 1.
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        assert_eq!(mcnemar_exact(5, 5), 1.0);
        // n = 10, k = 0: 2 / 1024.
        assert!(close(mcnemar_exact(0, 10), 2.0 / 1024.0, 1e-15));
        // n = 20, k = 5: 2 * (1 + 20 + 190 + 1140 + 4845 + 15504) / 2^20
        // = 0.0413895 (R: binom.test(5, 20)$p.value).
        assert!(close(mcnemar_exact(5, 15), 0.041389465, 1e-8));
        // The Java figure: 3 lost, 8 gained.
        assert!(close(mcnemar_exact(3, 8), 0.2265625, 1e-12));
        // Large counts stay finite and sensible (no underflow).
        let p = mcnemar_exact(600, 700);
        assert!(p > 0.0 && p < 0.01, "{p}");
        assert!(close(mcnemar_exact(700, 700), 1.0, 1e-9));
    }

    #[test]
    fn discordant_counts() {
        let pairs = [(true, true), (true, false), (false, true), (false, true)];
        assert_eq!(discordant(pairs), (1, 2));
    }

    #[test]
    fn bootstrap_of_a_constant_is_the_constant() {
        let b = paired_bootstrap(&[0.25; 50], 1000, 1);
        assert!(close(b.mean, 0.25, 1e-12));
        assert!(close(b.low, 0.25, 1e-12) && close(b.high, 0.25, 1e-12));
        assert_eq!(b.p, 0.0);
        assert_eq!(paired_bootstrap(&[], 1000, 1).p, 1.0);
    }

    #[test]
    fn bootstrap_matches_the_normal_interval_and_is_reproducible() {
        // Differences of mean 0.05 and standard deviation 0.3 (a fixed
        // pattern): the percentile interval is close to mean +- 1.96 sd / sqrt(n).
        let n = 400;
        let diffs: Vec<f64> = (0..n)
            .map(|i| 0.05 + if i % 2 == 0 { 0.3 } else { -0.3 })
            .collect();
        let b = paired_bootstrap(&diffs, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED);
        let half = 1.96 * 0.3 / (n as f64).sqrt();
        assert!(close(b.mean, 0.05, 1e-12));
        assert!(close(b.low, 0.05 - half, 0.004), "{b:?}");
        assert!(close(b.high, 0.05 + half, 0.004), "{b:?}");
        // z = 0.05 / 0.015 = 3.33: two-sided p about 0.001.
        assert!(b.p < 0.005, "{b:?}");
        assert_eq!(
            b,
            paired_bootstrap(&diffs, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)
        );
        // No difference on average: p near 1, interval around 0.
        let zero: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { 0.3 } else { -0.3 })
            .collect();
        let z = paired_bootstrap(&zero, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED);
        assert!(z.low < 0.0 && z.high > 0.0 && z.p > 0.5, "{z:?}");
    }

    #[test]
    fn p_format() {
        assert_eq!(format_p(0.125), "0.125");
        assert_eq!(format_p(0.0004), "<0.001");
    }
}
