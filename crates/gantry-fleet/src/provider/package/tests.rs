use gantry_deploy::model::HostPackage;

use super::{check_names, script};

fn package(name: &str, version: &str, prefix: &str) -> HostPackage {
    HostPackage {
        name: name.to_owned(),
        version: version.to_owned(),
        prefix: prefix.to_owned(),
        distribution: "stable".to_owned(),
        component: "main".to_owned(),
        signed_by: None,
    }
}

#[test]
fn only_debian_names_and_versions_reach_the_host_script() {
    let check = |name, version, prefix, fits: bool| {
        assert_eq!(
            check_names(&package(name, version, prefix)).is_ok(),
            fits,
            "{name} {version} {prefix}"
        );
    };
    check("shop", "1:2.0~rc1+b1-3", "", true);
    check("lib.shop-tools", "1.0", "team/apps", true);
    check("shop;rm", "1.0", "", false);
    check("shop", "1.0'$(x)", "", false);
    check("shop", "1.0", "../etc", false);
    check("", "1.0", "", false);
}

#[test]
fn an_unsigned_publication_is_trusted_and_a_prefix_goes_into_the_url() {
    let text = script(&package("shop", "1.0", "team"), 40_000);
    assert!(text.contains("deb [trusted=yes] http://gantry-server/apt/team stable main"));
    assert!(text.contains("http://127.0.0.1:40000"));
    let mut signed = package("shop", "1.0", "");
    signed.signed_by = Some("-----BEGIN PGP PUBLIC KEY BLOCK-----\n…".to_owned());
    let text = script(&signed, 40_000);
    assert!(text.contains(
        "signed-by=/etc/apt/keyrings/gantry-server.asc] http://gantry-server/apt stable"
    ));
}
