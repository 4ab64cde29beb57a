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
    "artifacts",
    "secrets",
    "source",
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
];
pub(crate) const OPTIONS_UNSUPPORTED: &[&str] = &["dynamicSubstitutions"];

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
