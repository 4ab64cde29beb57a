use super::protocol::{AgentRequest, InstanceSpec, RegistryLogin};

#[test]
fn a_pull_request_never_shows_its_password_when_printed() {
    let request = AgentRequest::Pull {
        image: "registry.example/shop:1.2.0".to_owned(),
        tls_verify: None,
        login: Some(RegistryLogin {
            user: "deploy".to_owned(),
            password: "hunter2-secret".to_owned(),
        }),
    };
    let printed = format!("{request:?}");
    assert!(!printed.contains("hunter2-secret"), "{printed}");
    assert!(printed.contains("deploy"), "{printed}");
}

#[test]
fn an_instance_recorded_before_images_reads_as_a_command_instance() {
    // agent-state.json written by an agent that knew no images.
    let recorded = r#"{"id":"shop-web-v001-i0","group":"shop-web-v001","address":"10.0.0.5",
        "port":8080,"command":"./serve","release":"/home/deploy/.gantry/releases/shop-web-v001",
        "graceSeconds":10}"#;
    let spec: InstanceSpec = serde_json::from_str(recorded).expect("an old spec reads");
    assert_eq!(spec.image, None);
    assert_eq!(spec.command, "./serve");
}
