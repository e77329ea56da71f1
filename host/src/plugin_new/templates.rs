//! The files of a new plugin project, embedded in the binary so that an
//! installed `wasmcached` alone can make one: the templates of
//! `host/templates/<lang>/` (with `{{placeholders}}`) and the SDK sources
//! of this repository, copied as they are.

use std::collections::BTreeMap;

/// A language `plugin new` makes projects for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Rust,
    C,
    AssemblyScript,
    /// A component of the WIT world (wit/store.wit), with componentize-py.
    Python,
    /// A component of the WIT world, with componentize-js.
    JavaScript,
}

impl Lang {
    pub const ALL: [Lang; 5] = [
        Lang::Rust,
        Lang::C,
        Lang::AssemblyScript,
        Lang::Python,
        Lang::JavaScript,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::C => "c",
            Lang::AssemblyScript => "assemblyscript",
            Lang::Python => "python",
            Lang::JavaScript => "javascript",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.name() == s)
    }
}

/// How a file's text becomes the project's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// As it is: SDK sources, whose `{{` may be code.
    Copy,
    /// Placeholders filled in.
    Fill,
    /// Placeholders filled in; an executable script.
    FillExec,
    /// A Cargo manifest of this workspace, made standalone (see
    /// [`standalone_manifest`]).
    Manifest,
    /// An example's npm lock file, its root package renamed to the
    /// project's (see [`npm_lock`]).
    NpmLock,
}

/// One file of a project: where it goes, its embedded text, and how.
#[derive(Clone, Copy, Debug)]
pub struct Source {
    pub to: &'static str,
    pub text: &'static str,
    pub how: How,
}

macro_rules! file {
    ($to:expr, $from:expr, $how:ident) => {
        Source {
            to: $to,
            text: include_str!($from),
            how: How::$how,
        }
    };
}

const RUST: &[Source] = &[
    file!("Cargo.toml", "../../templates/rust/Cargo.toml", Fill),
    file!("build.sh", "../../templates/rust/build.sh", FillExec),
    file!("README.md", "../../templates/rust/README.md", Fill),
    file!(".gitignore", "../../templates/rust/gitignore", Copy),
    // The SDK's starter, tests and all: `cargo test` works from the start.
    file!(
        "src/lib.rs",
        "../../../guest-sdk/examples/starter/src/lib.rs",
        Copy
    ),
];

/// The Rust SDK and the ABI crate it re-exports, for a project that cannot
/// get them from crates.io yet (left out with `--sdk`).
pub const RUST_VENDOR: &[Source] = &[
    file!(
        "vendor/wasmcached-sdk/Cargo.toml",
        "../../../guest-sdk/Cargo.toml",
        Manifest
    ),
    // The crate's documentation is its README (`#![doc = include_str!]`).
    file!(
        "vendor/wasmcached-sdk/README.md",
        "../../../guest-sdk/README.md",
        Copy
    ),
    file!(
        "vendor/wasmcached-sdk/src/lib.rs",
        "../../../guest-sdk/src/lib.rs",
        Copy
    ),
    file!(
        "vendor/wasmcached-sdk/src/guest.rs",
        "../../../guest-sdk/src/guest.rs",
        Copy
    ),
    file!(
        "vendor/wasmcached-sdk/src/host.rs",
        "../../../guest-sdk/src/host.rs",
        Copy
    ),
    file!(
        "vendor/wasmcached-sdk/src/metrics.rs",
        "../../../guest-sdk/src/metrics.rs",
        Copy
    ),
    file!(
        "vendor/wasmcached-sdk/src/testing.rs",
        "../../../guest-sdk/src/testing.rs",
        Copy
    ),
    file!(
        "vendor/wasmcached-abi/Cargo.toml",
        "../../../abi/Cargo.toml",
        Manifest
    ),
    file!(
        "vendor/wasmcached-abi/src/lib.rs",
        "../../../abi/src/lib.rs",
        Copy
    ),
    file!(
        "vendor/wasmcached-abi/src/metrics.rs",
        "../../../abi/src/metrics.rs",
        Copy
    ),
];

const C: &[Source] = &[
    file!("store.c", "../../templates/c/store.c", Fill),
    file!("build.sh", "../../templates/c/build.sh", FillExec),
    file!("README.md", "../../templates/c/README.md", Fill),
    file!(".gitignore", "../../templates/c/gitignore", Copy),
    file!("wasmcached.h", "../../../guest-sdk/c/wasmcached.h", Copy),
    file!("wasmcached.c", "../../../guest-sdk/c/wasmcached.c", Copy),
    // Native tests from the start: `./test.sh` builds test_native.c with the
    // machine's compiler against the SDK's harness.
    file!("test_native.c", "../../templates/c/test_native.c", Fill),
    file!("test.sh", "../../templates/c/test.sh", FillExec),
    file!(
        "harness/wmc_harness.h",
        "../../../guest-sdk/c/harness/wmc_harness.h",
        Copy
    ),
    file!(
        "harness/wmc_harness.c",
        "../../../guest-sdk/c/harness/wmc_harness.c",
        Copy
    ),
    file!(
        "harness/wmc_host.h",
        "../../../guest-sdk/c/harness/wmc_host.h",
        Copy
    ),
    file!(
        "harness/wmc_host.c",
        "../../../guest-sdk/c/harness/wmc_host.c",
        Copy
    ),
];

const ASSEMBLYSCRIPT: &[Source] = &[
    file!(
        "package.json",
        "../../templates/assemblyscript/package.json",
        Fill
    ),
    file!(
        "assembly/index.ts",
        "../../templates/assemblyscript/assembly/index.ts",
        Fill
    ),
    file!(
        "build.sh",
        "../../templates/assemblyscript/build.sh",
        FillExec
    ),
    file!(
        "README.md",
        "../../templates/assemblyscript/README.md",
        Fill
    ),
    file!(
        ".gitignore",
        "../../templates/assemblyscript/gitignore",
        Copy
    ),
    file!(
        "assembly/sdk/wasmcached.ts",
        "../../../guest-sdk/assemblyscript/assembly/wasmcached.ts",
        Copy
    ),
    file!(
        "assembly/sdk/metrics.ts",
        "../../../guest-sdk/assemblyscript/assembly/metrics.ts",
        Copy
    ),
    // Editors type-check assembly/ against AssemblyScript's standard library.
    file!(
        "assembly/tsconfig.json",
        "../../../guest-sdk/assemblyscript/assembly/tsconfig.json",
        Copy
    ),
    // Tests from the start: `npm test` builds the .wasm and runs test.mjs,
    // which drives it in Node.js through the SDK's harness.
    file!("test.mjs", "../../templates/assemblyscript/test.mjs", Fill),
    file!(
        "harness.mjs",
        "../../../guest-sdk/assemblyscript/harness.mjs",
        Copy
    ),
];

const PYTHON: &[Source] = &[
    file!("store.py", "../../templates/python/store.py", Fill),
    file!("build.sh", "../../templates/python/build.sh", FillExec),
    file!("README.md", "../../templates/python/README.md", Fill),
    file!(".gitignore", "../../templates/python/gitignore", Copy),
    file!("wit/store.wit", "../../../wit/store.wit", Copy),
];

const JAVASCRIPT: &[Source] = &[
    file!("store.js", "../../templates/javascript/store.js", Fill),
    file!(
        "package.json",
        "../../templates/javascript/package.json",
        Fill
    ),
    // The example's pins (componentize-js 0.23.0, jco 1.15.4), checked by
    // `npm ci`: one lock file to update for both.
    file!(
        "package-lock.json",
        "../../../examples/js-lru/package-lock.json",
        NpmLock
    ),
    file!("build.sh", "../../templates/javascript/build.sh", FillExec),
    file!("README.md", "../../templates/javascript/README.md", Fill),
    file!(".gitignore", "../../templates/javascript/gitignore", Copy),
    file!("wit/store.wit", "../../../wit/store.wit", Copy),
];

/// The root package's name in examples/js-lru/package-lock.json.
const JS_LRU_NAME: &str = "\"name\": \"wasmcached-example-js-lru\"";

/// examples/js-lru's lock file for a project named `name`: its root package
/// (the lock's `name` and its `packages[""]`'s) renamed, the pins as they
/// are.
pub fn npm_lock(text: &str, name: &str) -> Result<String, String> {
    if text.matches(JS_LRU_NAME).count() != 2 {
        return Err(format!(
            "the lock file does not name its root {JS_LRU_NAME} twice"
        ));
    }
    Ok(text.replace(JS_LRU_NAME, &format!("\"name\": \"{name}\"")))
}

/// The workspace manifest, for the `[workspace.package]` values the SDK's
/// manifests inherit.
const WORKSPACE_MANIFEST: &str = include_str!("../../../Cargo.toml");

/// The files of a `lang` project; Rust's without the vendored SDK.
pub fn sources(lang: Lang) -> &'static [Source] {
    match lang {
        Lang::Rust => RUST,
        Lang::C => C,
        Lang::AssemblyScript => ASSEMBLYSCRIPT,
        Lang::Python => PYTHON,
        Lang::JavaScript => JAVASCRIPT,
    }
}

/// `text` with every `{{key}}` of `values` replaced by its value. Fails on a
/// `{{` left over: a template naming a placeholder nobody fills would
/// otherwise reach the author as broken code.
pub fn fill(text: &str, values: &BTreeMap<&str, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("an unclosed {{{{ in {:?}", line_at(rest, i)))?;
        let key = &after[..end];
        let value = values
            .get(key)
            .ok_or_else(|| format!("no value for {{{{{key}}}}}"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn line_at(text: &str, i: usize) -> &str {
    let start = text[..i].rfind('\n').map_or(0, |n| n + 1);
    let end = text[i..].find('\n').map_or(text.len(), |n| i + n);
    &text[start..end]
}

/// A manifest of this workspace's SDK crates as a project outside it needs
/// it: each `key.workspace = true` gets the workspace's value, and the SDK's
/// path to the ABI crate points at its vendored neighbour.
pub fn standalone_manifest(text: &str) -> Result<String, String> {
    let inherited = workspace_package(WORKSPACE_MANIFEST);
    let mut out =
        String::from("# Vendored by `wasmcached plugin new` from the wasmcached repository.\n");
    for line in text.lines() {
        let line = match line.split_once(".workspace") {
            Some((key, rest)) if rest.trim() == "= true" && !key.contains(' ') => {
                let value = inherited
                    .get(key)
                    .ok_or_else(|| format!("the workspace has no package.{key}"))?;
                format!("{key} = {value}")
            }
            _ => line.replace("path = \"../abi\"", "path = \"../wasmcached-abi\""),
        };
        out.push_str(&line);
        out.push('\n');
    }
    if out.contains(".workspace") || out.contains("workspace = true") {
        return Err(format!("still inherits from the workspace:\n{out}"));
    }
    Ok(out)
}

/// The `key = value` lines of `[workspace.package]`.
fn workspace_package(manifest: &str) -> BTreeMap<&str, &str> {
    manifest
        .lines()
        .skip_while(|l| l.trim() != "[workspace.package]")
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.trim(), v.trim()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn values() -> BTreeMap<&'static str, String> {
        BTreeMap::from([("name", "kv".to_string()), ("crate", "kv".to_string())])
    }

    #[test]
    fn fill_replaces_placeholders_and_refuses_unknown_ones() {
        let v = values();
        assert_eq!(
            fill("a {{name}}.wasm {{crate}}", &v).unwrap(),
            "a kv.wasm kv"
        );
        assert_eq!(fill("no placeholder", &v).unwrap(), "no placeholder");
        assert!(fill("{{nope}}", &v).unwrap_err().contains("{{nope}}"));
        assert!(fill("x {{name", &v).unwrap_err().contains("unclosed"));
    }

    #[test]
    fn the_npm_lock_is_renamed_or_refused() {
        let lock = npm_lock(
            include_str!("../../../examples/js-lru/package-lock.json"),
            "kv",
        )
        .unwrap();
        assert_eq!(lock.matches("\"name\": \"kv\"").count(), 2);
        assert!(npm_lock("{\"name\": \"other\"}", "kv")
            .unwrap_err()
            .contains("twice"));
    }

    #[test]
    fn the_sdk_manifests_become_standalone() {
        for s in RUST_VENDOR.iter().filter(|s| s.how == How::Manifest) {
            let m = standalone_manifest(s.text).unwrap_or_else(|e| panic!("{}: {e}", s.to));
            assert!(m.contains("version = \"0.1.0\""), "{}:\n{m}", s.to);
            assert!(m.contains("edition = \"2021\""), "{}:\n{m}", s.to);
            assert!(!m.contains("\"../abi\""), "{}:\n{m}", s.to);
        }
        let sdk = standalone_manifest(include_str!("../../../guest-sdk/Cargo.toml")).unwrap();
        assert!(sdk.contains("wasmcached-abi = { path = \"../wasmcached-abi\""));
        assert!(standalone_manifest("[package]\nfoo.workspace = true\n")
            .unwrap_err()
            .contains("package.foo"));
        assert!(standalone_manifest("[dependencies]\nx = { workspace = true }\n").is_err());
    }

    /// Every template fills with the values `plugin new` gives, leaving no
    /// placeholder behind.
    #[test]
    fn every_template_fills() {
        let mut v = values();
        v.insert("dir", "kv".into());
        v.insert("sdk_dependency", "wasmcached-sdk = \"0.1\"".into());
        for lang in Lang::ALL {
            for s in sources(lang).iter().filter(|s| s.how != How::Copy) {
                if matches!(s.how, How::Manifest | How::NpmLock) {
                    continue;
                }
                let text = fill(s.text, &v).unwrap_or_else(|e| panic!("{}: {e}", s.to));
                assert!(!text.contains("{{"), "{}", s.to);
            }
        }
    }

    /// The SDK sources a project gets are all there are: a module added to
    /// an SDK without being added here would break the vendored build.
    #[test]
    fn every_sdk_source_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let on_disk = |dir: &str, ext: &str| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(ext))
                .collect();
            v.sort();
            v
        };
        let embedded = |files: &[Source], under: &str, ext: &str| -> Vec<String> {
            let mut v: Vec<String> = files
                .iter()
                .filter_map(|s| s.to.strip_prefix(under))
                .filter(|n| n.ends_with(ext) && !n.contains('/'))
                .map(String::from)
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            embedded(RUST_VENDOR, "vendor/wasmcached-sdk/src/", ".rs"),
            on_disk("guest-sdk/src", ".rs")
        );
        assert_eq!(
            embedded(RUST_VENDOR, "vendor/wasmcached-abi/src/", ".rs"),
            on_disk("abi/src", ".rs")
        );
        let c: Vec<String> = on_disk("guest-sdk/c", ".c")
            .into_iter()
            .chain(on_disk("guest-sdk/c", ".h"))
            .collect();
        for f in c {
            assert!(C.iter().any(|s| s.to == f), "{f} is not embedded");
        }
        // The native test harness, in harness/ as in the SDK.
        let harness: Vec<String> = on_disk("guest-sdk/c/harness", ".c")
            .into_iter()
            .chain(on_disk("guest-sdk/c/harness", ".h"))
            .collect();
        assert!(!harness.is_empty(), "guest-sdk/c/harness has no sources");
        for f in harness {
            let to = format!("harness/{f}");
            assert!(
                C.iter().any(|s| s.to == to && s.how == How::Copy),
                "guest-sdk/c/harness/{f} is not embedded as {to}"
            );
        }
        let mjs = on_disk("guest-sdk/assemblyscript", ".mjs");
        assert!(!mjs.is_empty(), "guest-sdk/assemblyscript has no harness");
        for f in mjs {
            assert!(
                ASSEMBLYSCRIPT
                    .iter()
                    .any(|s| s.to == f && s.how == How::Copy),
                "guest-sdk/assemblyscript/{f} is not embedded"
            );
        }
        for f in on_disk("guest-sdk/assemblyscript/assembly", "") {
            let to = if f.ends_with(".ts") {
                format!("assembly/sdk/{f}")
            } else {
                format!("assembly/{f}")
            };
            assert!(
                ASSEMBLYSCRIPT.iter().any(|s| s.to == to),
                "{f} is not embedded as {to}"
            );
        }
    }
}
