use crate::parse_document;

const ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGWXAekFC2ol50BtQr0Sv0qF8QpTQp3EpEZMyV5YeVAW";

fn check(yaml: &str, expected: &str) {
    let actual = match parse_document("gantry.yaml", yaml) {
        Ok(document) => format!("{:?}", document.hosts),
        Err(diagnostics) => diagnostics.to_string(),
    };
    assert_eq!(actual.trim(), expected.trim(), "for:\n{yaml}");
}

#[test]
fn a_host_is_read_with_its_defaults() {
    let yaml = format!(
        "hosts:\n  - name: web-1\n    address: 10.0.0.5\n    user: deploy\n    key: fleet-key\n    hostKey: {ED25519}\n    labels: [web]\n"
    );
    let document = parse_document("gantry.yaml", &yaml).expect("valid");
    let host = &document.hosts[0];
    assert_eq!(
        (host.name.as_str(), host.port, host.labels.as_slice()),
        ("web-1", 22, ["web".to_owned()].as_slice())
    );
}

#[test]
fn every_problem_of_a_host_is_reported_with_its_position() {
    check(
        "hosts:\n  - name: web 1\n    address: a@b\n    port: 70000\n    user: \"-x\"\n    hostKey: ssh-ed25519 AAAA\n    lables: [web]\n",
        r#"gantry.yaml:2:5: host "web 1" is missing "key"
gantry.yaml:2:11: host name "web 1" must be 1 to 63 letters, digits, '-', '_' or '.'
gantry.yaml:3:14: host "web 1": "address" must be an IP address or a host name, not "a@b"
gantry.yaml:4:11: host "web 1": port must be from 1 to 65535, not 70000
gantry.yaml:5:11: host "web 1": "user" "-x" is not a Unix user name
gantry.yaml:6:14: host "web 1": "hostKey" is not a ssh-ed25519 key (its data names another type)
gantry.yaml:7:5: unknown field "lables" in host "web 1", did you mean "labels"?"#,
    );
}

#[test]
fn a_host_key_of_another_type_or_shape_is_refused() {
    let rsa_named_ed = ED25519.replace("ssh-ed25519", "ssh-rsa");
    for (line, expected) in [
        ("AAAA", "must be a public key line"),
        ("ssh-dss AAAA", "has key type \"ssh-dss\""),
        ("ssh-ed25519 !!!", "is not valid base64"),
        (rsa_named_ed.as_str(), "is not a ssh-rsa key"),
    ] {
        let problem = super::check_host_key(line).expect_err(line);
        assert!(problem.starts_with(expected), "{line}: {problem}");
    }
    super::check_host_key(ED25519).expect("a real host key");
}

#[test]
fn two_hosts_of_one_name_are_reported() {
    let host = format!("name: a\n    address: h\n    user: u\n    key: k\n    hostKey: {ED25519}");
    let yaml = format!("hosts:\n  - {host}\n  - {host}\n");
    let error = parse_document("gantry.yaml", &yaml).expect_err("duplicate");
    assert!(error.to_string().contains("host name \"a\""), "{error}");
}
