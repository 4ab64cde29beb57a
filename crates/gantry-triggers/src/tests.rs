use gantry_config::GitTrigger;

use crate::filters::{files_match, ref_matches};
use crate::push::same_repository;
use crate::signature::{github_signature, github_signature_valid, token_valid};
use gantry_config::glob;

fn trigger(branch: Option<&str>, tag: Option<&str>) -> GitTrigger {
    GitTrigger {
        repository: Some("app".into()),
        branch: branch.map(Into::into),
        tag: tag.map(Into::into),
        ..GitTrigger::default()
    }
}

#[test]
fn refs_match_branch_or_tag_patterns() {
    let check =
        |t: &GitTrigger, r: &str, expected: bool| assert_eq!(ref_matches(t, r), expected, "{r}");
    let main = trigger(Some("^main$"), None);
    check(&main, "refs/heads/main", true);
    check(&main, "refs/heads/main2", false);
    check(&main, "refs/tags/main", false);
    let tags = trigger(None, Some("^v[0-9]+"));
    check(&tags, "refs/tags/v1.2.0", true);
    check(&tags, "refs/tags/x1", false);
    check(&tags, "refs/heads/v1", false);
    let any = trigger(None, None);
    check(&any, "refs/heads/feature/x", true);
    check(&any, "refs/tags/v1", false);
}

#[test]
fn globs_follow_cloud_build() {
    let check = |g: &str, path: &str, expected: bool| {
        assert_eq!(
            glob::compile(g).unwrap().is_match(path),
            expected,
            "{g} {path}"
        )
    };
    check("src/**", "src/a/b.rs", true);
    check("src/*", "src/a/b.rs", false);
    check("src/*", "src/a.rs", true);
    check("**/*.md", "README.md", true);
    check("**/*.md", "docs/x/README.md", true);
    check("docs/?.txt", "docs/a.txt", true);
    check("docs/?.txt", "docs/ab.txt", false);
}

#[test]
fn file_filters_follow_cloud_build() {
    let mut t = trigger(None, None);
    t.included_files = vec!["src/**".into()];
    t.ignored_files = vec!["**/*.md".into()];
    let files = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(files_match(&t, Some(&files(&["src/main.rs"]))));
    assert!(!files_match(&t, Some(&files(&["README.md"]))));
    assert!(!files_match(&t, Some(&files(&["src/notes.md"]))));
    assert!(!files_match(&t, Some(&files(&["Cargo.toml"]))));
    assert!(files_match(&t, None));
    t.included_files.clear();
    assert!(files_match(&t, Some(&files(&["Cargo.toml", "README.md"]))));
    assert!(!files_match(&t, Some(&files(&["README.md"]))));
}

#[test]
fn github_signatures_are_checked() {
    // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
    let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(
        github_signature("It's a Secret to Everybody", b"Hello, World!"),
        expected
    );
    assert!(github_signature_valid(
        "It's a Secret to Everybody",
        b"Hello, World!",
        expected
    ));
    assert!(!github_signature_valid(
        "It's a Secret to Everybody",
        b"Hello, World?",
        expected
    ));
    assert!(!github_signature_valid("other", b"Hello, World!", expected));
    assert!(!github_signature_valid(
        "It's a Secret to Everybody",
        b"Hello, World!",
        "sha1=00"
    ));
    assert!(token_valid("abc", "abc"));
    assert!(!token_valid("abc", "abd"));
    assert!(!token_valid("abc", "ab"));
}

#[test]
fn repository_urls_compare_loosely() {
    assert!(same_repository(
        "https://github.com/Org/App.git",
        "https://github.com/org/app/"
    ));
    assert!(!same_repository(
        "https://github.com/org/app",
        "https://github.com/org/apps"
    ));
}

#[test]
fn cron_occurrences_respect_the_time_zone() {
    use chrono::{TimeZone, Utc};
    let at = |h, m| Utc.with_ymd_and_hms(2026, 1, 15, h, m, 0).unwrap();
    let between = crate::cron::occurrence_between;
    // 09:00 in Paris is 08:00 UTC in January.
    assert_eq!(
        between("0 9 * * *", Some("Europe/Paris"), at(7, 59), at(8, 1)),
        Some(at(8, 0))
    );
    assert_eq!(
        between("0 9 * * *", Some("Europe/Paris"), at(8, 0), at(9, 30)),
        None
    );
    assert_eq!(
        between("*/15 * * * *", None, at(10, 1), at(10, 20)),
        Some(at(10, 15))
    );
}

mod watch {
    use chrono::{TimeZone, Utc};
    use gantry_store::Store;

    use crate::cron::{Looked, schedules};
    use crate::kinds::{KINDS, kind_of};
    use crate::watch::PipelineWatch;

    /// A store of its own in a temporary directory.
    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("gantry.db").display());
        (Store::open(&url).await.unwrap(), dir)
    }

    /// Applies a pipeline named `name` whose one trigger is the cron `schedule`.
    async fn apply(store: &Store, name: &str, schedule: &str, at: i64) {
        let text = format!(
            "pipelines:\n  - name: {name}\n    triggers:\n      - type: cron\n        schedule: \"{schedule}\"\n    stages:\n      - id: build\n        type: wait\n        duration: 1s\n"
        );
        let document = gantry_config::parse_document("gantry.yaml", &text).unwrap();
        let spec = serde_json::to_value(&document.pipelines[0]).unwrap();
        store.upsert_pipeline(name, None, &spec, at).await.unwrap();
    }

    fn schedules_of(watch: &PipelineWatch) -> Vec<String> {
        schedules(&watch.latest())
            .into_iter()
            .map(|s| format!("{} {}", s.pipeline, s.cron.schedule))
            .collect()
    }

    #[tokio::test]
    async fn an_unchanged_set_of_pipelines_is_read_once_however_often_it_is_asked_for() {
        let (store, _dir) = store().await;
        apply(&store, "nightly", "0 3 * * *", 1).await;
        let watch = PipelineWatch::new(store.clone());
        for _ in 0..20 {
            assert_eq!(watch.current().await.len(), 1);
        }
        assert_eq!(watch.loads(), 1);
        // Applying the same spec again changes nothing stored, so nothing is read again.
        apply(&store, "nightly", "0 3 * * *", 2).await;
        watch.current().await;
        assert_eq!(watch.loads(), 1);
    }

    #[tokio::test]
    async fn a_pipeline_saved_with_a_new_schedule_wakes_the_scheduler_with_it() {
        let (store, _dir) = store().await;
        apply(&store, "nightly", "0 3 * * *", 1).await;
        let watch = PipelineWatch::new(store.clone());
        let mut woken = watch.subscribe();
        watch.current().await;
        assert!(woken.has_changed().unwrap());
        woken.borrow_and_update();
        assert_eq!(schedules_of(&watch), ["nightly 0 3 * * *"]);

        apply(&store, "nightly", "30 4 * * *", 2).await;
        apply(&store, "hourly", "0 * * * *", 3).await;
        watch.current().await;
        assert!(woken.has_changed().unwrap());
        assert_eq!(
            schedules_of(&watch),
            ["hourly 0 * * * *", "nightly 30 4 * * *"]
        );
        assert_eq!(watch.loads(), 2);

        store.delete_pipeline("hourly").await.unwrap();
        watch.current().await;
        assert_eq!(schedules_of(&watch), ["nightly 30 4 * * *"]);
        assert_eq!(watch.loads(), 3);
    }

    #[tokio::test]
    async fn an_applied_pipeline_wakes_the_followed_watch_at_once_without_polling() {
        let (store, _dir) = store().await;
        let watch = PipelineWatch::new(store.clone());
        let shutdown = tokio_util::sync::CancellationToken::new();
        let follow = tokio::spawn(watch.clone().follow(shutdown.clone()));
        let mut woken = watch.subscribe();
        // The first read, of no pipelines, then nothing: on SQLite the watch does not poll.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        assert_eq!(watch.loads(), 1);
        woken.borrow_and_update();

        apply(&store, "nightly", "0 3 * * *", 1).await;
        tokio::time::timeout(std::time::Duration::from_millis(500), woken.changed())
            .await
            .expect("woken well before a poll would have noticed")
            .unwrap();
        assert_eq!(schedules_of(&watch), ["nightly 0 3 * * *"]);
        woken.borrow_and_update();
        store.delete_pipeline("nightly").await.unwrap();
        tokio::time::timeout(std::time::Duration::from_millis(500), woken.changed())
            .await
            .expect("woken by the delete")
            .unwrap();
        assert!(schedules_of(&watch).is_empty());
        shutdown.cancel();
        follow.await.unwrap();
    }

    #[tokio::test]
    async fn the_scheduler_sleeps_until_the_earliest_occurrence_of_the_watched_schedules() {
        let (store, _dir) = store().await;
        apply(&store, "nightly", "0 3 * * *", 1).await;
        apply(&store, "hourly", "0 * * * *", 2).await;
        let watch = PipelineWatch::new(store.clone());
        let at = |h, m| Utc.with_ymd_and_hms(2026, 1, 15, h, m, 0).unwrap();
        let mut looked = Looked::default();
        let watched = schedules(&watch.current().await);
        looked.track(&watched, at(2, 10));
        assert_eq!(looked.next_fire(&watched), Some(at(3, 0)));
        looked.track(&watched, at(2, 30));
        // Schedules already tracked keep counting from when they were first seen.
        assert_eq!(looked.next_fire(&watched), Some(at(3, 0)));

        // The hourly schedule moves to the half hour: a new schedule, counted from now.
        apply(&store, "hourly", "30 * * * *", 3).await;
        let watched = schedules(&watch.current().await);
        looked.track(&watched, at(2, 40));
        assert_eq!(looked.next_fire(&watched), Some(at(3, 0)));
        store.delete_pipeline("nightly").await.unwrap();
        let watched = schedules(&watch.current().await);
        looked.track(&watched, at(2, 45));
        assert_eq!(looked.next_fire(&watched), Some(at(3, 30)));
    }

    #[test]
    fn every_trigger_type_of_the_config_has_exactly_one_kind_named_like_it() {
        let specs: Vec<gantry_config::Trigger> = [
            r#"{"type": "git", "repository": "app"}"#,
            r#"{"type": "webhook", "source": "s", "secret": "x"}"#,
            r#"{"type": "cron", "schedule": "0 3 * * *"}"#,
            r#"{"type": "pipeline", "pipeline": "up", "status": ["SUCCEEDED"]}"#,
            r#"{"type": "artifact", "repository": "main"}"#,
        ]
        .iter()
        .map(|text| serde_json::from_str(text).unwrap())
        .collect();
        for trigger in &specs {
            let handling: Vec<&str> = KINDS
                .iter()
                .filter(|k| k.handles(trigger))
                .map(|k| k.name())
                .collect();
            assert_eq!(handling, [trigger.type_name()]);
            assert_eq!(kind_of(trigger).unwrap().name(), trigger.type_name());
        }
        assert_eq!(KINDS.len(), specs.len());
    }
}
