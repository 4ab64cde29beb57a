//! Reading a Cloud Build file into [`BuildFile`], collecting every problem.
//!
//! Keys are read as `gcloud` reads them: snake_case spellings
//! (`substitution_option`, `wait_for`) are converted to camelCase first,
//! except under `substitutions` and `secretEnv`, whose keys are the user's.
//! Steps are numbered from 1 in messages, the Nth step of the file, each
//! message carrying the file's line; Cloud Build's console counts the same
//! steps from 0 ("Step #0").

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::CloudBuildError;
pub use crate::checks::DEFAULT_BUILD_TIMEOUT;
use crate::fields;
use crate::locate::{Locator, Scope, camel_case};

/// A Cloud Build file, read and checked, before substitutions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BuildFile {
    pub steps: Vec<BuildStep>,
    pub timeout: Option<Duration>,
    pub substitutions: BTreeMap<String, String>,
    /// `options.env`: `KEY=VALUE` for every step.
    pub env: Vec<String>,
    /// `options.secretEnv`.
    pub secret_env: Vec<String>,
    /// `options.volumes`: mounted in every step.
    pub volumes: Vec<(String, String)>,
    /// `options.substitutionOption: ALLOW_LOOSE`.
    pub allow_loose: bool,
    pub automap_substitutions: bool,
    /// `options.dynamicSubstitutions`: bash parameter expansions in
    /// `${NAME…}` (references between substitutions are expanded either
    /// way, as triggers always do).
    pub dynamic_substitutions: bool,
    /// `availableSecrets.secretManager`: environment name → secret name,
    /// as written (substitutions in it are applied by `translate`).
    pub secrets: BTreeMap<String, String>,
    /// `availableSecrets.secretManager`: environment name → `versionName`
    /// as written.
    pub secret_versions: BTreeMap<String, String>,
    /// Pushed once every step succeeded (`images` and `artifacts.images`).
    pub images: Vec<String>,
    /// `artifacts.objects`: workspace files kept once every step succeeded.
    pub objects: Option<ObjectArtifacts>,
    /// Fields that only matter on Google's service.
    pub warnings: Vec<String>,
}

/// `artifacts.objects`: files of the workspace (`paths`, globs) that Cloud Build uploads to a
/// bucket (`location`, `gs://BUCKET/DIR/`) and Gantry keeps in its artifact store under that
/// location's name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectArtifacts {
    pub location: String,
    pub paths: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct BuildStep {
    /// The builder image.
    pub name: String,
    pub args: Vec<String>,
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub dir: Option<String>,
    pub id: Option<String>,
    pub wait_for: Option<Vec<String>>,
    pub secret_env: Vec<String>,
    pub volumes: Vec<(String, String)>,
    pub timeout: Option<Duration>,
    pub script: Option<String>,
    pub allow_failure: bool,
    pub allow_exit_codes: Vec<i32>,
    pub automap_substitutions: Option<bool>,
    /// The line of the file where the step starts, when known.
    pub line: Option<usize>,
}

/// Parses `text` (named `file` in messages). All problems are reported at
/// once; Google-only fields become warnings in the result.
pub fn parse(file: &str, text: &str) -> Result<BuildFile, CloudBuildError> {
    let (build, errors) = read(file, text);
    if errors.is_empty() {
        Ok(build)
    } else {
        Err(CloudBuildError(errors))
    }
}

/// What [`parse`] reads, and its problems: the build holds every part that
/// could be read, so that translating it can find the problems that come
/// later in the same pass.
pub(crate) fn read(file: &str, text: &str) -> (BuildFile, Vec<String>) {
    let root: Value = match serde_saphyr::from_str(text) {
        Ok(root) => root,
        Err(error) => return (BuildFile::default(), vec![load_error(file, text, error)]),
    };
    let root = camelize(root);
    let mut r = Reader {
        file,
        at: Locator::new(text),
        errors: Vec::new(),
        build: BuildFile::default(),
    };
    match &root {
        Value::Object(map) => r.top(map),
        _ => r.error(
            Scope::Top,
            None,
            "a Cloud Build file must be a mapping with \"steps\"".to_owned(),
        ),
    }
    (r.build, r.errors)
}

/// A file the YAML reader refused: several documents get a message about
/// the file, anything else the reader's own.
fn load_error(file: &str, text: &str, error: serde_saphyr::Error) -> String {
    if let Ok(documents) = serde_saphyr::from_multiple::<Value>(text) {
        let count = documents.iter().filter(|d| !d.is_null()).count();
        if count > 1 {
            return format!(
                "{file} holds {count} YAML documents; Cloud Build reads one (remove the \"---\" lines between them, or split the file)"
            );
        }
    }
    format!("{file}: {error}")
}

/// Keys in camelCase, as `gcloud` sends them: it converts every key of the
/// file except those under these fields, which are the user's names.
fn camelize(value: Value) -> Value {
    const KEEP: &[&str] = &[
        "secretEnv",
        "secret_env",
        "substitutions",
        "envMap",
        "env_map",
    ];
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let value = if KEEP.contains(&key.as_str()) {
                        value
                    } else {
                        camelize(value)
                    };
                    (camel_case(&key), value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(camelize).collect()),
        other => other,
    }
}

struct Reader<'a> {
    file: &'a str,
    at: Locator<'a>,
    errors: Vec<String>,
    build: BuildFile,
}

impl Reader<'_> {
    /// `FILE:LINE: message`, the line being where `key` is written in
    /// `scope` (or where the step starts).
    fn error(&mut self, scope: Scope, key: Option<&str>, message: String) {
        let line = match (key, scope) {
            (Some(key), scope) => self.at.key(scope, key),
            (None, Scope::Step(index)) => self.at.step(index),
            (None, _) => None,
        };
        let text = self.located(line, &message);
        self.errors.push(text);
    }

    fn located(&self, line: Option<usize>, message: &str) -> String {
        match line {
            Some(line) => format!("{}:{line}: {message}", self.file),
            None => format!("{}: {message}", self.file),
        }
    }

    fn sort_fields(
        &mut self,
        map: &Map<String, Value>,
        scope: Scope,
        what: &str,
        known: &[&str],
        google_only: &[&str],
        unsupported: &[&str],
    ) {
        for key in map.keys() {
            let key = key.as_str();
            if known.contains(&key) {
                continue;
            }
            if google_only.contains(&key) {
                let line = self.at.key(scope, key);
                let warning = self.located(
                    line,
                    &format!("{what}field {key:?} only applies on Google Cloud Build; ignored"),
                );
                self.build.warnings.push(warning);
            } else if unsupported.contains(&key) {
                self.error(
                    scope,
                    Some(key),
                    format!("{what}field {key:?} is not supported by gantry build"),
                );
            } else {
                let all = known.iter().chain(google_only).chain(unsupported).copied();
                let message = match fields::closest(key, all) {
                    Some(near) => format!("unknown {what}field {key:?}; did you mean {near:?}?"),
                    None => format!(
                        "unknown {what}field {key:?}; expected one of: {}",
                        known.join(", ")
                    ),
                };
                self.error(scope, Some(key), message);
            }
        }
    }

    fn top(&mut self, map: &Map<String, Value>) {
        self.sort_fields(
            map,
            Scope::Top,
            "",
            fields::TOP,
            fields::TOP_GOOGLE_ONLY,
            fields::TOP_UNSUPPORTED,
        );
        match map.get("steps") {
            Some(Value::Array(steps)) if !steps.is_empty() => {
                for (index, step) in steps.iter().enumerate() {
                    self.step(index, step);
                }
            }
            Some(Value::Array(_)) => {
                self.error(Scope::Top, Some("steps"), "\"steps\" is empty".to_owned())
            }
            Some(_) => self.error(
                Scope::Top,
                Some("steps"),
                "\"steps\" must be a list".to_owned(),
            ),
            None => self.error(Scope::Top, None, "no \"steps\"".to_owned()),
        }
        self.build.timeout = self.duration(map, Scope::Top, "timeout", "");
        self.build.substitutions = self.string_map(map, "substitutions");
        for key in self.build.substitutions.clone().keys() {
            if !is_user_substitution(key) {
                self.error(
                    Scope::Block("substitutions"),
                    Some(key),
                    format!(
                        "substitution {key:?} must start with '_' and use only capital letters, digits and '_'"
                    ),
                );
            }
        }
        self.build.images = self.strings(map, Scope::Top, "images", "");
        if let Some(artifacts) = map.get("artifacts") {
            self.artifacts(artifacts);
        }
        if let Some(options) = map.get("options") {
            self.options(options);
        }
        if let Some(secrets) = map.get("availableSecrets") {
            self.available_secrets(secrets);
        }
        self.check_steps();
    }

    /// `artifacts.images` joins `images`; the kinds Gantry does not store
    /// are refused by name.
    fn artifacts(&mut self, value: &Value) {
        let Value::Object(map) = value else {
            return self.error(
                Scope::Top,
                Some("artifacts"),
                "\"artifacts\" must be a mapping".to_owned(),
            );
        };
        for key in map.keys() {
            match fields::ARTIFACT_KINDS.iter().find(|(kind, _)| kind == key) {
                Some(("images", _)) => {}
                Some(("objects", _)) => self.objects(&map[key]),
                Some((kind, what)) => self.error(
                    Scope::Top,
                    Some("artifacts"),
                    format!(
                        "field \"artifacts\" is not supported by gantry build: Gantry does not store artifacts.{kind} ({what})"
                    ),
                ),
                None => {
                    let kinds = fields::ARTIFACT_KINDS.iter().map(|(kind, _)| *kind);
                    let hint = match fields::closest(key, kinds) {
                        Some(near) => format!("did you mean {near:?}?"),
                        None => "expected one of: images, objects, mavenArtifacts, pythonPackages, npmPackages, goModules".to_owned(),
                    };
                    self.error(
                        Scope::Block("artifacts"),
                        Some(key),
                        format!("unknown artifacts field {key:?}; {hint}"),
                    );
                }
            }
        }
        for image in self.strings(map, Scope::Block("artifacts"), "images", "artifacts ") {
            if !self.build.images.contains(&image) {
                self.build.images.push(image);
            }
        }
    }

    /// `artifacts.objects: {location: gs://…, paths: [globs]}`.
    fn objects(&mut self, value: &Value) {
        let scope = Scope::Block("artifacts");
        let Value::Object(map) = value else {
            return self.error(
                scope,
                Some("objects"),
                "\"artifacts.objects\" must be a mapping with location and paths".to_owned(),
            );
        };
        for key in map
            .keys()
            .filter(|k| !["location", "paths"].contains(&k.as_str()))
        {
            self.error(
                scope,
                Some(key),
                format!("unknown artifacts.objects field {key:?}; expected location, paths"),
            );
        }
        let location = self.string(map, scope, "location", "artifacts.objects ");
        let paths = self.strings(map, scope, "paths", "artifacts.objects ");
        match &location {
            None => self.error(
                scope,
                Some("objects"),
                "artifacts.objects needs a \"location\" (gs://BUCKET/DIR/)".to_owned(),
            ),
            Some(location) if !location.starts_with("gs://") || location.len() <= "gs://".len() => {
                self.error(
                    scope,
                    Some("location"),
                    format!("artifacts.objects location {location:?} must be gs://BUCKET[/DIR]"),
                )
            }
            Some(_) => {}
        }
        if paths.is_empty() {
            self.error(
                scope,
                Some("objects"),
                "artifacts.objects needs \"paths\": the workspace files to keep".to_owned(),
            );
        }
        for path in &paths {
            if path.starts_with('/') || path.split('/').any(|part| part == "..") {
                self.error(
                    scope,
                    Some("paths"),
                    format!("artifacts.objects path {path:?} must be relative to the workspace, without .."),
                );
            }
        }
        if let Some(location) = location {
            self.build.objects = Some(ObjectArtifacts { location, paths });
        }
    }

    fn options(&mut self, options: &Value) {
        let Value::Object(map) = options else {
            return self.error(
                Scope::Top,
                Some("options"),
                "\"options\" must be a mapping".to_owned(),
            );
        };
        let scope = Scope::Block("options");
        self.sort_fields(
            map,
            scope,
            "options ",
            fields::OPTIONS,
            fields::OPTIONS_GOOGLE_ONLY,
            fields::OPTIONS_UNSUPPORTED,
        );
        self.build.env = self.strings(map, scope, "env", "options ");
        self.build.secret_env = self.strings(map, scope, "secretEnv", "options ");
        self.build.volumes = self.volumes(map, scope, "options ");
        self.build.automap_substitutions =
            self.bool(map, scope, "automapSubstitutions", "options ");
        self.build.dynamic_substitutions =
            self.bool(map, scope, "dynamicSubstitutions", "options ");
        match map.get("substitutionOption").map(|v| v.as_str()) {
            None => {}
            Some(Some("ALLOW_LOOSE")) => self.build.allow_loose = true,
            Some(Some("MUST_MATCH")) => {}
            Some(_) => self.error(
                scope,
                Some("substitutionOption"),
                "options substitutionOption must be MUST_MATCH or ALLOW_LOOSE".to_owned(),
            ),
        }
    }

    fn available_secrets(&mut self, value: &Value) {
        let scope = Scope::Block("availableSecrets");
        let Value::Object(map) = value else {
            return self.error(
                Scope::Top,
                Some("availableSecrets"),
                "\"availableSecrets\" must be a mapping".to_owned(),
            );
        };
        for key in map.keys() {
            if key != "secretManager" {
                self.error(
                    scope,
                    Some(key),
                    format!(
                        "availableSecrets field {key:?} is not supported; use secretManager (mapped to Gantry's secret store)"
                    ),
                );
            }
        }
        let Some(Value::Array(entries)) = map.get("secretManager") else {
            return;
        };
        for entry in entries {
            let version = entry["versionName"].as_str();
            let env = entry["env"].as_str();
            match (version, env) {
                (Some(version), Some(env)) => match secret_name(version) {
                    Some(name) => {
                        self.build.secrets.insert(env.to_owned(), name);
                        self.build
                            .secret_versions
                            .insert(env.to_owned(), version.to_owned());
                    }
                    None => self.error(
                        scope,
                        Some("versionName"),
                        format!(
                            "availableSecrets versionName {version:?} must look like projects/PROJECT/secrets/NAME/versions/VERSION"
                        ),
                    ),
                },
                _ => self.error(
                    scope,
                    Some("secretManager"),
                    "each availableSecrets.secretManager entry needs \"versionName\" and \"env\""
                        .to_owned(),
                ),
            }
        }
    }

    fn step(&mut self, index: usize, value: &Value) {
        let scope = Scope::Step(index);
        let Value::Object(map) = value else {
            return self.error(scope, None, format!("step {} must be a mapping", index + 1));
        };
        let label = match map.get("id").and_then(|v| v.as_str()) {
            Some(id) => format!("step {} ({id:?}) ", index + 1),
            None => format!("step {} ", index + 1),
        };
        self.sort_fields(map, scope, &label, fields::STEP, &[], &[]);
        let name = match map.get("name").and_then(|v| v.as_str()) {
            Some(name) if !name.trim().is_empty() => name.to_owned(),
            _ => {
                self.error(
                    scope,
                    None,
                    format!("{label}needs \"name\", the builder image to run"),
                );
                String::new()
            }
        };
        let script = self.string(map, scope, "script", &label);
        let args = self.strings(map, scope, "args", &label);
        let entrypoint = self.string(map, scope, "entrypoint", &label);
        if script.is_some() && !args.is_empty() {
            self.error(
                scope,
                Some("script"),
                format!("{label}has both \"script\" and \"args\"; give one"),
            );
        }
        if script.is_some() && entrypoint.is_some() {
            self.error(
                scope,
                Some("script"),
                format!(
                    "{label}has both \"script\" and \"entrypoint\"; a script names its interpreter on a #! first line"
                ),
            );
        }
        let wait_for = map
            .contains_key("waitFor")
            .then(|| self.strings(map, scope, "waitFor", &label));
        let allow_exit_codes = match map.get("allowExitCodes") {
            None => Vec::new(),
            Some(Value::Array(codes)) => codes
                .iter()
                .filter_map(|c| {
                    match c
                        .as_i64()
                        .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
                    {
                        Some(code) if (0..=255).contains(&code) => Some(code as i32),
                        _ => {
                            self.error(
                                scope,
                                Some("allowExitCodes"),
                                format!(
                                    "{label}allowExitCodes entries must be exit codes 0 to 255"
                                ),
                            );
                            None
                        }
                    }
                })
                .collect(),
            Some(_) => {
                self.error(
                    scope,
                    Some("allowExitCodes"),
                    format!("{label}allowExitCodes must be a list"),
                );
                Vec::new()
            }
        };
        let step = BuildStep {
            name,
            entrypoint,
            env: self.strings(map, scope, "env", &label),
            dir: self.string(map, scope, "dir", &label),
            id: self.string(map, scope, "id", &label),
            secret_env: self.strings(map, scope, "secretEnv", &label),
            volumes: self.volumes(map, scope, &label),
            timeout: self.duration(map, scope, "timeout", &label),
            allow_failure: self.bool(map, scope, "allowFailure", &label),
            automap_substitutions: map
                .contains_key("automapSubstitutions")
                .then(|| self.bool(map, scope, "automapSubstitutions", &label)),
            args,
            script,
            wait_for,
            allow_exit_codes,
            line: self.at.step(index),
        };
        self.build.steps.push(step);
    }

    /// What a run would refuse once every step is read.
    fn check_steps(&mut self) {
        for problem in crate::checks::steps(&self.build) {
            self.error(
                Scope::Step(problem.step),
                Some(problem.key),
                problem.message,
            );
        }
    }

    fn string(
        &mut self,
        map: &Map<String, Value>,
        scope: Scope,
        key: &str,
        what: &str,
    ) -> Option<String> {
        match map.get(key)? {
            Value::Null => None,
            value => match scalar(value) {
                Some(text) => Some(text),
                None => {
                    self.error(scope, Some(key), format!("{what}{key:?} must be a string"));
                    None
                }
            },
        }
    }

    fn strings(
        &mut self,
        map: &Map<String, Value>,
        scope: Scope,
        key: &str,
        what: &str,
    ) -> Vec<String> {
        match map.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let texts: Vec<String> = items.iter().filter_map(scalar).collect();
                if texts.len() != items.len() {
                    self.error(
                        scope,
                        Some(key),
                        format!("{what}{key:?} must be a list of strings"),
                    );
                }
                texts
            }
            Some(_) => {
                self.error(scope, Some(key), format!("{what}{key:?} must be a list"));
                Vec::new()
            }
        }
    }

    fn string_map(&mut self, map: &Map<String, Value>, key: &str) -> BTreeMap<String, String> {
        match map.get(key) {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(entries)) => entries
                .iter()
                .filter_map(|(k, v)| match scalar(v) {
                    Some(text) => Some((k.clone(), text)),
                    None => {
                        self.error(
                            Scope::Block(key),
                            Some(k),
                            format!("{key} value {k:?} must be a string"),
                        );
                        None
                    }
                })
                .collect(),
            Some(_) => {
                self.error(Scope::Top, Some(key), format!("{key:?} must be a mapping"));
                BTreeMap::new()
            }
        }
    }

    fn bool(&mut self, map: &Map<String, Value>, scope: Scope, key: &str, what: &str) -> bool {
        match map.get(key) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(value)) => *value,
            Some(_) => {
                self.error(
                    scope,
                    Some(key),
                    format!("{what}{key:?} must be true or false"),
                );
                false
            }
        }
    }

    fn duration(
        &mut self,
        map: &Map<String, Value>,
        scope: Scope,
        key: &str,
        what: &str,
    ) -> Option<Duration> {
        let text = self.string(map, scope, key, what)?;
        match humantime::parse_duration(&text) {
            Ok(duration) => Some(duration),
            Err(_) => {
                self.error(
                    scope,
                    Some(key),
                    format!("{what}{key:?} must be a duration like \"600s\", not {text:?}"),
                );
                None
            }
        }
    }

    fn volumes(
        &mut self,
        map: &Map<String, Value>,
        scope: Scope,
        what: &str,
    ) -> Vec<(String, String)> {
        let Some(value) = map.get("volumes") else {
            return Vec::new();
        };
        let Value::Array(items) = value else {
            self.error(
                scope,
                Some("volumes"),
                format!("{what}\"volumes\" must be a list"),
            );
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|v| match (v["name"].as_str(), v["path"].as_str()) {
                (Some(name), Some(path)) => Some((name.to_owned(), path.to_owned())),
                _ => {
                    self.error(
                        scope,
                        Some("volumes"),
                        format!("{what}each volume needs \"name\" and \"path\""),
                    );
                    None
                }
            })
            .collect()
    }
}

/// `projects/P/secrets/NAME/versions/V`: NAME is the name in Gantry's
/// secret store.
pub(crate) fn secret_name(version: &str) -> Option<String> {
    let parts: Vec<&str> = version.split('/').collect();
    match parts.as_slice() {
        ["projects", _, "secrets", name, "versions", _] if !name.is_empty() => {
            Some((*name).to_owned())
        }
        _ => None,
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn is_user_substitution(key: &str) -> bool {
    key.len() > 1
        && key.starts_with('_')
        && key
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}
