use super::*;

fn config() -> AnalysisConfig {
    AnalysisConfig {
        window: Duration::from_secs(10),
        marginal: 50.0,
        pass: 100.0,
        max_error_rate_increase: 1.0,
        latency_tolerance: 0.2,
    }
}

fn samples(n: usize, micros: impl Fn(usize) -> u64, error_every: usize) -> Vec<Measurement> {
    (0..n)
        .map(|i| Measurement {
            micros: micros(i),
            error: error_every > 0 && i % error_every == 0,
        })
        .collect()
}

#[test]
fn same_distribution_passes() {
    let a = samples(200, |i| 1000 + (i % 50) as u64 * 10, 0);
    let b = samples(200, |i| 1000 + ((i + 7) % 50) as u64 * 10, 0);
    let report = judge(&a, &b, &config());
    assert_eq!(report.verdict, Verdict::Pass, "{report}");
}

#[test]
fn five_percent_errors_fail() {
    let canary = samples(200, |_| 1000, 20);
    let baseline = samples(200, |_| 1000, 0);
    let report = judge(&canary, &baseline, &config());
    assert_eq!(report.metrics[0].judgment, Judgment::High, "{report}");
    assert_ne!(report.verdict, Verdict::Pass);
}

#[test]
fn slower_canary_is_high() {
    let canary = samples(200, |i| 5000 + (i % 50) as u64 * 10, 0);
    let baseline = samples(200, |i| 1000 + (i % 50) as u64 * 10, 0);
    let report = judge(&canary, &baseline, &config());
    assert_eq!(report.metrics[1].judgment, Judgment::High, "{report}");
}

#[test]
fn mann_whitney_matches_known_values() {
    // Identical samples: no evidence of a difference.
    assert!((mann_whitney_p(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-6);
    // Fully separated groups of 20: p far below 0.001.
    let low: Vec<f64> = (0..20).map(f64::from).collect();
    let high: Vec<f64> = (100..120).map(f64::from).collect();
    assert!(mann_whitney_p(&low, &high) < 0.001);
}

#[test]
fn too_few_samples_is_no_data() {
    let report = judge(
        &samples(5, |_| 1000, 0),
        &samples(5, |_| 1000, 0),
        &config(),
    );
    assert_eq!(report.metrics[0].judgment, Judgment::NoData);
    assert_eq!(report.verdict, Verdict::Fail);
}
