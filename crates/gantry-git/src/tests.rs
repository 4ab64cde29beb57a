use super::*;

/// Runs a test's own `git` in `dir`; its trimmed output.
fn git_in(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "a")
        .env("GIT_AUTHOR_EMAIL", "a@b")
        .env("GIT_COMMITTER_NAME", "a")
        .env("GIT_COMMITTER_EMAIL", "a@b")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn services_are_told_apart_by_path_and_query() {
    let check = |path, query, expected| assert_eq!(Service::of(path, query), expected);
    check(
        "info/refs",
        Some("service=git-upload-pack"),
        Service::UploadPack,
    );
    check(
        "info/refs",
        Some("service=git-receive-pack"),
        Service::ReceivePack,
    );
    check("git-receive-pack", None, Service::ReceivePack);
    check("git-upload-pack", None, Service::UploadPack);
    check("HEAD", None, Service::UploadPack);
}

#[test]
fn hook_lines_become_ref_updates() {
    let zero = "0".repeat(40);
    let a = "a".repeat(40);
    let updates = RefUpdate::parse_lines(&format!(
        "{zero} {a} refs/heads/main\n{a} {zero} refs/tags/v1\n"
    ));
    assert_eq!(updates.len(), 2);
    assert!(updates[0].is_create() && updates[0].branch() == Some("main"));
    assert!(updates[1].is_delete() && updates[1].tag() == Some("v1"));
}

#[tokio::test]
async fn repositories_are_created_listed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let repos = Repositories::new(dir.path().join("repos"));
    assert!(matches!(
        repos.create("../x", false).await,
        Err(RepoError::BadName(_))
    ));
    repos.create("app", true).await.unwrap();
    repos.create("env", false).await.unwrap();
    assert!(matches!(
        repos.create("app", false).await,
        Err(RepoError::AlreadyExists(_))
    ));
    let list = repos.list().await.unwrap();
    assert_eq!(
        list,
        vec![
            RepoInfo {
                name: "app".into(),
                public: true
            },
            RepoInfo {
                name: "env".into(),
                public: false
            },
        ]
    );
    assert!(repos.delete("app").await.unwrap());
    assert!(!repos.delete("app").await.unwrap());
    assert_eq!(repos.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn refs_are_created_once() {
    let dir = tempfile::tempdir().unwrap();
    let repos = Repositories::new(dir.path().join("repos"));
    repos.create("app", false).await.unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let git = |args: &[&str]| git_in(&work, args);
    git(&["init", "-q", "-b", "main"]);
    git(&["commit", "-q", "--allow-empty", "-m", "one"]);
    let head = git(&["rev-parse", "HEAD"]);
    let mut pushes = repos.subscribe();
    let updates = repos.push_from(&work, "app", "main", "test").await.unwrap();
    assert_eq!(updates.len(), 1);
    assert_eq!(pushes.recv().await.unwrap().update.name, "refs/heads/main");
    let refs = vec![
        ("refs/tags/v1.0.0-x".to_owned(), head.clone()),
        ("refs/gantry/versions/v1.0.0".to_owned(), head.clone()),
    ];
    assert!(repos.create_refs("app", &refs, "test").await.unwrap());
    let again = vec![
        ("refs/tags/v1.0.0-y".to_owned(), head.clone()),
        ("refs/gantry/versions/v1.0.0".to_owned(), head.clone()),
    ];
    assert!(!repos.create_refs("app", &again, "test").await.unwrap());
    let path = repos.existing("app").unwrap();
    assert_eq!(
        tags_at(&path, "v").await.unwrap(),
        vec!["v1.0.0-x".to_owned()]
    );
}

#[test]
fn credentials_come_from_a_secret() {
    let check = |value: &str, user: &str, password: &str| {
        let credentials = Credentials::from_secret(value);
        assert_eq!(
            (credentials.username.as_str(), credentials.password.as_str()),
            (user, password),
            "{value:?}"
        );
    };
    check("ann:s3cret", "ann", "s3cret");
    check("ann:with:colons\n", "ann", "with:colons");
    check("gantry_token\n", "git", "gantry_token");
    check(":leading", "git", ":leading");
    assert!(!format!("{:?}", Credentials::from_secret("a:hidden")).contains("hidden"));
}

/// The password travels in the environment of the one git process; its arguments name only
/// the variables.
#[test]
fn credentials_are_never_arguments() {
    let credentials = Credentials::from_secret("ann:p4ssw0rd-value");
    let mut command = crate::command::git(None);
    credentials.apply(&mut command);
    let args: Vec<String> = command
        .as_std()
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert!(args.iter().all(|a| !a.contains("p4ssw0rd")), "{args:?}");
    assert!(
        args.iter().any(|a| a.contains("$GANTRY_GIT_PASSWORD")),
        "{args:?}"
    );
    let envs: Vec<_> = command.as_std().get_envs().collect();
    assert!(
        envs.iter()
            .any(|(k, v)| *k == "GANTRY_GIT_PASSWORD" && v.is_some_and(|v| v == "p4ssw0rd-value"))
    );
}

/// A file at a commit of an external repository, through the fetch cache: fetched once, read
/// again without the remote; a commit the remote never had is an error naming it.
#[tokio::test]
async fn files_are_read_at_a_commit_through_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = dir.path().join("upstream");
    std::fs::create_dir_all(&upstream).unwrap();
    let git = |args: &[&str]| git_in(&upstream, args);
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(upstream.join("gantry.yaml"), "first\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "one"]);
    let first = git(&["rev-parse", "HEAD"]);
    std::fs::write(upstream.join("gantry.yaml"), "second\n").unwrap();
    git(&["commit", "-q", "-am", "two"]);

    let url = format!("file://{}", upstream.display());
    let remote = Remote::new(url.as_str());
    let cache = cache_path(&dir.path().join("cache"), &url);
    // An older commit: fetching the branch brings it as an ancestor.
    fetch_commit(&cache, &remote, "refs/heads/main", &first)
        .await
        .unwrap();
    assert_eq!(
        read_file(&cache, &first, "gantry.yaml").await.unwrap(),
        Some("first\n".to_owned())
    );
    assert_eq!(read_file(&cache, &first, "nope.yaml").await.unwrap(), None);
    std::fs::remove_dir_all(&upstream).unwrap();
    fetch_commit(&cache, &remote, "refs/heads/main", &first)
        .await
        .unwrap();
    let error = fetch_commit(&cache, &remote, "refs/heads/main", &"1".repeat(40))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(&"1".repeat(40)), "{error}");
}
