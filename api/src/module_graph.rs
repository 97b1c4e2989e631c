//! A test that keeps the crate's top-level modules free of import circles: it reads every
//! source file, notes which top-level modules each one names (`crate::x`, `use crate::{x, …}`),
//! and fails on any cycle, naming it. Test modules (`#[cfg(test)] mod tests`) and comments
//! are left out: a test may reach anywhere. See docs/architecture.md ("No import circles").

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its code names.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn modules(src: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(src).expect("api/src").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() {
            out.insert(name);
        } else if let Some(stem) = name.strip_suffix(".rs")
            && stem != "lib"
            && stem != "main"
        {
            out.insert(stem.to_owned());
        }
    }
    out
}

fn files(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("dir").flatten() {
            files(&entry.path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// The code of a file without its test module and comments.
fn code(text: &str) -> String {
    let text = text.find("#[cfg(test)]\nmod tests").map_or(text, |i| &text[..i]);
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The identifiers `text` names right after `crate::`, including each first name inside
/// `crate::{a, b::c}`.
fn named(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for part in group.split(',') {
                out.insert(ident(part.trim()));
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out
}

fn graph(src: &Path) -> Graph {
    let mods = modules(src);
    let mut g: Graph = mods.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    let mut all = Vec::new();
    files(src, &mut all);
    for file in all {
        let rel = file.strip_prefix(src).expect("under src");
        let first = rel.components().next().expect("component").as_os_str().to_string_lossy();
        let top = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
        if !mods.contains(&top) || top == "module_graph" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        for target in named(&code(&text)) {
            if target != top && mods.contains(&target) {
                g.get_mut(&top).expect("module").insert(target);
            }
        }
    }
    g
}

/// A cycle, if any, as the path of module names that closes it.
fn cycle(g: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(g: &Graph, m: &str, marks: &mut BTreeMap<String, Mark>, path: &mut Vec<String>) -> Option<Vec<String>> {
        marks.insert(m.to_owned(), Mark::Open);
        path.push(m.to_owned());
        for next in &g[m] {
            match marks[next] {
                Mark::Open => {
                    let start = path.iter().position(|p| p == next).expect("on the path");
                    let mut found = path[start..].to_vec();
                    found.push(next.clone());
                    return Some(found);
                }
                Mark::New => {
                    if let Some(found) = visit(g, next, marks, path) {
                        return Some(found);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(m.to_owned(), Mark::Done);
        None
    }
    let mut marks: BTreeMap<String, Mark> = g.keys().map(|k| (k.clone(), Mark::New)).collect();
    for m in g.keys() {
        if marks[m] == Mark::New
            && let Some(found) = visit(g, m, &mut marks, &mut Vec::new())
        {
            return Some(found);
        }
    }
    None
}

#[test]
fn no_top_level_module_imports_itself_back() {
    let g = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(g.contains_key("state") && g["state"].contains("config"), "the graph was read: {g:?}");
    if let Some(found) = cycle(&g) {
        panic!("import circle between modules: {}", found.join(" → "));
    }
}

#[test]
fn the_check_finds_a_circle() {
    let mut g = Graph::new();
    for (from, to) in [("auth", "state"), ("state", "metrics"), ("metrics", "auth"), ("routes", "auth")] {
        g.entry(from.into()).or_default().insert(to.into());
        g.entry(to.into()).or_default();
    }
    assert_eq!(cycle(&g).map(|c| c.join(" → ")).as_deref(), Some("auth → state → metrics → auth"));
    g.get_mut("metrics").expect("metrics").clear();
    assert_eq!(cycle(&g), None);
    assert_eq!(
        named("use crate::{error::ApiError, state};\nlet x = crate::jobs::run;"),
        ["error", "jobs", "state"].into_iter().map(String::from).collect()
    );
}
