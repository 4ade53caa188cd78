package noise

import "time"

// Protocol constants from the WireGuard whitepaper §6.1 ("Timers &
// Stateless UX", table of constants). They are the same in the kernel module
// (messages.h) and in wireguard-go (device/constants.go).
const (
	// RekeyAfterMessages: after this many messages a new handshake is
	// initiated (whitepaper §6.1, Rekey-After-Messages = 2^60).
	RekeyAfterMessages uint64 = 1 << 60
	// RejectAfterMessages: no message is sent or accepted with a counter at or
	// beyond this value (whitepaper §6.1, Reject-After-Messages = 2^64 - 2^13 - 1;
	// the 2^13 leaves room for the replay window).
	RejectAfterMessages uint64 = ^uint64(0) - (1 << 13)
)

// Time constants (whitepaper §6.1).
const (
	// RekeyAfterTime: a sender initiates a new handshake once its current
	// keypair is this old (whitepaper §6.1, Rekey-After-Time = 120 s).
	RekeyAfterTime = 120 * time.Second
	// RejectAfterTime: a keypair older than this is never used
	// (whitepaper §6.1, Reject-After-Time = 180 s).
	RejectAfterTime = 180 * time.Second
	// RekeyAttemptTime: handshake retries give up after this long
	// (whitepaper §6.1, Rekey-Attempt-Time = 90 s).
	RekeyAttemptTime = 90 * time.Second
	// RekeyTimeout: an unanswered initiation is retried after this long
	// (whitepaper §6.1, Rekey-Timeout = 5 s).
	RekeyTimeout = 5 * time.Second
	// KeepaliveTimeout: a keepalive is sent when we received data but sent
	// nothing for this long (whitepaper §6.1, Keepalive-Timeout = 10 s).
	KeepaliveTimeout = 10 * time.Second
	// CookieRefreshTime: the cookie secret rotates, and a received cookie
	// expires, after this long (whitepaper §5.4.7 and §6.1, 120 s).
	CookieRefreshTime = 120 * time.Second
)

// HandshakeInitiationRate is the minimum spacing between two accepted
// initiations from one peer (whitepaper §5.1 limits initiations to 50 per
// second per peer; the kernel's INITIATIONS_PER_SECOND). It is an
// implementation constant rather than a table entry of §6.1.
const HandshakeInitiationRate = time.Second / 50

// Protocol strings (whitepaper §5.4): the Noise construction name, the
// WireGuard identifier mixed in as the prologue, and the labels of the mac1
// and cookie keys.
const (
	construction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
	identifier   = "WireGuard v1 zx2c4 Jason@zx2c4.com"
	labelMAC1    = "mac1----"
	labelCookie  = "cookie--"
)
