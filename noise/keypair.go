package noise

import (
	"crypto/cipher"
	"encoding/binary"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/crypto/chacha20poly1305"
)

// Keypair is one set of transport keys (whitepaper §5.4.5). Everything but
// the send counter and the replay filter is immutable after DeriveKeypair,
// so Seal and Open may run on many goroutines at once.
type Keypair struct {
	// LocalIndex is our index, which the peer puts in the receiver field.
	LocalIndex uint32
	// RemoteIndex is the peer's index, which we put in the receiver field.
	RemoteIndex uint32
	// Created is the `now` of the handshake step that derived the keys, the
	// start of RekeyAfterTime and RejectAfterTime.
	Created time.Time
	// Initiator is true when we sent the initiation. Only the initiator
	// rekeys on time (whitepaper §6.2).
	Initiator bool
	// Replay is the receive-side window. Guarded by the device: it calls
	// Accept after Open, serialized per keypair.
	Replay ReplayFilter

	send        cipher.AEAD
	recv        cipher.AEAD
	sendCounter atomic.Uint64 // next counter to hand out
	zeroed      atomic.Bool   // set by Zero; Seal and Open then refuse
}

// newKeypair builds the AEADs once, so that the per-packet path allocates
// nothing.
func newKeypair(sendKey, recvKey *[32]byte) *Keypair {
	s, _ := chacha20poly1305.New(sendKey[:]) // fails only on key size
	r, _ := chacha20poly1305.New(recvKey[:])
	return &Keypair{send: s, recv: r}
}

// NextCounter hands out the next send counter. It reports false once the
// counter reaches RejectAfterMessages: the keypair must not send any more.
func (kp *Keypair) NextCounter() (uint64, bool) {
	c := kp.sendCounter.Add(1) - 1
	if c >= RejectAfterMessages {
		kp.sendCounter.Store(RejectAfterMessages) // keep it from wrapping
		return 0, false
	}
	return c, true
}

// ExpireSending uses up the send counters: the keypair still opens what
// the peer sends but seals nothing more, so the next packet asks for a new
// handshake (the references' "expire current keypairs").
func (kp *Keypair) ExpireSending() {
	kp.sendCounter.Store(RejectAfterMessages)
}

// SendCount is the number of counters handed out so far, which the device
// compares with RekeyAfterMessages.
func (kp *Keypair) SendCount() uint64 {
	return min(kp.sendCounter.Load(), RejectAfterMessages)
}

// PaddedLen returns the length a plaintext of n bytes is padded to: the next
// multiple of 16, but not beyond mtu unless n itself is longer
// (whitepaper §5.4.6). mtu <= 0 means no limit, as in wireguard-go.
func PaddedLen(n, mtu int) int {
	p := (n + PaddingMultiple - 1) &^ (PaddingMultiple - 1)
	if mtu > 0 && p > max(mtu, n) {
		p = max(mtu, n)
	}
	return p
}

// SealedLen is the size of the transport message Seal builds for a
// plaintext of n bytes.
func SealedLen(n, mtu int) int {
	return TransportHeaderSize + PaddedLen(n, mtu) + TagSize
}

// Seal writes a complete transport message into dst[:SealedLen] and returns
// it: header with RemoteIndex and counter, then the padded plaintext
// encrypted with nonce = 4 zero bytes || LE u64 counter (whitepaper §5.4.6).
// plaintext may alias dst[TransportHeaderSize:] exactly. It returns nil when
// cap(dst) is too small or after Zero; it never allocates.
func (kp *Keypair) Seal(dst []byte, counter uint64, plaintext []byte, mtu int) []byte {
	n := len(plaintext)
	padded := PaddedLen(n, mtu)
	total := TransportHeaderSize + padded + TagSize
	if cap(dst) < total || kp.zeroed.Load() {
		return nil
	}
	out := dst[:total]
	body := out[TransportHeaderSize : TransportHeaderSize+padded]
	if n > 0 && unsafe.SliceData(plaintext) != unsafe.SliceData(body) {
		copy(body, plaintext)
	}
	clear(body[n:])
	// The nonce is built in place in out[4:16] (4 zero bytes, then the
	// counter, which is also the header's counter field) because a local
	// nonce array passed through the cipher.AEAD interface escapes to the
	// heap. out[4:16] does not overlap the ciphertext at out[16:]; the
	// receiver index is written over the zero bytes once Seal is done.
	binary.LittleEndian.PutUint32(out, TypeTransport)
	binary.LittleEndian.PutUint32(out[transportOffReceiver:], 0)
	binary.LittleEndian.PutUint64(out[transportOffCounter:], counter)
	kp.send.Seal(body[:0], out[transportOffReceiver:TransportHeaderSize], body, nil)
	binary.LittleEndian.PutUint32(out[transportOffReceiver:], kp.RemoteIndex)
	return out
}

// Open authenticates and decrypts a whole transport message into dst, which
// may alias msg[TransportHeaderSize:] exactly, and returns the padded
// plaintext and the counter. The caller routed msg here by its receiver
// index and does the replay check (Replay.Accept) afterwards, so that only
// authenticated counters move the window.
func (kp *Keypair) Open(dst, msg []byte) ([]byte, uint64, error) {
	receiver, counter, err := ParseTransportHeader(msg)
	if err != nil {
		return nil, 0, err
	}
	if receiver != kp.LocalIndex {
		return nil, 0, ErrWrongIndex
	}
	if counter >= RejectAfterMessages {
		return nil, 0, ErrReplay
	}
	if kp.zeroed.Load() {
		return nil, 0, ErrDecrypt
	}
	// As in Seal, the nonce is msg[4:16] with the receiver index zeroed for
	// the duration of the call (a local array would escape to the heap); the
	// index is restored before returning. msg is the caller's and not shared
	// while Open runs.
	binary.LittleEndian.PutUint32(msg[transportOffReceiver:], 0)
	out, err := kp.recv.Open(dst[:0], msg[transportOffReceiver:TransportHeaderSize], msg[TransportHeaderSize:], nil)
	binary.LittleEndian.PutUint32(msg[transportOffReceiver:], receiver)
	if err != nil {
		return nil, 0, ErrDecrypt
	}
	return out, counter, nil
}

// Zero retires the keypair: Seal and Open refuse to work from then on. The
// key bytes live inside x/crypto's AEAD values, which offer no way to wipe
// them; dropping the keypair lets the collector reclaim them.
func (kp *Keypair) Zero() {
	kp.zeroed.Store(true)
}
