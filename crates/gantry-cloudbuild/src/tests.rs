mod dry_run;

use std::collections::BTreeMap;

use crate::{
    ImageMap, InsecureRegistries, RegistryMap, Substitutions, Translation, parse, substitute,
    translate,
};

fn subs(pairs: &[(&str, &str)], loose: bool) -> Substitutions {
    Substitutions::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        loose,
    )
}

/// `check_text(text, substitutions, loose, expected)`: the text after
/// substitution, or the errors.
fn check_text(text: &str, pairs: &[(&str, &str)], loose: bool, expected: &str) {
    let mut s = subs(pairs, loose);
    let out = substitute(&mut s, text, "args");
    let got = match s.finish() {
        Ok(()) => out,
        Err(errors) => errors.join("\n"),
    };
    assert_eq!(got, expected, "{text}");
}

#[test]
fn substitution_rules() {
    let builtins = [("PROJECT_ID", "p"), ("SHORT_SHA", "abc1234")];
    check_text(
        "gcr.io/$PROJECT_ID/app:$SHORT_SHA",
        &builtins,
        false,
        "gcr.io/p/app:abc1234",
    );
    check_text("${PROJECT_ID}x", &builtins, false, "px");
    check_text("$$HOME and $$1", &builtins, false, "$HOME and $1");
    check_text(
        "cost: 5$ or $ alone",
        &builtins,
        false,
        "cost: 5$ or $ alone",
    );
    check_text("v=$_VERSION", &[("_VERSION", "1.2")], false, "v=1.2");
    check_text(
        "$HOME",
        &builtins,
        false,
        "args: $HOME is not a valid built-in substitution; write $$HOME to pass it to the shell",
    );
    check_text(
        "$_MISSING",
        &[],
        false,
        "args: substitution $_MISSING is not defined; define it in \"substitutions\" or with --substitutions, or write $$ for a literal $",
    );
    check_text(
        "nothing",
        &[("_UNUSED", "x")],
        false,
        "substitution \"_UNUSED\" is not used anywhere in the build; remove it or set options.substitutionOption: ALLOW_LOOSE",
    );
    // ALLOW_LOOSE: undefined is empty, unused is fine.
    check_text("[$_MISSING]", &[("_UNUSED", "x")], true, "[]");
}

const BUILD: &str = r#"
steps:
- name: localhost/base
  id: test
  entrypoint: sh
  args: ['-c', 'echo $_GREETING $$USER > /workspace/out']
  env: ['A=$PROJECT_ID']
- name: gcr.io/cloud-builders/docker
  args: ['build', '-t', 'localhost:5000/app:$SHORT_SHA', '.']
  waitFor: ['-']
- name: localhost/base
  script: |
    echo scripted
  secretEnv: ['TOKEN']
  volumes:
  - name: cache
    path: /cache
substitutions:
  _GREETING: hello
options:
  env: ['B=1']
  machineType: E2_HIGHCPU_8
availableSecrets:
  secretManager:
  - versionName: projects/p/secrets/deploy-token/versions/latest
    env: TOKEN
images: ['localhost:5000/app:$SHORT_SHA']
logsBucket: gs://bucket
"#;

fn translation() -> Translation {
    Translation {
        builtins: BTreeMap::from([
            ("PROJECT_ID".to_owned(), "proj".to_owned()),
            ("SHORT_SHA".to_owned(), "abc1234".to_owned()),
        ]),
        overrides: BTreeMap::new(),
        image_map: ImageMap::parse(&["gcr.io/cloud-builders/docker=host:podman"]).unwrap(),
        ..Default::default()
    }
}

#[test]
fn a_registry_map_sends_the_files_images_to_the_teams_registry_unchanged() {
    let text = r#"
steps:
- name: gcr.io/cloud-builders/docker
  args: ['build', '-t', 'gcr.io/$PROJECT_ID/app:$SHORT_SHA', '--cache-from=gcr.io/$PROJECT_ID/app:latest', '.']
- name: gcr.io/cloud-builders/docker
  args: ['push', 'gcr.io/$PROJECT_ID/app:$SHORT_SHA']
- name: gcr.io/$PROJECT_ID/custom-builder
  args: ['gcr.io/$PROJECT_ID/app']
- name: gcr.io/cloud-builders/docker
  args: ['push', 'registry.lan:5000/app']
images: ['gcr.io/$PROJECT_ID/app:$SHORT_SHA']
"#;
    let file = parse("cloudbuild.yaml", text).unwrap();
    let mut translation = translation();
    translation.registry_map = RegistryMap::parse(&["gcr.io/proj=127.0.0.1:5000/proj"]).unwrap();
    translation.insecure_registries = InsecureRegistries(vec!["registry.lan:5000".into()]);
    let build = translate(&file, &translation).unwrap();
    assert_eq!(build.images, ["127.0.0.1:5000/proj/app:abc1234"]);
    let [built, pushed, custom, lan] = build.steps.as_slice() else {
        panic!("four steps: {:?}", build.steps);
    };
    assert_eq!(
        built.command.as_deref().unwrap(),
        [
            "podman",
            "build",
            "-t",
            "127.0.0.1:5000/proj/app:abc1234",
            "--cache-from=127.0.0.1:5000/proj/app:latest",
            "."
        ]
    );
    assert_eq!(
        pushed.command.as_deref().unwrap(),
        [
            "podman",
            "push",
            "--tls-verify=false",
            "127.0.0.1:5000/proj/app:abc1234"
        ],
        "a loopback registry is reached without TLS"
    );
    assert_eq!(
        custom.image.as_deref(),
        Some("127.0.0.1:5000/proj/custom-builder")
    );
    assert_eq!(
        custom.args,
        ["gcr.io/proj/app"],
        "only the docker builder's arguments are image references"
    );
    assert_eq!(
        lan.command.as_deref().unwrap(),
        [
            "podman",
            "push",
            "--tls-verify=false",
            "registry.lan:5000/app"
        ]
    );
}

#[test]
fn a_build_translates_to_steps() {
    let file = parse("cloudbuild.yaml", BUILD).unwrap();
    assert_eq!(
        file.warnings,
        [
            "cloudbuild.yaml:28: field \"logsBucket\" only applies on Google Cloud Build; ignored",
            "cloudbuild.yaml:22: options field \"machineType\" only applies on Google Cloud Build; ignored",
        ]
    );
    let build = translate(&file, &translation()).unwrap();
    assert_eq!(build.images, ["localhost:5000/app:abc1234"]);
    let [test, image, scripted] = build.steps.as_slice() else {
        panic!("three steps: {:?}", build.steps);
    };
    assert_eq!(test.image.as_deref(), Some("localhost/base"));
    assert_eq!(test.args[1], "echo hello $USER > /workspace/out");
    assert_eq!(test.env["A"], "proj");
    assert_eq!(test.env["B"], "1");
    assert_eq!(image.image, None, "mapped to the host's engine");
    assert_eq!(
        image.command.as_deref().unwrap(),
        ["podman", "build", "-t", "localhost:5000/app:abc1234", "."]
    );
    assert_eq!(image.wait_for.as_deref().unwrap(), ["-"]);
    assert_eq!(scripted.entrypoint.as_deref(), Some("sh"));
    assert_eq!(scripted.args, ["-c", "echo scripted\n"]);
    assert_eq!(scripted.secret_env, ["TOKEN=deploy-token"]);
    assert_eq!(scripted.volumes[0].name, "cache");
}

#[test]
fn unsupported_and_unknown_fields_are_errors() {
    let text = "steps:\n- name: a\n  bogus: 1\nartifacts:\n  objects: {}\noptions:\n  dynamicSubstitutions: true\n  pool: {}\n";
    let (file, errors) = crate::parse::read("cb.yaml", text);
    let error = errors
        .into_iter()
        .chain(file.warnings)
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        error,
        [
            "cb.yaml:3: unknown step 1 field \"bogus\"; expected one of: name, args, entrypoint, env, dir, id, waitFor, secretEnv, volumes, timeout, script, allowFailure, allowExitCodes, automapSubstitutions",
            "cb.yaml:5: artifacts.objects needs a \"location\" (gs://BUCKET/DIR/)",
            "cb.yaml:5: artifacts.objects needs \"paths\": the workspace files to keep",
            "cb.yaml:8: options field \"pool\" only applies on Google Cloud Build; ignored",
        ]
        .join("\n")
    );
}

#[test]
fn google_builders_need_an_image_map_entry() {
    let file = parse(
        "cb.yaml",
        "steps:\n- name: gcr.io/cloud-builders/go\n  args: [version]\n",
    )
    .unwrap();
    let error = translate(&file, &Translation::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "step 1: builder image \"gcr.io/cloud-builders/go\" cannot be pulled here; map it to a local image with --image-map gcr.io/cloud-builders/go=IMAGE"
    );
    let translation = Translation {
        image_map: ImageMap::parse(&["gcr.io/cloud-builders/go=localhost/go:1"]).unwrap(),
        ..Translation::default()
    };
    let build = translate(&file, &translation).unwrap();
    assert_eq!(build.steps[0].image.as_deref(), Some("localhost/go:1"));
}

#[test]
fn secret_env_must_be_declared() {
    let file = parse("cb.yaml", "steps:\n- name: a\n  secretEnv: [X]\n").unwrap();
    let error = translate(&file, &Translation::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "step 1 secretEnv: \"X\" is not defined in availableSecrets.secretManager"
    );
}
