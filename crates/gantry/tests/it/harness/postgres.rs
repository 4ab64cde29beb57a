//! Each test's own PostgreSQL database, made from an admin URL.

use std::time::Duration;

/// A PostgreSQL database made for one test and dropped after it.
pub(super) struct PgDatabase {
    admin_url: String,
    name: String,
    pub(super) url: String,
}

impl PgDatabase {
    pub(super) fn create(admin_url: &str) -> PgDatabase {
        let name = format!("gantry_it_{}", uuid::Uuid::now_v7().simple());
        let url = with_database(admin_url, &name);
        pg_execute(admin_url, &format!("CREATE DATABASE {name}"));
        PgDatabase {
            admin_url: admin_url.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for PgDatabase {
    /// Dropping is cleanup, never a verdict on the test: `WITH (FORCE)`
    /// cannot end an autovacuum worker that happens to be in the database (a
    /// superuser process), so it is tried a few times, then left with a note.
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let mut outcome = Ok(());
        for _ in 0..20 {
            outcome = try_pg_execute(&self.admin_url, &sql);
            if outcome.is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        if let Err(error) = outcome {
            eprintln!("note: test database {} left behind: {error}", self.name);
        }
    }
}

fn pg_execute(url: &str, sql: &str) {
    try_pg_execute(url, sql).unwrap_or_else(|e| panic!("{e}"));
}

fn try_pg_execute(url: &str, sql: &str) -> Result<(), String> {
    use sqlx::Connection;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .map_err(|e| format!("connect to {url}: {e}"))?;
        let result = sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .map_err(|e| format!("{sql}: {e}"));
        let _ = conn.close().await;
        result.map(|_| ())
    })
}

/// The URL with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}
