use std::time::Duration;

use super::{HealthCheck, LoadBalancer, RouteRule};

/// The shape `DATA/deploy/state.json` and the API have always had.
#[test]
fn a_load_balancer_keeps_its_json_shape() {
    let lb = LoadBalancer {
        name: "web".to_owned(),
        port: 8080,
        rules: vec![RouteRule {
            host: None,
            path_prefix: Some("/api".to_owned()),
            cluster: "shop-prod".to_owned(),
        }],
        health_check: HealthCheck::default(),
        response_timeout: Some(Duration::from_secs(5)),
        client_timeouts: Default::default(),
        limits: Default::default(),
    };
    let json = serde_json::to_value(&lb).expect("encode");
    assert_eq!(
        json,
        serde_json::json!({
            "name": "web",
            "port": 8080,
            "rules": [{"host": null, "path_prefix": "/api", "cluster": "shop-prod"}],
            "healthCheck": {"path": "/health", "interval": 500, "timeout": 1000,
                            "healthyThreshold": 2, "unhealthyThreshold": 2},
            "responseTimeout": {"secs": 5, "nanos": 0},
            "clientTimeouts": {},
            "limits": {}
        })
    );
    assert_eq!(
        serde_json::from_value::<LoadBalancer>(json).expect("decode"),
        lb
    );
}
