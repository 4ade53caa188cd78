package device

import (
	"sync"
	"sync/atomic"

	"github.com/wgdvpn/wgd/device/conn"
	"github.com/wgdvpn/wgd/noise"
)

// A job is one batch of packets read together by the loop, encrypted or
// decrypted on a worker, then finished by the loop in the order the batches
// were read. Ordering whole batches keeps every peer's packets in order with
// one channel operation per batch, not per packet.
//
// Ownership: the loop fills a job and hands it to the pool; from then until
// done is set, only the worker touches it; after done, only the loop.
type job struct {
	encrypt bool
	mtu     int
	elems   []elem
	done    atomic.Bool
	// pos is how many finished elems the loop has already written out (a
	// write can stop half-way on EAGAIN). processed is set once the loop has
	// checked a decrypted batch (replay, allowed IPs).
	pos       int
	processed bool
	out       [][]byte // decrypt: the TUN packets to write, in order
}

// elem is one packet of a job. buf is a loop-owned pool buffer; several
// decrypt elems may share one (segments of a coalesced datagram), and the
// one with own set returns it to the pool.
type elem struct {
	buf     []byte
	off     int  // decrypt: where the datagram starts in buf
	own     bool // this elem returns buf to the pool
	n       int  // encrypt: plaintext length at buf[hdr:]; decrypt: datagram length
	kp      *keypair
	counter uint64
	ep      conn.Endpoint
	out     []byte // the finished message (encrypt) or padded plaintext (decrypt)
	err     error
}

func (j *job) reset() {
	for i := range j.elems {
		j.elems[i] = elem{}
	}
	j.elems = j.elems[:0]
	j.out = j.out[:0]
	j.pos = 0
	j.processed = false
	j.done.Store(false)
}

// workerPool runs the crypto. Finished jobs wake the loop.
type workerPool struct {
	n    int // goroutines; 0: the loop runs every job itself
	jobs chan *job
	wake func()
	wg   sync.WaitGroup
	once sync.Once
}

func newWorkerPool(n int) *workerPool {
	w := &workerPool{n: n, jobs: make(chan *job, 256)}
	for range n {
		w.wg.Add(1)
		go w.run()
	}
	return w
}

func (w *workerPool) stop() {
	w.once.Do(func() {
		close(w.jobs)
		w.wg.Wait()
	})
}

func (w *workerPool) run() {
	defer w.wg.Done()
	for j := range w.jobs {
		runJob(j)
		j.done.Store(true)
		if w.wake != nil {
			w.wake()
		}
	}
}

func runJob(j *job) {
	if j.encrypt {
		sealJob(j)
	} else {
		openJob(j)
	}
}

// sealJob encrypts in place: the plaintext sits at buf[TransportHeaderSize:]
// and the message is written over it from buf[0:].
func sealJob(j *job) {
	for i := range j.elems {
		e := &j.elems[i]
		pt := e.buf[noise.TransportHeaderSize : noise.TransportHeaderSize+e.n]
		e.out = e.kp.Seal(e.buf[:0], e.counter, pt, j.mtu)
	}
}

// openJob decrypts in place: the plaintext lands at buf[TransportHeaderSize:].
func openJob(j *job) {
	for i := range j.elems {
		e := &j.elems[i]
		msg := e.buf[e.off : e.off+e.n]
		e.out, e.counter, e.err = e.kp.Open(msg[noise.TransportHeaderSize:noise.TransportHeaderSize], msg)
	}
}
