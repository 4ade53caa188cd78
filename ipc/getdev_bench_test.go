package ipc

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/wgdvpn/wgd/device"
	"github.com/wgdvpn/wgd/tun"
)

// BenchmarkWriteGetDevice measures a get against the real engine (on a
// socketpair TUN, no root needed) rather than the fake, so that the cost of
// Device.Visit and the allowed-IPs table is part of the figure. No peer has
// a private key or keepalive, so nothing is ever sent.
func BenchmarkWriteGetDevice(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			td, host, err := tun.NewSocketpair("wgdbench", 1420)
			if err != nil {
				b.Fatal(err)
			}
			defer host.Close()
			dev, err := device.New(device.Options{TUN: td, Workers: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer dev.Close()
			cfg, err := ParseSet(bufio.NewReader(bytes.NewReader(setconfText(n))), Limits{})
			if err != nil {
				b.Fatal(err)
			}
			if err := dev.Apply(cfg); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := WriteGet(io.Discard, dev); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/peer")
		})
	}
}
