//! The build tool of examples/go-lru (its build.sh runs it):
//!
//! ```text
//! go-lru-componentize bindgen WIT WORLD DIR         # Go bindings into DIR
//! go-lru-componentize component WIT WORLD CORE OUT [ADAPTER]  # core module -> component
//! ```
//!
//! `bindgen` is `wit-bindgen go -w WORLD WIT` (wit-bindgen-go 0.63.0);
//! `component` is `wasm-tools component embed -w WORLD WIT CORE` then
//! `wasm-tools component new --adapt wasi_snapshot_preview1.reactor.wasm`,
//! with the reactor adapter of wasmtime 48.0.8, the server's wasmtime.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use wit_bindgen_core::Files;
use wit_parser::Resolve;

fn resolve(wit: &Path, world: &str) -> Result<(Resolve, wit_parser::WorldId)> {
    let mut resolve = Resolve::default();
    let (pkg, _) = resolve
        .push_path(wit)
        .with_context(|| format!("reading {}", wit.display()))?;
    let world = resolve.select_world(&[pkg], Some(world))?;
    Ok((resolve, world))
}

fn bindgen(wit: &Path, world: &str, dir: &Path) -> Result<()> {
    let (mut resolve, world) = resolve(wit, world)?;
    let mut files = Files::default();
    let mut generator = wit_bindgen_go::Opts::default().build();
    generator.generate(&mut resolve, world, &mut files)?;
    for (name, contents) in files.iter() {
        let dst = dir.join(name);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&dst, contents).with_context(|| format!("writing {}", dst.display()))?;
    }
    Ok(())
}

fn component(wit: &Path, world: &str, core: &Path, out: &Path, adapter: Option<&Path>) -> Result<()> {
    let (resolve, world) = resolve(wit, world)?;
    let mut module = std::fs::read(core).with_context(|| format!("reading {}", core.display()))?;
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )?;
    let adapter = match adapter {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None => wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER
            .to_vec(),
    };
    let bytes = wit_component::ComponentEncoder::default()
        .module(&module)?
        .adapter("wasi_snapshot_preview1", &adapter)?
        .validate(true)
        .encode()?;
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["bindgen", wit, world, dir] => bindgen(Path::new(wit), world, Path::new(dir)),
        ["component", wit, world, core, out] => {
            component(Path::new(wit), world, Path::new(core), &PathBuf::from(out), None)
        }
        // Another adapter than wasmtime 48.0.8's (a .wasm file), to try one.
        ["component", wit, world, core, out, adapter] => component(
            Path::new(wit),
            world,
            Path::new(core),
            &PathBuf::from(out),
            Some(Path::new(adapter)),
        ),
        _ => bail!(
            "usage: go-lru-componentize bindgen WIT WORLD DIR | component WIT WORLD CORE OUT [ADAPTER]"
        ),
    }
}
