//! memcached's item store as a wasmcached plugin.
use wasmcached_sdk::{Config, Plugin, Request, Responder, Status};

pub struct Store;

impl Plugin for Store {
    fn init(_config: &Config) -> Result<Self, String> {
        Ok(Store)
    }
    fn handle(&mut self, _req: &Request<'_>, out: &mut Responder<'_>) {
        out.status(Status::Miss)
    }
}

wasmcached_sdk::export_plugin!(Store);
