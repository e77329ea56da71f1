//! `wasmcached`: a drop-in memcached whose storage engine is a Wasm plugin.

use std::process::ExitCode;
use wasmcached::server::Server;
use wasmcached::settings::{Parsed, Settings};

fn main() -> ExitCode {
    // `wasmcached plugin check FILE`: the plugin conformance kit. memcached's
    // own flags all start with `-`, so the word cannot be mistaken for one.
    let args: Vec<_> = std::env::args_os().collect();
    // Both tools load the plugin through the server's code cache: a
    // component with a Python or JavaScript runtime in it takes tens of
    // seconds to compile, and an author runs `plugin check` after each build.
    if args.get(1).is_some_and(|a| a == "plugin") {
        wasmcached::plugin::configure_code_cache(true);
        return wasmcached::plugin_check::main(&args[2..]);
    }
    // `wasmcached replay ...`: a plugin driven through a trace, in-process.
    if args.get(1).is_some_and(|a| a == "replay") {
        wasmcached::plugin::configure_code_cache(true);
        return wasmcached::replay::main(&args[2..]);
    }
    let settings = match Settings::parse_args(std::env::args_os()) {
        Ok(Parsed::Run(s)) => *s,
        Ok(Parsed::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("wasmcached: {e}");
            // memcached's status for the same refusal (1 or 64), else 64.
            return ExitCode::from(wasmcached::settings::exit_status(&e));
        }
    };
    wasmcached::plugin::configure_code_cache(settings.plugin_cache);
    match Server::start(settings).and_then(|s| s.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasmcached: {e:#}");
            ExitCode::from(71)
        }
    }
}
