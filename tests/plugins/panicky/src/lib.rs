//! panicky: a test plugin built with the Rust SDK (tests/plugin_faults.rs,
//! `rust_panic_message_reaches_the_log`). A tiny get/set store that panics
//! on any request whose key starts with `panic`, so that the test can check
//! the SDK's panic hook: the server log must show the panic message and its
//! location before the host reports the trap.
//!
//! Built for wasm32-unknown-unknown with the `plugin` profile (panic =
//! "abort"), like the default store; a workspace member, not a default one.

use std::collections::HashMap;
use wasmcached_sdk::{Config, Op, Plugin, Request, Responder, Response, Status};

#[derive(Default)]
pub struct Panicky(HashMap<Vec<u8>, Vec<u8>>);

impl Plugin for Panicky {
    fn init(_: &Config) -> Result<Self, String> {
        Ok(Panicky::default())
    }

    fn handle(&mut self, req: &Request<'_>, out: &mut Responder<'_>) {
        if req.key.starts_with(b"panic") {
            let key = String::from_utf8_lossy(req.key);
            panic!("boom: {key}");
        }
        match req.op() {
            Some(Op::Get) => match self.0.get(req.key) {
                Some(v) => out.respond(&Response {
                    status: Status::Hit as u8,
                    key: req.key,
                    value: v,
                    ..Default::default()
                }),
                None => out.status(Status::Miss),
            },
            Some(Op::Set) => {
                self.0.insert(req.key.to_vec(), req.value.to_vec());
                out.stored(0, 0)
            }
            _ => out.error("not supported"),
        }
    }
}

wasmcached_sdk::export_plugin!(Panicky);
