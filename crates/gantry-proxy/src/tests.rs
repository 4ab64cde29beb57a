use std::sync::Arc;

use crate::discovery::RouteRule;
use crate::health_check::{HealthCheckConfig, UpstreamHealth};

#[test]
fn rules_match_host_and_path_prefix() {
    let check = |host: Option<&str>,
                 prefix: Option<&str>,
                 req_host: Option<&str>,
                 path: &str,
                 expected: bool| {
        let rule = RouteRule {
            host: host.map(str::to_owned),
            path_prefix: prefix.map(str::to_owned),
            cluster: "c".into(),
        };
        assert_eq!(
            rule.matches(req_host, path),
            expected,
            "{host:?} {prefix:?} {req_host:?} {path}"
        );
    };
    check(None, None, None, "/", true);
    check(Some("a.test"), None, Some("A.test"), "/", true);
    check(Some("a.test"), None, Some("b.test"), "/", false);
    check(Some("a.test"), None, None, "/", false);
    check(None, Some("/api"), None, "/api/x", true);
    check(None, Some("/api"), None, "/web", false);
}

#[test]
fn thresholds_gate_health_changes() {
    let config = HealthCheckConfig {
        healthy_threshold: 2,
        unhealthy_threshold: 3,
        ..HealthCheckConfig::default()
    };
    let health = Arc::new(UpstreamHealth::default());
    health.set_alive(true);
    assert!(!health.record(true, &config));
    assert!(!health.is_routable());
    assert!(health.record(true, &config));
    assert!(health.is_routable());
    assert!(!health.record(false, &config));
    assert!(!health.record(false, &config));
    assert!(health.is_routable());
    assert!(health.record(false, &config));
    assert!(!health.is_routable());
    // Passive ejection takes it out at once; two passes bring it back.
    health.record(true, &config);
    health.record(true, &config);
    health.eject();
    assert!(!health.is_routable());
}
