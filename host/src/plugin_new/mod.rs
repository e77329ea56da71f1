//! `wasmcached plugin new rust|c|assemblyscript|python|javascript NAME [--dir
//! PATH] [--sdk PATH]`: a plugin project that builds outside this
//! repository, with the SDK it needs (Python and JavaScript: the WIT world
//! their components implement), a starter store that passes `plugin check
//! --contract basic`, a `build.sh` and a README with the commands from here
//! to a running server; for Rust, C and AssemblyScript, native tests of the
//! starter on the SDK's test harness (`cargo test`, `./test.sh`, `npm
//! test`). Everything it writes is embedded in the binary ([`templates`]).

mod templates;

pub use templates::Lang;
use templates::{fill, How};

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `plugin check`'s status for a usage error, kept for `plugin new`.
const EXIT_USAGE: u8 = 2;
/// The project could not be written.
const EXIT_WRITE: u8 = 1;

const USAGE: &str = "usage: wasmcached plugin new rust|c|assemblyscript|python|javascript NAME \
                     [--dir PATH] [--sdk PATH]";

const HELP: &str = "
Makes a storage plugin project that builds on its own: the SDK of its
language (python, javascript: the WIT world wit/store.wit, whose component
the plugin is), a starter store (get, set, delete, flush_all) that passes
`wasmcached plugin check --contract basic`, build.sh and a README. rust, c
and assemblyscript projects also get native tests of the starter through
the SDK's test harness: `cargo test`, `./test.sh`, `npm test`.

  rust|c|assemblyscript|python|javascript
                 the language; python builds with componentize-py (build.sh
                 installs it into .venv), javascript with componentize-js
                 (build.sh runs npm ci)
  NAME           the project's name: a lowercase letter, then lowercase
                 letters, digits, `-` or `_` (at most 64); the plugin is
                 built to NAME.wasm (python's module is always store.py)
  --dir PATH     the project's directory (default: ./NAME); it must not
                 exist yet, or be empty
  --sdk PATH     rust only: depend on the wasmcached-sdk crate at PATH (a
                 checkout's guest-sdk/) instead of a copy of its sources in
                 vendor/
  -h, --help     this text

exit status: 0 made, 1 could not write the files, 2 a usage error";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Help,
    New(Project),
}

/// One project to make.
#[derive(Debug, PartialEq, Eq)]
pub struct Project {
    pub lang: Lang,
    pub name: String,
    /// Where it goes, as given (relative to the current directory).
    pub dir: PathBuf,
    /// `--sdk`: the wasmcached-sdk crate to depend on by path.
    pub sdk: Option<PathBuf>,
}

/// The arguments after `wasmcached plugin new`; returns the exit code.
pub fn main(args: &[OsString]) -> ExitCode {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let project = match parse(&args).and_then(|c| match c {
        Command::Help => Ok(None),
        Command::New(p) => check(p).map(Some),
    }) {
        Ok(Some(p)) => p,
        Ok(None) => {
            println!("{USAGE}\n{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("wasmcached plugin new: {e}\n{USAGE}\n(--help explains)");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let files = match render(&project) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("wasmcached plugin new: {e}");
            return ExitCode::from(EXIT_WRITE);
        }
    };
    if let Err(e) = write(&project.dir, &files) {
        eprintln!(
            "wasmcached plugin new: writing {}: {e}",
            project.dir.display()
        );
        return ExitCode::from(EXIT_WRITE);
    }
    print!("{}", next_steps(&project, files.len()));
    ExitCode::SUCCESS
}

fn parse(args: &[String]) -> Result<Command, String> {
    let (mut words, mut dir, mut sdk) = (Vec::new(), None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        match flag {
            "-h" | "--help" if inline.is_none() => return Ok(Command::Help),
            "--dir" | "--sdk" => {
                let value = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .ok_or_else(|| format!("{flag} wants a path"))?
                        .clone(),
                };
                if value.is_empty() {
                    return Err(format!("{flag} wants a path"));
                }
                let slot = if flag == "--dir" { &mut dir } else { &mut sdk };
                if slot.replace(PathBuf::from(value)).is_some() {
                    return Err(format!("{flag} given twice"));
                }
            }
            s if s.starts_with('-') => return Err(format!("unexpected argument {s:?}")),
            s => words.push(s.to_string()),
        }
    }
    let known = || {
        Lang::ALL
            .iter()
            .map(|l| l.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (lang, name) = match words.as_slice() {
        [] => return Err(format!("which language? one of {}", known())),
        [_] => return Err("which name? e.g. mystore".into()),
        [lang, name] => (lang, name),
        [_, _, extra, ..] => return Err(format!("unexpected argument {extra:?}")),
    };
    let lang = Lang::parse(lang)
        .ok_or_else(|| format!("unknown language {lang:?}: one of {}", known()))?;
    validate_name(name)?;
    if sdk.is_some() && lang != Lang::Rust {
        return Err("--sdk is for rust projects only".into());
    }
    Ok(Command::New(Project {
        lang,
        dir: dir.unwrap_or_else(|| PathBuf::from(name)),
        name: name.clone(),
        sdk,
    }))
}

/// Names that would make a package Cargo refuses (Rust keywords, the
/// standard library's and the test harness's crates, Cargo's build
/// directories), shadow the SDK crates the project depends on, or are
/// files Windows cannot create.
const RESERVED: &[&str] = &[
    "abstract",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
    "alloc",
    "core",
    "proc_macro",
    "std",
    "test",
    "build",
    "deps",
    "examples",
    "incremental",
    "wasmcached_sdk",
    "wasmcached_abi",
    "con",
    "prn",
    "aux",
    "nul",
];

/// A name every language's tools take as it is: a Cargo package whose
/// library is the same name with `_` for `-`, an npm package, a file name.
pub fn validate_name(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("bad name {name:?}: {why}"));
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 64 {
        return bad("longer than 64 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return bad("it must start with a lowercase letter (a-z)");
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'))
    {
        return bad(&format!(
            "{c:?} is not allowed: lowercase letters, digits, `-` and `_` only"
        ));
    }
    let ident = name.replace('-', "_");
    let windows_device = ident.len() == 4
        && (ident.starts_with("com") || ident.starts_with("lpt"))
        && ident.ends_with(|c: char| c.is_ascii_digit());
    if RESERVED.contains(&ident.as_str()) || windows_device {
        return bad("reserved by Rust, Cargo, the SDK or Windows");
    }
    Ok(())
}

/// Refuses a directory that already holds something, and an `--sdk` that
/// is not the SDK crate (which is made absolute: the project may move).
fn check(mut p: Project) -> Result<Project, String> {
    match std::fs::read_dir(&p.dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(format!("{} exists and is not empty", p.dir.display()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) if p.dir.exists() => {
            return Err(format!("{} exists and is not a directory", p.dir.display()))
        }
        Err(e) => return Err(format!("{}: {e}", p.dir.display())),
    }
    if let Some(sdk) = &p.sdk {
        let manifest = std::fs::read_to_string(sdk.join("Cargo.toml"))
            .map_err(|e| format!("--sdk {}: no Cargo.toml ({e})", sdk.display()))?;
        if !manifest
            .lines()
            .any(|l| l.replace(' ', "") == "name=\"wasmcached-sdk\"")
        {
            return Err(format!(
                "--sdk {}: not the wasmcached-sdk crate (a checkout's guest-sdk/)",
                sdk.display()
            ));
        }
        let abs =
            std::fs::canonicalize(sdk).map_err(|e| format!("--sdk {}: {e}", sdk.display()))?;
        p.sdk = Some(abs);
    }
    Ok(p)
}

/// One file to write: its path in the project, its text, executable or not.
#[derive(Debug)]
pub struct File {
    pub path: &'static str,
    pub text: String,
    pub executable: bool,
}

/// The files of `p`, placeholders filled in.
pub fn render(p: &Project) -> Result<Vec<File>, String> {
    let mut values = BTreeMap::new();
    values.insert("name", p.name.clone());
    values.insert("crate", p.name.replace('-', "_"));
    values.insert("dir", shell_word(&p.dir.display().to_string()));
    values.insert(
        "sdk_dependency",
        match &p.sdk {
            None => "# The SDK is not on crates.io yet: its sources are in vendor/. Once it is\n\
                     # published, use `wasmcached-sdk = \"0.1\"` here and delete vendor/.\n\
                     wasmcached-sdk = { path = \"vendor/wasmcached-sdk\" }"
                .to_string(),
            Some(sdk) => format!(
                "# A wasmcached checkout's SDK (`plugin new --sdk`). Once the SDK is on\n\
                 # crates.io, `wasmcached-sdk = \"0.1\"` here builds without it.\n\
                 wasmcached-sdk = {{ path = {} }}",
                toml_string(&sdk.display().to_string())
            ),
        },
    );
    let vendor = match (p.lang, &p.sdk) {
        (Lang::Rust, None) => templates::RUST_VENDOR,
        _ => &[],
    };
    templates::sources(p.lang)
        .iter()
        .chain(vendor)
        .map(|s| {
            let text = match s.how {
                How::Copy => Ok(s.text.to_string()),
                How::Fill | How::FillExec => fill(s.text, &values),
                How::Manifest => templates::standalone_manifest(s.text),
                How::NpmLock => templates::npm_lock(s.text, &p.name),
            };
            Ok(File {
                path: s.to,
                text: text.map_err(|e| format!("{}: {e}", s.to))?,
                executable: s.how == How::FillExec,
            })
        })
        .collect()
}

fn write(dir: &Path, files: &[File]) -> std::io::Result<()> {
    for f in files {
        let path = dir.join(f.path);
        std::fs::create_dir_all(path.parent().unwrap_or(dir))?;
        std::fs::write(&path, &f.text)?;
        #[cfg(unix)]
        if f.executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

/// What to type next, as the project's README lists it.
fn next_steps(p: &Project, files: usize) -> String {
    let lang = match p.lang {
        Lang::Rust => "Rust",
        Lang::C => "C",
        Lang::AssemblyScript => "AssemblyScript",
        Lang::Python => "Python",
        Lang::JavaScript => "JavaScript",
    };
    let dir = shell_word(&p.dir.display().to_string());
    let wasm = format!("{}.wasm", p.name);
    let mut s = format!(
        "Made the {lang} plugin project {name} in {dir} ({files} files). Next:\n\
         \n  cd {dir}\
         \n  ./build.sh\
         \n  wasmcached plugin check --contract basic {wasm}\
         \n  wasmcached --plugin {wasm}\n",
        name = p.name
    );
    match p.lang {
        Lang::Rust => s.push_str("\n`cargo test` runs the store's unit tests natively.\n"),
        Lang::C => s.push_str(
            "\n`./test.sh` runs the store's tests natively (test_native.c, built with cc).\n",
        ),
        Lang::AssemblyScript => {
            s.push_str("\n`npm test` builds the plugin and runs its tests in Node.js (test.mjs).\n")
        }
        Lang::Python | Lang::JavaScript => {}
    }
    s.push_str(&format!("{dir}/README.md says more.\n"));
    s
}

/// `s` as one shell word: as it is when that is safe, else single-quoted.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./+:@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn project(lang: Lang, name: &str) -> Project {
        Project {
            lang,
            name: name.into(),
            dir: PathBuf::from(name),
            sdk: None,
        }
    }

    #[test]
    fn names() {
        for ok in ["mystore", "my-store", "my_store2", "a", "lfu-v2", "tests"] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("MyStore", "lowercase letter"),
            ("myStore", "'S' is not allowed"),
            ("2store", "lowercase letter"),
            ("-store", "lowercase letter"),
            ("my.store", "'.' is not allowed"),
            ("my store", "' ' is not allowed"),
            ("../store", "lowercase letter"),
            ("store/x", "'/' is not allowed"),
            ("fn", "reserved"),
            ("test", "reserved"),
            ("std", "reserved"),
            ("wasmcached-sdk", "reserved"),
            ("wasmcached_abi", "reserved"),
            ("proc-macro", "reserved"),
            ("com1", "reserved"),
            ("nul", "reserved"),
            ("sérum", "'é' is not allowed"),
        ] {
            let e = validate_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        assert!(validate_name(&"a".repeat(64)).is_ok());
        assert!(validate_name(&"a".repeat(65)).unwrap_err().contains("64"));
    }

    #[test]
    fn command_lines() {
        assert_eq!(
            parse(&args("rust mystore")),
            Ok(Command::New(project(Lang::Rust, "mystore")))
        );
        assert_eq!(
            parse(&args("c kv --dir /tmp/x")),
            Ok(Command::New(Project {
                dir: "/tmp/x".into(),
                ..project(Lang::C, "kv")
            }))
        );
        assert_eq!(
            parse(&args("--sdk=../guest-sdk rust kv")),
            Ok(Command::New(Project {
                sdk: Some("../guest-sdk".into()),
                ..project(Lang::Rust, "kv")
            }))
        );
        assert_eq!(
            parse(&args("python my-kv")),
            Ok(Command::New(project(Lang::Python, "my-kv")))
        );
        assert_eq!(
            parse(&args("javascript kv")),
            Ok(Command::New(project(Lang::JavaScript, "kv")))
        );
        assert_eq!(parse(&args("rust kv --help")), Ok(Command::Help));
        for (line, why) in [
            (
                "",
                "which language? one of rust, c, assemblyscript, python, javascript",
            ),
            (
                "go kv",
                "unknown language \"go\": one of rust, c, assemblyscript, python, javascript",
            ),
            ("js kv", "unknown language \"js\""),
            ("rust", "which name?"),
            ("rust kv extra", "unexpected argument \"extra\""),
            ("rust Kv", "bad name"),
            ("c kv --sdk x", "rust projects only"),
            ("rust kv --dir", "--dir wants a path"),
            ("rust kv --dir a --dir b", "given twice"),
            ("rust kv --verbose", "unexpected argument"),
        ] {
            let e = parse(&args(line)).unwrap_err();
            assert!(e.contains(why), "{line:?}: {e}");
        }
    }

    fn temp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "wasmcached-plugin-new-unit-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_directory_with_something_in_it_is_refused() {
        let d = temp("dir");
        let p = || Project {
            dir: d.clone(),
            ..project(Lang::C, "kv")
        };
        assert!(check(p()).is_ok(), "a directory not there yet");
        std::fs::create_dir_all(&d).unwrap();
        assert!(check(p()).is_ok(), "an empty directory");
        std::fs::write(d.join("x"), "").unwrap();
        assert!(check(p()).unwrap_err().contains("not empty"));
        let f = d.join("x");
        let e = check(Project { dir: f, ..p() }).unwrap_err();
        assert!(e.contains("not a directory"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn sdk_must_be_the_sdk_crate() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let p = |sdk: PathBuf| Project {
            sdk: Some(sdk),
            dir: temp("sdk"),
            ..project(Lang::Rust, "kv")
        };
        let ok = check(p(root.join("guest-sdk"))).unwrap();
        assert!(ok.sdk.as_ref().unwrap().is_absolute());
        assert!(check(p(root.join("abi")))
            .unwrap_err()
            .contains("not the wasmcached-sdk crate"));
        assert!(check(p(root.join("no-such-dir")))
            .unwrap_err()
            .contains("no Cargo.toml"));
    }

    /// Every embedded file is written where its table says, with the name
    /// filled in, the scripts executable, and nothing else.
    #[test]
    fn every_embedded_file_is_written() {
        for lang in Lang::ALL {
            let d = temp(lang.name());
            let p = Project {
                dir: d.clone(),
                ..project(lang, "my-kv")
            };
            let files = render(&p).unwrap();
            write(&d, &files).unwrap();
            let mut expected: Vec<&str> = templates::sources(lang).iter().map(|s| s.to).collect();
            if lang == Lang::Rust {
                expected.extend(templates::RUST_VENDOR.iter().map(|s| s.to));
            }
            let mut written = Vec::new();
            fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
                for e in std::fs::read_dir(dir).unwrap() {
                    let path = e.unwrap().path();
                    if path.is_dir() {
                        walk(&path, base, out);
                    } else {
                        let rel = path.strip_prefix(base).unwrap();
                        out.push(rel.to_string_lossy().replace('\\', "/"));
                    }
                }
            }
            walk(&d, &d, &mut written);
            written.sort();
            expected.sort();
            assert_eq!(written, expected, "{lang:?}");
            for s in templates::sources(lang) {
                let text = std::fs::read_to_string(d.join(s.to)).unwrap();
                match s.how {
                    How::Copy => assert_eq!(text, s.text, "{}", s.to),
                    _ => assert!(!text.contains("{{"), "{}: {text}", s.to),
                }
            }
            let build = std::fs::read_to_string(d.join("build.sh")).unwrap();
            assert!(build.contains("my-kv.wasm"), "{build}");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(d.join("build.sh")).unwrap().permissions();
                assert_eq!(mode.mode() & 0o111, 0o111, "{lang:?} build.sh");
                if lang == Lang::C {
                    let mode = std::fs::metadata(d.join("test.sh")).unwrap().permissions();
                    assert_eq!(mode.mode() & 0o111, 0o111, "C test.sh");
                }
            }
            std::fs::remove_dir_all(&d).unwrap();
        }
    }

    #[test]
    fn rust_manifest_depends_on_the_vendored_or_given_sdk() {
        let cargo = |p: &Project| {
            render(p)
                .unwrap()
                .into_iter()
                .find(|f| f.path == "Cargo.toml")
                .unwrap()
                .text
        };
        let vendored = cargo(&project(Lang::Rust, "my-kv"));
        assert!(vendored.contains("name = \"my-kv\""), "{vendored}");
        assert!(vendored.contains("wasmcached-sdk = { path = \"vendor/wasmcached-sdk\" }"));
        assert!(vendored.contains("`wasmcached-sdk = \"0.1\"`"));
        for line in [
            "[workspace]",
            "panic = \"abort\"",
            "lto = true",
            "codegen-units = 1",
        ] {
            assert!(vendored.lines().any(|l| l == line), "{line}: {vendored}");
        }
        let given = cargo(&Project {
            sdk: Some(PathBuf::from("/src/wc \"x\"\\guest-sdk")),
            ..project(Lang::Rust, "kv")
        });
        assert!(
            given.contains(r#"wasmcached-sdk = { path = "/src/wc \"x\"\\guest-sdk" }"#),
            "{given}"
        );
        let files = render(&Project {
            sdk: Some("/sdk".into()),
            ..project(Lang::Rust, "kv")
        })
        .unwrap();
        assert!(files.iter().all(|f| !f.path.starts_with("vendor/")));
    }

    /// The text of the rendered file at `path`.
    fn text(files: &[File], path: &str) -> String {
        files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("no {path}"))
            .text
            .clone()
    }

    /// The component projects: the world as this server serves it, the
    /// starter and build.sh naming the project, and JavaScript's pins those
    /// of examples/js-lru with the root package renamed.
    #[test]
    fn component_projects_carry_the_world_and_the_pins() {
        let world = include_str!("../../../wit/store.wit");
        // Any accepted name works: Python's module is always store.py.
        for name in ["my-kv", "class", "a_1"] {
            let py = render(&project(Lang::Python, name)).unwrap();
            assert_eq!(text(&py, "wit/store.wit"), world);
            let build = text(&py, "build.sh");
            for want in [
                "\"componentize-py==0.25.1\"",
                "-d wit/store.wit -w store componentize store",
                &format!("-o {name}.wasm"),
                &format!("echo \"$PWD/{name}.wasm\""),
                "python3 -m venv .venv",
            ] {
                assert!(build.contains(want), "{want}: {build}");
            }
            assert!(text(&py, "store.py").starts_with(&format!("\"\"\"{name}: ")));
            assert!(text(&py, ".gitignore").contains("/.venv"));

            let js = render(&project(Lang::JavaScript, name)).unwrap();
            assert_eq!(text(&js, "wit/store.wit"), world);
            let build = text(&js, "build.sh");
            for want in [
                "npm ci",
                "--wit wit/store.wit --world-name store",
                &format!("-o {name}.wasm"),
                &format!("echo \"$PWD/{name}.wasm\""),
            ] {
                assert!(build.contains(want), "{want}: {build}");
            }
            let package = text(&js, "package.json");
            let lock = text(&js, "package-lock.json");
            let named = format!("\"name\": \"{name}\"");
            assert!(package.contains(&named), "{package}");
            assert_eq!(lock.matches(&named).count(), 2, "{lock}");
            assert!(!lock.contains("js-lru"), "{lock}");
            for pin in [
                "\"@bytecodealliance/componentize-js\": \"0.23.0\"",
                "\"@bytecodealliance/jco\": \"1.15.4\"",
            ] {
                assert!(package.contains(pin), "{pin}: {package}");
                assert!(lock.contains(pin), "{pin}: lock");
            }
            assert!(text(&js, "store.js").starts_with(&format!("// {name}: ")));
        }
    }

    #[test]
    fn the_next_steps_are_the_readme_commands() {
        for lang in Lang::ALL {
            let p = Project {
                dir: "my dir".into(),
                ..project(lang, "kv")
            };
            let steps = next_steps(&p, 3);
            let readme = render(&p)
                .unwrap()
                .into_iter()
                .find(|f| f.path == "README.md")
                .unwrap()
                .text;
            for cmd in [
                "cd 'my dir'",
                "./build.sh",
                "wasmcached plugin check --contract basic kv.wasm",
                "wasmcached --plugin kv.wasm",
            ] {
                assert!(steps.contains(&format!("  {cmd}\n")), "{steps}");
                assert!(readme.contains(cmd), "{lang:?} README lacks {cmd}");
            }
            let new = format!("wasmcached plugin new {} kv", lang.name());
            assert!(readme.contains(&new), "{lang:?} README lacks {new}");
            // The native tests: the README's command is the one printed.
            let test = match lang {
                Lang::C => "./test.sh",
                Lang::AssemblyScript => "npm test",
                _ => continue,
            };
            assert!(steps.contains(&format!("`{test}`")), "{steps}");
            assert!(
                readme.contains(&format!("```sh\n{test}\n```")),
                "{lang:?} README lacks {test}"
            );
        }
    }

    /// The native tests are wired up: test.sh builds test_native.c with the
    /// harness (and not into the wasm build), package.json's `npm test`
    /// builds the .wasm that test.mjs loads.
    #[test]
    fn c_and_assemblyscript_projects_have_native_tests() {
        let c = render(&project(Lang::C, "my-kv")).unwrap();
        let test = text(&c, "test.sh");
        for want in [
            "\"${CC:-cc}\"",
            "-I . -I harness",
            "test_native.c store.c wasmcached.c harness/wmc_harness.c harness/wmc_host.c",
            "exec ./test_native",
        ] {
            assert!(test.contains(want), "{want}: {test}");
        }
        assert!(!text(&c, "build.sh").contains("harness"));
        assert!(text(&c, "test_native.c").contains("#include \"wmc_harness.h\""));
        assert!(text(&c, ".gitignore").lines().any(|l| l == "/test_native"));
        assert!(c.iter().any(|f| f.path == "test.sh" && f.executable));

        let as_ = render(&project(Lang::AssemblyScript, "my-kv")).unwrap();
        let package = text(&as_, "package.json");
        for want in [
            "\"pretest\": \"./build.sh\"",
            "\"test\": \"node --test test.mjs\"",
            "-o my-kv.wasm",
        ] {
            assert!(package.contains(want), "{want}: {package}");
        }
        let test = text(&as_, "test.mjs");
        assert!(test.contains("from \"./harness.mjs\""), "{test}");
        assert!(test.contains("new URL(\"./my-kv.wasm\", import.meta.url)"));
        assert!(text(&as_, "build.sh").contains("-o my-kv.wasm"));
    }
}
