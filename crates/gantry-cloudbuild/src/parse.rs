//! Reading a Cloud Build file into [`BuildFile`], collecting every problem.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::CloudBuildError;
use crate::fields;

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
    /// `availableSecrets.secretManager`: environment name → secret name.
    pub secrets: BTreeMap<String, String>,
    /// Pushed once every step succeeded.
    pub images: Vec<String>,
    /// Fields that only matter on Google's service.
    pub warnings: Vec<String>,
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
}

/// Parses `text` (named `file` in messages). All problems are reported at
/// once; Google-only fields become warnings in the result.
pub fn parse(file: &str, text: &str) -> Result<BuildFile, CloudBuildError> {
    let root: Value =
        serde_saphyr::from_str(text).map_err(|e| CloudBuildError(vec![format!("{file}: {e}")]))?;
    let mut r = Reader {
        file,
        text,
        errors: Vec::new(),
        build: BuildFile::default(),
    };
    match &root {
        Value::Object(map) => r.top(map),
        _ => r.error(
            None,
            "a Cloud Build file must be a mapping with \"steps\"".to_owned(),
        ),
    }
    if r.errors.is_empty() {
        Ok(r.build)
    } else {
        Err(CloudBuildError(r.errors))
    }
}

struct Reader<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<String>,
    build: BuildFile,
}

impl Reader<'_> {
    /// `FILE:LINE: message`, the line being where `key` first appears.
    fn error(&mut self, key: Option<&str>, message: String) {
        let at = key.and_then(|k| line_of(self.text, k));
        self.errors.push(match at {
            Some(line) => format!("{}:{line}: {message}", self.file),
            None => format!("{}: {message}", self.file),
        });
    }

    fn sort_fields(
        &mut self,
        map: &Map<String, Value>,
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
                let at = line_of(self.text, key).map_or(String::new(), |l| format!(":{l}"));
                self.build.warnings.push(format!(
                    "{}{at}: {what}field {key:?} only applies on Google Cloud Build; ignored",
                    self.file
                ));
            } else if unsupported.contains(&key) {
                self.error(
                    Some(key),
                    format!("{what}field {key:?} is not supported by gantry build"),
                );
            } else {
                self.error(
                    Some(key),
                    format!(
                        "unknown {what}field {key:?}; expected one of: {}",
                        known.join(", ")
                    ),
                );
            }
        }
    }

    fn top(&mut self, map: &Map<String, Value>) {
        self.sort_fields(
            map,
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
            Some(Value::Array(_)) => self.error(Some("steps"), "\"steps\" is empty".to_owned()),
            Some(_) => self.error(Some("steps"), "\"steps\" must be a list".to_owned()),
            None => self.error(None, "no \"steps\"".to_owned()),
        }
        self.build.timeout = self.duration(map, "timeout", "");
        self.build.substitutions = self.string_map(map, "substitutions");
        for key in self.build.substitutions.clone().keys() {
            if !is_user_substitution(key) {
                self.error(
                    Some(key),
                    format!(
                        "substitution {key:?} must start with '_' and use only capital letters, digits and '_'"
                    ),
                );
            }
        }
        self.build.images = self.strings(map, "images", "");
        if let Some(options) = map.get("options") {
            self.options(options);
        }
        if let Some(secrets) = map.get("availableSecrets") {
            self.available_secrets(secrets);
        }
    }

    fn options(&mut self, options: &Value) {
        let Value::Object(map) = options else {
            return self.error(Some("options"), "\"options\" must be a mapping".to_owned());
        };
        self.sort_fields(
            map,
            "options ",
            fields::OPTIONS,
            fields::OPTIONS_GOOGLE_ONLY,
            fields::OPTIONS_UNSUPPORTED,
        );
        self.build.env = self.strings(map, "env", "options ");
        self.build.secret_env = self.strings(map, "secretEnv", "options ");
        self.build.volumes = self.volumes(map, "options ");
        self.build.automap_substitutions = self.bool(map, "automapSubstitutions", "options ");
        match map.get("substitutionOption").map(|v| v.as_str()) {
            None => {}
            Some(Some("ALLOW_LOOSE")) => self.build.allow_loose = true,
            Some(Some("MUST_MATCH")) => {}
            Some(_) => self.error(
                Some("substitutionOption"),
                "options substitutionOption must be MUST_MATCH or ALLOW_LOOSE".to_owned(),
            ),
        }
    }

    fn available_secrets(&mut self, value: &Value) {
        let Value::Object(map) = value else {
            return self.error(
                Some("availableSecrets"),
                "\"availableSecrets\" must be a mapping".to_owned(),
            );
        };
        for key in map.keys() {
            if key != "secretManager" {
                self.error(
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
                (Some(version), Some(env)) => {
                    // projects/P/secrets/NAME/versions/V: NAME is the name in
                    // Gantry's secret store.
                    let parts: Vec<&str> = version.split('/').collect();
                    match parts.as_slice() {
                        ["projects", _, "secrets", name, "versions", _] => {
                            self.build.secrets.insert(env.to_owned(), (*name).to_owned());
                        }
                        _ => self.error(
                            Some("versionName"),
                            format!(
                                "availableSecrets versionName {version:?} must look like projects/PROJECT/secrets/NAME/versions/VERSION"
                            ),
                        ),
                    }
                }
                _ => self.error(
                    Some("secretManager"),
                    "each availableSecrets.secretManager entry needs \"versionName\" and \"env\""
                        .to_owned(),
                ),
            }
        }
    }

    fn step(&mut self, index: usize, value: &Value) {
        let Value::Object(map) = value else {
            return self.error(
                Some("steps"),
                format!("step {} must be a mapping", index + 1),
            );
        };
        let label = match map.get("id").and_then(|v| v.as_str()) {
            Some(id) => format!("step {} ({id:?}) ", index + 1),
            None => format!("step {} ", index + 1),
        };
        self.sort_fields(map, &label, fields::STEP, &[], &[]);
        let name = match map.get("name").and_then(|v| v.as_str()) {
            Some(name) if !name.trim().is_empty() => name.to_owned(),
            _ => {
                self.error(
                    None,
                    format!("{label}needs \"name\", the builder image to run"),
                );
                String::new()
            }
        };
        let script = map
            .get("script")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let args = self.strings(map, "args", &label);
        if script.is_some() && !args.is_empty() {
            self.error(
                Some("script"),
                format!("{label}has both \"script\" and \"args\"; give one"),
            );
        }
        let wait_for = map
            .contains_key("waitFor")
            .then(|| self.strings(map, "waitFor", &label));
        let allow_exit_codes = match map.get("allowExitCodes") {
            None => Vec::new(),
            Some(Value::Array(codes)) => codes
                .iter()
                .filter_map(|c| match c.as_i64() {
                    Some(code) if (0..=255).contains(&code) => Some(code as i32),
                    _ => {
                        self.error(
                            Some("allowExitCodes"),
                            format!("{label}allowExitCodes entries must be exit codes 0 to 255"),
                        );
                        None
                    }
                })
                .collect(),
            Some(_) => {
                self.error(
                    Some("allowExitCodes"),
                    format!("{label}allowExitCodes must be a list"),
                );
                Vec::new()
            }
        };
        let step = BuildStep {
            name,
            entrypoint: self.string(map, "entrypoint", &label),
            env: self.strings(map, "env", &label),
            dir: self.string(map, "dir", &label),
            id: self.string(map, "id", &label),
            secret_env: self.strings(map, "secretEnv", &label),
            volumes: self.volumes(map, &label),
            timeout: self.duration(map, "timeout", &label),
            allow_failure: self.bool(map, "allowFailure", &label),
            automap_substitutions: map
                .contains_key("automapSubstitutions")
                .then(|| self.bool(map, "automapSubstitutions", &label)),
            args,
            script,
            wait_for,
            allow_exit_codes,
        };
        self.build.steps.push(step);
    }

    fn string(&mut self, map: &Map<String, Value>, key: &str, what: &str) -> Option<String> {
        match map.get(key)? {
            Value::Null => None,
            value => match scalar(value) {
                Some(text) => Some(text),
                None => {
                    self.error(Some(key), format!("{what}{key:?} must be a string"));
                    None
                }
            },
        }
    }

    fn strings(&mut self, map: &Map<String, Value>, key: &str, what: &str) -> Vec<String> {
        match map.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let texts: Vec<String> = items.iter().filter_map(scalar).collect();
                if texts.len() != items.len() {
                    self.error(
                        Some(key),
                        format!("{what}{key:?} must be a list of strings"),
                    );
                }
                texts
            }
            Some(_) => {
                self.error(Some(key), format!("{what}{key:?} must be a list"));
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
                        self.error(Some(k), format!("{key} value {k:?} must be a string"));
                        None
                    }
                })
                .collect(),
            Some(_) => {
                self.error(Some(key), format!("{key:?} must be a mapping"));
                BTreeMap::new()
            }
        }
    }

    fn bool(&mut self, map: &Map<String, Value>, key: &str, what: &str) -> bool {
        match map.get(key) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(value)) => *value,
            Some(_) => {
                self.error(Some(key), format!("{what}{key:?} must be true or false"));
                false
            }
        }
    }

    fn duration(&mut self, map: &Map<String, Value>, key: &str, what: &str) -> Option<Duration> {
        let text = self.string(map, key, what)?;
        match humantime::parse_duration(&text) {
            Ok(duration) => Some(duration),
            Err(_) => {
                self.error(
                    Some(key),
                    format!("{what}{key:?} must be a duration like \"600s\", not {text:?}"),
                );
                None
            }
        }
    }

    fn volumes(&mut self, map: &Map<String, Value>, what: &str) -> Vec<(String, String)> {
        let Some(value) = map.get("volumes") else {
            return Vec::new();
        };
        let Value::Array(items) = value else {
            self.error(Some("volumes"), format!("{what}\"volumes\" must be a list"));
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|v| match (v["name"].as_str(), v["path"].as_str()) {
                (Some(name), Some(path)) => Some((name.to_owned(), path.to_owned())),
                _ => {
                    self.error(
                        Some("volumes"),
                        format!("{what}each volume needs \"name\" and \"path\""),
                    );
                    None
                }
            })
            .collect()
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

/// The first line (1-based) where `key:` appears as a mapping key.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let line = line.trim_start().trim_start_matches("- ").trim_start();
            line.strip_prefix(key)
                .or_else(|| line.strip_prefix(&format!("\"{key}\"")))
                .or_else(|| line.strip_prefix(&format!("'{key}'")))
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}
