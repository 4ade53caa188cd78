package noise

import (
	cryptorand "crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// CookieChecker is the responder side of the cookie mechanism (whitepaper
// §5.4.4 and §5.4.7): it checks mac1 and mac2 of incoming handshake messages
// and builds cookie replies. One per device; safe for concurrent use.
type CookieChecker struct {
	rand io.Reader // nonces and cookie secrets; injected for tests

	mu sync.Mutex // guards the fields below
	// mac1Key = HASH("mac1----" || our public key).
	mac1Key [hashSize]byte
	// cookieKey = HASH("cookie--" || our public key), encrypts replies.
	cookieKey [hashSize]byte
	// secret is the random value cookies are MACed with; it is replaced
	// when older than CookieRefreshTime, which invalidates every cookie.
	secret     [hashSize]byte
	secretTime time.Time
	hasSecret  bool
}

// NewCookieChecker returns a checker for the identity with public key local.
// A nil rand means crypto/rand.
func NewCookieChecker(local PublicKey, rand io.Reader) *CookieChecker {
	if rand == nil {
		rand = cryptorand.Reader
	}
	c := &CookieChecker{rand: rand}
	c.SetLocal(local)
	return c
}

// SetLocal switches to a new public key (the device key changed).
func (c *CookieChecker) SetLocal(local PublicKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mac1Key = hashOf([]byte(labelMAC1), local[:])
	c.cookieKey = hashOf([]byte(labelCookie), local[:])
}

// CheckMAC1 verifies mac1 = MAC(HASH("mac1----" || S_pub), msg up to mac1)
// of an initiation or response. It is cheap and stateless, the first thing
// done with a handshake message.
func (c *CookieChecker) CheckMAC1(msg []byte) error {
	off1, off2, err := macOffsets(msg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	want := mac(c.mac1Key[:], msg[:off1])
	c.mu.Unlock()
	if !constantTimeEqual(want[:], msg[off1:off2]) {
		return ErrInvalidMAC1
	}
	return nil
}

// CheckMAC2 verifies mac2 = MAC(cookie(src), msg up to mac2), which an
// initiator can only produce after a cookie reply reached it at src. The
// device asks for it only under load.
func (c *CookieChecker) CheckMAC2(msg []byte, src netip.AddrPort, now time.Time) error {
	_, off2, err := macOffsets(msg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	cookie, err := c.makeCookie(src, now)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	want := mac(cookie[:], msg[:off2])
	if !constantTimeEqual(want[:], msg[off2:off2+MACSize]) {
		return ErrInvalidMAC2
	}
	return nil
}

// CreateReply appends the 64-byte cookie reply to msg, a handshake message
// from src (whitepaper §5.4.7): the cookie encrypted with XChaCha20-Poly1305
// under HASH("cookie--" || S_pub), a random 24-byte nonce, and msg's mac1 as
// associated data. receiverIndex is msg's sender index.
func (c *CookieChecker) CreateReply(dst []byte, msg []byte, receiverIndex uint32, src netip.AddrPort, now time.Time) ([]byte, error) {
	off1, off2, err := macOffsets(msg)
	if err != nil {
		return dst, err
	}
	var nonce [cookieNonceSize]byte
	if _, err := io.ReadFull(c.rand, nonce[:]); err != nil {
		return dst, fmt.Errorf("%w: %w", ErrRandom, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cookie, err := c.makeCookie(src, now)
	if err != nil {
		return dst, err
	}
	out, reply := grow(dst, CookieReplySize)
	binary.LittleEndian.PutUint32(reply, TypeCookieReply)
	binary.LittleEndian.PutUint32(reply[cookieOffReceiver:], receiverIndex)
	copy(reply[cookieOffNonce:], nonce[:])
	a, _ := chacha20poly1305.NewX(c.cookieKey[:]) // fails only on key size
	a.Seal(reply[cookieOffCookie:cookieOffCookie], nonce[:], cookie[:], msg[off1:off2])
	return out, nil
}

// makeCookie returns MAC(secret, IP || port) for src, replacing the secret
// first when it is older than CookieRefreshTime (as the kernel's
// make_cookie does). The caller holds c.mu.
func (c *CookieChecker) makeCookie(src netip.AddrPort, now time.Time) ([MACSize]byte, error) {
	if !c.hasSecret || now.Sub(c.secretTime) >= CookieRefreshTime || now.Before(c.secretTime) {
		if _, err := io.ReadFull(c.rand, c.secret[:]); err != nil {
			c.hasSecret = false
			return [MACSize]byte{}, fmt.Errorf("%w: %w", ErrRandom, err)
		}
		c.secretTime, c.hasSecret = now, true
	}
	var buf [18]byte // 16 address bytes + big-endian port, as the kernel
	addr := src.Addr().Unmap()
	n := 4
	if addr.Is4() {
		a4 := addr.As4()
		copy(buf[:], a4[:])
	} else {
		a16 := addr.As16()
		copy(buf[:], a16[:])
		n = 16
	}
	binary.BigEndian.PutUint16(buf[n:], src.Port())
	return mac(c.secret[:], buf[:n+2]), nil
}

// checkMAC1 verifies mac1 of a message sent to this identity, the check
// ConsumeResponse does itself.
func (s *Static) checkMAC1(msg []byte, off1 int) bool {
	want := mac(s.mac1Key[:], msg[:off1])
	return constantTimeEqual(want[:], msg[off1:off1+MACSize])
}

// addMACs fills mac1 and mac2 of a message we send to the peer and
// remembers mac1 for a cookie reply. mac2 is zero unless we hold a cookie
// younger than CookieRefreshTime (whitepaper §5.4.4).
func (h *Handshake) addMACs(msg []byte, off1, off2 int, now time.Time) {
	m1 := mac(h.remoteMAC1Key[:], msg[:off1])
	copy(msg[off1:], m1[:])
	h.lastMAC1, h.hasLastMAC1 = m1, true
	clear(msg[off2 : off2+MACSize])
	age := now.Sub(h.cookieTime)
	if h.hasCookie && age >= 0 && age < CookieRefreshTime {
		m2 := mac(h.cookie[:], msg[:off2])
		copy(msg[off2:], m2[:])
	}
}

// ConsumeCookieReply decrypts a cookie reply with the mac1 we last sent as
// associated data and stores the cookie with its time for the next mac2.
// Each mac1 accepts one reply, as in the kernel.
func (h *Handshake) ConsumeCookieReply(msg []byte, now time.Time) error {
	if t, err := MessageType(msg); err != nil {
		return err
	} else if t != TypeCookieReply {
		return ErrBadType
	}
	if !h.hasLastMAC1 {
		return ErrNoCookieRequest
	}
	a, _ := chacha20poly1305.NewX(h.remoteCookieKey[:])
	var cookie [MACSize]byte
	_, err := a.Open(cookie[:0], msg[cookieOffNonce:cookieOffCookie], msg[cookieOffCookie:], h.lastMAC1[:])
	if err != nil {
		return ErrDecrypt
	}
	h.cookie, h.cookieTime, h.hasCookie = cookie, now, true
	h.hasLastMAC1 = false
	return nil
}
