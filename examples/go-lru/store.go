// An LRU item store for wasmcached, in Go: memcached's semantics (flags,
// expiry, CAS, add/replace/append/prepend/cas, incr/decr, touch, gat,
// flush_all with a delay, -M) with least-recently-used eviction within the
// shard's memory budget, dump/load so a `plugin reload` or a warm restart
// keeps the items, and iter, which lists them for `lru_crawler metadump`
// and `stats cachedump`. A port of examples/python-lru/store.py.
//
// It is a component of the wasmcached:store world store-with-listing
// (wit/store.wit: the store world and its optional `iter` export), built
// with mainline Go (GOOS=wasip1, -buildmode=c-shared, //go:wasmexport) and
// the Go bindings of wit-bindgen 0.63.0 (build.sh). The server hands
// `Handle` a batch of requests and sends the answers, one per request, back
// to the clients. The world carries a batch's keys and values in one byte
// slice and the answers' values in another, with spans (offset, length)
// into them in the records: `batch` below turns them into bytes and back,
// so the store itself reads and writes plain bytes.
//
// The generated code calls this package's exported functions (WitVersion,
// Init, Handle, Tick, Timer, Stats, Dump, Load, Iter): build.sh puts this
// file in the package `export_wit_world` of the module that wit-bindgen
// writes.
package export_wit_world

import (
	"container/list"
	"fmt"
	"strconv"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	host "wit_component/wasmcached_store_host"
	listing "wit_component/wasmcached_store_listing_types"
	types "wit_component/wasmcached_store_types"
)

// Operations and statuses: the numbers of wit/store.wit.
const (
	opGet      = 1
	opSet      = 2
	opAdd      = 3
	opReplace  = 4
	opAppend   = 5
	opPrepend  = 6
	opCas      = 7
	opDelete   = 8
	opIncr     = 9
	opDecr     = 10
	opTouch    = 11
	opGat      = 12
	opFlushAll = 13
	opMemLimit = 14
)

const (
	stStored      = 0
	stNotStored   = 1
	stExists      = 2
	stNotFound    = 3
	stDeleted     = 4
	stTouched     = 5
	stHit         = 6
	stMiss        = 7
	stNumber      = 8
	stNonNumeric  = 9
	stTooLarge    = 10
	stOutOfMemory = 11
	stOk          = 12
	stError       = 13
)

// Request flags (mflags) this store honours, and the answer flag it sets.
const (
	mfNoValue = 1 << 0
	mfNoBump  = 1 << 1
	mfVivify  = 1 << 2
	mfSetTTL  = 1 << 6
	ifFetched = 1 << 0
)

// A store's key was binary (sent base64 by a meta client): the item keeps
// the mark, and hits and listings answer it (as iflag KEY_BINARY), so that
// `mg` gives the key back base64 and `stats cachedump` leaves it out.
const keyBinary = 1 << 5

// What an item costs beyond its key and value: the store's own bookkeeping.
const itemOverhead = 64

// How many slots one `Iter` call looks at, at most: a call's work is bounded
// however sparse the slots are.
const iterSlots = 16384

// One stored value and what memcached keeps with it.
type item struct {
	key        string
	value      []byte
	flags      uint32
	exptime    uint32 // server time it expires at; 0: never
	cas        uint64
	storedAt   uint32
	lastAccess uint32
	fetched    bool
	slot       int  // its index in store.slots
	binary     bool // stored with a binary key
}

func (it *item) iflags() uint8 {
	var f uint8
	if it.fetched {
		f |= ifFetched
	}
	if it.binary {
		f |= keyBinary
	}
	return f
}

func (it *item) cost() uint64 {
	return uint64(len(it.key) + len(it.value) + itemOverhead)
}

// One `Handle` call's bytes: key and value read a request's from the
// batch's data; answer makes a response, its value appended to the
// answers' data.
type batch struct {
	data []byte
	out  []byte
}

func (b *batch) key(r *types.Request) []byte {
	return b.data[r.Key.Offset : r.Key.Offset+r.Key.Len]
}

func (b *batch) value(r *types.Request) []byte {
	return b.data[r.Value.Offset : r.Value.Offset+r.Value.Len]
}

// A response with only its status set; the helpers below fill in more.
func (b *batch) answer(status uint8) types.Response {
	return types.Response{Status: status}
}

// Appends `value` to the answers' data; its span.
func (b *batch) push(value []byte) types.Span {
	if len(value) == 0 {
		return types.Span{}
	}
	span := types.Span{Offset: uint32(len(b.out)), Len: uint32(len(value))}
	b.out = append(b.out, value...)
	return span
}

func (b *batch) errorf(format string, args ...any) types.Response {
	r := b.answer(stError)
	r.Value = b.push([]byte(fmt.Sprintf(format, args...)))
	return r
}

// One shard's items. Each item also has a slot, a fixed index in `slots`,
// for `Iter`: its cursor is a slot index, which LRU moves, stores and
// removals leave meaningful. A removal frees the slot, and a store reuses a
// free one first.
type store struct {
	items       map[string]*list.Element // key -> element of lru (an *item)
	lru         *list.List               // least recently used first
	slots       []*item                  // every item at its slot; nil: a free slot
	free        []int                    // the free slots' indices, reused first
	used        uint64
	budget      uint64
	maxItemSize uint64
	noEvict     bool
	casEnabled  bool
	// CAS values are unique across shards: shard + k * shard_count.
	nextCas    uint64
	casStep    uint64
	flushAt    uint32
	evictions  uint64
	expired    uint64
	totalItems uint64
	dumpKeys   []string // the keys of a running dump, in LRU order
	outHint    int      // how many bytes the last batch's answers held
}

func newStore(c types.Config) *store {
	step := uint64(c.ShardCount)
	if step == 0 {
		step = 1
	}
	return &store{
		items:       make(map[string]*list.Element),
		lru:         list.New(),
		budget:      c.MemoryBudget,
		maxItemSize: uint64(c.MaxItemSize),
		noEvict:     c.NoEvict,
		casEnabled:  c.CasEnabled,
		nextCas:     uint64(c.ShardId) + 1,
		casStep:     step,
	}
}

// -- the item table ---------------------------------------------------------

// Whether `it` expired or was flushed: a get would miss it.
func (s *store) dead(it *item, now uint32) bool {
	return (it.exptime != 0 && it.exptime <= now) ||
		(s.flushAt != 0 && s.flushAt <= now && it.storedAt <= s.flushAt)
}

// The live item under `key`, dropping it if it expired or was flushed.
func (s *store) live(key []byte, now uint32) *item {
	e, ok := s.items[string(key)]
	if !ok {
		return nil
	}
	it := e.Value.(*item)
	if s.dead(it, now) {
		s.remove(e)
		s.expired++
		return nil
	}
	return it
}

func (s *store) remove(e *list.Element) *item {
	it := s.lru.Remove(e).(*item)
	delete(s.items, it.key)
	s.used -= it.cost()
	s.slots[it.slot] = nil
	s.free = append(s.free, it.slot)
	return it
}

func (s *store) bump(key []byte) {
	if e, ok := s.items[string(key)]; ok {
		s.lru.MoveToBack(e)
	}
}

func (s *store) newCas() uint64 {
	if !s.casEnabled {
		return 0
	}
	cas := s.nextCas
	s.nextCas += s.casStep
	return cas
}

// Stores an item (copying key and value: they point into a batch),
// evicting the least recently used ones for room. Its status and the item
// (nil unless stored).
func (s *store) put(key, value []byte, flags, exptime, now uint32) (uint8, *item) {
	if e, ok := s.items[string(key)]; ok {
		s.remove(e)
	}
	if uint64(len(key)+len(value)) > s.maxItemSize {
		return stTooLarge, nil
	}
	cost := uint64(len(key) + len(value) + itemOverhead)
	for s.used+cost > s.budget && s.lru.Len() > 0 {
		front := s.lru.Front()
		old := front.Value.(*item)
		dead := old.exptime != 0 && old.exptime <= now
		if s.noEvict && !dead {
			break
		}
		s.remove(front)
		if dead {
			s.expired++
		} else {
			s.evictions++
		}
	}
	if s.used+cost > s.budget {
		return stOutOfMemory, nil
	}
	slot := len(s.slots)
	if n := len(s.free); n > 0 {
		slot = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		s.slots = append(s.slots, nil)
	}
	it := &item{
		key:        string(key),
		value:      append([]byte(nil), value...),
		flags:      flags,
		exptime:    exptime,
		cas:        s.newCas(),
		storedAt:   now,
		lastAccess: now,
		slot:       slot,
	}
	s.slots[slot] = it
	s.items[it.key] = s.lru.PushBack(it)
	s.used += cost
	s.totalItems++
	return stStored, it
}

// -- requests -----------------------------------------------------------------

func (s *store) handle(data []byte, requests []types.Request) types.Answers {
	now := host.Now()
	b := &batch{data: data, out: make([]byte, 0, s.outHint)}
	responses := make([]types.Response, len(requests))
	for i := range requests {
		responses[i] = s.one(b, &requests[i], now)
	}
	s.outHint = len(b.out)
	return types.Answers{Data: b.out, Responses: responses}
}

func (s *store) one(b *batch, r *types.Request, now uint32) types.Response {
	key := b.key(r)
	switch r.Op {
	case opFlushAll:
		if r.Exptime == 0 || r.Exptime <= now {
			s.items = make(map[string]*list.Element)
			s.lru.Init()
			s.slots, s.free = nil, nil
			s.used = 0
			s.flushAt = 0
		} else {
			s.flushAt = r.Exptime - 1
		}
		return b.answer(stOk)
	case opMemLimit:
		s.budget = r.Delta
		return b.answer(stOk)
	case opGet, opGat:
		return s.get(b, r, key, now)
	case opTouch:
		it := s.live(key, now)
		if it == nil {
			return b.answer(stNotFound)
		}
		it.exptime = r.Exptime
		s.bump(key)
		return b.answer(stTouched)
	case opSet, opAdd, opReplace, opAppend, opPrepend, opCas:
		return s.store(b, r, key, now)
	case opDelete:
		it := s.live(key, now)
		if it == nil {
			return b.answer(stNotFound)
		}
		if r.Cas != 0 && r.Cas != it.cas {
			return b.answer(stExists)
		}
		s.remove(s.items[it.key])
		return b.answer(stDeleted)
	case opIncr, opDecr:
		return s.arith(b, r, key, now)
	}
	return b.errorf("unknown operation %d", r.Op)
}

func (s *store) get(b *batch, r *types.Request, key []byte, now uint32) types.Response {
	it := s.live(key, now)
	if it == nil {
		return b.answer(stMiss)
	}
	prev := it.exptime
	if r.Op == opGat {
		it.exptime = r.Exptime
	}
	resp := b.answer(stHit)
	if r.Mflags&mfNoValue == 0 {
		resp.Value = b.push(it.value)
	}
	resp.ClientFlags = it.flags
	resp.Exptime = it.exptime
	resp.Cas = it.cas
	resp.Iflags = it.iflags()
	resp.LastAccess = it.lastAccess
	resp.PrevExptime = prev
	if r.Mflags&mfNoBump == 0 {
		it.fetched = true
		it.lastAccess = now
		s.bump(key)
	}
	return resp
}

func (s *store) store(b *batch, r *types.Request, key []byte, now uint32) types.Response {
	op := r.Op
	if op == opSet && r.Cas != 0 {
		op = opCas
	}
	old := s.live(key, now)
	value, flags, exptime := b.value(r), r.ClientFlags, r.Exptime
	switch {
	case op == opAdd && old != nil:
		s.bump(key)
		return b.answer(stNotStored)
	case (op == opReplace || op == opAppend || op == opPrepend) && old == nil:
		return b.answer(stNotStored)
	case op == opCas && old == nil:
		return b.answer(stNotFound)
	case op == opCas && old.cas != r.Cas:
		return b.answer(stExists)
	}
	if op == opAppend || op == opPrepend {
		joined := make([]byte, 0, len(old.value)+len(value))
		if op == opAppend {
			joined = append(append(joined, old.value...), value...)
		} else {
			joined = append(append(joined, value...), old.value...)
		}
		value, flags, exptime = joined, old.flags, old.exptime
	}
	status, it := s.put(key, value, flags, exptime, now)
	if it == nil {
		return b.answer(status)
	}
	it.binary = r.Mflags&keyBinary != 0
	resp := b.answer(stStored)
	resp.Cas = it.cas
	resp.Exptime = it.exptime
	return resp
}

// The decimal number an item holds (trailing spaces allowed, as memcached
// leaves them), or false.
func number(value []byte) (uint64, bool) {
	end := len(value)
	for end > 0 && value[end-1] == ' ' {
		end--
	}
	digits := value[:end]
	if len(digits) == 0 || len(digits) > 20 {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(string(digits), 10, 64)
	return n, err == nil
}

func (s *store) arith(b *batch, r *types.Request, key []byte, now uint32) types.Response {
	it := s.live(key, now)
	if it == nil {
		if r.Mflags&mfVivify == 0 {
			return b.answer(stNotFound)
		}
		// ma's N: the missing counter is created with the initial value
		// (the request's value) and the TTL in `aux`.
		status, made := s.put(key, b.value(r), 0, r.Aux, now)
		if made == nil {
			return b.answer(status)
		}
		made.binary = r.Mflags&keyBinary != 0
		resp := b.answer(stNumber)
		resp.Value = b.push(made.value)
		resp.Cas = made.cas
		resp.Exptime = made.exptime
		return resp
	}
	if r.Cas != 0 && r.Cas != it.cas {
		return b.answer(stExists)
	}
	n, ok := number(it.value)
	if !ok {
		resp := b.answer(stNonNumeric)
		resp.Value = b.push([]byte("cannot increment or decrement non-numeric value"))
		return resp
	}
	if r.Op == opIncr {
		n += r.Delta // wraps at 2^64, as memcached's does
	} else if n > r.Delta {
		n -= r.Delta
	} else {
		n = 0
	}
	digits := strconv.AppendUint(nil, n, 10)
	prev := it.exptime
	// memcached writes a number that still fits over the old one, padded
	// with spaces ("10" decremented to 9 reads back "9 "), and ma's T sets
	// its TTL; a longer number is a new item with the old TTL.
	value, exptime := digits, prev
	if len(digits) <= len(it.value) {
		value = make([]byte, len(it.value))
		copy(value, digits)
		for i := len(digits); i < len(value); i++ {
			value[i] = ' '
		}
		if r.Mflags&mfSetTTL != 0 {
			exptime = r.Exptime
		}
	}
	// Written over the old number, the item keeps its binary-key mark;
	// memcached's new item for a longer number does not.
	fetched, lastAccess, binary := it.fetched, it.lastAccess, it.binary && len(digits) <= len(it.value)
	status, stored := s.put(key, value, it.flags, exptime, now)
	if stored == nil {
		return b.answer(status)
	}
	stored.fetched, stored.lastAccess, stored.binary = fetched, lastAccess, binary
	resp := b.answer(stNumber)
	resp.Value = b.push(digits)
	resp.Cas = stored.cas
	resp.Exptime = exptime
	resp.PrevExptime = prev
	return resp
}

// -- dump and load: a reload or a warm restart keeps the items ------------

// Up to `max` live items from `cursor` on, least recently used first, and
// the cursor to go on from (0: done). The server calls nothing else during
// a dump, so the keys listed when it starts stay valid; the cursor is a
// position in that list.
func (s *store) dump(cursor uint64, max uint32) (uint64, []types.Item) {
	if cursor == 0 {
		s.dumpKeys = make([]string, 0, s.lru.Len())
		for e := s.lru.Front(); e != nil; e = e.Next() {
			s.dumpKeys = append(s.dumpKeys, e.Value.(*item).key)
		}
	}
	now := host.Now()
	var out []types.Item
	at := cursor
	for at < uint64(len(s.dumpKeys)) && len(out) < int(max) {
		key := s.dumpKeys[at]
		at++
		e, ok := s.items[key]
		if !ok {
			continue
		}
		it := e.Value.(*item)
		if s.dead(it, now) {
			continue
		}
		out = append(out, types.Item{
			Key: []byte(it.key), Value: it.value,
			ClientFlags: it.flags, Exptime: it.exptime, Cas: it.cas,
		})
	}
	if at >= uint64(len(s.dumpKeys)) {
		s.dumpKeys = nil
		at = 0
	}
	return at, out
}

// Stores handed-over items as sets would, in dump order (so the last is
// the most recent), keeping their CAS values: new ones are handed out
// above every loaded one.
func (s *store) load(items []types.Item) bool {
	now := host.Now()
	for i := range items {
		in := &items[i]
		if in.Exptime != 0 && in.Exptime <= now {
			continue
		}
		_, it := s.put(in.Key, in.Value, in.ClientFlags, in.Exptime, now)
		if it == nil {
			continue
		}
		if s.casEnabled {
			it.cas = in.Cas
		} else {
			it.cas = 0
		}
		if in.Cas >= s.nextCas {
			s.nextCas += ((in.Cas-s.nextCas)/s.casStep + 1) * s.casStep
		}
	}
	return true
}

// -- listing: lru_crawler metadump, stats cachedump ----------------------

// Up to `max` live items from slot `cursor` on, and the slot to go on from
// (0: done; a call with `max` > 0 has passed slot 0, so 0 cannot mean "go
// on from there"). Requests run between calls, so it only reads: the items
// a get would miss (expired, flushed) are left out, not reclaimed, and
// neither the LRU order nor an item's access time or fetched mark changes.
func (s *store) iter(cursor uint64, max uint32) (uint64, []listing.ListedItem) {
	now := host.Now()
	n := uint64(len(s.slots))
	at, end := cursor, n
	if at < n && n-at > iterSlots {
		end = at + iterSlots
	}
	var out []listing.ListedItem
	if at < end {
		out = make([]listing.ListedItem, 0, min(uint64(max), end-at))
	}
	for at < end && uint64(len(out)) < uint64(max) {
		it := s.slots[at]
		at++
		if it == nil || s.dead(it, now) {
			continue
		}
		out = append(out, listing.ListedItem{
			Key:         []byte(it.key),
			Exptime:     it.exptime,
			LastAccess:  it.lastAccess,
			Cas:         it.cas,
			ClientFlags: it.flags,
			ValueLen:    uint32(len(it.value)),
			Size:        0,
			Iflags:      it.iflags(),
			Class:       0,
		})
	}
	if at >= n {
		at = 0
	}
	return at, out
}

func (s *store) stats(group int32) []witTypes.Tuple2[string, string] {
	if group != 0 {
		return nil
	}
	pair := func(name string, n uint64) witTypes.Tuple2[string, string] {
		return witTypes.Tuple2[string, string]{F0: name, F1: strconv.FormatUint(n, 10)}
	}
	return []witTypes.Tuple2[string, string]{
		pair("curr_items", uint64(s.lru.Len())),
		pair("bytes", s.used),
		pair("total_items", s.totalItems),
		pair("evictions", s.evictions),
		pair("expired_unfetched", 0),
		pair("go_lru_expired", s.expired),
	}
}

// -- the world's exports ----------------------------------------------------

// The shard's store, made by Init (the server runs one instance per shard).
var shard *store

// The world version this plugin was written for.
func WitVersion() uint32 {
	return 2
}

func Init(config types.Config) witTypes.Result[witTypes.Unit, string] {
	shard = newStore(config)
	host.Log(2, fmt.Sprintf("go-lru: shard %d of %d, %d bytes",
		config.ShardId, config.ShardCount, config.MemoryBudget))
	return witTypes.Ok[witTypes.Unit, string](witTypes.Unit{})
}

func Handle(data []uint8, requests []types.Request) types.Answers {
	collectIfDue()
	return shard.handle(data, requests)
}

func Tick(now uint32) {}

func Timer(token uint64) {}

func Stats(group int32) []witTypes.Tuple2[string, string] {
	return shard.stats(group)
}

func Dump(cursor uint64, max uint32) witTypes.Option[witTypes.Tuple2[uint64, []types.Item]] {
	collectIfDue()
	next, items := shard.dump(cursor, max)
	return witTypes.Some(witTypes.Tuple2[uint64, []types.Item]{F0: next, F1: items})
}

func Load(items []types.Item) bool {
	collectIfDue()
	return shard.load(items)
}

// The world store-with-listing's export: always a list (the server's probe,
// Iter(0, 0) right after Init, answers an empty one).
func Iter(cursor uint64, max uint32) witTypes.Option[witTypes.Tuple2[uint64, []listing.ListedItem]] {
	collectIfDue()
	next, items := shard.iter(cursor, max)
	return witTypes.Some(witTypes.Tuple2[uint64, []listing.ListedItem]{F0: next, F1: items})
}
