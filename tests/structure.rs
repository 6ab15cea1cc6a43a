//! The house's rules, read from the code's own paths: no two files of `src/` reach each other
//! (directly or round a circle), no layer reaches up (db and auth never use core, core never
//! the web side, routes never another route file), as docs/architecture.md draws it. A file's
//! uses are its `use crate::…`, `use super::…` and inline `crate::…` paths, each taken to the
//! deepest module that is a file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Which top-level rooms a file under each one may not use.
const NEVER: &[(&str, &[&str])] = &[
    ("db", &["core", "auth", "http", "routes", "mail", "cli"]),
    ("auth", &["core", "http", "routes", "mail", "cli"]),
    ("core", &["http", "routes", "mail", "cli"]),
    ("http", &["routes", "mail", "cli"]),
    ("config", &["core", "auth", "http", "routes", "mail", "cli"]),
    (
        "crypto",
        &["db", "core", "auth", "http", "routes", "mail", "cli"],
    ),
    (
        "clock",
        &["db", "core", "auth", "http", "routes", "mail", "cli"],
    ),
];

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/core/accounts.rs` → `["core", "accounts"]`; `src/db/mod.rs` → `["db"]`; `lib.rs` → `[]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Every path a `use` tree names, its braces expanded: `a::{b, c::{d, e}}` → a::b, a::c::d, …
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap().trim();
        return vec![path.to_owned()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|item| !item.trim().is_empty())
        .flat_map(|item| {
            expand(item).into_iter().map(move |rest| {
                if rest == "self" {
                    prefix.trim_end_matches("::").to_owned()
                } else {
                    format!("{prefix}{rest}")
                }
            })
        })
        .collect()
}

/// The module paths (as segments from the crate root) that `text`, the source of module
/// `module`, uses.
fn uses(text: &str, module: &[String], is_mod_file: bool) -> Vec<Vec<String>> {
    // Comments name paths they do not use.
    let code: String = text
        .lines()
        .map(|line| line.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let mut paths = Vec::new();
    for statement in code.split(';') {
        let statement = statement.trim();
        let tree = statement
            .strip_prefix("pub use ")
            .or_else(|| statement.strip_prefix("pub(crate) use "))
            .or_else(|| statement.strip_prefix("use "))
            .or_else(|| statement.split("\nuse ").nth(1))
            .or_else(|| statement.split("\npub use ").nth(1));
        if let Some(tree) = tree {
            paths.extend(expand(tree));
        }
    }
    // Inline paths: `crate::a::b::c(…)` and `super::a::…` anywhere in the code.
    for start in ["crate::", "super::"] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(start) {
            let boundary = rest[..at]
                .chars()
                .last()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'));
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            if boundary {
                paths.push(tail[..end].to_owned());
            }
            rest = &tail[end..];
        }
    }
    // A `mod.rs` is its folder's module: its `super` is the folder's parent.
    let here: Vec<String> = module.to_vec();
    let parent: Vec<String> = if is_mod_file || module.is_empty() {
        here.iter()
            .take(here.len().saturating_sub(1))
            .cloned()
            .collect()
    } else {
        here[..here.len() - 1].to_vec()
    };
    paths
        .into_iter()
        .filter_map(|path| {
            let segments: Vec<String> = path
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            match segments.first().map(String::as_str) {
                Some("crate") => Some(segments[1..].to_vec()),
                Some("super") => {
                    let mut base = parent.clone();
                    let mut rest = &segments[1..];
                    while rest.first().is_some_and(|s| s == "super") {
                        base.pop();
                        rest = &rest[1..];
                    }
                    base.extend(rest.iter().cloned());
                    Some(base)
                }
                Some("self") if is_mod_file => {
                    let mut base = here.clone();
                    base.extend(segments[1..].iter().cloned());
                    Some(base)
                }
                _ => None,
            }
        })
        .collect()
}

/// The file each module path lands in: the deepest prefix that is a file of its own.
fn resolve<'a>(files: &'a BTreeMap<Vec<String>, String>, path: &[String]) -> Option<&'a String> {
    (1..=path.len()).rev().find_map(|n| files.get(&path[..n]))
}

struct House {
    /// File → the files it uses.
    arrows: BTreeMap<String, BTreeSet<String>>,
}

impl House {
    fn read() -> House {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut paths = Vec::new();
        source_files(&src, &mut paths);
        let files: BTreeMap<Vec<String>, String> = paths
            .iter()
            .filter(|p| !p.ends_with("main.rs"))
            .map(|p| {
                let name = p.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
                (module_of(&src, p), name)
            })
            .collect();
        let mut arrows = BTreeMap::new();
        for path in paths.iter().filter(|p| !p.ends_with("main.rs")) {
            let name = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let module = module_of(&src, path);
            let is_mod_file = path.ends_with("mod.rs");
            let text = fs::read_to_string(path).unwrap();
            let targets: BTreeSet<String> = uses(&text, &module, is_mod_file)
                .iter()
                .filter_map(|used| resolve(&files, used))
                // A folder's `mod.rs` declares its rooms; using the folder's own module
                // (`crate::db::Conn`) from inside is not reaching back up a circle.
                .filter(|target| **target != name && target.as_str() != "lib.rs")
                .cloned()
                .collect();
            arrows.insert(name, targets);
        }
        House { arrows }
    }

    /// The circles: each a strongly connected set of more than one file (Tarjan).
    fn circles(&self) -> Vec<Vec<String>> {
        struct Walk<'h> {
            house: &'h House,
            index: BTreeMap<&'h str, usize>,
            low: BTreeMap<&'h str, usize>,
            stack: Vec<&'h str>,
            on_stack: BTreeSet<&'h str>,
            next: usize,
            found: Vec<Vec<String>>,
        }
        impl<'h> Walk<'h> {
            fn visit(&mut self, file: &'h str) {
                self.index.insert(file, self.next);
                self.low.insert(file, self.next);
                self.next += 1;
                self.stack.push(file);
                self.on_stack.insert(file);
                for target in self.house.arrows.get(file).into_iter().flatten() {
                    let target = target.as_str();
                    if !self.index.contains_key(target) {
                        self.visit(target);
                        let low = self.low[target].min(self.low[file]);
                        self.low.insert(file, low);
                    } else if self.on_stack.contains(target) {
                        let low = self.index[target].min(self.low[file]);
                        self.low.insert(file, low);
                    }
                }
                if self.low[file] == self.index[file] {
                    let mut circle = Vec::new();
                    while let Some(top) = self.stack.pop() {
                        self.on_stack.remove(top);
                        circle.push(top.to_owned());
                        if top == file {
                            break;
                        }
                    }
                    if circle.len() > 1 {
                        circle.sort();
                        self.found.push(circle);
                    }
                }
            }
        }
        let mut walk = Walk {
            house: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            next: 0,
            found: Vec::new(),
        };
        for file in self.arrows.keys() {
            if !walk.index.contains_key(file.as_str()) {
                walk.visit(file);
            }
        }
        walk.found
    }
}

fn room(file: &str) -> &str {
    file.split('/').next().unwrap().trim_end_matches(".rs")
}

#[test]
fn no_two_files_reach_each_other() {
    let circles = House::read().circles();
    assert!(circles.is_empty(), "circles: {circles:#?}");
}

#[test]
fn no_layer_reaches_up() {
    let house = House::read();
    let mut wrong = Vec::new();
    for (file, targets) in &house.arrows {
        let from = room(file);
        let never = NEVER
            .iter()
            .find(|(r, _)| *r == from)
            .map_or(&[][..], |(_, n)| *n);
        for target in targets {
            if never.contains(&room(target)) {
                wrong.push(format!("{file} -> {target}"));
            }
        }
    }
    assert!(wrong.is_empty(), "arrows that reach up: {wrong:#?}");
}

#[test]
fn no_route_file_uses_another() {
    let house = House::read();
    let wrong: Vec<String> = house
        .arrows
        .iter()
        .filter(|(file, _)| file.starts_with("routes/") && !file.ends_with("mod.rs"))
        .flat_map(|(file, targets)| {
            targets
                .iter()
                .filter(|t| t.starts_with("routes/") && !t.ends_with("mod.rs"))
                .map(move |t| format!("{file} -> {t}"))
        })
        .collect();
    assert!(wrong.is_empty(), "route files using each other: {wrong:#?}");
}

#[test]
fn the_reader_sees_what_the_rules_are_about() {
    // The reader itself: a grouped use, a nested one, `super` and an inline path.
    let text = "use crate::db::{self, Tx, users::UserRow};\nuse super::throttle::Subjects;\n\
                fn f() { crate::core::events::prune(); }";
    let module = vec!["core".to_owned(), "accounts".to_owned()];
    let found = uses(text, &module, false);
    for wanted in [
        vec!["db"],
        vec!["db", "Tx"],
        vec!["db", "users", "UserRow"],
        vec!["core", "throttle", "Subjects"],
        vec!["core", "events", "prune"],
    ] {
        let wanted: Vec<String> = wanted.into_iter().map(str::to_owned).collect();
        assert!(found.contains(&wanted), "{wanted:?} in {found:?}");
    }
}
