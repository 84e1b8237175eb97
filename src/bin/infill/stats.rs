//! `infill stats`: acceptance and persistence from the local store
//! (`session::stats_store`), as text, JSON or a self-contained HTML report
//! whose charts are drawn with plotters' SVG backend (inline SVG, no
//! network resources, no fonts embedded: the browser draws the text).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use infill::session::stats_store;
use infill::stats::aggregate::{self, By, Figures, DAY_MS};
use infill::stats::Event;
use plotters::prelude::*;

#[derive(clap::Args)]
pub struct StatsArgs {
    /// Only events of the last period: `7d`, `12h`, `30m` (default: all).
    #[arg(long)]
    since: Option<String>,
    /// Group by `language`, `model`, `trigger` or `lines`.
    #[arg(long)]
    by: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML report with charts to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// The store's folder (default: `${XDG_STATE_HOME:-~/.local/state}/infill`).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// `7d`, `12h`, `30m`, `45s` as milliseconds.
fn period_ms(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .with_context(|| format!("--since {s}: expected a number and d, h, m or s, as 7d"))?;
    let unit_ms = match unit {
        "d" => DAY_MS,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" | "" => 1000,
        _ => bail!("--since {s}: the unit must be d, h, m or s"),
    };
    Ok(n.saturating_mul(unit_ms))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn run(args: &StatsArgs) -> Result<String> {
    let by = match &args.by {
        None => None,
        Some(b) => Some(
            By::parse(b)
                .with_context(|| format!("--by {b}: expected language, model, trigger or lines"))?,
        ),
    };
    let since = match &args.since {
        Some(s) => now_ms().saturating_sub(period_ms(s)?),
        None => 0,
    };
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => stats_store::default_dir().context("no state directory: HOME is not set")?,
    };
    let (events, skipped) = stats_store::read(&dir)
        .with_context(|| format!("cannot read the store in {}", dir.display()))?;
    let groups = aggregate::figures(&events, since, by);
    if let Some(file) = &args.html {
        std::fs::write(file, html(&events, since, &groups)?)
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    if args.json {
        let out = serde_json::json!({
            "store": dir,
            "sinceMs": since,
            "events": events.iter().filter(|e| e.t >= since).count(),
            "skippedLines": skipped,
            "groups": groups,
        });
        return Ok(serde_json::to_string_pretty(&out)?);
    }
    Ok(text(&dir, &events, since, skipped, &groups))
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn checkpoint_name(secs: u64) -> String {
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

fn text(dir: &Path, events: &[Event], since: u64, skipped: usize, groups: &[Figures]) -> String {
    let mut out = String::new();
    let n = events.iter().filter(|e| e.t >= since).count();
    let _ = writeln!(out, "store: {} ({n} events)", dir.display());
    if skipped > 0 {
        let _ = writeln!(out, "skipped {skipped} unreadable lines");
    }
    for g in groups {
        let _ = writeln!(
            out,
            "{}: {} shown, {} accepted ({}; {} in part only, {} chars), {} dismissed",
            g.key,
            g.shown,
            g.accepted,
            pct(g.acceptance_rate),
            g.partly_accepted,
            g.accepted_chars,
            g.dismissed
        );
        if g.persistence.is_empty() {
            let _ = writeln!(out, "  persistence: nothing measured yet");
        } else {
            let parts: Vec<String> = g
                .persistence
                .iter()
                .map(|p| {
                    format!(
                        "{} {} ({} measured, {} deleted)",
                        checkpoint_name(p.checkpoint_secs),
                        pct(p.similarity),
                        p.measured,
                        pct(p.deleted)
                    )
                })
                .collect();
            let _ = writeln!(out, "  persistence: {}", parts.join(", "));
        }
        match (g.latency_p50_ms, g.latency_p90_ms) {
            (Some(p50), Some(p90)) => {
                let _ = writeln!(out, "  latency (model answers): p50 {p50} ms, p90 {p90} ms");
            }
            _ => {
                let _ = writeln!(out, "  latency (model answers): none");
            }
        }
        let _ = writeln!(out, "  from cache: {} of shown", pct(g.from_cache));
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The report: the figures' table and three charts.
fn html(events: &[Event], since: u64, groups: &[Figures]) -> Result<String> {
    let days = aggregate::by_day(events, since);
    let latencies = aggregate::latencies(events, since);
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>infill stats</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>\
         <h1>infill: acceptance and persistence</h1><table><tr><th>group</th><th>shown</th>\
         <th>accepted</th><th>rate</th><th>persistence</th><th>p50 ms</th><th>p90 ms</th>\
         <th>from cache</th></tr>",
    );
    for g in groups {
        let persistence: Vec<String> = g
            .persistence
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    checkpoint_name(p.checkpoint_secs),
                    pct(p.similarity)
                )
            })
            .collect();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&g.key),
            g.shown,
            g.accepted,
            pct(g.acceptance_rate),
            escape(&persistence.join(", ")),
            g.latency_p50_ms.map_or("-".into(), |v| v.to_string()),
            g.latency_p90_ms.map_or("-".into(), |v| v.to_string()),
            pct(g.from_cache)
        );
    }
    out.push_str("</table>");
    out.push_str("<h2>Acceptance and persistence by day</h2>");
    out.push_str(&by_day_chart(&days)?);
    out.push_str("<h2>Latency of model answers shown</h2>");
    out.push_str(&latency_chart(&latencies)?);
    out.push_str("</body></html>\n");
    Ok(out)
}

fn chart_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e:?}")
}

fn by_day_chart(days: &[(u64, Figures)]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let first = days.first().map_or(0, |d| d.0);
        let last = days.last().map_or(1, |d| d.0).max(first + 1);
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(first..last, 0f64..100f64)
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .x_desc("day (UTC)")
            .y_desc("%")
            .x_label_formatter(&|d| day_name(*d))
            .draw()
            .map_err(chart_error)?;
        let rate: Vec<(u64, f64)> = days
            .iter()
            .filter(|(_, f)| f.shown > 0)
            .map(|(d, f)| (*d, f.acceptance_rate * 100.0))
            .collect();
        chart
            .draw_series(LineSeries::new(rate, BLUE.stroke_width(2)))
            .map_err(chart_error)?
            .label("acceptance")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        let mut checkpoints: Vec<u64> = days
            .iter()
            .flat_map(|(_, f)| f.persistence.iter().map(|p| p.checkpoint_secs))
            .collect();
        checkpoints.sort_unstable();
        checkpoints.dedup();
        for (i, secs) in checkpoints.iter().enumerate() {
            let color = Palette99::pick(i + 1).to_rgba();
            let points: Vec<(u64, f64)> = days
                .iter()
                .filter_map(|(d, f)| {
                    f.persistence
                        .iter()
                        .find(|p| p.checkpoint_secs == *secs)
                        .map(|p| (*d, p.similarity * 100.0))
                })
                .collect();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(chart_error)?
                .label(format!("persistence at {}", checkpoint_name(*secs)))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(chart_error)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

fn latency_chart(latencies: &[u64]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        // 20 buckets up to the 99th percentile (the rest in the last).
        let top = aggregate::percentile(latencies, 99).unwrap_or(100).max(20);
        let width = top.div_ceil(20).max(1);
        let mut counts = [0u32; 20];
        for &l in latencies {
            counts[((l / width) as usize).min(19)] += 1;
        }
        let most = counts.iter().copied().max().unwrap_or(0).max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(
                (0u64..width * 20).into_segmented(),
                0u32..most + most / 10 + 1,
            )
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .x_desc("ms")
            .y_desc("answers")
            .draw()
            .map_err(chart_error)?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(BLUE.filled())
                    .margin(1)
                    .data(
                        counts
                            .iter()
                            .enumerate()
                            .map(|(i, c)| (i as u64 * width, *c)),
                    ),
            )
            .map_err(chart_error)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

/// A day number as `YYYY-MM-DD` (proleptic Gregorian, UTC).
fn day_name(day: u64) -> String {
    // Howard Hinnant's days-to-civil.
    let z = day as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_days() {
        assert_eq!(period_ms("7d").unwrap(), 7 * DAY_MS);
        assert_eq!(period_ms("30m").unwrap(), 1_800_000);
        assert!(period_ms("7w").is_err());
        assert!(period_ms("d").is_err());
        assert_eq!(day_name(0), "1970-01-01");
        assert_eq!(day_name(20_454), "2026-01-01");
    }
}
