package device

import (
	"net/netip"
	"time"

	"github.com/wgdvpn/wgd/noise"
)

// Config is one configuration transaction, the typed form of a UAPI `set=1`
// request. A nil pointer field means "leave unchanged". Device.Apply checks
// the whole transaction before it changes anything: it applies completely or
// not at all.
type Config struct {
	PrivateKey *noise.PrivateKey // all-zero removes the key
	// ReplacedPrivateKeys are private keys that earlier lines of the same
	// transaction set and a later line replaced by PrivateKey, in order
	// (UAPI only: wg never sends two). Each still removes the existing
	// peer whose public key it has, as wireguard-go's line-by-line apply
	// and the kernel's key change do; at most MaxReplacedPrivateKeys.
	ReplacedPrivateKeys []noise.PrivateKey
	ListenPort          *uint16 // 0 picks a random port
	FwMark              *uint32 // 0 removes the mark
	ReplacePeers        bool    // remove every peer not named in Peers first
	Peers               []PeerConfig
}

// MaxReplacedPrivateKeys bounds Config.ReplacedPrivateKeys: each costs a
// scalar multiplication under the configuration lock.
const MaxReplacedPrivateKeys = 64

// PeerConfig changes one peer, identified by PublicKey. Its flags act
// before its other fields.
type PeerConfig struct {
	PublicKey noise.PublicKey
	// Sequel marks an entry that continues the previous entry's peer
	// section: a UAPI request gave replace_allowed_ips, remove or
	// update_only after allowed_ip lines of the same section, which
	// wireguard-go applies line by line (so the allowed IPs moved to the
	// peer first are taken from their old owners). wg and wgctrl always
	// send the flags first, so they never produce one.
	Sequel     bool
	Remove     bool // remove the peer; other fields are ignored
	UpdateOnly bool // do not create the peer; remove it if its section created it

	PresharedKey        *noise.PresharedKey // all-zero removes it
	Endpoint            *netip.AddrPort
	PersistentKeepalive *uint16 // seconds, 0 = off

	ReplaceAllowedIPs bool // drop the peer's allowed IPs before adding these
	AllowedIPs        []AllowedIPChange

	ProtocolVersion int // 0 = unset; only 1 is valid
}

// AllowedIPChange adds Prefix to a peer or, with Remove, takes it away
// (the UAPI's `allowed_ip=-prefix` form).
type AllowedIPChange struct {
	Prefix netip.Prefix
	Remove bool
}

// Info is the device part of a UAPI `get=1` reply.
type Info struct {
	PrivateKey noise.PrivateKey // zero = none
	ListenPort uint16           // the port actually bound (0 when closed)
	FwMark     uint32
}

// PeerInfo is one peer of a UAPI `get=1` reply.
type PeerInfo struct {
	PublicKey           noise.PublicKey
	PresharedKey        noise.PresharedKey
	Endpoint            netip.AddrPort // invalid = none
	PersistentKeepalive uint16
	LastHandshake       time.Time // zero = never
	RxBytes, TxBytes    uint64
	AllowedIPs          []netip.Prefix // stable order
	ProtocolVersion     int
}
