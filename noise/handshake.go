package noise

import (
	"crypto/ecdh"
	"encoding/binary"
	"io"
	"time"
)

// hsState is where a Handshake stands in the IKpsk2 exchange.
type hsState uint8

const (
	stateZeroed             hsState = iota // nothing in flight
	stateInitiationCreated                 // we are the initiator, waiting for a response
	stateInitiationConsumed                // we are the responder, about to respond
	stateResponseCreated                   // responder done: DeriveKeypair may run
	stateResponseConsumed                  // initiator done: DeriveKeypair may run
)

// Handshake is the per-peer handshake state (whitepaper §5.4). It is NOT safe
// for concurrent use: the device holds the peer's lock around every call.
type Handshake struct {
	// Static configuration, changed only by SetLocal and SetPresharedKey.
	local           *Static
	remote          PublicKey
	psk             PresharedKey
	ss              [32]byte // DH(s_local, S_remote) (whitepaper §5.4.2 "ss"), once ssDone
	ssDone          bool     // ss and ssErr hold the result for the current local key
	ssErr           error    // why ss is unusable (zero result, no private key)
	remoteMAC1Key   [hashSize]byte
	remoteCookieKey [hashSize]byte

	// The exchange in flight; zeroed by Clear and DeriveKeypair.
	state           hsState
	chain           [hashSize]byte // C
	hash            [hashSize]byte // H
	ephemeral       *ecdh.PrivateKey
	remoteEphemeral PublicKey
	localIndex      uint32
	remoteIndex     uint32

	// Replay and flood protection of initiations from this peer.
	lastTimestamp  Timestamp
	lastInitiation time.Time

	// Cookie state: the cookie the peer gave us and the mac1 it answers.
	cookie      [MACSize]byte
	cookieTime  time.Time
	hasCookie   bool
	lastMAC1    [MACSize]byte
	hasLastMAC1 bool

	// prologue replaces the WireGuard identifier; nil outside tests, which
	// use it to replay the cacophony vector.
	prologue []byte
}

// NewHandshake prepares the handshake with the peer remote: it derives the
// peer's mac1 and cookie keys. The static-static DH is computed once, by the
// first handshake that needs it, and kept (see staticShared): configuring a
// peer then costs no scalar multiplication, which is what lets a device
// take a million peers at setconf speed, and a peer that never shakes hands
// never pays for one. A low-order remote key is not an error here; every
// handshake with it then fails with ErrZeroSharedSecret.
func NewHandshake(local *Static, remote PublicKey, psk PresharedKey) *Handshake {
	h := &Handshake{remote: remote, psk: psk}
	h.remoteMAC1Key = hashOf([]byte(labelMAC1), remote[:])
	h.remoteCookieKey = hashOf([]byte(labelCookie), remote[:])
	h.SetLocal(local)
	return h
}

// Remote returns the peer's static public key.
func (h *Handshake) Remote() PublicKey { return h.remote }

// SetPresharedKey changes the key mixed in at the psk2 position. A
// handshake already in flight completes with the key it started with only if
// both sides agree; the caller normally follows with Clear.
func (h *Handshake) SetPresharedKey(psk PresharedKey) { h.psk = psk }

// SetLocal installs a new local identity: it forgets ss (the next handshake
// computes it with the new key) and drops any exchange in flight, whose
// chaining key used the old static key.
func (h *Handshake) SetLocal(local *Static) {
	h.Clear()
	h.local = local
	clear(h.ss[:])
	h.ssDone, h.ssErr = false, nil
	if local == nil || local.key == nil {
		h.ssDone, h.ssErr = true, ErrNoPrivateKey
	}
}

// staticShared returns DH(S_local.priv, S_remote.pub), computing it on the
// first call after NewHandshake or SetLocal and keeping it for every later
// handshake, as the kernel's precomputed static-static does. The cost is
// bounded: at most one scalar multiplication per peer per local key, even
// for initiations forged by someone who knows our public key.
func (h *Handshake) staticShared() (*[32]byte, error) {
	if !h.ssDone {
		h.ss, h.ssErr = dh(h.local.key, h.remote[:])
		h.ssDone = true
	}
	return &h.ss, h.ssErr
}

// LocalIndex returns the sender index of the exchange in flight, 0 when none.
func (h *Handshake) LocalIndex() uint32 { return h.localIndex }

// LastSentMAC1 returns the mac1 of the last initiation or response we sent,
// which a cookie reply must carry as associated data, and whether there is one.
func (h *Handshake) LastSentMAC1() ([MACSize]byte, bool) { return h.lastMAC1, h.hasLastMAC1 }

// Clear zeroes the exchange in flight. The static configuration, the replay
// timestamp and the cookie survive.
func (h *Handshake) Clear() {
	h.state = stateZeroed
	clear(h.chain[:])
	clear(h.hash[:])
	h.ephemeral = nil // crypto/ecdh keeps the scalar; dropping it is all we can do
	h.remoteEphemeral = PublicKey{}
	h.localIndex = 0
	h.remoteIndex = 0
}

// begin sets C and H to their values before the first message:
// C = HASH(construction), H = HASH(HASH(C || identifier) || S_resp)
// (whitepaper §5.4.2), responder being whichever static key is passed.
func (h *Handshake) begin(responder PublicKey) {
	h.chain = initialChainKey()
	h.hash = initialHash(h.chain, h.prologueOr())
	h.hash = hashOf(h.hash[:], responder[:])
}

// prologueOr returns the test prologue or the WireGuard identifier.
func (h *Handshake) prologueOr() []byte {
	if h.prologue != nil {
		return h.prologue
	}
	return []byte(identifier)
}

// CreateInitiation starts a new exchange as initiator and appends the
// 148-byte initiation (whitepaper §5.4.2) to dst, with mac1 and, when we hold
// a cookie younger than CookieRefreshTime, mac2. On error dst is returned
// unchanged and the previous exchange is gone.
func (h *Handshake) CreateInitiation(dst []byte, now time.Time, localIndex uint32, rand io.Reader) ([]byte, error) {
	h.Clear()
	if _, err := h.staticShared(); err != nil {
		return dst, err
	}
	out, msg := grow(dst, InitiationSize)
	binary.LittleEndian.PutUint32(msg, TypeInitiation)
	binary.LittleEndian.PutUint32(msg[initOffSender:], localIndex)
	ts := TAI64N(now)
	h.begin(h.remote)
	if _, err := h.writeInitiation(msg[initOffEphemeral:initOffEphemeral], rand, ts[:]); err != nil {
		h.Clear()
		return dst, err
	}
	h.addMACs(msg, initOffMAC1, initOffMAC2, now)
	h.state = stateInitiationCreated
	h.localIndex = localIndex
	return out, nil
}

// mixEphemeral is the "e" token of both messages: a fresh ephemeral key whose
// public half is appended to out and mixed into H and C.
func (h *Handshake) mixEphemeral(out []byte, rand io.Reader) ([]byte, *ecdh.PrivateKey, error) {
	eph, err := newEphemeral(rand)
	if err != nil {
		return nil, nil, err
	}
	epub := eph.PublicKey().Bytes()
	out = append(out, epub...)
	h.hash = hashOf(h.hash[:], epub)
	h.chain = kdf1(h.chain[:], epub)
	return out, eph, nil
}

// writeInitiation appends the Noise body of message 0, e || enc(s) ||
// enc(payload), to out (which has room) and advances C and H. The payload
// is the TAI64N timestamp in WireGuard; tests pass the vector's payload.
func (h *Handshake) writeInitiation(out []byte, rand io.Reader, payload []byte) ([]byte, error) {
	// e: E_i = DH-Generate(); H = HASH(H || E_i.pub); C = KDF1(C, E_i.pub)
	out, eph, err := h.mixEphemeral(out, rand)
	if err != nil {
		return nil, err
	}
	// es: (C, k) = KDF2(C, DH(E_i.priv, S_r.pub))
	shared, err := dh(eph, h.remote[:])
	if err != nil {
		return nil, err
	}
	var key [32]byte
	h.chain, key = kdf2(h.chain[:], shared[:])
	clear(shared[:])
	// s: enc_s = AEAD(k, 0, S_i.pub, H); H = HASH(H || enc_s)
	start := len(out)
	out = aeadSeal(out, &key, h.local.pub[:], h.hash[:])
	h.hash = hashOf(h.hash[:], out[start:])
	// ss: (C, k) = KDF2(C, DH(S_i.priv, S_r.pub)), DH computed once per peer
	ss, err := h.staticShared()
	if err != nil {
		return nil, err
	}
	h.chain, key = kdf2(h.chain[:], ss[:])
	// payload: enc_ts = AEAD(k, 0, TAI64N, H); H = HASH(H || enc_ts)
	start = len(out)
	out = aeadSeal(out, &key, payload, h.hash[:])
	h.hash = hashOf(h.hash[:], out[start:])
	clear(key[:])
	h.ephemeral = eph
	return out, nil
}

// ConsumeResponse completes the exchange as initiator (whitepaper §5.4.3).
// The device routed msg here by its receiver index; mac1 is checked against
// our public key. On any error the exchange in flight is left untouched, so
// a forged response cannot abort a genuine one.
func (h *Handshake) ConsumeResponse(msg []byte, now time.Time) error {
	if t, err := MessageType(msg); err != nil {
		return err
	} else if t != TypeResponse {
		return ErrBadType
	}
	if h.state != stateInitiationCreated {
		return ErrUnexpectedMessage
	}
	if binary.LittleEndian.Uint32(msg[respOffReceiver:]) != h.localIndex {
		return ErrWrongIndex
	}
	if !h.local.checkMAC1(msg, respOffMAC1) {
		return ErrInvalidMAC1
	}
	chain, hash, err := h.readResponse(msg[respOffEphemeral:respOffMAC1], 0)
	if err != nil {
		return err
	}
	h.chain, h.hash = chain, hash
	copy(h.remoteEphemeral[:], msg[respOffEphemeral:])
	h.remoteIndex = binary.LittleEndian.Uint32(msg[respOffSender:])
	h.ephemeral = nil
	h.state = stateResponseConsumed
	return nil
}

// readResponse processes the Noise body of message 1, E_r || enc(payload),
// and returns the new C and H without touching h. payloadLen is 0 in
// WireGuard.
func (h *Handshake) readResponse(body []byte, payloadLen int) (c, hh [hashSize]byte, err error) {
	if len(body) != KeySize+payloadLen+TagSize {
		return c, hh, ErrBadLength
	}
	epub := body[:KeySize]
	// e: H = HASH(H || E_r.pub); C = KDF1(C, E_r.pub)
	hh = hashOf(h.hash[:], epub)
	c = kdf1(h.chain[:], epub)
	// ee: C = KDF1(C, DH(E_i.priv, E_r.pub))
	shared, err := dh(h.ephemeral, epub)
	if err != nil {
		return c, hh, err
	}
	c = kdf1(c[:], shared[:])
	// se: C = KDF1(C, DH(S_i.priv, E_r.pub))
	shared, err = dh(h.local.key, epub)
	if err != nil {
		return c, hh, err
	}
	c = kdf1(c[:], shared[:])
	clear(shared[:])
	// psk: (C, τ, k) = KDF3(C, Q); H = HASH(H || τ)
	var tau, key [32]byte
	c, tau, key = kdf3(c[:], h.psk[:])
	hh = hashOf(hh[:], tau[:])
	// payload: AEAD-Open(k, 0, enc_empty, H); H = HASH(H || enc_empty)
	enc := body[KeySize:]
	if _, err := aeadOpen(nil, &key, enc, hh[:]); err != nil {
		return c, hh, err
	}
	hh = hashOf(hh[:], enc)
	clear(key[:])
	return c, hh, nil
}

// DeriveKeypair turns a completed exchange into transport keys:
// (T_send, T_recv) = KDF2(C, ε) for the initiator, swapped for the responder
// (whitepaper §5.4.5). It then zeroes the exchange. It fails with
// ErrNoHandshake unless ConsumeResponse or CreateResponse just succeeded.
func (h *Handshake) DeriveKeypair(now time.Time) (*Keypair, error) {
	var initiator bool
	switch h.state {
	case stateResponseConsumed:
		initiator = true
	case stateResponseCreated:
	default:
		return nil, ErrNoHandshake
	}
	first, second := kdf2(h.chain[:], nil)
	var kp *Keypair
	if initiator {
		kp = newKeypair(&first, &second)
	} else {
		kp = newKeypair(&second, &first)
	}
	clear(first[:])
	clear(second[:])
	kp.LocalIndex, kp.RemoteIndex = h.localIndex, h.remoteIndex
	kp.Created, kp.Initiator = now, initiator
	h.Clear()
	return kp, nil
}
