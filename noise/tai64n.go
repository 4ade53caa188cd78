package noise

import (
	"bytes"
	"encoding/binary"
	"time"
)

// Timestamp is a TAI64N label (https://cr.yp.to/libtai/tai64.html): 8 bytes
// of big-endian seconds offset by 2^62, then 4 bytes of big-endian
// nanoseconds. Big-endian makes byte order equal time order, so comparison
// is bytes.Compare.
type Timestamp [TimestampSize]byte

// tai64Base is 2^62 plus the 10 s by which TAI was ahead of UTC in 1970, the
// same base the kernel and wireguard-go use.
const tai64Base = uint64(0x400000000000000a)

// timestampWhitener masks the low bits of the nanoseconds. The kernel rounds
// down to a power of two below 1 s / 50 (2^24 ns, about 16.8 ms) so that the
// timestamp does not leak a precise clock reading while staying fine enough
// for the one-initiation-per-20-ms flood limit.
const timestampWhitener = 1<<24 - 1

// TAI64N encodes t as a whitened TAI64N timestamp.
func TAI64N(t time.Time) Timestamp {
	var ts Timestamp
	secs := tai64Base + uint64(t.Unix())
	nano := uint32(t.Nanosecond()) &^ timestampWhitener
	binary.BigEndian.PutUint64(ts[:8], secs)
	binary.BigEndian.PutUint32(ts[8:], nano)
	return ts
}

// After reports whether t is strictly later than o, the condition for
// accepting an initiation (whitepaper §5.1).
func (t Timestamp) After(o Timestamp) bool {
	return bytes.Compare(t[:], o[:]) > 0
}
