package device

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// indexEntry is what a receiver index in an incoming message refers to: a
// handshake in flight (kp == nil) or a transport session of peer.
type indexEntry struct {
	peer *Peer
	kp   *keypair
}

// indexTable maps our random 32-bit session indices to handshakes and
// sessions (whitepaper §5.4.2: "sender index" chosen at random). Readers on
// the data path take the read lock once per batch.
type indexTable struct {
	mu sync.RWMutex
	m  map[uint32]indexEntry
}

func (t *indexTable) init() { t.m = make(map[uint32]indexEntry) }

// newIndex picks a random unused non-zero index for a handshake of peer.
func (t *indexTable) newIndex(rand io.Reader, peer *Peer) (uint32, error) {
	var b [4]byte
	for range 64 {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return 0, fmt.Errorf("random index: %w", err)
		}
		idx := binary.LittleEndian.Uint32(b[:])
		if idx == 0 {
			continue
		}
		t.mu.Lock()
		if _, taken := t.m[idx]; !taken {
			t.m[idx] = indexEntry{peer: peer}
			t.mu.Unlock()
			return idx, nil
		}
		t.mu.Unlock()
	}
	return 0, fmt.Errorf("random index: no free index after 64 tries")
}

// setKeypair points idx (a handshake's index) at the session derived from it.
func (t *indexTable) setKeypair(idx uint32, kp *keypair) {
	t.mu.Lock()
	t.m[idx] = indexEntry{peer: kp.peer, kp: kp}
	t.mu.Unlock()
}

func (t *indexTable) lookup(idx uint32) (indexEntry, bool) {
	t.mu.RLock()
	e, ok := t.m[idx]
	t.mu.RUnlock()
	return e, ok
}

// lookupLocked is lookup for a caller holding t.mu.RLock for a whole batch.
func (t *indexTable) lookupLocked(idx uint32) (indexEntry, bool) {
	e, ok := t.m[idx]
	return e, ok
}

func (t *indexTable) remove(idx uint32) {
	t.mu.Lock()
	delete(t.m, idx)
	t.mu.Unlock()
}

// removeIf deletes idx only while it still refers to kp.
func (t *indexTable) removeIf(idx uint32, kp *keypair) {
	t.mu.Lock()
	if e, ok := t.m[idx]; ok && e.kp == kp {
		delete(t.m, idx)
	}
	t.mu.Unlock()
}
