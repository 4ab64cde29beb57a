//! The stage graph: `dependsOn` must name other stages of the pipeline and must not loop.

use std::collections::{BTreeSet, HashMap};

use crate::check::{Checker, did_you_mean};
use crate::stages::CheckedStage;

/// The graph of a pipeline's stages, by index in `stages:`.
pub(crate) struct Graph {
    /// For each stage, the stages it depends on (only those that exist).
    pub depends_on: Vec<Vec<usize>>,
}

impl Graph {
    /// Checks `dependsOn` everywhere and builds the graph of what resolved.
    pub fn check(cx: &mut Checker<'_>, stages: &[CheckedStage<'_>]) -> Graph {
        let index: HashMap<&str, usize> = stages
            .iter()
            .enumerate()
            .filter_map(|(i, stage)| Some((stage.id?.0, i)))
            .collect();
        let ids: Vec<&str> = index.keys().copied().collect();
        let mut depends_on = vec![Vec::new(); stages.len()];
        for (i, stage) in stages.iter().enumerate() {
            let own = stage.id.map(|(id, _)| id);
            let name = own.map_or_else(|| format!("stage {}", i + 1), |id| format!("stage {id:?}"));
            let mut seen = BTreeSet::new();
            for (dependency, node) in &stage.depends_on {
                if Some(*dependency) == own {
                    cx.error(node.span.start, format!("{name} depends on itself"));
                } else if let Some(&target) = index.get(dependency) {
                    if !seen.insert(target) {
                        cx.error(
                            node.span.start,
                            format!("{name} lists {dependency:?} twice in dependsOn"),
                        );
                    }
                    depends_on[i].push(target);
                } else {
                    cx.error(
                        node.span.start,
                        format!(
                            "{name} depends on unknown stage {dependency:?}{}",
                            did_you_mean(dependency, &ids)
                        ),
                    );
                }
            }
        }
        let graph = Graph { depends_on };
        graph.report_cycles(cx, stages);
        graph
    }

    /// Every stage that runs before `stage`, through `dependsOn`, transitively.
    pub fn upstream(&self, stage: usize) -> BTreeSet<usize> {
        let mut found = BTreeSet::new();
        let mut todo = self.depends_on[stage].clone();
        while let Some(next) = todo.pop() {
            if found.insert(next) {
                todo.extend(&self.depends_on[next]);
            }
        }
        found
    }

    /// Reports each cycle once, at the `dependsOn` entry that closes it, as `a -> b -> a`
    /// (read "a depends on b, which depends on a").
    fn report_cycles(&self, cx: &mut Checker<'_>, stages: &[CheckedStage<'_>]) {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnPath,
            Done,
        }
        let mut marks = vec![Mark::New; stages.len()];
        for start in 0..stages.len() {
            if marks[start] != Mark::New {
                continue;
            }
            // Depth-first, without recursion: (stage, next edge to follow).
            let mut path: Vec<(usize, usize)> = vec![(start, 0)];
            marks[start] = Mark::OnPath;
            while let Some(&mut (stage, ref mut edge)) = path.last_mut() {
                let Some(&next) = self.depends_on[stage].get(*edge) else {
                    marks[stage] = Mark::Done;
                    path.pop();
                    continue;
                };
                *edge += 1;
                match marks[next] {
                    Mark::New => {
                        marks[next] = Mark::OnPath;
                        path.push((next, 0));
                    }
                    Mark::OnPath => {
                        let from = path.iter().position(|(s, _)| *s == next).unwrap_or(0);
                        let mut cycle: Vec<&str> = path[from..]
                            .iter()
                            .map(|(s, _)| stages[*s].id.map_or("?", |(id, _)| id))
                            .collect();
                        cycle.push(stages[next].id.map_or("?", |(id, _)| id));
                        let at = stages[stage]
                            .depends_on
                            .iter()
                            .find(|(dependency, _)| {
                                Some(*dependency) == stages[next].id.map(|(id, _)| id)
                            })
                            .map_or(stages[stage].node.span.start, |(_, node)| node.span.start);
                        cx.error(at, format!("dependency cycle: {}", cycle.join(" -> ")));
                    }
                    Mark::Done => {}
                }
            }
        }
    }
}
