//! The table `loadtest bench-pipeline` prints: each measured figure beside its baseline,
//! their ratio, the target and whether it was met.

use serde::Serialize;

/// A target a row is held to.
#[derive(Clone, Copy, Debug, Serialize)]
pub enum Target {
    /// measured / baseline at least this.
    RatioAtLeast(f64),
    /// The measured value (milliseconds) at most this.
    MillisAtMost(f64),
    /// Reported only.
    None,
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub name: String,
    /// The figure the target is about: a rate, or milliseconds.
    pub measured: f64,
    pub measured_text: String,
    pub baseline: Option<f64>,
    pub baseline_text: String,
    pub target: Target,
    /// Set when the row could not be measured; the reason is printed instead.
    pub missing: Option<String>,
}

impl Row {
    /// A rate against the baseline rate of the same thing.
    pub fn ratio(name: &str, measured: f64, baseline: f64, unit: &str, at_least: f64) -> Row {
        Row {
            name: name.to_owned(),
            measured,
            measured_text: format!("{} {unit}", thousands(measured)),
            baseline: Some(baseline),
            baseline_text: format!("{} {unit}", thousands(baseline)),
            target: Target::RatioAtLeast(at_least),
            missing: None,
        }
    }

    /// A cost (microseconds) beside the baseline's cost; the ratio is baseline / measured,
    /// so it reads like a throughput ratio. Reported only.
    pub fn cost(name: &str, measured_us: f64, baseline_us: f64) -> Row {
        Row {
            name: name.to_owned(),
            measured: 1.0 / measured_us.max(1e-9),
            measured_text: format!("{measured_us:.1} µs"),
            baseline: Some(1.0 / baseline_us.max(1e-9)),
            baseline_text: format!("{baseline_us:.1} µs"),
            target: Target::None,
            missing: None,
        }
    }

    /// A latency held to a ceiling.
    pub fn latency(name: &str, millis: f64, text: String, at_most: f64) -> Row {
        Row {
            name: name.to_owned(),
            measured: millis,
            measured_text: text,
            baseline: None,
            baseline_text: "-".to_owned(),
            target: Target::MillisAtMost(at_most),
            missing: None,
        }
    }

    /// A figure printed for information, with what it is set beside.
    pub fn info(name: &str, text: String, beside: String) -> Row {
        Row {
            name: name.to_owned(),
            measured: 0.0,
            measured_text: text,
            baseline: None,
            baseline_text: beside,
            target: Target::None,
            missing: None,
        }
    }

    /// This row held to `target` (a cost row, say, whose ratio has a floor).
    pub fn held_to(self, target: Target) -> Row {
        Row { target, ..self }
    }

    /// A row that could not be measured, and why.
    pub fn unavailable(name: &str, why: String) -> Row {
        Row {
            missing: Some(why),
            ..Row::info(name, String::new(), String::new())
        }
    }

    pub fn ratio_value(&self) -> Option<f64> {
        self.baseline
            .filter(|b| *b > 0.0)
            .map(|b| self.measured / b)
    }

    /// Some(true) for PASS, Some(false) for MISS, None when there is no target.
    pub fn passed(&self) -> Option<bool> {
        if self.missing.is_some() {
            return None;
        }
        match self.target {
            Target::RatioAtLeast(at_least) => self.ratio_value().map(|r| r >= at_least),
            Target::MillisAtMost(at_most) => Some(self.measured <= at_most),
            Target::None => None,
        }
    }
}

/// Renders the rows as a fixed-width table.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "measure", "measured", "baseline", "ratio", "target", "result",
    ];
    let mut lines: Vec<Vec<String>> = vec![header.map(str::to_owned).to_vec()];
    for row in rows {
        if let Some(why) = &row.missing {
            lines.push(vec![row.name.clone(), format!("not measured: {why}")]);
            continue;
        }
        let target = match row.target {
            Target::RatioAtLeast(r) => format!(">= {r:.2}"),
            Target::MillisAtMost(ms) => format!("<= {ms} ms"),
            Target::None => "-".to_owned(),
        };
        let verdict = match row.passed() {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "-",
        };
        lines.push(vec![
            row.name.clone(),
            row.measured_text.clone(),
            row.baseline_text.clone(),
            row.ratio_value()
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}")),
            target,
            verdict.to_owned(),
        ]);
    }
    columns(&lines)
}

/// Lays out `lines` in columns: the first cell of each left-aligned, the others
/// right-aligned. A line with fewer cells than the first (the header) does not set the
/// widths after its first cell: its text runs on, like a note.
pub fn columns(lines: &[Vec<String>]) -> String {
    let count = lines.first().map_or(0, Vec::len);
    let mut widths = vec![0usize; count];
    for line in lines {
        let counted = if line.len() < count { 1 } else { count };
        for (width, cell) in widths.iter_mut().zip(line).take(counted) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in lines {
        let mut text = String::new();
        for (i, (cell, width)) in line.iter().zip(&widths).enumerate() {
            let pad = width.saturating_sub(cell.chars().count());
            if i == 0 {
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
            } else if line.len() < count {
                text.push_str(cell);
            } else {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            }
            text.push_str("  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// 12345.6 as "12,346".
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < -0.5 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_judge_ratios_and_ceilings() {
        let rows = [
            Row::ratio("ingress vs bare", 7_000.0, 10_000.0, "req/s", 0.70),
            Row::ratio("producer", 700.0, 1_000.0, "ev/s", 0.80),
            Row::latency("ack p99", 9.5, "9.50 ms".into(), 10.0),
            Row::info("rss", "40 MB".into(), "100,000 entries".into()),
            Row::cost("cpu", 40.0, 10.0),
            Row::unavailable("wrk", "not installed".into()),
        ];
        let verdicts: Vec<_> = rows.iter().map(Row::passed).collect();
        assert_eq!(
            verdicts,
            [Some(true), Some(false), Some(true), None, None, None]
        );
        let printed = table(&rows);
        let lines: Vec<&str> = printed.lines().collect();
        assert_eq!(lines.len(), 7);
        assert!(lines[0].starts_with("measure"));
        assert!(lines[1].contains("7,000 req/s") && lines[1].contains("0.70"));
        assert!(lines[1].ends_with("PASS"), "{}", lines[1]);
        assert!(lines[2].ends_with("MISS"), "{}", lines[2]);
        assert!(lines[3].contains("<= 10 ms"));
        assert!(lines[5].contains("40.0 µs") && lines[5].contains("0.25"));
        assert!(lines[6].contains("not measured: not installed"));
        // Columns line up: every judged row's verdict ends at the same place.
        assert_eq!(lines[1].len(), lines[2].len());
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
