//! Lag samples as the shell scripts record them: one line per sample, the time in seconds
//! since the Unix epoch and then `consumer lag --one-line`'s output:
//!
//! ```text
//! 1764830000.25 total=1520 | 120 131 118 …
//! ```
//!
//! A sample the broker could not answer is simply missing, which leaves a gap in the chart.

use std::path::Path;

use anyhow::Context;

#[derive(Clone, Debug, PartialEq)]
pub struct LagSample {
    pub at_unix_secs: f64,
    pub total: i64,
    /// Lag of partitions 0, 1, … in order.
    pub partitions: Vec<i64>,
}

pub fn load(path: &Path) -> anyhow::Result<Vec<LagSample>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("in {}", path.display()))
}

pub fn parse(text: &str) -> anyhow::Result<Vec<LagSample>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            sample(line).with_context(|| format!("line {}: {line:?}", number + 1))
        })
        .collect()
}

fn sample(line: &str) -> anyhow::Result<LagSample> {
    let (head, partitions) = line
        .split_once('|')
        .context("no `|` before the partitions")?;
    let mut head = head.split_whitespace();
    let at_unix_secs = head.next().context("no time")?.parse()?;
    let total = head
        .next()
        .and_then(|total| total.strip_prefix("total="))
        .context("no total=")?
        .parse()?;
    let partitions = partitions
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    Ok(LagSample {
        at_unix_secs,
        total,
        partitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_scripts_lines_and_refuses_others() {
        let samples = parse("1764830000.25 total=7 | 3 4\n\n1764830001.5 total=0 | 0 0\n").unwrap();
        assert_eq!(
            samples,
            [
                LagSample {
                    at_unix_secs: 1_764_830_000.25,
                    total: 7,
                    partitions: vec![3, 4]
                },
                LagSample {
                    at_unix_secs: 1_764_830_001.5,
                    total: 0,
                    partitions: vec![0, 0]
                },
            ]
        );
        let error = format!("{:#}", parse("1764830000 total=x | 1").unwrap_err());
        assert!(error.contains("line 1"), "{error}");
        assert!(parse("1764830000 7 | 1").is_err());
    }
}
