use super::*;

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
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(&work)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "a")
            .env("GIT_AUTHOR_EMAIL", "a@b")
            .env("GIT_COMMITTER_NAME", "a")
            .env("GIT_COMMITTER_EMAIL", "a@b")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["commit", "-q", "--allow-empty", "-m", "one"]);
    let head = git(&["rev-parse", "HEAD"]).trim().to_owned();
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
