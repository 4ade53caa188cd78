package noise

import "errors"

// Sentinel errors. Every reject path returns exactly one of these (possibly
// wrapped) so that the device can count dropped messages by reason with
// errors.Is and never has to parse error strings.
var (
	// ErrBadLength: the message is not of the exact size its type requires.
	ErrBadLength = errors.New("noise: bad message length")
	// ErrBadType: the type field is unknown or its three reserved bytes are not zero.
	ErrBadType = errors.New("noise: bad message type")
	// ErrInvalidMAC1: mac1 does not match our public key.
	ErrInvalidMAC1 = errors.New("noise: invalid mac1")
	// ErrInvalidMAC2: mac2 does not match the cookie for the source address.
	ErrInvalidMAC2 = errors.New("noise: invalid mac2")
	// ErrReplayedTimestamp: the initiation is not strictly newer than the last accepted one.
	ErrReplayedTimestamp = errors.New("noise: replayed initiation timestamp")
	// ErrFlood: initiations from this peer arrive faster than HandshakeInitiationRate.
	ErrFlood = errors.New("noise: initiation flood")
	// ErrDecrypt: an AEAD tag did not verify.
	ErrDecrypt = errors.New("noise: decryption failed")
	// ErrUnknownPeer: the initiation's static key is not the peer it was given to.
	ErrUnknownPeer = errors.New("noise: unknown peer")
	// ErrReplay: a transport counter was already seen, is too old, or is past RejectAfterMessages.
	ErrReplay = errors.New("noise: replayed counter")
	// ErrWrongIndex: the receiver index does not name this handshake or keypair.
	ErrWrongIndex = errors.New("noise: wrong receiver index")
	// ErrUnexpectedMessage: the handshake is not in the state this message needs.
	ErrUnexpectedMessage = errors.New("noise: unexpected handshake message")
	// ErrNoHandshake: DeriveKeypair was called before a handshake completed.
	ErrNoHandshake = errors.New("noise: no completed handshake")
	// ErrZeroSharedSecret: a Diffie-Hellman result is all zeros (a low-order
	// public key), which WireGuard rejects.
	ErrZeroSharedSecret = errors.New("noise: zero Diffie-Hellman result")
	// ErrNoPrivateKey: the local static identity has no private key.
	ErrNoPrivateKey = errors.New("noise: no private key")
	// ErrNoCookieRequest: a cookie reply arrived but we sent no mac1 it could answer.
	ErrNoCookieRequest = errors.New("noise: cookie reply without a request")
	// ErrRandom: the injected random source failed.
	ErrRandom = errors.New("noise: random source failed")
	// ErrCounterExhausted: the send counter reached RejectAfterMessages.
	ErrCounterExhausted = errors.New("noise: send counter exhausted")
)
