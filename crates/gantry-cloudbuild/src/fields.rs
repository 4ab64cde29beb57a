//! Which Cloud Build fields Gantry runs, which only mean something on
//! Google's service (ignored with a warning), and which would change what a
//! build does and are not supported (an error naming them).

pub(crate) const TOP: &[&str] = &[
    "steps",
    "timeout",
    "substitutions",
    "options",
    "availableSecrets",
    "images",
    "artifacts",
];
pub(crate) const TOP_GOOGLE_ONLY: &[&str] = &[
    "logsBucket",
    "serviceAccount",
    "tags",
    "queueTtl",
    "machineType",
    "diskSizeGb",
];
pub(crate) const TOP_UNSUPPORTED: &[&str] = &[
    "secrets",
    "source",
    "gitConfig",
    "dependencies",
    "mavenArtifacts",
    "pythonPackages",
    "npmPackages",
    "goModules",
];

pub(crate) const OPTIONS: &[&str] = &[
    "env",
    "secretEnv",
    "volumes",
    "substitutionOption",
    "automapSubstitutions",
    "dynamicSubstitutions",
];
pub(crate) const OPTIONS_GOOGLE_ONLY: &[&str] = &[
    "machineType",
    "diskSizeGb",
    "logging",
    "logStreamingOption",
    "sourceProvenanceHash",
    "requestedVerifyOption",
    "workerPool",
    "pool",
    "defaultLogsBucketBehavior",
    "enableStructuredLogging",
];
pub(crate) const OPTIONS_UNSUPPORTED: &[&str] = &[];

pub(crate) const STEP: &[&str] = &[
    "name",
    "args",
    "entrypoint",
    "env",
    "dir",
    "id",
    "waitFor",
    "secretEnv",
    "volumes",
    "timeout",
    "script",
    "allowFailure",
    "allowExitCodes",
    "automapSubstitutions",
];

/// `artifacts` kinds: what each is, for messages. `images` is pushed like
/// the top-level `images`; `objects` are kept in Gantry's artifact store; the
/// others are refused by name.
pub(crate) const ARTIFACT_KINDS: &[(&str, &str)] = &[
    ("images", "images pushed once every step succeeded"),
    ("objects", "files uploaded to a Cloud Storage bucket"),
    (
        "mavenArtifacts",
        "Maven packages uploaded to Artifact Registry",
    ),
    (
        "pythonPackages",
        "Python packages uploaded to Artifact Registry",
    ),
    ("npmPackages", "npm packages uploaded to Artifact Registry"),
    ("goModules", "Go modules uploaded to Artifact Registry"),
];

/// The known name closest to `key`, when one is close enough to be a slip
/// of the keyboard: the same letters in another case, or at most a third
/// of them wrong.
pub(crate) fn closest<'a>(key: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = key.to_ascii_lowercase().replace(['_', '-'], "");
    known
        .into_iter()
        .map(|name| {
            let distance = edit_distance(&lower, &name.to_ascii_lowercase());
            (distance, name)
        })
        .filter(|(distance, name)| *distance <= (name.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// Levenshtein distance over bytes (field names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}
