//! The emulator's `world/` (with `alarms.rs` and `webhooks/`) has no import
//! circle between its files, and every import under `world/` is one that the
//! "Layers" list of `src/world/mod.rs` allows.
//!
//! The import graph is read from the sources: an edge A → B when file A
//! names module B, in a `use` or in a path (`crate::…`, `super::…`,
//! `self::…`, or a child module's name), resolved to the file that defines
//! B's longest known prefix. `mod x;` declarations are not imports, and
//! `#[cfg(test)]` code (always at the end of a file here) is left out.
//! `cargo nextest run -p flex-emulator --test world_layers --no-capture`
//! prints the edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A module path (`["world", "chat"]`) → its file, relative to `src/`.
type Modules = BTreeMap<Vec<String>, String>;
/// File → the files it imports.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every module of the library crate (`main.rs` is the binary's own crate).
fn modules() -> Modules {
    fn walk(dir: &Path, rel: &str, out: &mut Modules) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let file = format!("{rel}{name}");
            if path.is_dir() {
                walk(&path, &format!("{file}/"), out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                if file == "main.rs" {
                    continue;
                }
                let mut module: Vec<String> = rel
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                if !matches!(stem, "mod" | "lib") {
                    module.push(stem.to_owned());
                }
                out.insert(module, file);
            }
        }
    }
    let mut out = Modules::new();
    walk(&src(), "", &mut out);
    out
}

/// The code of a file: no comment lines, no trailing comments, no tests.
fn code_of(file: &str) -> String {
    let text = std::fs::read_to_string(src().join(file)).expect("a source file");
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut code = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        let line = match line.find(" //") {
            Some(at) if line[..at].matches('"').count() % 2 == 0 => &line[..at],
            _ => line,
        };
        code.push_str(line);
        code.push('\n');
    }
    code
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Path,
    Other(char),
}

fn tokens(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        if c.is_alphanumeric() || c == '_' {
            let start = at;
            while at < chars.len() && (chars[at].is_alphanumeric() || chars[at] == '_') {
                at += 1;
            }
            out.push(Token::Ident(chars[start..at].iter().collect()));
            continue;
        }
        if c == ':' && chars.get(at + 1) == Some(&':') {
            out.push(Token::Path);
            at += 2;
            continue;
        }
        if !c.is_whitespace() {
            out.push(Token::Other(c));
        }
        at += 1;
    }
    out
}

/// Expands a use tree (`super::{a::X, b::{self, Y}}`) into its paths.
fn use_paths(tokens: &[Token], at: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    loop {
        match tokens.get(*at) {
            Some(Token::Ident(name)) => {
                if name != "self" || path.is_empty() {
                    path.push(name.clone());
                }
                *at += 1;
            }
            Some(Token::Other('*')) => {
                *at += 1;
                break;
            }
            Some(Token::Other('{')) => {
                *at += 1;
                while !matches!(tokens.get(*at), Some(Token::Other('}')) | None) {
                    use_paths(tokens, at, &path, out);
                    if tokens.get(*at) == Some(&Token::Other(',')) {
                        *at += 1;
                    }
                }
                *at += 1;
                return;
            }
            _ => break,
        }
        match tokens.get(*at) {
            Some(Token::Path) => *at += 1,
            Some(Token::Ident(word)) if word == "as" => {
                *at += 2;
                break;
            }
            _ => break,
        }
    }
    out.push(path);
}

/// Every module path a file names: its `use` trees and its other paths.
fn named_paths(code: &str, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let tokens = tokens(code);
    let mut out = Vec::new();
    let mut at = 0;
    while at < tokens.len() {
        let after_path_or_dot = at > 0 && matches!(tokens[at - 1], Token::Path | Token::Other('.'));
        match &tokens[at] {
            Token::Ident(word) if word == "use" => {
                at += 1;
                use_paths(&tokens, &mut at, &[], &mut out);
            }
            Token::Ident(word)
                if !after_path_or_dot
                    && tokens.get(at + 1) == Some(&Token::Path)
                    && (matches!(word.as_str(), "crate" | "super" | "self")
                        || children.contains(word)) =>
            {
                let mut path = vec![word.clone()];
                at += 1;
                while tokens.get(at) == Some(&Token::Path) {
                    match tokens.get(at + 1) {
                        Some(Token::Ident(next)) => path.push(next.clone()),
                        _ => break,
                    }
                    at += 2;
                }
                out.push(path);
            }
            _ => at += 1,
        }
    }
    out
}

/// The file a path names, from the module `from`; `None` outside the crate.
fn resolve(modules: &Modules, from: &[String], path: &[String]) -> Option<String> {
    let mut absolute: Vec<String> = Vec::new();
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => rest = &path[1..],
        Some("self" | "super") => {
            absolute = from.to_vec();
            while let Some(word) = rest.first().map(String::as_str) {
                match word {
                    "self" => {}
                    "super" => {
                        absolute.pop();
                    }
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
        Some(first) => {
            let mut child = from.to_vec();
            child.push(first.to_owned());
            if !modules.contains_key(&child) {
                return None;
            }
            absolute = from.to_vec();
        }
        None => return None,
    }
    absolute.extend(rest.iter().cloned());
    (0..=absolute.len())
        .rev()
        .find_map(|len| modules.get(&absolute[..len]))
        .cloned()
}

fn graph() -> Graph {
    let modules = modules();
    let mut graph = Graph::new();
    for (module, file) in &modules {
        let children: BTreeSet<String> = modules
            .keys()
            .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
            .map(|m| m[module.len()].clone())
            .collect();
        let targets = graph.entry(file.clone()).or_default();
        for path in named_paths(&code_of(file), &children) {
            if let Some(target) = resolve(&modules, module, &path)
                && target != *file
                && target != "lib.rs"
            {
                targets.insert(target);
            }
        }
    }
    graph
}

fn in_scope(file: &str) -> bool {
    file.starts_with("world/") || file == "alarms.rs" || file.starts_with("webhooks/")
}

/// The import circles (strongly connected components of more than one file).
fn circles(graph: &Graph) -> Vec<Vec<String>> {
    let reaches = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_owned()];
        while let Some(file) = stack.pop() {
            for next in graph.get(&file).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|file| (file, reaches(file))).collect();
    let mut circles: Vec<Vec<String>> = Vec::new();
    for (file, reached) in &reach {
        if !reached.contains(*file) || circles.iter().any(|c| c.contains(file)) {
            continue;
        }
        let circle = reached
            .iter()
            .filter(|other| reach.get(other).is_some_and(|r| r.contains(*file)))
            .cloned()
            .collect();
        circles.push(circle);
    }
    circles
}

#[test]
fn world_alarms_and_webhooks_import_each_other_without_a_circle() {
    let graph = graph();
    for (file, targets) in graph.iter().filter(|(file, _)| in_scope(file)) {
        for target in targets.iter().filter(|t| in_scope(t)) {
            println!("{file} -> {target}");
        }
    }
    let circles: Vec<_> = circles(&graph)
        .into_iter()
        .filter(|circle| circle.iter().any(|file| in_scope(file)))
        .collect();
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}

/// A file's name in the layers list: relative to `src/world/`, without
/// `.rs` (`conversations/model`, `mod`); `../alarms` outside `world/`.
fn layer_name(file: &str) -> String {
    let name = file.strip_suffix(".rs").unwrap_or(file);
    match name.strip_prefix("world/") {
        Some(inside) => inside.to_owned(),
        None => format!("../{name}"),
    }
}

/// The names a list entry quotes: `` `hooks` ``, `` `conversations/{model, state}` ``.
fn quoted(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for name in text.split('`').skip(1).step_by(2) {
        match name.split_once('{') {
            Some((prefix, group)) => names.extend(
                group
                    .trim_end_matches('}')
                    .split(',')
                    .map(|item| format!("{prefix}{}", item.trim())),
            ),
            None => names.push(name.to_owned()),
        }
    }
    names
}

/// The "Layers" list of `world/mod.rs`, in its order (lowest first): each
/// entry's file and the files it may import.
fn layers() -> Vec<(String, BTreeSet<String>)> {
    let text = std::fs::read_to_string(src().join("world/mod.rs")).expect("world/mod.rs");
    let mut lines = text
        .lines()
        .skip_while(|line| !line.starts_with("//! # Layers"));
    assert!(
        lines.next().is_some(),
        "world/mod.rs has no `# Layers` section"
    );
    let mut entries: Vec<String> = Vec::new();
    for line in lines.take_while(|line| line.starts_with("//!")) {
        if let Some(entry) = line.strip_prefix("//! - ") {
            entries.push(entry.to_owned());
        } else if let (Some(more), Some(entry)) = (line.strip_prefix("//!   "), entries.last_mut())
        {
            entry.push(' ');
            entry.push_str(more);
        }
    }
    entries
        .iter()
        .map(|entry| {
            let (module, uses) = entry
                .split_once('→')
                .unwrap_or_else(|| panic!("a layers entry without →: {entry}"));
            let module = quoted(module).into_iter().next().expect("a `file` name");
            (module, quoted(uses).into_iter().collect())
        })
        .collect()
}

#[test]
fn every_import_under_world_is_one_its_layers_list_allows() {
    let graph = graph();
    let layers = layers();
    let listed: Vec<&String> = layers.iter().map(|(module, _)| module).collect();
    let world_files: Vec<String> = graph
        .keys()
        .filter(|file| file.starts_with("world/"))
        .map(|file| layer_name(file))
        .collect();
    for file in &world_files {
        assert!(
            listed.contains(&file),
            "world/{file}.rs has no entry in the layers list"
        );
    }
    for (at, (module, uses)) in layers.iter().enumerate() {
        assert!(
            world_files.contains(module),
            "the layers list names no file {module}"
        );
        for used in uses {
            assert!(
                listed[..at].contains(&used) || used.starts_with("../"),
                "{module} may use {used}, which is not listed before it"
            );
        }
        let imports = &graph[&format!("world/{module}.rs")];
        for target in imports.iter().filter(|t| in_scope(t)) {
            assert!(
                uses.contains(&layer_name(target)),
                "world/{module}.rs imports {target}, which its layers entry does not allow"
            );
        }
    }
}
