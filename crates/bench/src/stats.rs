//! Latency summaries: nearest-rank percentiles over every sample (no
//! histogram buckets, no sampling: a run has at most a few hundred thousand).

use std::time::Duration;

use serde::Serialize;

/// p50 / p95 / p99 / max of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// Summarizes `samples` (reordered in place); `None` when empty.
pub fn summarize(samples: &mut [Duration]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let rank = |p: f64| {
        // Nearest rank: the smallest sample with at least p% at or below it.
        let n = samples.len();
        let index = ((p / 100.0) * n as f64).ceil() as usize;
        samples[index.clamp(1, n) - 1]
    };
    let total: Duration = samples.iter().sum();
    Some(Summary {
        count: samples.len(),
        p50_ms: ms(rank(50.0)),
        p95_ms: ms(rank(95.0)),
        p99_ms: ms(rank(99.0)),
        max_ms: ms(samples[samples.len() - 1]),
        mean_ms: ms(total) / samples.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = summarize(&mut samples).unwrap();
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p95_ms, 95.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        assert_eq!(s.mean_ms, 50.5);
    }

    #[test]
    fn one_sample_is_every_percentile_and_none_is_no_summary() {
        let s = summarize(&mut [Duration::from_micros(1500)]).unwrap();
        assert_eq!((s.p50_ms, s.p99_ms, s.max_ms), (1.5, 1.5, 1.5));
        assert_eq!(summarize(&mut []), None);
    }
}
