// Package device is the WireGuard engine: it composes the noise protocol
// core, the allowed-IPs routing table, a TUN device and UDP sockets into a
// working interface, driven by one epoll event loop (loop.go) with crypto on
// a pool of worker goroutines (workers.go) and handshakes on their own
// goroutines (handshake.go).
package device

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wgdvpn/wgd/device/allowedips"
	"github.com/wgdvpn/wgd/device/conn"
	"github.com/wgdvpn/wgd/noise"
	"github.com/wgdvpn/wgd/tun"
)

// Clock is the device's source of time. Tests inject a fake one; timers are
// evaluated against it whenever the loop wakes.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Options configure New.
type Options struct {
	TUN    tun.Device   // required; the device owns it from New on and closes it
	Logger *slog.Logger // nil = slog.Default()
	Clock  Clock        // nil = the real clock
	Rand   io.Reader    // nil = crypto/rand; ephemeral keys, indices, cookie secrets
	// Workers is the number of crypto goroutines. 0 picks one per CPU on
	// machines with more than two, and none on one or two CPUs, where the
	// event loop seals and opens every batch itself: there, handing a
	// batch to another thread and being woken when it is done costs more
	// CPU (futex wakes, context switches, inter-processor interrupts) than
	// the parallel crypto gains, measured on a 2-vCPU VM as 25% less
	// throughput and 25% more CPU per byte (GOMAXPROCS=4 there, so four
	// workers: 2.65 against 4.71 Gbit/s). Whether workers pay on more
	// CPUs has not been measured (no such machine was available); one per
	// CPU is kept there so that crypto can use them. Negative means none.
	Workers int
	// ListenPort is the UDP port bound at start (0 = random); Apply changes it.
	ListenPort uint16
	// NoUDPOffload keeps UDP GSO and GRO off even where the kernel has
	// them: for tests and comparisons, and as an escape hatch.
	NoUDPOffload bool
	// Routes tells of routing changes (see Routes); nil means the host's,
	// over rtnetlink.
	Routes Routes
}

// ErrClosed is returned by operations on a closed device.
var ErrClosed = errors.New("device closed")

// Device is one WireGuard interface.
type Device struct {
	log   *slog.Logger
	clock Clock
	rand  io.Reader
	tun   tun.Device
	mtu   atomic.Int32
	// connOpts is how every UDP socket pair of the device is opened; set
	// in New, read-only after.
	connOpts conn.Options

	loop     *loop
	workers  *workerPool
	hs       *handshakeQueue
	counters Counters
	logLim   logLimiter
	limiter  *rateLimiter
	indices  indexTable

	// cfgMu serializes configuration transactions (Apply) and guards the
	// fields below it. Lock order: cfgMu, then peersMu, then Peer.mu.
	cfgMu  sync.Mutex
	static atomic.Pointer[noise.Static] // nil without a private key
	// ownPriv and ownPub are the last private key set (zero, also when
	// none was) and the public key wireguard-go gives it (zero before any
	// key was set), for its rules on peers with the device's own key.
	ownPriv    noise.PrivateKey
	ownPub     noise.PublicKey
	cookies    *noise.CookieChecker
	listenPort uint16
	fwmark     uint32

	// peersMu guards the peer set; allowedIPs has its own writer lock and
	// lock-free readers.
	peersMu    sync.RWMutex
	peers      map[noise.PublicKey]*Peer
	peerList   peerList
	allowedIPs allowedips.Table[*Peer]

	// bindMu guards bind: readers (any goroutine sending) take it shared;
	// the loop takes it exclusively to swap sockets.
	bindMu sync.RWMutex
	bind   *conn.Bind

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup
	errMu     sync.Mutex
	err       error // why the loop stopped, if it failed
}

// New starts a device on opts.TUN: it binds the UDP port and starts the event
// loop, the crypto workers and the handshake goroutines. It has no private
// key and no peers until Apply gives them.
func New(opts Options) (*Device, error) {
	if opts.TUN == nil {
		return nil, errors.New("device: no TUN")
	}
	d := &Device{
		log:    opts.Logger,
		clock:  opts.Clock,
		rand:   opts.Rand,
		tun:    opts.TUN,
		peers:  make(map[noise.PublicKey]*Peer),
		closed: make(chan struct{}),
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.clock == nil {
		d.clock = realClock{}
	}
	if d.rand == nil {
		d.rand = rand.Reader
	}
	mtu, err := opts.TUN.MTU()
	if err != nil {
		return nil, fmt.Errorf("device: read TUN MTU: %w", err)
	}
	d.mtu.Store(int32(mtu))
	d.indices.init()
	d.limiter = newRateLimiter()
	d.cookies = noise.NewCookieChecker(noise.PublicKey{}, d.rand)
	d.connOpts = conn.Options{Log: d.log, NoGSO: opts.NoUDPOffload, NoGRO: opts.NoUDPOffload}
	bind, err := conn.OpenWith(opts.ListenPort, 0, d.connOpts)
	if err != nil {
		return nil, fmt.Errorf("device: bind UDP port %d: %w", opts.ListenPort, err)
	}
	d.bind = bind
	d.listenPort = bind.Port()
	n := cryptoWorkers(opts.Workers, runtime.GOMAXPROCS(0))
	d.workers = newWorkerPool(n)
	d.hs = newHandshakeQueue(d, max(1, n/2))
	l, err := newLoop(d)
	if err != nil {
		d.workers.stop()
		d.hs.stop()
		bind.Close()
		return nil, err
	}
	d.loop = l
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := l.run(); err != nil {
			d.fail(err)
		}
	}()
	routes := opts.Routes
	if routes == nil {
		routes = hostRoutes{}
	}
	d.watchRoutes(routes)
	return d, nil
}

// fail records why the device stopped and closes it.
func (d *Device) fail(err error) {
	d.errMu.Lock()
	if d.err == nil {
		d.err = err
	}
	d.errMu.Unlock()
	if errors.Is(err, tun.ErrDeleted) {
		// How wg-quick down and ip link del stop a userspace daemon.
		d.log.Info("interface deleted, stopping")
	} else {
		d.log.Error("device failed, stopping", "err", err)
	}
	go d.Close()
}

// Err returns the error that stopped the device, if any.
func (d *Device) Err() error {
	d.errMu.Lock()
	defer d.errMu.Unlock()
	return d.err
}

// Done is closed when the device is closed.
func (d *Device) Done() <-chan struct{} { return d.closed }

// Close stops every goroutine, closes the sockets and the TUN, and forgets
// all keys. It is safe to call more than once.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		close(d.closed)
		d.loop.poll.wake()
		d.wg.Wait() // the loop has returned
		d.hs.stop()
		d.workers.stop()
		d.loop.poll.close()
		d.bindMu.Lock()
		d.bind.Close()
		d.bindMu.Unlock()
		d.tun.Close()
		d.peersMu.Lock()
		for _, p := range d.peers {
			p.zeroKeys()
		}
		d.peersMu.Unlock()
	})
	return nil
}

// MTU is the TUN MTU the device pads and sizes buffers for.
func (d *Device) MTU() int { return int(d.mtu.Load()) }

// SetMTU records a new TUN MTU (the link's MTU changed): new packets are
// padded for it, and large datagrams try UDP GSO again where a route had
// refused them (conn.Bind.ResetGSOLimit).
func (d *Device) SetMTU(mtu int) {
	if mtu <= 0 || d.mtu.Swap(int32(mtu)) == int32(mtu) {
		return
	}
	// Datagrams of a size a route refused with GSO may fit it now.
	d.bindMu.RLock()
	if d.bind != nil {
		d.bind.ResetGSOLimit()
	}
	d.bindMu.RUnlock()
}

// Counters returns a snapshot of the device's drop and traffic counters.
func (d *Device) Counters() CountersSnapshot {
	c := d.counters.snapshot()
	if t, ok := d.tun.(interface{ ReadDrops() uint64 }); ok {
		c.TUNReadErrors += t.ReadDrops()
	}
	return c
}

// Port is the UDP port currently bound.
func (d *Device) Port() uint16 {
	d.cfgMu.Lock()
	defer d.cfgMu.Unlock()
	return d.listenPort
}

// UDPOffloads names the UDP offloads the current sockets use: "gso,gro",
// "gso", "gro" or "none", for logs.
func (d *Device) UDPOffloads() string {
	d.bindMu.RLock()
	gso, gro := d.bind.Offloads()
	d.bindMu.RUnlock()
	switch {
	case gso && gro:
		return "gso,gro"
	case gso:
		return "gso"
	case gro:
		return "gro"
	}
	return "none"
}

// send writes one datagram outside the data path (handshakes, cookie
// replies). It never blocks; a full socket drops the message.
func (d *Device) send(buf []byte, ep *conn.Endpoint) error {
	d.bindMu.RLock()
	defer d.bindMu.RUnlock()
	if err := d.bind.Send(buf, ep); err != nil {
		d.counters.sendErrors.Add(1)
		return err
	}
	return nil
}

// cryptoWorkers resolves Options.Workers for a machine with procs CPUs.
func cryptoWorkers(opt, procs int) int {
	switch {
	case opt > 0:
		return opt
	case opt < 0 || procs <= 2:
		return 0
	default:
		return procs
	}
}
