//! The end-to-end tests of wasmcached, in one test binary (`--test e2e`):
//! one module per area, all sharing the harness in `common/`. See
//! `tests/README.md` for what each module covers; run one area with a name
//! filter, e.g. `cargo test --profile suite -p wasmcached --test e2e --
//! differential::`.
//!
//! Tests run in parallel threads of this one process: a test must not
//! change process-wide state (environment variables, the current
//! directory); servers get their environment through `Server::start_env`.

mod common;

mod auth;
mod binary_protocol;
mod clients;
mod differential;
mod differential_binary;
mod differential_meta;
mod examples;
mod hotkeys;
mod io_backend;
mod memccapable;
mod meta_protocol;
mod metrics;
mod platform;
mod plugin_check;
mod plugin_faults;
mod plugin_metrics;
mod plugin_new;
mod plugin_stats;
mod plugins;
mod reload;
mod replay;
mod restart;
mod scaleout;
mod sdk_harness;
mod sdk_starter;
mod soak;
mod startup;
mod text_protocol;
mod tls;
mod transport;
