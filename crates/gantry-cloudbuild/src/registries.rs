//! Where a build's images go: a registry map (`FROM=TO`) so that a file's
//! `gcr.io/PROJECT/app` lands in the team's own registry unchanged, and the
//! registries pushed to without TLS, configured once for every step.

/// Registry prefixes replaced by others: `gcr.io/acme=127.0.0.1:5000/acme`
/// sends `gcr.io/acme/app:v1` to `127.0.0.1:5000/acme/app:v1`. The longest
/// matching prefix wins; a prefix matches a whole path segment only
/// (`gcr.io/acme` does not match `gcr.io/acme-other/app`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegistryMap(Vec<(String, String)>);

impl RegistryMap {
    /// Reads `FROM=TO` entries.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<RegistryMap, String> {
        let mut map = Vec::new();
        for entry in entries {
            let entry = entry.as_ref();
            let (from, to) = match entry.split_once('=') {
                Some((from, to)) => (from.trim(), to.trim()),
                None => ("", ""),
            };
            let well_formed = |side: &str| {
                !side.is_empty()
                    && !side.contains("://")
                    && !side.ends_with('/')
                    && !side.contains(char::is_whitespace)
            };
            if !well_formed(from) || !well_formed(to) {
                return Err(format!(
                    "registry map entry {entry:?} must be FROM=TO, each a registry with an optional path and no scheme (e.g. gcr.io/PROJECT=127.0.0.1:5000/PROJECT)"
                ));
            }
            map.push((from.to_owned(), to.to_owned()));
        }
        map.sort_by_key(|(from, _): &(String, String)| std::cmp::Reverse(from.len()));
        Ok(RegistryMap(map))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `reference` with its prefix replaced, if an entry matches it.
    pub fn rewrite(&self, reference: &str) -> Option<String> {
        self.0.iter().find_map(|(from, to)| {
            let rest = reference.strip_prefix(from.as_str())?;
            (rest.is_empty() || rest.starts_with(['/', ':', '@'])).then(|| format!("{to}{rest}"))
        })
    }

    /// An argument of a docker command with any image reference in it
    /// rewritten: the whole argument, or the value of `--option=VALUE`.
    pub(crate) fn rewrite_argument(&self, argument: &str) -> Option<String> {
        if let Some(rewritten) = self.rewrite(argument) {
            return Some(rewritten);
        }
        let (option, value) = argument.split_once('=')?;
        if !option.starts_with('-') {
            return None;
        }
        self.rewrite(value).map(|value| format!("{option}={value}"))
    }
}

/// Registries reached without TLS: those named, and every loopback one
/// (as Docker treats 127.0.0.0/8).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InsecureRegistries(pub Vec<String>);

impl InsecureRegistries {
    /// Whether the registry of `reference` is reached without TLS.
    pub fn covers(&self, reference: &str) -> bool {
        let host = reference.split('/').next().unwrap_or_default();
        let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
        name == "localhost"
            || name.starts_with("127.")
            || name == "[::1]"
            || self
                .0
                .iter()
                .any(|registry| registry == host || registry == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_prefix_wins_and_only_whole_segments_match() {
        let map = RegistryMap::parse(&[
            "gcr.io/acme=127.0.0.1:5000/acme",
            "gcr.io/acme/special=127.0.0.1:5000/other",
        ])
        .unwrap();
        assert_eq!(
            map.rewrite("gcr.io/acme/app:v1").as_deref(),
            Some("127.0.0.1:5000/acme/app:v1")
        );
        assert_eq!(
            map.rewrite("gcr.io/acme/special:v2").as_deref(),
            Some("127.0.0.1:5000/other:v2")
        );
        assert_eq!(
            map.rewrite("gcr.io/acme/app@sha256:00").as_deref(),
            Some("127.0.0.1:5000/acme/app@sha256:00")
        );
        assert_eq!(map.rewrite("gcr.io/acme-other/app"), None);
        assert_eq!(map.rewrite("docker.io/library/busybox"), None);
        assert_eq!(
            map.rewrite_argument("--cache-from=gcr.io/acme/app:latest")
                .as_deref(),
            Some("--cache-from=127.0.0.1:5000/acme/app:latest")
        );
        assert_eq!(map.rewrite_argument("VERSION=gcr.io/acme/x"), None);
    }

    #[test]
    fn bad_entries_are_refused_with_the_form_expected() {
        for bad in [
            "gcr.io/acme",
            "=x",
            "x=",
            "https://gcr.io/a=b",
            "gcr.io/a/=b",
        ] {
            let error = RegistryMap::parse(&[bad]).unwrap_err();
            assert!(error.contains("must be FROM=TO"), "{bad}: {error}");
        }
    }

    #[test]
    fn loopback_and_named_registries_are_reached_without_tls() {
        let insecure = InsecureRegistries(vec!["registry.lan:5000".into()]);
        assert!(insecure.covers("127.0.0.1:5000/app"));
        assert!(insecure.covers("localhost/app"));
        assert!(insecure.covers("registry.lan:5000/app:v1"));
        assert!(!insecure.covers("registry.lan/app"));
        assert!(!insecure.covers("gcr.io/acme/app"));
    }
}
