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
            ago_ms: 0,
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

#[test]
fn a_record_cuts_the_window_into_intervals_with_each_groups_figures() {
    let config = AnalysisConfig {
        window: Duration::from_millis(1200),
        ..config()
    };
    // One request every 10 ms over the window; the canary's are slower
    // and one in four fails in the second half; neither has any in the
    // last 100 ms.
    let spread = |slow: u64, failing: bool| -> Vec<Measurement> {
        (0..110)
            .map(|i| Measurement {
                micros: 1000 + slow + (i % 10) * 100,
                error: failing && i < 55 && i % 4 == 0,
                ago_ms: 101 + i * 10,
            })
            .collect()
    };
    let (canary, baseline) = (spread(4000, true), spread(0, false));
    let report = judge(&canary, &baseline, &config);
    let compared = Compared {
        step: 2,
        canary: "shop-v002",
        baseline: "shop-v001",
        ended_at: 1_700_000_000_000,
    };
    let record = record(&compared, &canary, &baseline, &config, &report);
    assert_eq!(record.intervals.len(), INTERVALS as usize);
    assert_eq!(record.intervals[0].start_ms, 0);
    assert_eq!(record.intervals[11].end_ms, 1200);
    let first = &record.intervals[0];
    assert_eq!((first.canary.requests, first.baseline.requests), (10, 10));
    assert_eq!(first.baseline.p50_ms, Some(1.4));
    assert_eq!(first.baseline.p99_ms, Some(1.9));
    assert_eq!(first.canary.p50_ms, Some(5.4));
    assert_eq!(first.canary.error_rate, Some(0.0));
    let late = &record.intervals[10];
    assert!(late.canary.error_rate.unwrap_or(0.0) >= 20.0, "{late:?}");
    let last = &record.intervals[11];
    assert_eq!((last.canary.requests, last.canary.p50_ms), (0, None));
    assert_eq!(record.verdict, gantry_wire::deploy::CanaryVerdict::Fail);
    assert_eq!(record.metrics.len(), 2);
    assert_eq!((record.pass_score, record.marginal_score), (100.0, 50.0));
}
