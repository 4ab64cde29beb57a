//! The provider-neutral load balancer model (`gantry_deploy::model`) as the
//! proxy takes it. The two have the same fields and serde shapes; the
//! tests hold them together.

use gantry_deploy::model::{
    ClientTimeouts, ConnectionLimits, GroupStatsSnapshotView, HealthCheck, RouteRule,
};

pub(crate) fn route_rule(rule: &RouteRule) -> gantry_proxy::RouteRule {
    gantry_proxy::RouteRule {
        host: rule.host.clone(),
        path_prefix: rule.path_prefix.clone(),
        cluster: rule.cluster.clone(),
    }
}

pub(crate) fn health_check(check: &HealthCheck) -> gantry_proxy::HealthCheckConfig {
    gantry_proxy::HealthCheckConfig {
        path: check.path.clone(),
        interval: check.interval,
        timeout: check.timeout,
        healthy_threshold: check.healthy_threshold,
        unhealthy_threshold: check.unhealthy_threshold,
    }
}

pub(crate) fn client_timeouts(timeouts: &ClientTimeouts) -> gantry_proxy::ClientTimeouts {
    gantry_proxy::ClientTimeouts {
        header: timeouts.header,
        keep_alive: timeouts.keep_alive,
        body: timeouts.body,
        send: timeouts.send,
    }
}

pub(crate) fn connection_limits(limits: &ConnectionLimits) -> gantry_proxy::ConnectionLimits {
    gantry_proxy::ConnectionLimits {
        connections: limits.connections,
        per_address: limits.per_address,
    }
}

pub(crate) fn group_stats(s: gantry_proxy::GroupStatsSnapshot) -> GroupStatsSnapshotView {
    GroupStatsSnapshotView {
        requests: s.requests,
        status_5xx: s.status_5xx,
        connect_errors: s.connect_errors,
        p50_ms: s.p50_ms,
        p95_ms: s.p95_ms,
        p99_ms: s.p99_ms,
        rate: s.rate,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_neutral_health_check_defaults_are_the_proxys() {
        assert_eq!(
            health_check(&HealthCheck::default()),
            gantry_proxy::HealthCheckConfig::default()
        );
    }

    #[test]
    fn converted_types_serialize_as_the_neutral_ones() {
        let rule = RouteRule {
            host: Some("shop.example".into()),
            path_prefix: None,
            cluster: "shop".into(),
        };
        let check = HealthCheck {
            path: "/ready".into(),
            interval: Duration::from_millis(250),
            ..Default::default()
        };
        let timeouts = ClientTimeouts {
            header: Some(Duration::from_secs(3)),
            ..Default::default()
        };
        let limits = ConnectionLimits {
            connections: Some(10),
            per_address: None,
        };
        let json = |v: serde_json::Result<serde_json::Value>| v.expect("encode");
        assert_eq!(
            json(serde_json::to_value(route_rule(&rule))),
            json(serde_json::to_value(&rule))
        );
        assert_eq!(
            json(serde_json::to_value(health_check(&check))),
            json(serde_json::to_value(&check))
        );
        assert_eq!(
            json(serde_json::to_value(client_timeouts(&timeouts))),
            json(serde_json::to_value(timeouts))
        );
        assert_eq!(
            json(serde_json::to_value(connection_limits(&limits))),
            json(serde_json::to_value(limits))
        );
    }
}
