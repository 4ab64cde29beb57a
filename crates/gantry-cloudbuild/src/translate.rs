//! A checked Cloud Build file, with its substitutions applied, as Gantry
//! steps.

use std::collections::BTreeMap;
use std::time::Duration;

use gantry_config::{Step, StepVolume};

use crate::CloudBuildError;
use crate::parse::{BuildFile, ObjectArtifacts, is_user_substitution, secret_name};
use crate::registries::{InsecureRegistries, RegistryMap};
use crate::substitute::{SubstitutionConfig, Substitutions, overridable_builtins, substitute};

/// Builder images replaced by others (`FROM=TO`). A target `host:PROGRAM`
/// runs the step's arguments with `PROGRAM` on the host instead of in a
/// container: `gcr.io/cloud-builders/docker=host:podman` makes
/// `docker build`/`docker push` steps build into the engine's own storage,
/// as they do on Google's workers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImageMap(pub BTreeMap<String, String>);

impl ImageMap {
    /// Reads `FROM=TO` entries.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<ImageMap, String> {
        let mut map = BTreeMap::new();
        for entry in entries {
            let entry = entry.as_ref();
            match entry.split_once('=') {
                Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                    map.insert(from.trim().to_owned(), to.trim().to_owned());
                }
                _ => return Err(format!("image map entry {entry:?} must be FROM=TO")),
            }
        }
        Ok(ImageMap(map))
    }

    /// What `image` resolves to: an exact entry, else the entry for the
    /// image without its tag.
    pub fn resolve(&self, image: &str) -> Option<&str> {
        if let Some(to) = self.0.get(image) {
            return Some(to);
        }
        let untagged = match image.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => name,
            _ => image,
        };
        self.0.get(untagged).map(String::as_str)
    }
}

/// What a build needs besides its file.
#[derive(Clone, Debug, Default)]
pub struct Translation {
    /// Built-in substitutions (`PROJECT_ID`, `BUILD_ID`, the git ones, …).
    pub builtins: BTreeMap<String, String>,
    /// User substitutions given with the build (they override the file's).
    pub overrides: BTreeMap<String, String>,
    pub image_map: ImageMap,
    /// Where images named in the file really go (`images:`, docker
    /// builder arguments, builder images).
    pub registry_map: RegistryMap,
    /// Registries the docker builder pushes to and pulls from without TLS.
    pub insecure_registries: InsecureRegistries,
}

/// Where a docker builder step run as a container finds the engine: the Docker API gate's
/// socket in the stage's run directory, `/gantry` in the container.
pub const DOCKER_BUILDER_HOST: &str = "unix:///gantry/docker.sock";

/// Cloud Build's home directory, shared by every step of a build.
pub const BUILDER_HOME: &str = "/builder/home";
/// The step volume that holds it.
const BUILDER_HOME_VOLUME: &str = "builder-home";

/// A build ready to run.
#[derive(Clone, Debug, Default)]
pub struct Build {
    pub steps: Vec<Step>,
    /// Pushed once every step succeeded.
    pub images: Vec<String>,
    /// Kept in the artifact store once every step succeeded.
    pub objects: Option<ObjectArtifacts>,
    pub timeout: Option<Duration>,
    /// `availableSecrets`: environment name → secret-store name, with
    /// substitutions applied.
    pub secrets: BTreeMap<String, String>,
    pub warnings: Vec<String>,
}

/// Reads and translates the file `text` (named `file` in messages) in one
/// pass, so that every problem either half finds is reported at once.
pub fn load(file: &str, text: &str, translation: &Translation) -> Result<Build, CloudBuildError> {
    let (build_file, mut errors) = crate::parse::read(file, text);
    if build_file.steps.is_empty() {
        // Nothing was read (the YAML itself is broken, or has no steps):
        // translating would only repeat that.
        return Err(CloudBuildError(errors));
    }
    match translate(&build_file, translation) {
        Ok(build) if errors.is_empty() => Ok(build),
        Ok(_) => Err(CloudBuildError(errors)),
        Err(CloudBuildError(mut more)) => {
            errors.append(&mut more);
            Err(CloudBuildError(errors))
        }
    }
}

pub fn translate(file: &BuildFile, translation: &Translation) -> Result<Build, CloudBuildError> {
    let mut errors = Vec::new();
    for key in translation.overrides.keys() {
        if let Some(why) = override_refusal(key) {
            errors.push(format!("substitution {key:?} cannot be given: {why}"));
        }
    }
    let mut values = translation.builtins.clone();
    values.extend(file.substitutions.clone());
    values.extend(translation.overrides.clone());
    let mut subs = Substitutions::with_config(
        values,
        SubstitutionConfig {
            allow_loose: file.allow_loose,
            dynamic: file.dynamic_substitutions,
        },
    );

    let mut secrets = BTreeMap::new();
    for (env, version) in &file.secret_versions {
        let version = substitute(&mut subs, version, "availableSecrets versionName");
        match secret_name(&version) {
            Some(name) => {
                secrets.insert(env.clone(), name);
            }
            None => errors.push(format!(
                "availableSecrets versionName {version:?} must look like projects/PROJECT/secrets/NAME/versions/VERSION"
            )),
        }
    }
    let options_env: Vec<String> = file
        .env
        .iter()
        .map(|e| substitute(&mut subs, e, "options env"))
        .collect();
    let mut steps = Vec::with_capacity(file.steps.len());
    // Images the docker builder steps tag, under the names they are built
    // as: a later step may use one as its builder (found in the engine's
    // storage, never pulled), as on Cloud Build's workers.
    let mut built_by_steps = std::collections::BTreeSet::new();
    for (index, raw) in file.steps.iter().enumerate() {
        let place = |field: &str| format!("step {} {field}", index + 1);
        let image = substitute(&mut subs, &raw.name, &place("name"));
        let args: Vec<String> = raw
            .args
            .iter()
            .map(|a| substitute(&mut subs, a, &place("args")))
            .collect();
        let entrypoint = raw
            .entrypoint
            .as_ref()
            .map(|e| substitute(&mut subs, e, &place("entrypoint")));
        let dir = raw
            .dir
            .as_ref()
            .map(|d| substitute(&mut subs, d, &place("dir")));
        let mut env = BTreeMap::new();
        if raw
            .automap_substitutions
            .unwrap_or(file.automap_substitutions)
        {
            env.extend(subs.values().clone());
            subs.use_all();
        }
        for entry in options_env.iter().cloned().chain(
            raw.env
                .iter()
                .map(|e| substitute(&mut subs, e, &place("env"))),
        ) {
            match entry.split_once('=') {
                Some((key, value)) => {
                    env.insert(key.to_owned(), value.to_owned());
                }
                None => errors.push(format!("{}: {entry:?} must be KEY=VALUE", place("env"))),
            }
        }
        let mut secret_env = Vec::new();
        for name in file.secret_env.iter().chain(&raw.secret_env) {
            match secrets.get(name) {
                Some(secret) if secret == name => secret_env.push(name.clone()),
                Some(secret) => secret_env.push(format!("{name}={secret}")),
                None => errors.push(format!(
                    "{}: {name:?} is not defined in availableSecrets.secretManager",
                    place("secretEnv")
                )),
            }
        }
        let mut volumes: Vec<StepVolume> = file
            .volumes
            .iter()
            .chain(&raw.volumes)
            .map(|(name, path)| StepVolume {
                name: name.clone(),
                path: path.clone(),
            })
            .collect();
        // As on Cloud Build: HOME is /builder/home, one volume all steps of
        // the build share (a login or a tool's cache survives to later
        // steps), unless the step says otherwise.
        env.entry("HOME".to_owned())
            .or_insert_with(|| BUILDER_HOME.to_owned());
        if !volumes.iter().any(|v| v.path == BUILDER_HOME) {
            volumes.push(StepVolume {
                name: BUILDER_HOME_VOLUME.to_owned(),
                path: BUILDER_HOME.to_owned(),
            });
        }
        let (entrypoint, args) = match &raw.script {
            Some(script) => {
                let mut argv = script_command(script);
                let program = argv.remove(0);
                (Some(program), argv)
            }
            None => (entrypoint, args),
        };
        let wait_for = raw.wait_for.as_ref().and_then(|list| wait_for(list));
        let mut step = Step {
            name: Some(raw.id.clone().unwrap_or_else(|| raw.name.clone())),
            script: None,
            command: None,
            env,
            dir,
            timeout: raw.timeout,
            on_interrupt: None,
            image: Some(image.clone()),
            entrypoint,
            args,
            volumes,
            id: raw.id.clone(),
            wait_for,
            allow_failure: raw.allow_failure,
            allow_exit_codes: raw.allow_exit_codes.clone(),
            secret_env,
            runs_on: Vec::new(),
        };
        if is_docker_builder(&image) {
            for arg in &mut step.args {
                if let Some(rewritten) = translation.registry_map.rewrite_argument(arg) {
                    *arg = rewritten;
                }
            }
        }
        let built_here = translation
            .registry_map
            .rewrite(&image)
            .unwrap_or_else(|| image.clone());
        if built_by_steps.contains(&built_here) {
            step.image = Some(built_here);
            if is_docker_builder(&image) {
                built_by_steps.extend(tagged_images(&step.args));
            }
            steps.push(step);
            continue;
        }
        if is_docker_builder(&image) {
            built_by_steps.extend(tagged_images(&step.args));
        }
        match translation.image_map.resolve(&image) {
            Some(target) => match target.strip_prefix("host:") {
                Some(program) => {
                    let entrypoint = step.entrypoint.take();
                    if entrypoint.is_none() && is_podman(program) {
                        without_tls_where_insecure(&mut step.args, &translation.insecure_registries);
                    }
                    let mut argv = vec![entrypoint.unwrap_or_else(|| program.to_owned())];
                    argv.append(&mut step.args);
                    // A step the host runs has the server's HOME; only
                    // the user's own volumes cannot follow it there.
                    step.volumes.retain(|v| v.path != BUILDER_HOME);
                    if step.env.get("HOME").map(String::as_str) == Some(BUILDER_HOME) {
                        step.env.remove("HOME");
                    }
                    if !step.volumes.is_empty() {
                        errors.push(format!(
                            "step {}: volumes cannot be mounted into {image:?}, which the image map runs on the host",
                            index + 1
                        ));
                    }
                    step.image = None;
                    step.command = Some(argv);
                    step.volumes.clear();
                }
                None => {
                    step.image = Some(target.to_owned());
                    if is_docker_builder(&image) {
                        // A docker CLI in a container: it reaches the engine through
                        // the Docker API gate in the stage's run directory, and only
                        // with the classic builder (no BuildKit session).
                        step.env
                            .entry("DOCKER_HOST".to_owned())
                            .or_insert_with(|| DOCKER_BUILDER_HOST.to_owned());
                        step.env
                            .entry("DOCKER_BUILDKIT".to_owned())
                            .or_insert_with(|| "0".to_owned());
                    }
                }
            },
            None => match translation.registry_map.rewrite(&image) {
                // A builder from the team's registry, under its real name.
                Some(rewritten) => step.image = Some(rewritten),
                None if is_google_builder(&image) => errors.push(format!(
                    "step {}: builder image {image:?} cannot be pulled here; map it to a local image with --image-map {}=IMAGE",
                    index + 1,
                    image.split(':').next().unwrap_or(&image)
                )),
                None => {}
            },
        }
        steps.push(step);
    }
    let images = file
        .images
        .iter()
        .map(|i| substitute(&mut subs, i, "images"))
        .map(|i| translation.registry_map.rewrite(&i).unwrap_or(i))
        .collect();
    let objects = file.objects.as_ref().map(|objects| ObjectArtifacts {
        location: substitute(&mut subs, &objects.location, "artifacts.objects location"),
        paths: objects
            .paths
            .iter()
            .map(|p| substitute(&mut subs, p, "artifacts.objects paths"))
            .collect(),
    });
    if let Err(mut found) = subs.finish() {
        errors.append(&mut found);
    }
    if !errors.is_empty() {
        return Err(CloudBuildError(errors));
    }
    Ok(Build {
        steps,
        images,
        objects,
        timeout: file.timeout,
        secrets,
        warnings: file.warnings.clone(),
    })
}

/// The images a docker builder step's arguments name as what it makes:
/// `build -t X` / `--tag X` / `--tag=X` (also `buildx build`), `tag SRC X`.
fn tagged_images(args: &[String]) -> Vec<String> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["tag", _, target, ..] => vec![(*target).to_owned()],
        ["build", rest @ ..] | ["buildx", "build", rest @ ..] => {
            let mut tags = Vec::new();
            let mut words = rest.iter();
            while let Some(word) = words.next() {
                if *word == "-t" || *word == "--tag" {
                    tags.extend(words.next().map(|tag| (*tag).to_owned()));
                } else if let Some(tag) = word.strip_prefix("--tag=") {
                    tags.push(tag.to_owned());
                }
            }
            tags
        }
        _ => Vec::new(),
    }
}

/// Cloud Build's docker builder, with or without a tag.
fn is_docker_builder(image: &str) -> bool {
    let untagged = match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => image,
    };
    untagged == "gcr.io/cloud-builders/docker"
}

fn is_podman(program: &str) -> bool {
    std::path::Path::new(program).file_name() == Some(std::ffi::OsStr::new("podman"))
}

/// `podman push IMAGE` and `podman pull IMAGE` to a registry without TLS
/// get `--tls-verify=false`, as Docker's daemon treats such registries (the
/// docker CLI has no such flag; podman verifies TLS everywhere unless
/// told).
fn without_tls_where_insecure(args: &mut Vec<String>, insecure: &InsecureRegistries) {
    let Some(command) = args.first() else { return };
    if command != "push" && command != "pull" {
        return;
    }
    if args.iter().any(|a| a.starts_with("--tls-verify")) {
        return;
    }
    let target = args[1..].iter().find(|a| !a.starts_with('-'));
    if target.is_some_and(|image| insecure.covers(image)) {
        args.insert(1, "--tls-verify=false".to_owned());
    }
}

/// Why `--substitutions` (or a trigger) cannot set `key`, if it cannot:
/// as with `gcloud builds submit`, only user substitutions and the
/// built-ins a trigger would take from the source.
fn override_refusal(key: &str) -> Option<String> {
    if is_user_substitution(key) || overridable_builtins().contains(&key) {
        return None;
    }
    let settable = overridable_builtins().join(", ");
    Some(match key {
        "PROJECT_ID" => "gantry build sets it from --project".to_owned(),
        "BUILD_ID" => "each build gets its own".to_owned(),
        _ if crate::substitute::builtin_names().contains(&key) => format!(
            "it is a built-in substitution the build sets itself; only {settable} and _USER substitutions can be given"
        ),
        _ => format!(
            "user substitutions must start with '_' and use only capital letters, digits and '_' (besides {settable})"
        ),
    })
}

/// The command a `script` runs as: the interpreter of its `#!` line (the
/// words of the line, then `-c`, or `-e` for the interpreters that take
/// their program that way) with the script, or `sh -c` without one, as
/// Cloud Build uses `#!/bin/sh` then.
pub fn script_command(script: &str) -> Vec<String> {
    let mut argv: Vec<String> = match script.strip_prefix("#!") {
        Some(rest) => rest
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    };
    if argv.is_empty() {
        argv.push("sh".to_owned());
    }
    let interpreter = argv
        .iter()
        .rev()
        .find(|word| !word.starts_with('-'))
        .map_or("sh", |word| word.rsplit('/').next().unwrap_or(word));
    let flag = match interpreter {
        "node" | "nodejs" | "perl" | "ruby" => "-e",
        _ => "-c",
    };
    argv.push(flag.to_owned());
    argv.push(script.to_owned());
    argv
}

/// `waitFor` as the engine reads it. Empty is the same as absent on Cloud
/// Build (wait for every earlier step); `-` is the build's start, so next
/// to step ids it adds nothing, and alone it means at once.
fn wait_for(list: &[String]) -> Option<Vec<String>> {
    let ids: Vec<String> = list.iter().filter(|id| *id != "-").cloned().collect();
    match (list.is_empty(), ids.is_empty()) {
        (true, _) => None,
        (false, true) => Some(vec!["-".to_owned()]),
        (false, false) => Some(ids),
    }
}

/// Google's builder registries, unreachable from here.
fn is_google_builder(image: &str) -> bool {
    [
        "gcr.io/",
        "us.gcr.io/",
        "eu.gcr.io/",
        "asia.gcr.io/",
        "us-docker.pkg.dev/",
    ]
    .iter()
    .any(|prefix| image.starts_with(prefix))
        || image.contains("-docker.pkg.dev/")
}
