//! What `gantry build --dry-run` makes of whole Cloud Build files, as gcloud
//! reads them: step lines, substitutions, secrets, and every problem at once.

use std::collections::BTreeMap;

use crate::{ImageMap, Translation};

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
            if let Some(objects) = &build.objects {
                out.push_str(&format!(
                    "objects {} {}\n",
                    objects.location,
                    objects.paths.join(" ")
                ));
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
        expect_test::expect![[r#"
            img: img | bash | ["-c", "for dir in a b; do echo $dir ${version} $1 $Path ${X:-y} $HOME; done; echo proj"] | HOME=/builder/home | all earlier
        "#]],
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
        expect_test::expect![[r#"
            img: img | - | ["echo $dir ${version} [] []"] | HOME=/builder/home | all earlier
        "#]],
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
            first: img | - | ["echo", "x"] | HOME=/builder/home | all earlier
            img: img | - | [] | HOME=/builder/home | -
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
        expect_test::expect![[r#"
            img: img | - | ["push", "europe-west1-docker.pkg.dev/proj/app:v1"] | HOME=/builder/home | all earlier
              secretEnv TOKEN=deploy-token
        "#]],
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
            img: img | sh | ["-c", "echo \"Hello $_USER in $PROJECT_ID\"\n"] | HOME=/builder/home _USER=ann | all earlier
            img: img | sh | ["-c", "echo plain"] | HOME=/builder/home | all earlier
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
            img: img | sh | ["-c", "echo \"$_USER\""] | HOME=/builder/home _USER=ann | all earlier
        "#]],
    );
}

#[test]
fn substitutions_flag_sets_the_builtins_gcloud_allows() {
    check(
        "# substitutions: TAG_NAME=v1.2,BRANCH_NAME=main,COMMIT_SHA=c0ffee,SHORT_SHA=c0f,REPO_NAME=shop,REVISION_ID=c0ffee\nsteps:\n- name: img\n  args: [$TAG_NAME $BRANCH_NAME $COMMIT_SHA $SHORT_SHA $REPO_NAME $REVISION_ID]\n",
        expect_test::expect![[r#"
            img: img | - | ["v1.2 main c0ffee c0f shop c0ffee"] | HOME=/builder/home | all earlier
        "#]],
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
            a: img | - | ["a"] | HOME=/builder/home | all earlier
            b: img | - | ["b"] | HOME=/builder/home | -
            img: img | - | ["all"] | HOME=/builder/home | all earlier
            img: img | - | ["after-a"] | HOME=/builder/home | a
            img: img | /usr/bin/env | ["bash", "-c", "#!/usr/bin/env bash\necho \"${BASH_VERSION}\"\n"] | HOME=/builder/home | all earlier
            img: img | /usr/bin/env | ["node", "-e", "#!/usr/bin/env node\nconsole.log(1)\n"] | HOME=/builder/home | all earlier
            img: img | /bin/bash | ["-eu", "-c", "#!/bin/bash -eu\ntrue\n"] | HOME=/builder/home | all earlier
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
        expect_test::expect![[r#"
            img: img | - | [] | HOME=/builder/home | all earlier
            images a b
        "#]],
    );
    check(
        "steps:\n- name: img\nartifacts:\n  objects:\n    location: gs://$PROJECT_ID-out/$SHORT_SHA/\n    paths: [out/*.tar.gz, report.txt]\n",
        expect_test::expect![[r#"
            img: img | - | [] | HOME=/builder/home | all earlier
            objects gs://proj-out/abc1234/ out/*.tar.gz report.txt
        "#]],
    );
    check(
        "steps:\n- name: img\nartifacts:\n  objects:\n    location: s3://bucket/\n    paths: [/etc/passwd, ../up]\n    acl: x\n",
        expect_test::expect![[r#"
            error: cloudbuild.yaml:7: unknown artifacts.objects field "acl"; expected location, paths
            error: cloudbuild.yaml:5: artifacts.objects location "s3://bucket/" must be gs://BUCKET[/DIR]
            error: cloudbuild.yaml:6: artifacts.objects path "/etc/passwd" must be relative to the workspace, without ..
            error: cloudbuild.yaml:6: artifacts.objects path "../up" must be relative to the workspace, without ..
        "#]],
    );
    check(
        "steps:\n- name: img\nartifacts:\n  objects:\n    location: gs://bucket/\n    paths: [out/*]\n  mavenArtifacts: []\n  pythonPackages: []\n  npmPackages: []\n  goModules: []\n  objcts: {}\n",
        expect_test::expect![[r#"
            error: cloudbuild.yaml:3: field "artifacts" is not supported by gantry build: Gantry does not store artifacts.goModules (Go modules uploaded to Artifact Registry)
            error: cloudbuild.yaml:3: field "artifacts" is not supported by gantry build: Gantry does not store artifacts.mavenArtifacts (Maven packages uploaded to Artifact Registry)
            error: cloudbuild.yaml:3: field "artifacts" is not supported by gantry build: Gantry does not store artifacts.npmPackages (npm packages uploaded to Artifact Registry)
            error: cloudbuild.yaml:11: unknown artifacts field "objcts"; did you mean "objects"?
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
            img: img | - | ["abc STAGING shop Shop feature/x x app-1.2 app-1", "a_b_c a+b-c fallback set ing"] | HOME=/builder/home | all earlier
        "#]],
    );
    // Without dynamicSubstitutions the shell gets them.
    check(
        "steps:\n- name: img\n  args: ['${SHORT_SHA:0:3} ${HOME:-x}']\n",
        expect_test::expect![[r#"
            img: img | - | ["${SHORT_SHA:0:3} ${HOME:-x}"] | HOME=/builder/home | all earlier
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
