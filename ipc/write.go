package ipc

import (
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/wgdvpn/wgd/device"
)

// Device is what the UAPI server needs from the engine: an all-or-nothing
// Apply (errors.Is(err, unix.EADDRINUSE) when the port is taken, any other
// error means an invalid config) and a Visit that reports the device and
// then every peer in a stable order, the *PeerInfo valid only during the
// callback.
type Device interface {
	Apply(cfg *device.Config) error
	Visit(dev func(device.Info), peer func(*device.PeerInfo)) error
}

// WriteGet writes the body of a `get=1` reply (without the errno line)
// byte for byte as wireguard-go does: private_key, listen_port and fwmark
// only when non-zero, then per peer public_key, preshared_key (zeros when
// none), protocol_version=1, endpoint when set, the handshake time,
// tx_bytes, rx_bytes, persistent_keepalive_interval and the allowed IPs.
//
// A goroutine builds the reply in chunks under Visit while this one writes
// the finished chunks to w. The builder never waits for the writer (the
// queue between them is unbounded), so a client that reads slowly never
// holds the device's locks for longer than building takes, as when the
// whole reply was built before the first write; a client that reads fast
// parses the first peers while the last are still being built, and the
// written chunks are garbage before the reply is done. A million peers make
// ~320 MiB of text, so chunks also avoid copying a doubling slice.
//
// A reply smaller than one chunk is written only after Visit returns, so a
// Visit error then means nothing was written. A larger reply may be cut
// short by a Visit error after some chunks went out; the caller's errno
// line then reports the error. WriteGet returns only after the builder has
// finished, even when a write fails.
func WriteGet(w io.Writer, dev Device) error {
	return writeGet(w, dev, nil, nil)
}

// writeGet is WriteGet with the reply's unwritten bytes counted in budget
// as h (budget nil: not counted); the caller got h from budget.start, and
// the builder ends the build (built) once the whole reply is queued.
func writeGet(w io.Writer, dev Device, budget *replyBudget, h *replyHolder) error {
	r := reply{q: newChunkQueue(), budget: budget, holder: h}
	defer budget.done(h)
	go func() {
		defer budget.built()
		err := dev.Visit(func(info device.Info) {
			r.cur = appendInfo(r.cur, &info)
		}, func(pi *device.PeerInfo) {
			r.cur = appendPeerInfo(r.cur, pi)
			r.cut(false)
		})
		if err == nil {
			r.cut(true)
		}
		r.q.close(err)
	}()
	var werr error
	for {
		<-r.q.wake
		chunks, closed, err := r.q.take()
		for _, c := range chunks {
			// In slices, so that the budget sees a slow but steady
			// reader move: after whole 256 KiB chunks, one taking
			// 100 KB/s looked stalled and was cut off.
			for len(c) > 0 {
				k := min(len(c), replyWriteSlice)
				if werr == nil {
					_, werr = w.Write(c[:k])
				}
				budget.sub(h, int64(k))
				c = c[k:]
			}
		}
		if closed {
			if werr != nil {
				return werr
			}
			return err
		}
	}
}

// replyChunk is the capacity of a reply chunk; replySlack is room left for
// the next peer (a peer with one allowed IP takes ~330 bytes; one with many
// may overflow its chunk, which append then grows).
const (
	replyChunk = 256 << 10
	replySlack = 4 << 10
	// replyWriteSlice is the most written at once, each write a sign of
	// progress for the reply budget.
	replyWriteSlice = 16 << 10
)

// reply is a get reply under construction: cur is the chunk being appended
// to, owned by the building goroutine until cut hands it to q.
type reply struct {
	cur    []byte
	q      *chunkQueue
	budget *replyBudget // nil: not counted
	holder *replyHolder
}

// cut hands cur to the writer once it is within replySlack of a full
// chunk, or at the end (final) whenever it holds anything, so that
// appending a peer never copies the peers written before. The first chunk
// grows from nil, so a small device does not allocate a whole chunk.
func (r *reply) cut(final bool) {
	if len(r.cur) == 0 || (!final && len(r.cur) < replyChunk-replySlack) {
		return
	}
	r.budget.add(r.holder, int64(len(r.cur)))
	r.q.push(r.cur)
	r.cur = nil
	if !final {
		r.cur = make([]byte, 0, replyChunk)
	}
}

// replyBudget bounds the memory that get replies hold for clients that do
// not read them. Every reply is built whole, whatever its reader does, so
// that a slow reader never holds the device's locks; without a bound, 40
// connections that sent get=1 and read nothing held 40 replies (~15 MB
// each at 50k peers, ~320 MB at 1M).
//
// Replies are built one at a time, and one starts only while the bytes
// built and not yet written, over all connections, are at most max, so
// memory stays within max plus one reply. A get that finds the budget
// spent cuts off the connections whose replies have not moved for stall
// (their clients read nothing: no write finished and the socket's unread
// bytes did not change) and waits for the memory to come back.
// Waiting gets are served newest first: a client that reads nothing tends
// to send many gets, and an admin's `wg show` behind them should not wait
// a stall for each.
type replyBudget struct {
	max   int64
	stall time.Duration
	now   func() time.Time

	mu       sync.Mutex
	queued   int64 // built, not yet written or dropped, over all holders
	building bool
	holders  map[*replyHolder]struct{}
	waiters  []*int        // a stack: the last one is served first
	changed  chan struct{} // closed (and replaced) on every change
}

// replyHolder is one get reply in the budget.
type replyHolder struct {
	queued   int64     // this reply's bytes built and not yet written
	progress time.Time // when it was last seen to move (or was started)
	evict    func()    // closes its connection
	// unread returns the bytes written to the connection and not yet
	// read by the client (SIOCOUTQ; -1: unknown), lastUnread its value
	// when last looked at. A write finishes only once the client has
	// drained most of the socket buffer (the kernel wakes a unix socket's
	// writer at a quarter of it), so a reader taking 100 KB/s finished
	// none for over a second; the bytes it reads show it moving.
	unread     func() int
	lastUnread int
	evicted    bool
}

func newReplyBudget(max int64, stall time.Duration, now func() time.Time) *replyBudget {
	return &replyBudget{max: max, stall: stall, now: now,
		holders: make(map[*replyHolder]struct{}), changed: make(chan struct{})}
}

// replyStall is how long a reply may sit unread while another get waits
// for memory before its connection is cut off.
const replyStall = 2 * time.Second

func (b *replyBudget) signalLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// start waits until a reply may be built: no other is being built, the
// budget has room, and no get that came later is waiting. It gives up when
// timeout fires (nil, false: the caller answers an error). evict closes
// the caller's connection, for a later get that finds this reply stalled.
func (b *replyBudget) start(evict func(), unread func() int, timeout <-chan time.Time) (*replyHolder, bool) {
	me := new(int)
	b.mu.Lock()
	b.waiters = append(b.waiters, me)
	defer b.mu.Unlock()
	for {
		if !b.building && b.queued <= b.max && b.waiters[len(b.waiters)-1] == me {
			b.waiters = b.waiters[:len(b.waiters)-1]
			b.building = true
			h := &replyHolder{progress: b.now(), evict: evict, unread: unread, lastUnread: -1}
			b.holders[h] = struct{}{}
			b.signalLocked()
			return h, true
		}
		if b.queued > b.max {
			b.evictStalledLocked()
		}
		changed := b.changed
		b.mu.Unlock()
		recheck := time.NewTimer(b.stall / 8)
		var expired bool
		select {
		case <-changed:
		case <-recheck.C:
		case <-timeout:
			expired = true
		}
		recheck.Stop()
		b.mu.Lock()
		if expired {
			for i, w := range b.waiters {
				if w == me {
					b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
					break
				}
			}
			b.signalLocked()
			return nil, false
		}
	}
}

// evictStalledLocked cuts off the connections whose replies have bytes
// left to write and have not moved for stall: no write finished and the
// client read nothing of what the socket holds.
func (b *replyBudget) evictStalledLocked() {
	now := b.now()
	for h := range b.holders {
		if h.evicted || h.queued <= 0 {
			continue
		}
		// Sampled on every look, not only once stalled: the count moves
		// in steps of a whole socket buffer's skb, and two samples a
		// stall apart can catch the same step.
		if h.unread != nil {
			if u := h.unread(); u >= 0 && u != h.lastUnread {
				h.lastUnread, h.progress = u, now
			}
		}
		if now.Sub(h.progress) >= b.stall {
			h.evicted = true
			h.evict()
		}
	}
}

// built: the whole reply of the build that start allowed is queued. Like
// add, sub and done it does nothing on a nil budget (WriteGet's).
func (b *replyBudget) built() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.building = false
	b.signalLocked()
	b.mu.Unlock()
}

func (b *replyBudget) add(h *replyHolder, n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.queued += n
	h.queued += n
	b.mu.Unlock()
}

// sub: n bytes of h were written (or dropped after a failed write).
func (b *replyBudget) sub(h *replyHolder, n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.queued -= n
	h.queued -= n
	h.progress = b.now()
	b.signalLocked()
	b.mu.Unlock()
}

// done removes h once its reply is written or dropped.
func (b *replyBudget) done(h *replyHolder) {
	if b == nil {
		return
	}
	b.mu.Lock()
	delete(b.holders, h)
	b.signalLocked()
	b.mu.Unlock()
}

// chunkQueue hands finished chunks from the goroutine that builds a reply
// to the one that writes it. push and close never block, whatever the
// writer does; wake (capacity 1) is signalled after each of them, so the
// writer never misses the last change.
type chunkQueue struct {
	wake chan struct{}

	mu sync.Mutex
	// chunks, closed and err are guarded by mu: the chunks not yet taken,
	// whether the builder is done, and the error Visit returned.
	chunks [][]byte
	closed bool
	err    error
}

func newChunkQueue() *chunkQueue {
	return &chunkQueue{wake: make(chan struct{}, 1)}
}

func (q *chunkQueue) push(c []byte) {
	q.mu.Lock()
	q.chunks = append(q.chunks, c)
	q.mu.Unlock()
	q.signal()
}

func (q *chunkQueue) close(err error) {
	q.mu.Lock()
	q.closed, q.err = true, err
	q.mu.Unlock()
	q.signal()
}

func (q *chunkQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns the pending chunks (the caller now owns them), whether the
// builder has finished, and its error.
func (q *chunkQueue) take() ([][]byte, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := q.chunks
	q.chunks = nil
	return c, q.closed, q.err
}

func appendInfo(b []byte, info *device.Info) []byte {
	if !info.PrivateKey.IsZero() {
		b = appendKey(b, "private_key", info.PrivateKey)
	}
	if info.ListenPort != 0 {
		b = appendUint(b, "listen_port", uint64(info.ListenPort))
	}
	if info.FwMark != 0 {
		b = appendUint(b, "fwmark", uint64(info.FwMark))
	}
	return b
}

func appendPeerInfo(b []byte, pi *device.PeerInfo) []byte {
	b = appendKey(b, "public_key", pi.PublicKey)
	b = appendKey(b, "preshared_key", pi.PresharedKey)
	b = append(b, "protocol_version=1\n"...)
	if pi.Endpoint.IsValid() {
		b = append(b, "endpoint="...)
		b = pi.Endpoint.AppendTo(b)
		b = append(b, '\n')
	}
	var sec, nsec int64
	if !pi.LastHandshake.IsZero() {
		ns := pi.LastHandshake.UnixNano()
		sec, nsec = ns/1e9, ns%1e9
	}
	b = appendInt(b, "last_handshake_time_sec", sec)
	b = appendInt(b, "last_handshake_time_nsec", nsec)
	b = appendUint(b, "tx_bytes", pi.TxBytes)
	b = appendUint(b, "rx_bytes", pi.RxBytes)
	b = appendUint(b, "persistent_keepalive_interval", uint64(pi.PersistentKeepalive))
	for _, pfx := range pi.AllowedIPs {
		b = append(b, "allowed_ip="...)
		b = pfx.AppendTo(b)
		b = append(b, '\n')
	}
	return b
}

// WriteSet writes cfg as the body of a `set=1` request, the terminating
// blank line included, in the order wg(8) writes: device keys, then per
// peer public_key, remove or update_only, preshared_key, endpoint,
// persistent_keepalive_interval, replace_allowed_ips and allowed IPs
// ("-" prefixed for removal). ParseSet reads it back to an equal Config.
func WriteSet(w io.Writer, cfg *device.Config) error {
	var b []byte
	for _, k := range cfg.ReplacedPrivateKeys {
		b = appendKey(b, "private_key", k)
	}
	if cfg.PrivateKey != nil {
		b = appendKey(b, "private_key", *cfg.PrivateKey)
	}
	if cfg.ListenPort != nil {
		b = appendUint(b, "listen_port", uint64(*cfg.ListenPort))
	}
	if cfg.FwMark != nil {
		b = appendUint(b, "fwmark", uint64(*cfg.FwMark))
	}
	if cfg.ReplacePeers {
		b = append(b, "replace_peers=true\n"...)
	}
	for i := range cfg.Peers {
		b = appendPeerConfig(b, &cfg.Peers[i])
		if len(b) >= 1<<16 {
			if _, err := w.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	b = append(b, '\n')
	_, err := w.Write(b)
	return err
}

func appendPeerConfig(b []byte, pc *device.PeerConfig) []byte {
	if !pc.Sequel {
		b = appendKey(b, "public_key", pc.PublicKey)
	}
	if pc.Remove {
		return append(b, "remove=true\n"...)
	}
	if pc.UpdateOnly {
		b = append(b, "update_only=true\n"...)
	}
	if pc.Sequel && pc.ReplaceAllowedIPs {
		// A sequel's flags come first, right after the allowed IPs of the
		// entry before, which is what makes ParseSet start it again.
		b = append(b, "replace_allowed_ips=true\n"...)
	}
	if pc.PresharedKey != nil {
		b = appendKey(b, "preshared_key", *pc.PresharedKey)
	}
	if pc.Endpoint != nil {
		b = append(b, "endpoint="...)
		b = pc.Endpoint.AppendTo(b)
		b = append(b, '\n')
	}
	if pc.PersistentKeepalive != nil {
		b = appendUint(b, "persistent_keepalive_interval", uint64(*pc.PersistentKeepalive))
	}
	if pc.ReplaceAllowedIPs && !pc.Sequel {
		b = append(b, "replace_allowed_ips=true\n"...)
	}
	for _, a := range pc.AllowedIPs {
		b = append(b, "allowed_ip="...)
		if a.Remove {
			b = append(b, '-')
		}
		b = a.Prefix.AppendTo(b)
		b = append(b, '\n')
	}
	if pc.ProtocolVersion != 0 {
		b = appendInt(b, "protocol_version", int64(pc.ProtocolVersion))
	}
	return b
}

// hexPairs holds the two lowercase hex digits of every byte value, so
// that a key is encoded one byte (not one nibble) per table load. A get of
// a million peers encodes two million keys. It is computed once at package
// initialization and never written afterwards.
var hexPairs = func() (t [256][2]byte) {
	const digits = "0123456789abcdef"
	for i := range t {
		t[i] = [2]byte{digits[i>>4], digits[i&0xf]}
	}
	return t
}()

// appendKey appends "key=<64 hex digits>\n". It grows b once and writes
// the digits in place instead of appending them one by one.
func appendKey(b []byte, key string, k [32]byte) []byte {
	b = append(b, key...)
	b = append(b, '=')
	n := len(b)
	b = slices.Grow(b, 2*len(k)+1)[:n+2*len(k)+1]
	out := b[n : n+2*len(k)+1]
	for i, c := range k {
		out[2*i], out[2*i+1] = hexPairs[c][0], hexPairs[c][1]
	}
	out[2*len(k)] = '\n'
	return b
}

func appendUint(b []byte, key string, v uint64) []byte {
	b = append(b, key...)
	b = append(b, '=')
	b = strconv.AppendUint(b, v, 10)
	return append(b, '\n')
}

func appendInt(b []byte, key string, v int64) []byte {
	b = append(b, key...)
	b = append(b, '=')
	b = strconv.AppendInt(b, v, 10)
	return append(b, '\n')
}
