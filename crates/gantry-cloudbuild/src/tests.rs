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
            "cb.yaml:4: field \"artifacts\" is not supported by gantry build: Gantry does not store artifacts.objects (files uploaded to a Cloud Storage bucket)",
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

/// `check(file, expected)`: what `gantry build --dry-run` makes of a Cloud
/// Build file, one line per step (`id: image | entrypoint | args | env |
/// waitFor`), then images and secrets, or every problem, one per line. A
/// first line `# substitutions: K=V,K=V` gives `--substitutions`.
fn check(file: &str, expected: expect_test::Expect) {
    let overrides = file
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("# substitutions: "))
        .map(|list| {
            list.split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let mut builtins: BTreeMap<String, String> = crate::builtin_names()
        .iter()
        .map(|n| (n.to_string(), String::new()))
        .collect();
    builtins.insert("PROJECT_ID".into(), "proj".into());
    builtins.insert("SHORT_SHA".into(), "abc1234".into());
    let translation = Translation {
        builtins: builtins.clone(),
        overrides,
        image_map: ImageMap::default(),
        ..Default::default()
    };
    let got = match crate::load("cloudbuild.yaml", file, &translation) {
        Ok(build) => {
            let mut out = String::new();
            for step in &build.steps {
                // Automapped built-ins are the same for every step: only
                // the variables that differ from them are shown.
                let env: Vec<String> = step
                    .env
                    .iter()
                    .filter(|(k, v)| builtins.get(*k) != Some(*v) || k.starts_with('_'))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                out.push_str(&format!(
                    "{}: {} | {} | {:?} | {} | {}\n",
                    step.name.as_deref().unwrap_or_default(),
                    step.image.as_deref().unwrap_or_default(),
                    step.entrypoint.as_deref().unwrap_or("-"),
                    step.args,
                    env.join(" "),
                    step.wait_for
                        .as_ref()
                        .map_or("all earlier".to_owned(), |w| w.join(",")),
                ));
                if !step.secret_env.is_empty() {
                    out.push_str(&format!("  secretEnv {}\n", step.secret_env.join(" ")));
                }
            }
            if !build.images.is_empty() {
                out.push_str(&format!("images {}\n", build.images.join(" ")));
            }
            for warning in &build.warnings {
                out.push_str(&format!("warning: {warning}\n"));
            }
            out
        }
        Err(errors) => errors.0.iter().map(|e| format!("error: {e}\n")).collect(),
    };
    expected.assert_eq(&got);
}

#[test]
fn lower_case_names_are_the_shells() {
    check(
        r#"
steps:
- name: img
  entrypoint: bash
  args: ['-c', 'for dir in a b; do echo $dir ${version} $1 $Path ${X:-y} $$HOME; done; echo $PROJECT_ID']
"#,
        expect_test::expect![[r##"
            img: img | bash | ["-c", "for dir in a b; do echo $dir ${version} $1 $Path ${X:-y} $HOME; done; echo proj"] |  | all earlier
        "##]],
    );
    // ALLOW_LOOSE blanks undefined substitutions, not the shell's variables.
    check(
        r#"
steps:
- name: img
  args: ['echo $dir ${version} [$_MISSING] [$NOPE]']
options:
  substitutionOption: ALLOW_LOOSE
"#,
        expect_test::expect![[r##"
            img: img | - | ["echo $dir ${version} [] []"] |  | all earlier
        "##]],
    );
    check(
        "steps:\n- name: img\n  args: ['$HOME']\n",
        expect_test::expect![[r##"
            error: step 1 args: $HOME is not a valid built-in substitution; write $$HOME to pass it to the shell
        "##]],
    );
}

#[test]
fn snake_case_keys_are_read_as_gcloud_reads_them() {
    check(
        r#"
steps:
- name: img
  id: first
  args: [echo, $_USED]
- name: img
  wait_for: ['-']
  allow_failure: true
  secret_env: [TOKEN]
substitutions:
  _USED: x
  _SPARE: y
options:
  substitution_option: ALLOW_LOOSE
  machine_type: E2_HIGHCPU_8
  log_streaming_option: STREAM_OFF
available_secrets:
  secret_manager:
  - version_name: projects/p/secrets/token/versions/1
    env: TOKEN
"#,
        expect_test::expect![[r#"
            first: img | - | ["echo", "x"] |  | all earlier
            img: img | - | [] |  | -
              secretEnv TOKEN=token
            warning: cloudbuild.yaml:16: options field "logStreamingOption" only applies on Google Cloud Build; ignored
            warning: cloudbuild.yaml:15: options field "machineType" only applies on Google Cloud Build; ignored
        "#]],
    );
}

#[test]
fn substitutions_refer_to_others_and_reach_available_secrets() {
    check(
        r#"
steps:
- name: img
  args: [push, $_IMAGE]
  secretEnv: [TOKEN]
substitutions:
  _REGION: europe-west1
  _TAG: v1
  _IMAGE: ${_REGION}-docker.pkg.dev/$PROJECT_ID/app:${_TAG}
  _SECRET: deploy-token
availableSecrets:
  secretManager:
  - versionName: projects/$PROJECT_ID/secrets/${_SECRET}/versions/latest
    env: TOKEN
"#,
        expect_test::expect![[r##"
            img: img | - | ["push", "europe-west1-docker.pkg.dev/proj/app:v1"] |  | all earlier
              secretEnv TOKEN=deploy-token
        "##]],
    );
    check(
        "steps:\n- name: img\n  args: [$_A]\nsubstitutions:\n  _A: a$_B\n  _B: b$_A\n",
        expect_test::expect![[r##"
            error: substitutions: _A → _B → _A refer to each other; Cloud Build cannot expand them
        "##]],
    );
}

#[test]
fn automapped_substitutions_are_the_scripts_environment() {
    check(
        r#"
steps:
- name: img
  script: |
    echo "Hello $_USER in $PROJECT_ID"
- name: img
  automapSubstitutions: false
  script: echo plain
substitutions:
  _USER: ann
options:
  automapSubstitutions: true
"#,
        expect_test::expect![[r#"
            img: img | sh | ["-c", "echo \"Hello $_USER in $PROJECT_ID\"\n"] | _USER=ann | all earlier
            img: img | sh | ["-c", "echo plain"] |  | all earlier
        "#]],
    );
    check(
        r#"
steps:
- name: img
  automapSubstitutions: true
  script: echo "$_USER"
substitutions:
  _USER: ann
"#,
        expect_test::expect![[r#"
            img: img | sh | ["-c", "echo \"$_USER\""] | _USER=ann | all earlier
        "#]],
    );
}

#[test]
fn substitutions_flag_sets_the_builtins_gcloud_allows() {
    check(
        "# substitutions: TAG_NAME=v1.2,BRANCH_NAME=main,COMMIT_SHA=c0ffee,SHORT_SHA=c0f,REPO_NAME=shop,REVISION_ID=c0ffee\nsteps:\n- name: img\n  args: [$TAG_NAME $BRANCH_NAME $COMMIT_SHA $SHORT_SHA $REPO_NAME $REVISION_ID]\n",
        expect_test::expect![[r##"
            img: img | - | ["v1.2 main c0ffee c0f shop c0ffee"] |  | all earlier
        "##]],
    );
    check(
        "# substitutions: PROJECT_ID=other,BUILD_ID=b,LOCATION=eu,lower=x\nsteps:\n- name: img\n  args: [$PROJECT_ID]\n",
        expect_test::expect![[r##"
            error: substitution "BUILD_ID" cannot be given: each build gets its own
            error: substitution "LOCATION" cannot be given: it is a built-in substitution the build sets itself; only COMMIT_SHA, REVISION_ID, SHORT_SHA, REPO_NAME, BRANCH_NAME, TAG_NAME and _USER substitutions can be given
            error: substitution "PROJECT_ID" cannot be given: gantry build sets it from --project
            error: substitution "lower" cannot be given: user substitutions must start with '_' and use only capital letters, digits and '_' (besides COMMIT_SHA, REVISION_ID, SHORT_SHA, REPO_NAME, BRANCH_NAME, TAG_NAME)
        "##]],
    );
}

#[test]
fn wait_for_and_scripts_behave_as_on_cloud_build() {
    check(
        r#"
steps:
- name: img
  id: a
  args: [a]
- name: img
  id: b
  waitFor: ['-']
  args: [b]
- name: img
  waitFor: []
  args: [all]
- name: img
  waitFor: ['-', a]
  args: [after-a]
- name: img
  script: |
    #!/usr/bin/env bash
    echo "${BASH_VERSION}"
- name: img
  script: |
    #!/usr/bin/env node
    console.log(1)
- name: img
  script: |
    #!/bin/bash -eu
    true
"#,
        expect_test::expect![[r##"
            a: img | - | ["a"] |  | all earlier
            b: img | - | ["b"] |  | -
            img: img | - | ["all"] |  | all earlier
            img: img | - | ["after-a"] |  | a
            img: img | /usr/bin/env | ["bash", "-c", "#!/usr/bin/env bash\necho \"${BASH_VERSION}\"\n"] |  | all earlier
            img: img | /usr/bin/env | ["node", "-e", "#!/usr/bin/env node\nconsole.log(1)\n"] |  | all earlier
            img: img | /bin/bash | ["-eu", "-c", "#!/bin/bash -eu\ntrue\n"] |  | all earlier
        "##]],
    );
}

#[test]
fn a_dry_run_reports_every_problem_at_once_with_its_line() {
    check(
        r#"steps:
- name: img
  id: build
  args: [ok]
- name: img
  id: build
  waitFor: [tset, later]
  dir: /src
  timeout: 900s
- name: img
  id: later
  script: echo hi
  args: [no]
  waitfor: [build]
- name: img
  dir: ../up
  args: [$_NOPE]
timeout: 600s
"#,
        expect_test::expect![[r#"
            error: cloudbuild.yaml:14: unknown step 3 ("later") field "waitfor"; did you mean "waitFor"?
            error: cloudbuild.yaml:12: step 3 ("later") has both "script" and "args"; give one
            error: cloudbuild.yaml:7: step 2 ("build") waits for "tset", which is not the id of any step
            error: cloudbuild.yaml:7: step 2 ("build") waits for "later", which comes later in the file; a step can only wait for earlier ones
            error: cloudbuild.yaml:6: step 2 ("build") has the id "build" of step 1 too; ids must be unique
            error: cloudbuild.yaml:8: step 2 ("build") dir "/src" is absolute; gantry build runs steps inside /workspace, so give a path relative to it
            error: cloudbuild.yaml:9: step 2 ("build") timeout 900s is longer than the build's timeout, 600s; Cloud Build refuses it
            error: cloudbuild.yaml:16: step 4 dir "../up" leaves the workspace; gantry build runs steps inside /workspace, so give a path relative to it
            error: step 4 args: substitution $_NOPE is not defined; define it in "substitutions" or with --substitutions, or write $$ for a literal $
        "#]],
    );
    check(
        "steps:\n- name: img\n  timeout: 20m\n",
        expect_test::expect![[r##"
            error: cloudbuild.yaml:3: step 1 timeout 1200s is longer than Cloud Build's default build timeout (no top-level "timeout"), 600s; Cloud Build refuses it
        "##]],
    );
}

#[test]
fn several_yaml_documents_are_a_problem_of_the_file() {
    check(
        "steps:\n- name: img\n---\nsteps:\n- name: other\n",
        expect_test::expect![[r##"
            error: cloudbuild.yaml holds 2 YAML documents; Cloud Build reads one (remove the "---" lines between them, or split the file)
        "##]],
    );
}

#[test]
fn artifacts_are_read_and_the_kinds_not_stored_refused_by_name() {
    check(
        "steps:\n- name: img\nimages: [a]\nartifacts:\n  images: [a, b]\n",
        expect_test::expect![[r##"
            img: img | - | [] |  | all earlier
            images a b
        "##]],
    );
    check(
        "steps:\n- name: img\nartifacts:\n  objects:\n    location: gs://bucket/\n    paths: [out/*]\n  mavenArtifacts: []\n  pythonPackages: []\n  npmPackages: []\n  goModules: []\n  objcts: {}\n",
        expect_test::expect![[r#"
            error: cloudbuild.yaml:3: field "artifacts" is not supported by gantry build: Gantry does not store artifacts.goModules (Go modules uploaded to Artifact Registry)
            error: cloudbuild.yaml:3: field "artifacts" is not supported by gantry build: Gantry does not store artifacts.mavenArtifacts (Maven packages uploaded to Artifact Registry)
            error: cloudbuild.yaml:3: field "artifacts" is not supported by gantry build: Gantry does not store artifacts.npmPackages (npm packages uploaded to Artifact Registry)
            error: cloudbuild.yaml:11: unknown artifacts field "objcts"; did you mean "objects"?
            error: cloudbuild.yaml:3: field "artifacts" is not supported by gantry build: Gantry does not store artifacts.objects (files uploaded to a Cloud Storage bucket)
            error: cloudbuild.yaml:3: field "artifacts" is not supported by gantry build: Gantry does not store artifacts.pythonPackages (Python packages uploaded to Artifact Registry)
        "#]],
    );
}

#[test]
fn dynamic_substitutions_evaluate_bash_expansions() {
    check(
        r#"
steps:
- name: img
  args:
  - '${SHORT_SHA:0:3} ${_ENV^^} ${_NAME,,} ${_NAME^} ${_REF#refs/heads/} ${_REF##*/} ${_FILE%.tar.gz} ${_FILE%%.*}'
  - '${_DASHED//-/_} ${_DASHED/-/+} ${_EMPTY:-fallback} ${_ENV:+set} ${_ENV: -3}'
substitutions:
  _ENV: staging
  _NAME: Shop
  _REF: refs/heads/feature/x
  _FILE: app-1.2.tar.gz
  _DASHED: a-b-c
  _EMPTY: ''
options:
  dynamicSubstitutions: true
"#,
        expect_test::expect![[r#"
            img: img | - | ["abc STAGING shop Shop feature/x x app-1.2 app-1", "a_b_c a+b-c fallback set ing"] |  | all earlier
        "#]],
    );
    // Without dynamicSubstitutions the shell gets them.
    check(
        "steps:\n- name: img\n  args: ['${SHORT_SHA:0:3} ${HOME:-x}']\n",
        expect_test::expect![[r#"
            img: img | - | ["${SHORT_SHA:0:3} ${HOME:-x}"] |  | all earlier
        "#]],
    );
    check(
        "steps:\n- name: img\n  args: ['${_A/a*/b} ${_A:x} ${HOME:-x}']\nsubstitutions:\n  _A: abc\noptions:\n  dynamicSubstitutions: true\n",
        expect_test::expect![[r#"
            error: step 1 args: ${_A/a*/b}: replacing a pattern with wildcards is not supported by gantry build; use a literal pattern
            error: step 1 args: ${_A:x}: "x" is not a number
            error: step 1 args: $HOME is not a valid built-in substitution; write $$HOME to pass it to the shell
        "#]],
    );
}
