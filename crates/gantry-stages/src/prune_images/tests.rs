use std::time::{Duration, SystemTime};

use gantry_container::LocalImage;

use super::{older_than_newest, repository_of};

fn image(id: &str, seconds: u64, tags: &[&str]) -> LocalImage {
    LocalImage {
        id: id.to_owned(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        created: SystemTime::UNIX_EPOCH + Duration::from_secs(seconds),
    }
}

fn check(images: Vec<LocalImage>, repository: &str, keep: usize, expected: &[(&str, &[&str])]) {
    let chosen: Vec<(String, Vec<String>)> = older_than_newest(images, repository, keep)
        .into_iter()
        .map(|image| (image.id, image.tags))
        .collect();
    let expected: Vec<(String, Vec<String>)> = expected
        .iter()
        .map(|(id, tags)| {
            (
                (*id).to_owned(),
                tags.iter().map(|t| (*t).to_owned()).collect(),
            )
        })
        .collect();
    assert_eq!(chosen, expected);
}

#[test]
fn all_but_the_newest_images_of_the_repository_are_chosen_oldest_last() {
    check(
        vec![
            image("a", 1, &["127.0.0.1:5055/app:1"]),
            image("c", 3, &["127.0.0.1:5055/app:3"]),
            image("b", 2, &["127.0.0.1:5055/app:2"]),
            image("d", 4, &["127.0.0.1:5055/app:4"]),
        ],
        "127.0.0.1:5055/app",
        2,
        &[
            ("b", &["127.0.0.1:5055/app:2"]),
            ("a", &["127.0.0.1:5055/app:1"]),
        ],
    );
}

#[test]
fn images_of_other_repositories_are_neither_counted_nor_chosen() {
    check(
        vec![
            image("a", 1, &["127.0.0.1:5055/app:1"]),
            image(
                "x",
                2,
                &["127.0.0.1:5055/app-other:1", "127.0.0.1:5055/apps:2"],
            ),
            image("y", 3, &["127.0.0.1:5055/team/app:1"]),
            image("b", 4, &["127.0.0.1:5055/app:2"]),
        ],
        "127.0.0.1:5055/app",
        1,
        &[("a", &["127.0.0.1:5055/app:1"])],
    );
}

#[test]
fn only_the_tags_of_the_repository_are_removed_from_an_image_shared_with_another() {
    check(
        vec![
            image(
                "a",
                1,
                &["127.0.0.1:5055/app:1", "127.0.0.1:5055/other:keep"],
            ),
            image("b", 2, &["127.0.0.1:5055/app:2"]),
        ],
        "127.0.0.1:5055/app",
        1,
        &[("a", &["127.0.0.1:5055/app:1"])],
    );
}

#[test]
fn keeping_more_than_there_are_removes_nothing() {
    check(
        vec![image("a", 1, &["r.example/app:1"])],
        "r.example/app",
        3,
        &[],
    );
}

#[test]
fn the_repository_of_a_reference_keeps_the_registry_port() {
    assert_eq!(
        repository_of("127.0.0.1:5055/app:1.0"),
        "127.0.0.1:5055/app"
    );
    assert_eq!(repository_of("127.0.0.1:5055/app"), "127.0.0.1:5055/app");
    assert_eq!(repository_of("localhost/app:latest"), "localhost/app");
}
