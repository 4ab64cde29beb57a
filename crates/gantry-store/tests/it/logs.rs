use gantry_store::{LogLine, LogStream, NewLogLine};

use crate::db::{TestDb, both, new_execution};

both!(
    append_returns_increasing_seqs,
    pages_by_seq_and_stage,
    large_batches_keep_their_order,
    odd_lines_survive
);

fn line(execution: &str, stage: &str, n: usize) -> NewLogLine {
    NewLogLine {
        execution_id: execution.into(),
        stage_id: stage.into(),
        step: (n % 3) as i64,
        ts: 1_000 + n as i64,
        stream: [LogStream::Stdout, LogStream::Stderr, LogStream::System][n % 3],
        line: format!("{stage} line {n}"),
    }
}

fn stored(new: &NewLogLine, seq: i64) -> LogLine {
    LogLine {
        seq,
        execution_id: new.execution_id.clone(),
        stage_id: new.stage_id.clone(),
        step: new.step,
        ts: new.ts,
        stream: new.stream,
        line: new.line.clone(),
    }
}

async fn append_returns_increasing_seqs(db: TestDb) {
    let store = &db.store;
    store
        .create_execution(&new_execution("e1", "web", &["build"], 1))
        .await
        .unwrap();
    assert!(store.append_logs(&[]).await.unwrap().is_empty());

    let first: Vec<NewLogLine> = (0..3).map(|n| line("e1", "build", n)).collect();
    let seqs = store.append_logs(&first).await.unwrap();
    assert_eq!(seqs.len(), 3);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let more = store.append_logs(&[line("e1", "build", 3)]).await.unwrap();
    assert!(more[0] > seqs[2]);

    let expected: Vec<LogLine> = first
        .iter()
        .zip(&seqs)
        .map(|(l, &s)| stored(l, s))
        .chain([stored(&line("e1", "build", 3), more[0])])
        .collect();
    assert_eq!(store.logs("e1", None, 0, 100).await.unwrap(), expected);
    assert!(store.logs("nope", None, 0, 100).await.unwrap().is_empty());
}

async fn pages_by_seq_and_stage(db: TestDb) {
    let store = &db.store;
    store
        .create_execution(&new_execution("e1", "web", &["build", "test"], 1))
        .await
        .unwrap();
    store
        .create_execution(&new_execution("e2", "web", &["build"], 2))
        .await
        .unwrap();
    // One batch mixing two executions and two stages, as the engine's single
    // log writer sends them.
    let batch: Vec<NewLogLine> = (0..50)
        .map(|n| match n % 3 {
            0 => line("e1", "build", n),
            1 => line("e1", "test", n),
            _ => line("e2", "build", n),
        })
        .collect();
    let seqs = store.append_logs(&batch).await.unwrap();
    let all: Vec<LogLine> = batch
        .iter()
        .zip(&seqs)
        .map(|(l, &s)| stored(l, s))
        .collect();
    let of = |execution: &str, stage: Option<&str>| -> Vec<LogLine> {
        all.iter()
            .filter(|l| l.execution_id == execution && stage.is_none_or(|s| l.stage_id == s))
            .cloned()
            .collect()
    };

    // Page through e1 ten lines at a time.
    let mut after = 0;
    let mut paged = Vec::new();
    loop {
        let page = store.logs("e1", None, after, 10).await.unwrap();
        assert!(page.len() <= 10);
        let Some(last) = page.last() else { break };
        after = last.seq;
        paged.extend(page);
    }
    assert_eq!(paged, of("e1", None));

    assert_eq!(
        store.logs("e1", Some("test"), 0, 1000).await.unwrap(),
        of("e1", Some("test"))
    );
    assert_eq!(
        store.logs("e2", Some("build"), 0, 1000).await.unwrap(),
        of("e2", None)
    );
    let tests = of("e1", Some("test"));
    assert_eq!(
        store
            .logs("e1", Some("test"), tests[4].seq, 3)
            .await
            .unwrap(),
        tests[5..8]
    );
    assert!(
        store
            .logs("e1", Some("nope"), 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.logs("e1", None, 0, 0).await.unwrap().is_empty());
    assert!(
        store
            .logs("e1", None, all.last().unwrap().seq, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn large_batches_keep_their_order(db: TestDb) {
    let store = &db.store;
    store
        .create_execution(&new_execution("e1", "web", &["build"], 1))
        .await
        .unwrap();
    // Several INSERT statements' worth, ending with a partial one.
    let batch: Vec<NewLogLine> = (0..2345).map(|n| line("e1", "build", n)).collect();
    let seqs = store.append_logs(&batch).await.unwrap();
    assert_eq!(seqs.len(), batch.len());
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));

    let mut read = Vec::new();
    let mut after = 0;
    loop {
        let page = store.logs("e1", Some("build"), after, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        read.extend(page);
    }
    let expected: Vec<LogLine> = batch
        .iter()
        .zip(&seqs)
        .map(|(l, &s)| stored(l, s))
        .collect();
    assert_eq!(read, expected);
}

async fn odd_lines_survive(db: TestDb) {
    let store = &db.store;
    store
        .create_execution(&new_execution("e1", "web", &["build"], 1))
        .await
        .unwrap();
    let texts = [
        "",
        "  indented\ttab",
        "ünïcødé ✓ 🚀",
        "quote ' and \" and $1 and ?",
        &"x".repeat(100_000),
    ];
    let batch: Vec<NewLogLine> = texts
        .iter()
        .map(|t| NewLogLine {
            line: t.to_string(),
            ..line("e1", "build", 0)
        })
        .collect();
    store.append_logs(&batch).await.unwrap();
    let read: Vec<String> = store
        .logs("e1", None, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.line)
        .collect();
    assert_eq!(read, texts);

    // PostgreSQL's text cannot hold NUL; both backends replace it.
    store
        .append_logs(&[NewLogLine {
            line: "a\0b".into(),
            ..line("e1", "build", 0)
        }])
        .await
        .unwrap();
    let last = store.logs("e1", None, 0, 100).await.unwrap().pop().unwrap();
    assert_eq!(last.line, "a\u{FFFD}b");
}
