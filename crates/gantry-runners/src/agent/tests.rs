//! The agent's pieces that need no server.

use std::io::Write;

use super::log_stream::read_batch;
use crate::protocol::MAX_BATCH_BYTES;

fn check(content: &[u8], offset: u64, finished: bool, expected: &[(&str, u64)]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("output.log");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(content)
        .unwrap();
    let lines = read_batch(&path, offset, finished).unwrap();
    let got: Vec<(&str, u64)> = lines.iter().map(|l| (l.text.as_str(), l.end)).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_batch_holds_whole_lines_and_the_last_partial_one_only_once_the_job_ended() {
    check(b"a\nbc\nd", 0, false, &[("a", 2), ("bc", 5)]);
    check(b"a\nbc\nd", 0, true, &[("a", 2), ("bc", 5), ("d", 6)]);
    check(b"a\nbc\nd", 2, false, &[("bc", 5)]);
    check(b"a\n\n", 0, false, &[("a", 2), ("", 3)]);
    check(b"", 0, true, &[]);
}

#[test]
fn a_missing_output_file_is_an_empty_batch() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        read_batch(&dir.path().join("none"), 0, true)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_line_longer_than_a_batch_is_cut_rather_than_held_forever() {
    let long = vec![b'x'; MAX_BATCH_BYTES + 10];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("output.log");
    std::fs::write(&path, &long).unwrap();
    let lines = read_batch(&path, 0, false).unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].text.len(), MAX_BATCH_BYTES);
    let rest = read_batch(&path, lines[0].end, true).unwrap();
    assert_eq!(rest[0].text.len(), 10);
}

#[test]
fn invalid_utf8_is_replaced_not_fatal() {
    check(
        b"ok\n\xff\xfe\n",
        0,
        false,
        &[("ok", 3), ("\u{fffd}\u{fffd}", 6)],
    );
}
