//! A component's metrics: the optional `metrics` export of the world
//! `store-with-metrics` (wit/store.wit), the component's form of the core
//! ABI's v8 metrics block. It is looked up by name, so a plugin built for
//! `store` loads as before and has none; plugin/metrics.rs turns the answer
//! into the host's metrics, checked as a core plugin's block is.

use super::{flush_stdio, optional_export, Guest};
use crate::plugin::imports::ShardCtx;
use anyhow::Result;
use wasmtime::component::{ComponentType, Func, Instance, Lift, TypedFunc};
use wasmtime::Store;

/// The export's name.
const EXPORT: &str = "metrics";

/// `metric-types.histogram`.
#[derive(ComponentType, Lift, Debug)]
#[component(record)]
pub(in crate::plugin) struct Histogram {
    pub bounds: Vec<f64>,
    pub counts: Vec<u64>,
    pub sum: u64,
}

/// `metric-types.value`.
#[derive(ComponentType, Lift, Debug)]
#[component(variant)]
pub(in crate::plugin) enum Value {
    #[component(name = "counter")]
    Counter(u64),
    #[component(name = "gauge")]
    Gauge(i64),
    #[component(name = "histogram")]
    Histogram(Histogram),
}

/// `metric-types.metric`.
#[derive(ComponentType, Lift, Debug)]
#[component(record)]
pub(in crate::plugin) struct Metric {
    pub name: String,
    pub help: String,
    pub value: Value,
}

/// The `metrics` export's type.
type MetricsFn = TypedFunc<(), (Vec<Metric>,)>;

impl Guest {
    /// The instance's `metrics` export: `None` when it has none, an error
    /// when it has one of another type (as a core module's export of the
    /// wrong signature is refused).
    pub(super) fn find_metrics(
        instance: &Instance,
        store: &mut Store<ShardCtx>,
    ) -> Result<Option<Func>> {
        let f: Option<MetricsFn> = optional_export(instance, store, EXPORT)?;
        Ok(f.map(|f| *f.func()))
    }

    /// Whether the plugin exports `metrics`.
    pub(in crate::plugin) fn has_metrics(&self) -> bool {
        self.metrics.is_some()
    }

    /// The plugin's metrics now (none without the export), as it answered
    /// them: the caller checks them.
    pub(in crate::plugin) fn metrics(
        &mut self,
        store: &mut Store<ShardCtx>,
    ) -> Result<Vec<Metric>> {
        let Some(f) = self.metrics else {
            return Ok(Vec::new());
        };
        // Checked at start (`find_metrics`); the field holds an untyped
        // `Func` because `Guest`'s module cannot name this one's types.
        let f: MetricsFn = f.typed(&*store)?;
        self.tick_if_moved(store)?;
        let answer = f.call(&mut *store, ());
        flush_stdio(store);
        Ok(answer?.0)
    }
}
