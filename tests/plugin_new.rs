//! `wasmcached plugin new`: for each language, a project made in a
//! temporary directory outside the repository is built exactly as its
//! README says (`./build.sh`), passes `plugin check --contract basic`, and
//! serves a set and a get over a real socket; the Rust, C and
//! AssemblyScript ones also run their starter's tests on the SDK's test
//! harness (`cargo test`, `./test.sh`, `npm test`), and a wrong expectation
//! fails the C and AssemblyScript ones. Python and JavaScript projects are
//! components of the WIT world, whose build.sh installs componentize-py
//! (PyPI, into .venv) or componentize-js (`npm ci`). And the refusals: a bad name, an
//! unknown language, a directory already in use.
//!
//! A missing toolchain fails the test, it never skips. clang/lld and npm are
//! installed the way the example plugins get them (see [`ensure_tools`]).
//!
//! Not on Windows: the projects build with bash scripts, and the Windows
//! test binary runs under Wine.
#![cfg(not(windows))]

use crate::common;

use common::example_build::{example, warm_code_cache};
use common::{run_bounded, server_bin, workspace_root, Output, Server};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A fresh, empty directory for one project under the system's temporary
/// directory: outside the repository, so nothing of it (its Cargo
/// workspace, its node_modules) helps the build.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join("wasmcached-plugin-new-e2e")
        .join(format!("{tag}-{}", std::process::id()));
    assert!(
        !dir.starts_with(workspace_root()),
        "the temporary directory {} is inside the repository: set TMPDIR elsewhere",
        dir.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    dir
}

fn wasmcached(args: &[&str]) -> Output {
    run_bounded(
        Command::new(server_bin()).args(args),
        Duration::from_secs(60),
    )
}

fn report(what: &str, out: &Output) -> String {
    format!(
        "{what} ({:?}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.code,
        out.stdout_str(),
        out.stderr
    )
}

/// `wasmcached plugin new LANG NAME --dir DIR [extra]`, which must succeed
/// and print the commands of the README.
fn plugin_new(lang: &str, name: &str, dir: &Path, extra: &[&str]) {
    let dir_arg = dir.to_str().unwrap();
    let mut args = vec!["plugin", "new", lang, name, "--dir", dir_arg];
    args.extend(extra);
    let out = wasmcached(&args);
    assert!(out.success, "{}", report("plugin new", &out));
    let said = out.stdout_str();
    for step in [
        format!("cd {dir_arg}"),
        "./build.sh".into(),
        format!("wasmcached plugin check --contract basic {name}.wasm"),
        format!("wasmcached --plugin {name}.wasm"),
    ] {
        assert!(
            said.contains(&format!("  {step}\n")),
            "no {step:?} in:\n{said}"
        );
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("`wasmcached plugin new {lang} {name}`")),
        "{readme}"
    );
}

/// Fails unless every `(command, Debian package)` is on the PATH. When
/// one is missing, builds `installer` first (an example plugin whose
/// build.sh installs these packages when missing, under the examples' build
/// lock, so that two apt-gets never race), then looks again.
fn ensure_tools(tools: &[(&str, &str)], installer: &str) {
    let on_path = |cmd: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {cmd}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if tools.iter().all(|(cmd, _)| on_path(cmd)) {
        return;
    }
    example(installer);
    let missing: Vec<&(&str, &str)> = tools.iter().filter(|(cmd, _)| !on_path(cmd)).collect();
    assert!(
        missing.is_empty(),
        "missing {}: install them (Debian: apt-get install -y {}); building \
         examples/{installer} did not",
        missing
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
            .join(", "),
        missing
            .iter()
            .map(|(_, p)| *p)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

/// Runs `./build.sh` in `dir` as the README says, and returns the .wasm it
/// printed last, which must be `dir/NAME.wasm`, and what it said.
fn build(dir: &Path, name: &str, env: &[(&str, &Path)], limit: Duration) -> (String, Output) {
    let mut cmd = Command::new("./build.sh");
    cmd.current_dir(dir)
        // Flags meant for this test build must not reach the plugin's.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .envs(env.iter().copied());
    let out = run_bounded(&mut cmd, limit);
    assert!(
        out.success,
        "{}",
        report(&format!("./build.sh in {}", dir.display()), &out)
    );
    let printed = out.stdout_str();
    let wasm = printed.lines().last().unwrap_or_default().to_string();
    assert_eq!(
        Path::new(&wasm),
        dir.join(format!("{name}.wasm")),
        "{}",
        report("./build.sh", &out)
    );
    assert!(Path::new(&wasm).is_file(), "{wasm} was not built");
    (wasm, out)
}

/// `wasmcached plugin check --contract basic WASM` passes, every check of
/// the contract run (none skipped).
fn passes_basic_contract(wasm: &str) {
    // A component with a language runtime in it compiles for tens of
    // seconds (plugin check uses no code cache): more on a loaded machine.
    let out = run_bounded(
        Command::new(server_bin()).args(["plugin", "check", "--contract", "basic", wasm]),
        Duration::from_secs(600),
    );
    let said = out.stdout_str();
    assert!(
        out.success && !said.contains("FAIL "),
        "{}",
        report("plugin check --contract basic", &out)
    );
    common::plugin_build::assert_basic_contract_passed(&said);
}

/// `wasmcached --plugin WASM` serves a set, a get, a miss and a delete.
fn serves(wasm: &str) {
    let server = Server::start(&["--plugin", wasm]);
    let mut c = server.client();
    assert_eq!(c.set("greeting", 7, 0, b"hello"), "STORED");
    c.send("get greeting\r\n");
    let v = c.values();
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].flags, v[0].data.as_slice()), (7, &b"hello"[..]));
    assert_eq!(c.get("nothing"), None);
    assert_eq!(c.cmd("delete greeting"), "DELETED");
    assert_eq!(c.get("greeting"), None);
    assert_eq!(c.plugin_stat("plugin_traps"), 0, "the plugin trapped");
}

/// Where the projects' cargo builds go: their own target dir under this
/// build's (CARGO_TARGET_TMPDIR is `<target dir>/tmp`), kept between runs,
/// so that only the first run compiles the SDK.
fn cargo_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target tmp dir has a parent")
        .join("plugin-new")
}

#[test]
fn a_rust_project_builds_tests_checks_and_serves() {
    let dir = scratch("rust");
    // A `-` in the name: the crate's .wasm is my_store.wasm, the project's
    // my-store.wasm.
    plugin_new("rust", "my-store", &dir, &[]);
    for vendored in [
        "vendor/wasmcached-sdk/src/lib.rs",
        "vendor/wasmcached-abi/src/lib.rs",
    ] {
        assert!(dir.join(vendored).is_file(), "{vendored} not written");
    }
    let target = cargo_target_dir();
    let env = [("CARGO_TARGET_DIR", target.as_path())];
    let (wasm, _) = build(&dir, "my-store", &env, Duration::from_secs(900));

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = run_bounded(
        Command::new(&cargo)
            .arg("test")
            .current_dir(&dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .env("CARGO_TARGET_DIR", &target),
        Duration::from_secs(900),
    );
    let said = format!("{}{}", out.stdout_str(), out.stderr);
    assert!(out.success, "{}", report("cargo test", &out));
    assert!(
        said.contains("test tests::set_get_delete ... ok"),
        "the starter's tests did not run:\n{said}"
    );

    passes_basic_contract(&wasm);
    serves(&wasm);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--sdk`: the project depends on this checkout's guest-sdk/ by path
/// and has no vendor/.
#[test]
fn a_rust_project_on_a_checkouts_sdk_builds_and_checks() {
    let dir = scratch("rust-sdk");
    let sdk = workspace_root().join("guest-sdk");
    plugin_new("rust", "kv", &dir, &["--sdk", sdk.to_str().unwrap()]);
    assert!(!dir.join("vendor").exists());
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let canonical = std::fs::canonicalize(&sdk).unwrap();
    assert!(
        manifest.contains(&format!(
            "wasmcached-sdk = {{ path = \"{}\" }}",
            canonical.display()
        )),
        "{manifest}"
    );
    let target = cargo_target_dir();
    let (wasm, _) = build(
        &dir,
        "kv",
        &[("CARGO_TARGET_DIR", target.as_path())],
        Duration::from_secs(900),
    );
    passes_basic_contract(&wasm);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// How many times `call` occurs in the project's file `path`: its tests.
fn count_in(dir: &Path, path: &str, call: &str) -> usize {
    let text = std::fs::read_to_string(dir.join(path)).unwrap();
    let n = text.matches(call).count();
    assert!(n > 0, "no {call:?} in {path}");
    n
}

/// Replaces the one `from` of the project's file `path` with `to`.
fn edit(dir: &Path, path: &str, from: &str, to: &str) {
    let file = dir.join(path);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from:?} in {path}");
    std::fs::write(&file, text.replace(from, to)).unwrap();
}

/// `./test.sh` in a C project as its README says (with `CC` as given:
/// unset means cc).
fn c_native_tests(dir: &Path, cc: Option<&str>) -> Output {
    let mut cmd = Command::new("./test.sh");
    cmd.current_dir(dir).env_remove("CC");
    if let Some(cc) = cc {
        cmd.env("CC", cc);
    }
    run_bounded(&mut cmd, Duration::from_secs(300))
}

#[test]
fn a_c_project_builds_tests_checks_and_serves() {
    ensure_tools(&[("clang", "clang"), ("wasm-ld", "lld")], "c-quota");
    let dir = scratch("c");
    plugin_new("c", "c-store", &dir, &[]);
    let (wasm, out) = build(&dir, "c-store", &[], Duration::from_secs(300));
    // -Wall -Wextra: the starter and the SDK compile without a warning.
    assert!(!out.stderr.contains("warning:"), "{}", out.stderr);

    // The starter's native tests, on the SDK's harness, with cc and with
    // clang (-Werror: without a warning either way).
    let tests = count_in(&dir, "test_native.c", "wmc_h_run(\"");
    for cc in [None, Some("clang")] {
        let out = c_native_tests(&dir, cc);
        let what = format!("./test.sh (CC={cc:?})");
        assert!(out.success, "{}", report(&what, &out));
        let said = out.stdout_str();
        assert!(
            said.lines().last() == Some(&format!("{tests} passed, 0 failed")),
            "{}",
            report(&what, &out)
        );
        assert_eq!(said.matches("PASS ").count(), tests, "{said}");
    }

    passes_basic_contract(&wasm);
    serves(&wasm);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The C project's tests can fail: a wrong expectation in test_native.c
/// fails its test, the run and test.sh's exit status.
#[test]
fn a_c_projects_native_tests_catch_a_wrong_expectation() {
    let dir = scratch("c-wrong");
    plugin_new("c", "c-store", &dir, &[]);
    let tests = count_in(&dir, "test_native.c", "wmc_h_run(\"");
    edit(
        &dir,
        "test_native.c",
        "WMC_CHECK_VALUE(g, \"hello\");",
        "WMC_CHECK_VALUE(g, \"wrong\");",
    );
    let out = c_native_tests(&dir, None);
    let text = report("./test.sh with a wrong expectation", &out);
    assert_eq!(out.code, Some(1), "{text}");
    let said = out.stdout_str();
    assert!(
        said.contains("FAIL set_and_get_keep_the_value_and_flags\n"),
        "{text}"
    );
    assert_eq!(
        said.lines().last(),
        Some(format!("{} passed, 1 failed", tests - 1).as_str()),
        "{text}"
    );
    assert!(
        out.stderr.contains("HIT \"hello\", expected HIT \"wrong\""),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `npm test` in an AssemblyScript project as its README says: it builds
/// the .wasm (`pretest`: ./build.sh), then `node --test test.mjs`. Returns
/// what it said and node's summary: (pass, fail).
fn npm_test(dir: &Path) -> (Output, Option<(usize, usize)>) {
    let out = run_bounded(
        Command::new("npm")
            .args(["test", "--no-audit", "--no-fund"])
            .current_dir(dir),
        Duration::from_secs(600),
    );
    // node's summary: `# pass N` (tap, node 20's reporter for a pipe) or
    // `ℹ pass N` (spec).
    let said = out.stdout_str();
    let summary = |key: &str| -> Option<usize> {
        said.lines().find_map(|l| {
            let l = l.trim_start_matches(['#', 'ℹ', ' ']);
            l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok()
        })
    };
    let counts = summary("pass").zip(summary("fail"));
    (out, counts)
}

#[test]
fn an_assemblyscript_project_builds_tests_checks_and_serves() {
    ensure_tools(&[("npm", "npm"), ("node", "nodejs")], "as-lfu");
    let dir = scratch("as");
    plugin_new("assemblyscript", "as-store", &dir, &[]);
    // The first build runs `npm install` (assemblyscript from the registry).
    let (wasm, _) = build(&dir, "as-store", &[], Duration::from_secs(600));
    assert!(dir.join("node_modules/.bin/asc").exists());

    // The starter's tests, on the SDK's harness in Node.js.
    let tests = count_in(&dir, "test.mjs", "\ntest(\"");
    let (out, counts) = npm_test(&dir);
    let text = report("npm test", &out);
    assert!(out.success, "{text}");
    assert_eq!(counts, Some((tests, 0)), "{text}");
    assert!(
        out.stdout_str().contains("./build.sh"),
        "npm test did not build: {text}"
    );

    passes_basic_contract(&wasm);
    serves(&wasm);

    // And they can fail: a wrong expectation fails `npm test`.
    edit(
        &dir,
        "test.mjs",
        "assert.equal(g.text, \"hello\");",
        "assert.equal(g.text, \"wrong\");",
    );
    let (out, counts) = npm_test(&dir);
    let text = report("npm test with a wrong expectation", &out);
    assert!(!out.success && out.code.is_some(), "{text}");
    assert_eq!(counts, Some((tests - 1, 1)), "{text}");
    assert!(
        out.stdout_str()
            .contains("not ok 1 - set and get keep the value and the flags")
            || out
                .stdout_str()
                .contains("✖ set and get keep the value and the flags"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A component of the WIT world: the project carries wit/store.wit as this
/// server serves it.
fn has_the_world(dir: &Path) {
    let world = std::fs::read_to_string(dir.join("wit/store.wit")).unwrap();
    let ours = std::fs::read_to_string(workspace_root().join("wit/store.wit")).unwrap();
    assert_eq!(world, ours, "wit/store.wit differs from the repository's");
}

/// Serves a component: the server's start-up timeout is shorter than a
/// runtime-carrying component's first compile on a loaded machine, so a
/// server is started once beforehand to put the code in the code cache
/// (`plugin check` compiles without it).
fn serves_component(wasm: &str) {
    warm_code_cache(Path::new(wasm));
    serves(wasm);
}

#[test]
fn a_python_project_builds_checks_and_serves() {
    ensure_tools(&[("python3", "python3-venv")], "python-lru");
    let dir = scratch("python");
    // A `-` in the name: not a Python identifier, but the module is always
    // store.py, the component py-store.wasm.
    plugin_new("python", "py-store", &dir, &[]);
    has_the_world(&dir);
    assert!(dir.join("store.py").is_file());
    // The first build makes .venv and installs componentize-py from PyPI.
    let (wasm, _) = build(&dir, "py-store", &[], Duration::from_secs(900));
    assert!(dir.join(".venv/bin/componentize-py").exists());
    passes_basic_contract(&wasm);
    serves_component(&wasm);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_javascript_project_builds_checks_and_serves() {
    ensure_tools(&[("npm", "npm"), ("node", "nodejs")], "js-lru");
    let dir = scratch("javascript");
    plugin_new("javascript", "js-store", &dir, &[]);
    has_the_world(&dir);
    // The first build runs `npm ci` on the pinned lock file.
    let (wasm, _) = build(&dir, "js-store", &[], Duration::from_secs(900));
    assert!(dir.join("node_modules/.bin/componentize-js").exists());
    passes_basic_contract(&wasm);
    serves_component(&wasm);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A bad name, an unknown language or a directory in use is a usage
/// error (2, as for `plugin check`) that writes nothing.
#[test]
fn refusals_are_usage_errors_that_write_nothing() {
    let dir = scratch("refused");
    let d = dir.to_str().unwrap();
    for (args, says) in [
        (
            vec!["plugin", "new", "go", "kv", "--dir", d],
            "unknown language \"go\": one of rust, c, assemblyscript, python, javascript",
        ),
        (
            vec!["plugin", "new", "rust", "My.Store", "--dir", d],
            "bad name",
        ),
        (vec!["plugin", "new", "rust", "fn", "--dir", d], "bad name"),
        (vec!["plugin", "new", "c"], "which name?"),
        (
            vec!["plugin", "new", "c", "kv", "--sdk", d, "--dir", d],
            "rust projects only",
        ),
    ] {
        let out = wasmcached(&args);
        assert_eq!(out.code, Some(2), "{}", report(&args.join(" "), &out));
        assert!(
            out.stderr.contains(says),
            "{}",
            report(&args.join(" "), &out)
        );
        assert!(!dir.exists(), "{} wrote {d}", args.join(" "));
    }
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let out = wasmcached(&["plugin", "new", "c", "kv", "--dir", d]);
    assert_eq!(
        out.code,
        Some(2),
        "{}",
        report("plugin new into a full dir", &out)
    );
    assert!(out.stderr.contains("is not empty"), "{}", out.stderr);
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(left.len(), 1, "only notes.txt stays");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The commands the top-level README's "Start a plugin" shows are the ones
/// `plugin new` prints for every language, with the project made in
/// `./NAME` by default; its comment and its table name every language,
/// with 5 commands.
#[test]
fn the_readme_shows_the_printed_commands() {
    const LANGS: [(&str, &str, &str); 5] = [
        ("rust", "Rust", "Cargo.toml"),
        ("c", "C", "store.c"),
        ("assemblyscript", "AssemblyScript", "assembly/index.ts"),
        ("python", "Python", "store.py"),
        ("javascript", "JavaScript", "store.js"),
    ];
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let part = &readme[readme
        .find("**Start a plugin.**")
        .expect("README.md has no \"Start a plugin\" part")..];
    let block = &part[part.find("```sh\n").expect("no ```sh block") + 6..];
    let block = &block[..block.find("```").unwrap()];
    let shown: Vec<&str> = block
        .lines()
        .map(|l| l.split(" #").next().unwrap().trim_end())
        .collect();
    assert_eq!(shown[0], "wasmcached plugin new rust mystore");
    let others = LANGS[1..]
        .iter()
        .map(|(l, _, _)| *l)
        .collect::<Vec<_>>()
        .join(", ");
    assert!(
        block
            .lines()
            .next()
            .unwrap()
            .ends_with(&format!("# or {others}")),
        "{block}"
    );
    for (lang, title, made) in LANGS {
        let cwd = scratch(&format!("readme-{lang}"));
        std::fs::create_dir_all(&cwd).unwrap();
        let out = run_bounded(
            Command::new(server_bin())
                .args(["plugin", "new", lang, "mystore"])
                .current_dir(&cwd),
            Duration::from_secs(60),
        );
        assert!(
            out.success,
            "{}",
            report(&format!("plugin new {lang}"), &out)
        );
        assert!(
            cwd.join("mystore").join(made).is_file(),
            "{lang}: no {made}"
        );
        let printed: Vec<&str> = out
            .stdout
            .split(|&b| b == b'\n')
            .filter_map(|l| std::str::from_utf8(l).ok()?.strip_prefix("  "))
            .collect();
        assert_eq!(shown[1..], printed[..], "{}", out.stdout_str());
        let row = format!("| {title} | {} ", shown.len());
        assert!(part.contains(&row), "no table row {row:?} in README.md");
        std::fs::remove_dir_all(&cwd).unwrap();
    }
}
