//! A picture of one environment: its Workers, what their bindings reach (databases, stores,
//! other Workers) and the edge rules on the zones they route, as mermaid or Graphviz dot.
//!
//! Reviewers of a manifest change would rather look at what changes than read addresses, so
//! with a plan every node and arrow is marked `added`, `changed`, `deleted` or `blocked`, in
//! its label (readable as text) and in its colour. Every label is built from a restricted
//! alphabet, so no name can end a label or inject a statement into the diagram.

use std::fmt::Write;

use crate::edge::{self, RuleKind};
use crate::manifest::model::{Binding, Manifest};
use crate::plan::{Action, Address, Plan};

/// The diagram languages `graph` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// A mermaid flowchart (GitHub renders it in markdown).
    Mermaid,
    /// Graphviz dot.
    Dot,
}

/// What a plan does to a node or an arrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mark {
    /// Nothing, or there is no plan.
    Unchanged,
    /// Apply makes it.
    Added,
    /// Apply changes it.
    Changed,
    /// Apply removes it.
    Deleted,
    /// A blocker stops apply here.
    Blocked,
}

impl Mark {
    fn word(self) -> Option<&'static str> {
        match self {
            Self::Unchanged => None,
            Self::Added => Some("added"),
            Self::Changed => Some("changed"),
            Self::Deleted => Some("deleted"),
            Self::Blocked => Some("blocked"),
        }
    }

    /// Fill and stroke colours (GitHub's diff palette).
    fn colours(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Unchanged => None,
            Self::Added => Some(("#dafbe1", "#1a7f37")),
            Self::Changed => Some(("#fff8c5", "#9a6700")),
            Self::Deleted => Some(("#ffebe9", "#cf222e")),
            Self::Blocked => Some(("#ffebe9", "#82071e")),
        }
    }

    fn of_action(action: Action) -> Self {
        match action {
            Action::NoOp => Self::Unchanged,
            Action::Create => Self::Added,
            Action::Update | Action::Replace => Self::Changed,
            Action::Delete => Self::Deleted,
        }
    }
}

/// What a node stands for, which sets its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Worker,
    Database,
    Store,
    Zone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    id: String,
    kind: Kind,
    title: String,
    name: String,
    mark: Mark,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Arrow {
    from: String,
    to: String,
    label: String,
    dashed: bool,
    mark: Mark,
}

/// One environment as nodes and arrows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    environment: String,
    nodes: Vec<Node>,
    arrows: Vec<Arrow>,
}

impl Graph {
    /// The environment `desired` describes, marked by `plan` when there is one.
    pub fn new(desired: &Manifest, plan: Option<&Plan>) -> Self {
        let marks = Marks { plan };
        let mut graph = Graph {
            environment: desired.environment.clone(),
            nodes: Vec::new(),
            arrows: Vec::new(),
        };
        for (key, db) in &desired.d1_databases {
            let address = Address::D1 { key: key.clone() };
            graph.node(Node {
                id: id("d1", key),
                kind: Kind::Database,
                title: address.to_string(),
                name: db.name.clone(),
                mark: marks.resource(&address),
            });
        }
        let scripts: Vec<(&str, &str)> = desired
            .workers
            .iter()
            .map(|(key, w)| (w.name.as_str(), key.as_str()))
            .collect();
        for (key, worker) in &desired.workers {
            let address = Address::Worker { key: key.clone() };
            let from = id("worker", key);
            graph.node(Node {
                id: from.clone(),
                kind: Kind::Worker,
                title: address.to_string(),
                name: worker.name.clone(),
                mark: marks.resource(&address),
            });
            for (name, binding) in &worker.bindings {
                let target = match binding {
                    Binding::D1 { database } => Some(id("d1", database)),
                    Binding::Service { service, .. } => {
                        Some(match scripts.iter().find(|(script, _)| script == service) {
                            Some((_, other)) => id("worker", other),
                            None => graph.store("service", service, "Worker"),
                        })
                    }
                    Binding::KvNamespace { namespace_id } => {
                        Some(graph.store("kv", namespace_id, "KV namespace"))
                    }
                    Binding::R2Bucket { bucket_name, .. } => {
                        Some(graph.store("r2", bucket_name, "R2 bucket"))
                    }
                    Binding::Ratelimit { namespace_id, .. } => {
                        Some(graph.store("ratelimit", namespace_id, "rate limiter"))
                    }
                    Binding::PlainText { .. } => None,
                };
                if let Some(to) = target {
                    graph.arrows.push(Arrow {
                        from: from.clone(),
                        to,
                        label: name.clone(),
                        dashed: false,
                        mark: marks.exact(&Address::Binding {
                            worker: key.clone(),
                            name: name.clone(),
                        }),
                    });
                }
            }
        }
        for rule in edge::desired(desired) {
            let to = id("zone", &rule.zone);
            graph.node(Node {
                id: to.clone(),
                kind: Kind::Zone,
                title: "zone".to_owned(),
                name: rule.zone.clone(),
                mark: Mark::Unchanged,
            });
            graph.arrows.push(Arrow {
                from: id("worker", &rule.worker),
                to,
                label: match rule.kind {
                    RuleKind::Headers => "header rule",
                    RuleKind::RateLimit => "rate limit",
                }
                .to_owned(),
                dashed: true,
                mark: marks.exact(&rule.address()),
            });
        }
        graph
    }

    fn node(&mut self, node: Node) {
        if !self.nodes.iter().any(|n| n.id == node.id) {
            self.nodes.push(node);
        }
    }

    /// A node for something a binding reaches that the manifest does not declare.
    fn store(&mut self, prefix: &str, name: &str, title: &str) -> String {
        let node_id = id(prefix, name);
        self.node(Node {
            id: node_id.clone(),
            kind: Kind::Store,
            title: title.to_owned(),
            name: name.to_owned(),
            mark: Mark::Unchanged,
        });
        node_id
    }

    /// The graph as a mermaid flowchart.
    pub fn mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for node in &self.nodes {
            let label = node_label(node, "<br/>");
            let _ = match node.kind {
                Kind::Worker => writeln!(out, "  {}[\"{label}\"]", node.id),
                // Unquoted: a quoted label in a cylinder trips stricter parsers.
                Kind::Database => writeln!(out, "  {}[({label})]", node.id),
                Kind::Store => writeln!(out, "  {}([\"{label}\"])", node.id),
                Kind::Zone => writeln!(out, "  {}{{{{\"{label}\"}}}}", node.id),
            };
        }
        for arrow in &self.arrows {
            let line = if arrow.dashed { "-.->" } else { "-->" };
            let _ = writeln!(
                out,
                "  {} {line}|{}| {}",
                arrow.from,
                arrow_label(arrow),
                arrow.to
            );
        }
        for mark in [Mark::Added, Mark::Changed, Mark::Deleted, Mark::Blocked] {
            let (Some(word), Some((fill, stroke))) = (mark.word(), mark.colours()) else {
                continue;
            };
            let nodes: Vec<&str> = self
                .nodes
                .iter()
                .filter(|n| n.mark == mark)
                .map(|n| n.id.as_str())
                .collect();
            if !nodes.is_empty() {
                let _ = writeln!(
                    out,
                    "  classDef {word} fill:{fill},stroke:{stroke},stroke-width:2px"
                );
                let _ = writeln!(out, "  class {} {word}", nodes.join(","));
            }
            for (index, _) in self
                .arrows
                .iter()
                .enumerate()
                .filter(|(_, a)| a.mark == mark)
            {
                let _ = writeln!(out, "  linkStyle {index} stroke:{stroke},stroke-width:2px");
            }
        }
        out
    }

    /// The graph as Graphviz dot.
    pub fn dot(&self) -> String {
        let mut out = format!(
            "digraph \"{}\" {{\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n",
            text(&self.environment)
        );
        for node in &self.nodes {
            let shape = match node.kind {
                Kind::Worker => "box",
                Kind::Database => "cylinder",
                Kind::Store => "ellipse",
                Kind::Zone => "hexagon",
            };
            let style = node.mark.colours().map_or(String::new(), |(fill, stroke)| {
                format!(", style=filled, fillcolor=\"{fill}\", color=\"{stroke}\"")
            });
            let _ = writeln!(
                out,
                "  {} [label=\"{}\", shape={shape}{style}];",
                node.id,
                node_label(node, "\\n")
            );
        }
        for arrow in &self.arrows {
            let mut attributes = format!("label=\"{}\"", arrow_label(arrow));
            if arrow.dashed {
                attributes.push_str(", style=dashed");
            }
            if let Some((_, stroke)) = arrow.mark.colours() {
                let _ = write!(attributes, ", color=\"{stroke}\", penwidth=2");
            }
            let _ = writeln!(out, "  {} -> {} [{attributes}];", arrow.from, arrow.to);
        }
        out.push_str("}\n");
        out
    }

    /// The graph in `format`.
    pub fn render(&self, format: GraphFormat) -> String {
        match format {
            GraphFormat::Mermaid => self.mermaid(),
            GraphFormat::Dot => self.dot(),
        }
    }
}

/// How a plan marks addresses.
struct Marks<'a> {
    plan: Option<&'a Plan>,
}

impl Marks<'_> {
    /// A resource: its own change's action, or `changed` when anything below it changes, or
    /// `blocked` when a blocker names it or anything below it.
    fn resource(&self, address: &Address) -> Mark {
        let Some(plan) = self.plan else {
            return Mark::Unchanged;
        };
        if plan
            .blockers
            .iter()
            .any(|b| b.address.resource().as_ref() == address)
        {
            return Mark::Blocked;
        }
        let own = plan.changes.iter().find(|c| c.address == *address);
        match own.map(|c| c.action) {
            Some(action) if action != Action::NoOp => Mark::of_action(action),
            _ if plan
                .effective_changes()
                .any(|c| c.resource().as_ref() == address) =>
            {
                Mark::Changed
            }
            _ => Mark::Unchanged,
        }
    }

    /// One address: its change's action.
    fn exact(&self, address: &Address) -> Mark {
        self.plan
            .and_then(|plan| plan.changes.iter().find(|c| c.address == *address))
            .map_or(Mark::Unchanged, |c| Mark::of_action(c.action))
    }
}

/// A node id: the prefix and the name with every character outside `[a-z0-9]` written as
/// `_` and its code, so two names never share an id.
fn id(prefix: &str, name: &str) -> String {
    let mut out = format!("{prefix}_");
    for c in name.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else {
            let _ = write!(out, "_{:x}", u32::from(c));
        }
    }
    out
}

/// Text safe in any label of either language, quoted or not: letters, digits and
/// `. - _ / * : @ ,` and spaces are kept, anything else becomes `?`.
fn text(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " .-_/*:@,".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn node_label(node: &Node, line_break: &str) -> String {
    let mark = node
        .mark
        .word()
        .map_or(String::new(), |w| format!("{line_break}{w}"));
    format!(
        "{}{line_break}{}{mark}",
        text(&node.title),
        text(&node.name)
    )
}

fn arrow_label(arrow: &Arrow) -> String {
    match arrow.mark.word() {
        Some(word) => format!("{}: {word}", text(&arrow.label)),
        None => text(&arrow.label),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{DiffOptions, diff};
    use crate::testing::{STAGING, audited, manifest};

    #[test]
    fn the_audited_staging_plan_marks_the_new_database_and_its_binding() {
        let desired = manifest(STAGING);
        let plan = diff(&desired, &audited(), &DiffOptions::default());
        let out = Graph::new(&desired, Some(&plan)).mermaid();
        assert!(
            out.contains("d1_main[(d1.main<br/>lms-db-staging<br/>added)]"),
            "{out}"
        );
        assert!(out.contains("worker_api -->|DB: added| d1_main"), "{out}");
        assert!(out.contains("class worker_api blocked"), "{out}");
        let dot = Graph::new(&desired, Some(&plan)).dot();
        assert!(
            dot.contains(
                "worker_api -> d1_main [label=\"DB: added\", color=\"#1a7f37\", penwidth=2];"
            ),
            "{dot}"
        );
    }

    #[test]
    fn names_cannot_end_a_label_or_share_an_id() {
        assert_eq!(id("kv", "a-b"), "kv_a_2db");
        assert_ne!(id("kv", "a-b"), id("kv", "a_b"));
        assert_eq!(text("x\"]\n--> y|z"), "x???--? y?z");
    }
}
