use super::{ClusterPage, ClusterQuery, ClusterSummary, InstanceCounts};
use crate::model::{ServerGroup, ServerGroupSpec};

fn group(application: &str, cluster: &str, version: u32, enabled: bool, live: bool) -> ServerGroup {
    ServerGroup {
        name: format!("{cluster}-v{version:03}"),
        application: application.to_owned(),
        cluster: cluster.to_owned(),
        version,
        request_id: format!("r{version}"),
        spec: ServerGroupSpec::default(),
        size: 2,
        enabled,
        weight: 100,
        created_at: 0,
        destroyed_at: (!live).then_some(1),
        provider: None,
    }
}

fn groups() -> Vec<ServerGroup> {
    vec![
        group("shop", "shop-web", 1, true, true),
        group("shop", "shop-web", 0, false, true),
        group("shop", "shop-api", 0, false, false),
        group("blog", "blog-web", 3, true, true),
        group("mail", "mail", 0, true, true),
    ]
}

/// `(names on the page, total, next)` of `query` over [`groups`], every live group
/// counting two instances, one of them healthy.
fn check(query: ClusterQuery, expected: (&[&str], usize, Option<&str>)) {
    let page = query.page(&groups(), |_| InstanceCounts {
        instances: 2,
        healthy: 1,
    });
    let names: Vec<&str> = page.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        (names.as_slice(), page.total, page.next.as_deref()),
        expected,
        "{query:?}"
    );
}

#[test]
fn a_page_holds_clusters_by_name_after_the_last_one_read() {
    let query = |q: Option<&str>, after: Option<&str>, limit: Option<usize>| ClusterQuery {
        q: q.map(str::to_owned),
        after: after.map(str::to_owned),
        limit,
    };
    check(
        query(None, None, None),
        (&["blog-web", "mail", "shop-api", "shop-web"], 4, None),
    );
    check(
        query(None, None, Some(2)),
        (&["blog-web", "mail"], 4, Some("mail")),
    );
    check(
        query(None, Some("mail"), Some(2)),
        (&["shop-api", "shop-web"], 4, None),
    );
    check(
        query(Some("SHOP"), None, Some(1)),
        (&["shop-api"], 2, Some("shop-api")),
    );
    check(query(Some("blog"), None, Some(5)), (&["blog-web"], 1, None));
    check(query(Some("nothing"), None, None), (&[], 0, None));
}

#[test]
fn a_summary_counts_live_groups_oldest_first_and_asks_counts_only_for_them() {
    let mut asked = Vec::new();
    let query = ClusterQuery {
        q: Some("shop".to_owned()),
        ..ClusterQuery::default()
    };
    let page = query.page(&groups(), |g| {
        asked.push(g.name.clone());
        InstanceCounts {
            instances: 2,
            healthy: 1,
        }
    });
    assert_eq!(asked, ["shop-web-v000", "shop-web-v001"]);
    assert_eq!(
        page.clusters,
        [
            ClusterSummary {
                name: "shop-api".to_owned(),
                application: None,
                server_groups: vec![],
                enabled: vec![],
                instances: 0,
                healthy: 0,
            },
            ClusterSummary {
                name: "shop-web".to_owned(),
                application: Some("shop".to_owned()),
                server_groups: vec!["shop-web-v000".to_owned(), "shop-web-v001".to_owned()],
                enabled: vec!["shop-web-v001".to_owned()],
                instances: 4,
                healthy: 2,
            },
        ]
    );
}

#[test]
fn providers_pages_merge_into_one_page_in_name_order() {
    let summary = |name: &str, instances: usize| ClusterSummary {
        name: name.to_owned(),
        application: Some("app".to_owned()),
        server_groups: vec![format!("{name}-v000")],
        enabled: vec![],
        instances,
        healthy: 0,
    };
    let query = ClusterQuery {
        limit: Some(2),
        ..ClusterQuery::default()
    };
    let local = ClusterPage {
        clusters: vec![summary("b", 1), summary("d", 1)],
        total: 3,
        next: Some("d".to_owned()),
    };
    let ssh = ClusterPage {
        clusters: vec![summary("a", 1), summary("b", 2)],
        total: 2,
        next: None,
    };
    let merged = ClusterPage::merge(&query, vec![local, ssh]);
    let names: Vec<(&str, usize)> = merged
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.instances))
        .collect();
    assert_eq!(names, [("a", 1), ("b", 3)]);
    assert_eq!(merged.total, 4, "b is one cluster, run by two providers");
    assert_eq!(merged.next.as_deref(), Some("b"));
}
