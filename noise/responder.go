package noise

import (
	"bytes"
	"encoding/binary"
	"io"
	"time"
)

// InitiationResult is an initiation half processed by the responder's
// identity (OpenInitiation): the e, es and s steps are done and the
// initiator's static key is known, so the device can find the peer and take
// its lock before ConsumeInitiation finishes the ss and timestamp steps.
type InitiationResult struct {
	chain           [hashSize]byte
	hash            [hashSize]byte
	remoteEphemeral PublicKey
	remoteStatic    PublicKey
	senderIndex     uint32
	encPayload      []byte // enc_ts (12 + 16 bytes in WireGuard)
}

// Remote returns the initiator's static public key, decrypted and
// authenticated by the es key.
func (r *InitiationResult) Remote() PublicKey { return r.remoteStatic }

// SenderIndex returns the initiator's index, the receiver of our response.
func (r *InitiationResult) SenderIndex() uint32 { return r.senderIndex }

// OpenInitiation runs the responder's first half of an initiation
// (whitepaper §5.4.2): e, es and s. It does not check mac1 (the
// CookieChecker does that first) and takes no lock: s is read-only.
func (s *Static) OpenInitiation(msg []byte) (*InitiationResult, error) {
	if t, err := MessageType(msg); err != nil {
		return nil, err
	} else if t != TypeInitiation {
		return nil, ErrBadType
	}
	r, err := s.openInitiation(msg[initOffEphemeral:initOffMAC1], TimestampSize, []byte(identifier))
	if err != nil {
		return nil, err
	}
	r.senderIndex = binary.LittleEndian.Uint32(msg[initOffSender:])
	return r, nil
}

// openInitiation processes e || enc(s) || enc(payload) with a given payload
// length and prologue (the vector test uses other values than WireGuard).
func (s *Static) openInitiation(body []byte, payloadLen int, prologue []byte) (*InitiationResult, error) {
	if s.key == nil {
		return nil, ErrNoPrivateKey
	}
	if len(body) != KeySize+KeySize+TagSize+payloadLen+TagSize {
		return nil, ErrBadLength
	}
	r := &InitiationResult{}
	r.chain = initialChainKey()
	r.hash = initialHash(r.chain, prologue)
	r.hash = hashOf(r.hash[:], s.pub[:])
	// e: H = HASH(H || E_i.pub); C = KDF1(C, E_i.pub)
	epub := body[:KeySize]
	r.hash = hashOf(r.hash[:], epub)
	r.chain = kdf1(r.chain[:], epub)
	// es: (C, k) = KDF2(C, DH(S_r.priv, E_i.pub))
	shared, err := dh(s.key, epub)
	if err != nil {
		return nil, err
	}
	var key [32]byte
	r.chain, key = kdf2(r.chain[:], shared[:])
	clear(shared[:])
	// s: S_i.pub = AEAD-Open(k, 0, enc_s, H); H = HASH(H || enc_s)
	encStatic := body[KeySize : 2*KeySize+TagSize]
	if _, err := aeadOpen(r.remoteStatic[:0], &key, encStatic, r.hash[:]); err != nil {
		return nil, err
	}
	clear(key[:])
	r.hash = hashOf(r.hash[:], encStatic)
	copy(r.remoteEphemeral[:], epub)
	r.encPayload = bytes.Clone(body[2*KeySize+TagSize:])
	return r, nil
}

// ConsumeInitiation finishes an initiation for this peer (whitepaper
// §5.4.2): ss from the precomputed DH, then the timestamp, which must be
// strictly newer than the last accepted one (ErrReplayedTimestamp), and the
// previous accepted initiation must be more than HandshakeInitiationRate ago
// (ErrFlood). Only a fully valid initiation changes h.
func (h *Handshake) ConsumeInitiation(r *InitiationResult, now time.Time) error {
	payload, chain, hash, err := h.finishInitiation(r)
	if err != nil {
		return err
	}
	if len(payload) != TimestampSize {
		return ErrBadLength
	}
	ts := Timestamp(payload)
	if !ts.After(h.lastTimestamp) {
		return ErrReplayedTimestamp
	}
	if !h.lastInitiation.IsZero() && now.Sub(h.lastInitiation) <= HandshakeInitiationRate {
		return ErrFlood
	}
	h.Clear()
	h.chain, h.hash = chain, hash
	h.remoteEphemeral = r.remoteEphemeral
	h.remoteIndex = r.senderIndex
	h.lastTimestamp = ts
	h.lastInitiation = now
	h.state = stateInitiationConsumed
	return nil
}

// finishInitiation runs ss and decrypts the payload, returning the new C and
// H; of h it changes only the cached static-static DH (staticShared).
func (h *Handshake) finishInitiation(r *InitiationResult) (payload []byte, c, hh [hashSize]byte, err error) {
	if r == nil {
		return nil, c, hh, ErrUnexpectedMessage
	}
	if !r.remoteStatic.Equal(h.remote) {
		return nil, c, hh, ErrUnknownPeer
	}
	ss, err := h.staticShared()
	if err != nil {
		return nil, c, hh, err
	}
	// ss: (C, k) = KDF2(C, DH(S_r.priv, S_i.pub)), DH computed once per peer
	var key [32]byte
	c, key = kdf2(r.chain[:], ss[:])
	// payload: TAI64N = AEAD-Open(k, 0, enc_ts, H); H = HASH(H || enc_ts)
	payload, err = aeadOpen(nil, &key, r.encPayload, r.hash[:])
	clear(key[:])
	if err != nil {
		return nil, c, hh, err
	}
	hh = hashOf(r.hash[:], r.encPayload)
	return payload, c, hh, nil
}

// CreateResponse answers the initiation consumed last and appends the
// 92-byte response (whitepaper §5.4.3) to dst. Afterwards DeriveKeypair
// gives the responder's keys. On error dst is returned unchanged.
func (h *Handshake) CreateResponse(dst []byte, now time.Time, localIndex uint32, rand io.Reader) ([]byte, error) {
	if h.state != stateInitiationConsumed {
		return dst, ErrUnexpectedMessage
	}
	out, msg := grow(dst, ResponseSize)
	binary.LittleEndian.PutUint32(msg, TypeResponse)
	binary.LittleEndian.PutUint32(msg[respOffSender:], localIndex)
	binary.LittleEndian.PutUint32(msg[respOffReceiver:], h.remoteIndex)
	if _, err := h.writeResponse(msg[respOffEphemeral:respOffEphemeral], rand, nil); err != nil {
		h.Clear()
		return dst, err
	}
	h.addMACs(msg, respOffMAC1, respOffMAC2, now)
	h.localIndex = localIndex
	h.state = stateResponseCreated
	return out, nil
}

// writeResponse appends E_r || enc(payload) to out and advances C and H.
func (h *Handshake) writeResponse(out []byte, rand io.Reader, payload []byte) ([]byte, error) {
	// e: E_r = DH-Generate(); C = KDF1(C, E_r.pub); H = HASH(H || E_r.pub)
	out, eph, err := h.mixEphemeral(out, rand)
	if err != nil {
		return nil, err
	}
	// ee: C = KDF1(C, DH(E_r.priv, E_i.pub))
	shared, err := dh(eph, h.remoteEphemeral[:])
	if err != nil {
		return nil, err
	}
	h.chain = kdf1(h.chain[:], shared[:])
	// se: C = KDF1(C, DH(E_r.priv, S_i.pub))
	shared, err = dh(eph, h.remote[:])
	if err != nil {
		return nil, err
	}
	h.chain = kdf1(h.chain[:], shared[:])
	clear(shared[:])
	// psk: (C, τ, k) = KDF3(C, Q); H = HASH(H || τ)
	var tau, key [32]byte
	h.chain, tau, key = kdf3(h.chain[:], h.psk[:])
	h.hash = hashOf(h.hash[:], tau[:])
	// payload: enc_empty = AEAD(k, 0, ε, H); H = HASH(H || enc_empty)
	start := len(out)
	out = aeadSeal(out, &key, payload, h.hash[:])
	h.hash = hashOf(h.hash[:], out[start:])
	clear(key[:])
	clear(tau[:])
	return out, nil
}
