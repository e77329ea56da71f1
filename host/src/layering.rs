//! The host's layers, bottom first, and a test that holds the code to them:
//! a module may use modules of its own layer and the layers below, never
//! above, and no modules may use each other in a circle. The test reads the
//! host's own sources (`crate::` paths outside test modules), so a new
//! import that points upward, or a new module not placed here, fails it.
//! docs/architecture.md draws the same table.

/// `(layer, modules)`, bottom first. A module is named by its path under
/// `crate` (`proto::text_cmd`).
pub const LAYERS: &[(&str, &[&str])] = &[
    (
        "configuration: plain data from the command line and its files",
        &["settings", "authfile", "tls_settings"],
    ),
    (
        "runtime plumbing: time, timers, the reactor, the OS, counters, logs",
        &[
            "clock",
            "timer",
            "event_base",
            "event_base::uring",
            "os",
            "large_pages",
            "counters",
            "verbose",
            "detail",
            "hotkeys",
            "live_settings",
            "watch",
            "router",
        ],
    ),
    ("the plugin runtime: wasmtime, shards, faults", &["plugin"]),
    ("network streams: TLS over TCP", &["tls"]),
    (
        "the connection: buffers, reply slots, state",
        &["conn", "reply"],
    ),
    (
        "shard batches and the messages between threads",
        &["batch", "listing"],
    ),
    ("the server-wide state", &["shared"]),
    (
        "the command layer: dispatch to shards, stats, listings, reloads, restarts",
        &[
            "core",
            "stats",
            "reload",
            "restart",
            "restart::files",
            "restart::meta",
            "metrics",
            "metrics::expo",
            "metrics::exporter",
        ],
    ),
    (
        "protocol sessions: text, meta, binary, and the auth gate",
        &[
            "proto",
            "proto::text_cmd",
            "proto::meta_cmd",
            "proto::binary_cmd",
            "auth",
        ],
    ),
    (
        "the worker's event loop",
        &[
            "worker",
            "worker::listing",
            "worker::ring_io",
            "worker::scrape",
        ],
    ),
    (
        "the server, signals, the plugin checker and maker, the trace replay, the binary",
        &[
            "server",
            "signals",
            "plugin_check",
            "plugin_check::wire",
            "plugin_new",
            "replay",
            "lib",
            "main",
            "layering",
        ],
    ),
];

#[cfg(test)]
mod tests {
    use super::LAYERS;
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// Every `.rs` file under `dir`, with its module path.
    fn modules(dir: &Path, prefix: &str, out: &mut BTreeMap<String, PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("host/src") {
            let path = entry.expect("dir entry").path();
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                let prefix = format!("{prefix}{name}::");
                modules(&path, &prefix, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let module = if name == "mod" {
                    prefix.trim_end_matches("::").to_string()
                } else {
                    format!("{prefix}{name}")
                };
                out.insert(module, path);
            }
        }
    }

    /// The modules module `m` uses: each `crate::a::b…`, `super::…` and
    /// `child::…` path outside its test module, resolved to the longest
    /// module it names.
    fn uses(m: &str, text: &str, known: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
        let code = match text.find("#[cfg(test)]\nmod tests") {
            Some(i) => &text[..i],
            None => text,
        };
        let parent = m.rsplit_once("::").map_or("", |(p, _)| p);
        let children: Vec<&str> = known
            .keys()
            .filter_map(|k| k.strip_prefix(m)?.strip_prefix("::"))
            .filter(|c| !c.contains("::"))
            .collect();
        let mut out = BTreeSet::new();
        for line in code.lines() {
            let line = line.trim_start();
            if line.starts_with("//") {
                continue;
            }
            // A visibility (`pub(in crate::a)`) names no module it uses.
            let line = line.replace("pub(in crate::", "pub(in ");
            // Rewrite the relative forms as `crate::` paths.
            let mut line = line.replace("super::", &format!("crate::{parent}::"));
            for c in &children {
                for (i, _) in line.clone().match_indices(&format!("{c}::")) {
                    let before = line[..i].chars().last();
                    if !before.is_some_and(|b| b.is_alphanumeric() || b == '_' || b == ':') {
                        out.insert(format!("{m}::{c}"));
                    }
                }
            }
            line = line.replace("crate::::", "crate::");
            let mut rest = line.as_str();
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let path: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
                // `use crate::a::{b, c::d}` lists several.
                let after = &rest[path.len()..];
                if after.starts_with('{') {
                    let inner = &after[1..after.find('}').unwrap_or(after.len())];
                    for item in inner.split(',') {
                        let mut named = parts.clone();
                        named.extend(item.trim().split("::").filter(|p| !p.is_empty()));
                        for n in (1..=named.len()).rev() {
                            let m = named[..n].join("::");
                            if known.contains_key(&m) {
                                out.insert(m);
                                break;
                            }
                        }
                    }
                    continue;
                }
                for n in (1..=parts.len()).rev() {
                    let m = parts[..n].join("::");
                    if known.contains_key(&m) {
                        out.insert(m);
                        break;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn imports_point_down_and_no_module_circles() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut known = BTreeMap::new();
        modules(&src, "", &mut known);
        let layer_of: BTreeMap<&str, usize> = LAYERS
            .iter()
            .enumerate()
            .flat_map(|(i, (_, ms))| ms.iter().map(move |m| (*m, i)))
            .collect();
        // A module not listed belongs with its parent (`plugin::shard`
        // with `plugin`).
        let layer_of: BTreeMap<&str, usize> = known
            .keys()
            .filter_map(|m| {
                let mut p = m.as_str();
                loop {
                    if let Some(&l) = layer_of.get(p) {
                        return Some((m.as_str(), l));
                    }
                    p = p.rsplit_once("::")?.0;
                }
            })
            .chain(layer_of.iter().map(|(k, v)| (*k, *v)))
            .collect();
        let unplaced: Vec<&String> = known
            .keys()
            .filter(|m| !layer_of.contains_key(m.as_str()))
            .collect();
        assert!(unplaced.is_empty(), "modules not in LAYERS: {unplaced:?}");
        let stale: Vec<&&str> = layer_of
            .keys()
            .filter(|m| !known.contains_key(**m))
            .collect();
        assert!(
            stale.is_empty(),
            "LAYERS names modules that do not exist: {stale:?}"
        );

        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut upward = Vec::new();
        for (m, path) in &known {
            let text = std::fs::read_to_string(path).expect("source");
            let mut used = uses(m, &text, &known);
            used.remove(m);
            for u in &used {
                // A parent may name its children (`pub mod x;` is not a use).
                if u.starts_with(&format!("{m}::")) && layer_of[u.as_str()] <= layer_of[m.as_str()]
                {
                    continue;
                }
                if layer_of[u.as_str()] > layer_of[m.as_str()] {
                    upward.push(format!(
                        "{m} ({}) uses {u} ({})",
                        LAYERS[layer_of[m.as_str()]].0,
                        LAYERS[layer_of[u.as_str()]].0
                    ));
                }
            }
            graph.insert(m.clone(), used);
        }
        assert!(
            upward.is_empty(),
            "imports pointing up:\n{}",
            upward.join("\n")
        );

        // Circles within a layer: a depth-first search for a back edge.
        fn visit<'a>(
            m: &'a str,
            graph: &'a BTreeMap<String, BTreeSet<String>>,
            state: &mut BTreeMap<&'a str, u8>,
            stack: &mut Vec<&'a str>,
        ) -> Option<Vec<String>> {
            state.insert(m, 1);
            stack.push(m);
            for u in graph.get(m).into_iter().flatten() {
                match state.get(u.as_str()) {
                    Some(1) => {
                        let at = stack.iter().position(|s| *s == u).unwrap();
                        return Some(stack[at..].iter().map(|s| s.to_string()).collect());
                    }
                    Some(_) => {}
                    None => {
                        if let Some(c) = visit(u, graph, state, stack) {
                            return Some(c);
                        }
                    }
                }
            }
            stack.pop();
            state.insert(m, 2);
            None
        }
        let mut state = BTreeMap::new();
        for m in graph.keys() {
            if !state.contains_key(m.as_str()) {
                let circle = visit(m, &graph, &mut state, &mut Vec::new());
                assert!(circle.is_none(), "modules in a circle: {circle:?}");
            }
        }
    }
}
