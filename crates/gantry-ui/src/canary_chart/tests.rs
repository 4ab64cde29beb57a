use gantry_wire::deploy::{AnalysisInterval, CanaryAnalysis, IntervalFigures};

use super::{LATENCY_HEIGHT, LEFT, PLOT_WIDTH, chart, nice_ceiling};

fn figures(p50: f64, p99: f64) -> IntervalFigures {
    IntervalFigures {
        requests: 10,
        p50_ms: Some(p50),
        p99_ms: Some(p99),
        error_rate: Some(0.0),
    }
}

#[test]
fn axes_end_on_round_numbers() {
    for (value, expected) in [
        (0.0, 1.0),
        (0.7, 1.0),
        (3.2, 5.0),
        (12.0, 20.0),
        (50.0, 50.0),
    ] {
        assert_eq!(nice_ceiling(value), expected, "{value}");
    }
}

#[test]
fn a_line_breaks_where_an_interval_had_no_request() {
    let interval = |start_ms: u64, canary: IntervalFigures| AnalysisInterval {
        start_ms,
        end_ms: start_ms + 1000,
        canary,
        baseline: figures(1.0, 2.0),
    };
    let analysis = CanaryAnalysis {
        window_ms: 3000,
        intervals: vec![
            interval(0, figures(2.0, 4.0)),
            interval(1000, IntervalFigures::default()),
            interval(2000, figures(3.0, 5.0)),
        ],
        ..CanaryAnalysis::default()
    };
    let drawn = chart(&analysis);
    let canary_p50 = &drawn.charts[0].lines[2];
    assert_eq!(canary_p50.legend, "canary p50");
    // The axis tops at 5 ms: 2 ms is 40 % up, 3 ms 60 %; x at each middle.
    let x = |ms: f64| LEFT + PLOT_WIDTH * ms / 3000.0;
    let y = |v: f64| LATENCY_HEIGHT - LATENCY_HEIGHT * v / 5.0;
    assert_eq!(
        canary_p50.path,
        format!(
            "M{:.1} {:.1} M{:.1} {:.1}",
            x(500.0),
            y(2.0),
            x(2500.0),
            y(3.0)
        )
    );
    assert_eq!(drawn.charts[0].top_label, "5 ms");
    assert_eq!(drawn.rows[1].canary, "no requests");
}
