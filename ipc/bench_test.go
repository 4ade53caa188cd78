package ipc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"testing"

	"github.com/wgdvpn/wgd/device"
)

const benchPeers = 10_000

// setconfText is what `wg setconf` sends for n peers with one /32 allowed
// IP each, half of them with an endpoint.
func setconfText(n int) []byte {
	cfg := &device.Config{ReplacePeers: true, ListenPort: ptr(uint16(51820))}
	for i := range n {
		var pc device.PeerConfig
		binary.BigEndian.PutUint32(pc.PublicKey[:], uint32(i+1))
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if i%2 == 0 {
			ep := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 51820)
			pc.Endpoint = &ep
		}
		pc.ReplaceAllowedIPs = true
		pc.AllowedIPs = []device.AllowedIPChange{{Prefix: netip.PrefixFrom(a, 32)}}
		cfg.Peers = append(cfg.Peers, pc)
	}
	var buf bytes.Buffer
	WriteSet(&buf, cfg)
	return buf.Bytes()
}

func BenchmarkParseSet(b *testing.B) {
	text := setconfText(benchPeers)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	r := bytes.NewReader(text)
	br := bufio.NewReaderSize(r, 64<<10)
	for b.Loop() {
		r.Reset(text)
		br.Reset(r)
		if _, err := ParseSet(br, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchPeers), "ns/peer")
}

func BenchmarkWriteGet(b *testing.B) {
	dev := newFakeDevice()
	cfg, err := ParseSet(bufio.NewReader(bytes.NewReader(setconfText(benchPeers))), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	dev.Apply(cfg)
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteGet(io.Discard, dev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchPeers), "ns/peer")
}
