package export_wit_world

// When the Go garbage collector runs.
//
// The Go runtime collects when an allocation finds the heap grown enough
// (GOGC), and finishing a collection reads the clocks (`time.now` in
// `gcMarkTermination`: WASI's wall clock). The host also calls into the
// plugin to allocate the lists it hands over (`cabi_realloc`), and a
// component may not call out of itself from there: a collection that
// happened to end inside `cabi_realloc` trapped ("cannot leave component
// instance") and the shard restarted empty. go.bytecodealliance.org/pkg
// v0.4.0 pauses only the monotonic clock around its allocation, and the
// wall clock read traps all the same (seen with the preview1 adapters of
// wasmtime 48.0.8 and 50.0.1, under `plugin check`'s memory budget tests).
//
// So the runtime never starts a collection by itself here
// (SetGCPercent(-1), and no memory limit), and the store collects at the
// start of a call, where calling out is allowed, as GOGC=100 would: once
// the heap has taken in as much again as was live after the last
// collection (and at least minGCStep).

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// The least the heap grows between two collections: a small store does not
// collect at every batch.
const minGCStep = 4 << 20

var (
	gcSamples = []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"}, // allocated since the start
		{Name: "/gc/heap/live:bytes"},   // live after the last collection
	}
	allocsAtLastGC uint64
	liveAtLastGC   uint64
)

func init() {
	debug.SetGCPercent(-1)
}

// Collects when the heap has grown enough since the last collection. Call
// it only from an export's own code (not from anything `cabi_realloc`
// runs).
func collectIfDue() {
	metrics.Read(gcSamples[:1])
	allocs := gcSamples[0].Value.Uint64()
	step := liveAtLastGC
	if step < minGCStep {
		step = minGCStep
	}
	if allocs-allocsAtLastGC < step {
		return
	}
	runtime.GC()
	metrics.Read(gcSamples)
	allocsAtLastGC = gcSamples[0].Value.Uint64()
	liveAtLastGC = gcSamples[1].Value.Uint64()
}
