//! Latency samples and their summaries (count, throughput, percentiles) for
//! the `api` bench. Owns only arithmetic: no I/O, no clocks other than the
//! durations it is handed.

use std::time::Duration;

use serde_json::{Value, json};

/// Latencies of one phase, in the order they were recorded.
#[derive(Default, Debug, Clone)]
pub struct Samples {
    latencies: Vec<Duration>,
    pub errors: u64,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
}

impl Samples {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            latencies: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    pub fn record(&mut self, latency: Duration) {
        self.latencies.push(latency);
    }

    pub fn error(&mut self, message: impl Into<String>) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(message.into());
        }
    }

    pub fn merge(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    pub fn len(&self) -> usize {
        self.latencies.len()
    }

    /// Sorts the samples and summarises them; `elapsed` is the phase's wall
    /// time, for throughput.
    pub fn summary(mut self, elapsed: Duration) -> Summary {
        self.latencies.sort_unstable();
        let ops = self.latencies.len() as u64;
        let secs = elapsed.as_secs_f64();
        Summary {
            ops,
            errors: self.errors,
            first_error: self.first_error,
            elapsed,
            ops_per_sec: if secs > 0.0 { ops as f64 / secs } else { 0.0 },
            p50: percentile(&self.latencies, 50.0),
            p99: percentile(&self.latencies, 99.0),
            max: self.latencies.last().copied().unwrap_or_default(),
        }
    }
}

/// The nearest-rank percentile `p` (0–100) of sorted `sorted`; zero when
/// there are no samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What one phase measured.
#[derive(Debug, Clone)]
pub struct Summary {
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub ops_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Summary {
    pub fn to_json(&self) -> Value {
        json!({
            "ops": self.ops,
            "errors": self.errors,
            "first_error": self.first_error,
            "elapsed_s": round(self.elapsed.as_secs_f64(), 3),
            "ops_per_sec": round(self.ops_per_sec, 1),
            "p50_ms": round(ms(self.p50), 3),
            "p99_ms": round(ms(self.p99), 3),
            "max_ms": round(ms(self.max), 3),
        })
    }

    /// `1234 ops/s  p50 1.23 ms  p99 4.56 ms` (plus errors when any).
    pub fn line(&self) -> String {
        let mut s = format!(
            "{:>8.0} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} ops in {:.1}s)",
            self.ops_per_sec,
            ms(self.p50),
            ms(self.p99),
            self.ops,
            self.elapsed.as_secs_f64()
        );
        if self.errors > 0 {
            s.push_str(&format!(
                "  {} ERRORS, first: {}",
                self.errors,
                self.first_error.as_deref().unwrap_or("?")
            ));
        }
        s
    }
}

pub fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}
