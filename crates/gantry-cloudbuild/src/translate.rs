//! A checked Cloud Build file, with its substitutions applied, as Gantry
//! steps.

use std::collections::BTreeMap;
use std::time::Duration;

use gantry_config::{Step, StepVolume};

use crate::CloudBuildError;
use crate::parse::BuildFile;
use crate::substitute::{Substitutions, substitute};

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
}

/// A build ready to run.
#[derive(Clone, Debug, Default)]
pub struct Build {
    pub steps: Vec<Step>,
    /// Pushed once every step succeeded.
    pub images: Vec<String>,
    pub timeout: Option<Duration>,
    pub warnings: Vec<String>,
}

pub fn translate(file: &BuildFile, translation: &Translation) -> Result<Build, CloudBuildError> {
    let mut errors = Vec::new();
    for key in translation.overrides.keys() {
        if !crate::parse::is_user_substitution(key) {
            errors.push(format!(
                "substitution {key:?} must start with '_' and use only capital letters, digits and '_'"
            ));
        }
    }
    let mut values = translation.builtins.clone();
    values.extend(file.substitutions.clone());
    values.extend(translation.overrides.clone());
    let mut subs = Substitutions::new(values, file.allow_loose);

    let options_env: Vec<String> = file
        .env
        .iter()
        .map(|e| substitute(&mut subs, e, "options env"))
        .collect();
    let mut steps = Vec::with_capacity(file.steps.len());
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
            match file.secrets.get(name) {
                Some(secret) if secret == name => secret_env.push(name.clone()),
                Some(secret) => secret_env.push(format!("{name}={secret}")),
                None => errors.push(format!(
                    "{}: {name:?} is not defined in availableSecrets.secretManager",
                    place("secretEnv")
                )),
            }
        }
        let volumes = file
            .volumes
            .iter()
            .chain(&raw.volumes)
            .map(|(name, path)| StepVolume {
                name: name.clone(),
                path: path.clone(),
            })
            .collect();
        let (entrypoint, args) = match &raw.script {
            Some(script) => {
                let shell = script
                    .strip_prefix("#!")
                    .and_then(|rest| rest.lines().next())
                    .map(|line| line.trim().to_owned())
                    .unwrap_or_else(|| "sh".to_owned());
                (Some(shell), vec!["-c".to_owned(), script.clone()])
            }
            None => (entrypoint, args),
        };
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
            wait_for: raw.wait_for.clone(),
            allow_failure: raw.allow_failure,
            allow_exit_codes: raw.allow_exit_codes.clone(),
            secret_env,
        };
        match translation.image_map.resolve(&image) {
            Some(target) => match target.strip_prefix("host:") {
                Some(program) => {
                    let mut argv = vec![step.entrypoint.take().unwrap_or_else(|| program.to_owned())];
                    argv.append(&mut step.args);
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
                None => step.image = Some(target.to_owned()),
            },
            None if is_google_builder(&image) => errors.push(format!(
                "step {}: builder image {image:?} cannot be pulled here; map it to a local image with --image-map {}=IMAGE",
                index + 1,
                image.split(':').next().unwrap_or(&image)
            )),
            None => {}
        }
        steps.push(step);
    }
    let images = file
        .images
        .iter()
        .map(|i| substitute(&mut subs, i, "images"))
        .collect();
    if let Err(mut found) = subs.finish() {
        errors.append(&mut found);
    }
    if !errors.is_empty() {
        return Err(CloudBuildError(errors));
    }
    Ok(Build {
        steps,
        images,
        timeout: file.timeout,
        warnings: file.warnings.clone(),
    })
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
