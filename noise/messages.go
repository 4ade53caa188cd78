package noise

import "encoding/binary"

// Message types (whitepaper §5.4.2-§5.4.7). On the wire the type is a
// little-endian u32: one type byte followed by three reserved zero bytes.
const (
	TypeInitiation  = 1
	TypeResponse    = 2
	TypeCookieReply = 3
	TypeTransport   = 4
)

// Message sizes in bytes (whitepaper §5.4).
const (
	InitiationSize      = 148
	ResponseSize        = 92
	CookieReplySize     = 64
	TransportHeaderSize = 16
	TagSize             = 16
	// KeepaliveSize is a transport message with an empty payload: header and tag.
	KeepaliveSize = TransportHeaderSize + TagSize
	// MACSize is the length of mac1, mac2 and a cookie.
	MACSize = 16
	// TimestampSize is the length of a TAI64N timestamp.
	TimestampSize = 12
	// PaddingMultiple is the block size transport plaintexts are padded to.
	PaddingMultiple = 16
)

// Field offsets of the initiation (whitepaper §5.4.2):
// type(4) sender(4) ephemeral(32) static(32+16) timestamp(12+16) mac1(16) mac2(16).
const (
	initOffSender    = 4
	initOffEphemeral = 8
	initOffStatic    = initOffEphemeral + KeySize
	initOffTimestamp = initOffStatic + KeySize + TagSize
	initOffMAC1      = initOffTimestamp + TimestampSize + TagSize
	initOffMAC2      = initOffMAC1 + MACSize
)

// Field offsets of the response (whitepaper §5.4.3):
// type(4) sender(4) receiver(4) ephemeral(32) empty(0+16) mac1(16) mac2(16).
const (
	respOffSender    = 4
	respOffReceiver  = 8
	respOffEphemeral = 12
	respOffEmpty     = respOffEphemeral + KeySize
	respOffMAC1      = respOffEmpty + TagSize
	respOffMAC2      = respOffMAC1 + MACSize
)

// Field offsets of the cookie reply (whitepaper §5.4.7):
// type(4) receiver(4) nonce(24) cookie(16+16).
const (
	cookieOffReceiver = 4
	cookieOffNonce    = 8
	cookieNonceSize   = 24
	cookieOffCookie   = cookieOffNonce + cookieNonceSize
)

// Field offsets of the transport header (whitepaper §5.4.6):
// type(4) receiver(4) counter(8), then the encrypted, padded packet and tag.
const (
	transportOffReceiver = 4
	transportOffCounter  = 8
)

// Compile-time checks that the offsets add up to the sizes.
var (
	_ = [1]struct{}{}[initOffMAC2+MACSize-InitiationSize]
	_ = [1]struct{}{}[respOffMAC2+MACSize-ResponseSize]
	_ = [1]struct{}{}[cookieOffCookie+MACSize+TagSize-CookieReplySize]
)

// MessageType returns the type of msg after checking that the three reserved
// bytes are zero and that the length is the one the type requires: exact for
// handshake messages, at least KeepaliveSize for transport messages (what
// wireguard-go and the kernel accept; padding is not checked on receive).
func MessageType(msg []byte) (uint32, error) {
	if len(msg) < 4 {
		return 0, ErrBadLength
	}
	t := binary.LittleEndian.Uint32(msg)
	var want int
	switch t {
	case TypeInitiation:
		want = InitiationSize
	case TypeResponse:
		want = ResponseSize
	case TypeCookieReply:
		want = CookieReplySize
	case TypeTransport:
		if len(msg) < KeepaliveSize {
			return 0, ErrBadLength
		}
		return t, nil
	default:
		return 0, ErrBadType
	}
	if len(msg) != want {
		return 0, ErrBadLength
	}
	return t, nil
}

// ReceiverIndex returns the receiver index of a response, cookie reply or
// transport message, the index the device looks the handshake or keypair up
// by. Initiations carry no receiver index and yield ErrBadType.
func ReceiverIndex(msg []byte) (uint32, error) {
	t, err := MessageType(msg)
	if err != nil {
		return 0, err
	}
	switch t {
	case TypeResponse:
		return binary.LittleEndian.Uint32(msg[respOffReceiver:]), nil
	case TypeCookieReply:
		return binary.LittleEndian.Uint32(msg[cookieOffReceiver:]), nil
	case TypeTransport:
		return binary.LittleEndian.Uint32(msg[transportOffReceiver:]), nil
	}
	return 0, ErrBadType
}

// ParseTransportHeader returns the receiver index and counter of a transport
// message. Like wireguard-go and the kernel it requires only len >= 32, not a
// padded length, so a peer that pads differently still interoperates.
func ParseTransportHeader(msg []byte) (receiver uint32, counter uint64, err error) {
	if len(msg) < KeepaliveSize {
		return 0, 0, ErrBadLength
	}
	if binary.LittleEndian.Uint32(msg) != TypeTransport {
		return 0, 0, ErrBadType
	}
	receiver = binary.LittleEndian.Uint32(msg[transportOffReceiver:])
	counter = binary.LittleEndian.Uint64(msg[transportOffCounter:])
	return receiver, counter, nil
}

// SenderIndex returns the sender index of an initiation or response, the
// index a cookie reply to that message must be addressed to.
func SenderIndex(msg []byte) (uint32, error) {
	t, err := MessageType(msg)
	if err != nil {
		return 0, err
	}
	switch t {
	case TypeInitiation:
		return binary.LittleEndian.Uint32(msg[initOffSender:]), nil
	case TypeResponse:
		return binary.LittleEndian.Uint32(msg[respOffSender:]), nil
	}
	return 0, ErrBadType
}

// macOffsets returns where mac1 and mac2 start in a handshake message whose
// type and length have already been checked by MessageType.
func macOffsets(msg []byte) (mac1, mac2 int, err error) {
	t, err := MessageType(msg)
	if err != nil {
		return 0, 0, err
	}
	switch t {
	case TypeInitiation:
		return initOffMAC1, initOffMAC2, nil
	case TypeResponse:
		return respOffMAC1, respOffMAC2, nil
	}
	return 0, 0, ErrBadType
}

// grow extends dst by n zero bytes and returns the extended slice and the
// new region, so a message can be built in place at named offsets.
func grow(dst []byte, n int) (all, msg []byte) {
	start := len(dst)
	all = append(dst, make([]byte, n)...)
	return all, all[start : start+n : start+n]
}
