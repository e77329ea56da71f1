//! `/metrics` (`-o metrics_listen=HOST:PORT`): Prometheus' text exposition
//! format, or OpenMetrics when the scraper asks for it, served by a thread
//! of its own that asks the workers for their shards' figures and never
//! blocks a reactor.
//!
//! `expo` writes the exposition formats; `exporter` turns memcached's stats
//! into memcached_exporter's metric families, so that its dashboards and
//! alerts work unchanged.

pub mod expo;
pub mod exporter;
