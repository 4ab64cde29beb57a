//! An execution's stages as a layered graph: each stage in the column after
//! the last of the stages it depends on, each column ordered to keep edges
//! short (the mean row of a stage's dependencies, then file order), drawn as
//! SVG on the server so the page is complete before any script runs.

use std::collections::HashMap;

use gantry_wire::executions::Stage;

use crate::format;
use crate::layout::Badge;

pub const NODE_WIDTH: u32 = 200;
pub const NODE_HEIGHT: u32 = 58;
const COLUMN_GAP: u32 = 56;
const ROW_GAP: u32 = 14;
const MARGIN: u32 = 8;

pub struct Graph {
    pub width: u32,
    pub height: u32,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

pub struct Node {
    pub id: String,
    /// The id of the stage's section on the page, which the node links to.
    pub anchor: String,
    pub label: String,
    pub badge: Badge,
    pub duration: String,
    pub x: u32,
    pub y: u32,
}

pub struct Edge {
    /// The SVG path.
    pub d: String,
}

pub fn layout(stages: &[Stage]) -> Graph {
    let index: HashMap<&str, usize> = stages
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut column: Vec<Option<usize>> = vec![None; stages.len()];
    for i in 0..stages.len() {
        column_of(i, stages, &index, &mut column, 0);
    }
    let column: Vec<usize> = column.into_iter().map(|c| c.unwrap_or(0)).collect();
    let columns = column.iter().max().map_or(0, |c| c + 1);

    // Rows: column by column, each stage at the mean row of its dependencies.
    let mut row = vec![0usize; stages.len()];
    let mut rows = 0;
    for c in 0..columns {
        let mut members: Vec<(f64, usize)> = (0..stages.len())
            .filter(|&i| column[i] == c)
            .map(|i| {
                let deps: Vec<usize> = dependencies(&stages[i], &index).collect();
                let mean = if deps.is_empty() {
                    i as f64
                } else {
                    deps.iter().map(|&d| row[d] as f64).sum::<f64>() / deps.len() as f64
                };
                (mean, i)
            })
            .collect();
        members.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (r, (_, i)) in members.iter().enumerate() {
            row[*i] = r;
        }
        rows = rows.max(members.len());
    }

    let x_of = |c: usize| MARGIN + c as u32 * (NODE_WIDTH + COLUMN_GAP);
    let y_of = |r: usize| MARGIN + r as u32 * (NODE_HEIGHT + ROW_GAP);
    let nodes = stages
        .iter()
        .enumerate()
        .map(|(i, stage)| Node {
            id: stage.id.clone(),
            anchor: anchor(i),
            label: stage.name.clone().unwrap_or_else(|| stage.id.clone()),
            badge: Badge(stage.status),
            duration: format::duration(stage.started_at.as_deref(), stage.ended_at.as_deref()),
            x: x_of(column[i]),
            y: y_of(row[i]),
        })
        .collect();
    let mut edges = Vec::new();
    for (i, stage) in stages.iter().enumerate() {
        for d in dependencies(stage, &index) {
            let (x1, y1) = (
                i64::from(x_of(column[d]) + NODE_WIDTH),
                i64::from(y_of(row[d]) + NODE_HEIGHT / 2),
            );
            let (x2, y2) = (
                i64::from(x_of(column[i])),
                i64::from(y_of(row[i]) + NODE_HEIGHT / 2),
            );
            // Half the gap between the columns; a cycle's back edge bends the other way.
            let bend = (x2 - x1) / 2;
            edges.push(Edge {
                d: format!(
                    "M{x1},{y1} C{},{y1} {},{y2} {x2},{y2}",
                    x1 + bend,
                    x2 - bend
                ),
            });
        }
    }
    Graph {
        width: x_of(columns.max(1)) - COLUMN_GAP + MARGIN,
        height: y_of(rows.max(1)) - ROW_GAP + MARGIN,
        nodes,
        edges,
    }
}

/// The id of the page section of the `index`th stage.
pub fn anchor(index: usize) -> String {
    format!("stage-{index}")
}

fn dependencies<'a>(
    stage: &'a Stage,
    index: &'a HashMap<&str, usize>,
) -> impl Iterator<Item = usize> + 'a {
    stage
        .depends_on
        .iter()
        .filter_map(|d| index.get(d.as_str()).copied())
}

/// One more than the deepest dependency; `depth` stops a cycle (which the
/// pipeline checker refuses anyway) from recursing forever.
fn column_of(
    i: usize,
    stages: &[Stage],
    index: &HashMap<&str, usize>,
    column: &mut Vec<Option<usize>>,
    depth: usize,
) -> usize {
    if let Some(c) = column[i] {
        return c;
    }
    if depth > stages.len() {
        return 0;
    }
    let deps: Vec<usize> = dependencies(&stages[i], index).collect();
    let c = deps
        .into_iter()
        .map(|d| column_of(d, stages, index, column, depth + 1) + 1)
        .max()
        .unwrap_or(0);
    column[i] = Some(c);
    c
}

#[cfg(test)]
mod tests;
