package device

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// udpProxy relays datagrams between a device (front) and another device's
// port (back). It records data messages, injects datagrams towards the back
// device, and can move its back socket to a new port to look like roaming.
type udpProxy struct {
	front  *net.UDPConn
	target netip.AddrPort

	mu      sync.Mutex
	back    *net.UDPConn
	client  netip.AddrPort // last address seen on front
	data    []byte
	closing bool
	wg      sync.WaitGroup
}

func newUDPProxy(t *testing.T, port uint16) *udpProxy {
	t.Helper()
	front, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &udpProxy{front: front, target: netip.AddrPortFrom(lo4, port)}
	p.rebind(t)
	p.wg.Add(1)
	go p.forward()
	t.Cleanup(p.close)
	return p
}

func (p *udpProxy) addr() netip.AddrPort {
	return p.front.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (p *udpProxy) close() {
	p.mu.Lock()
	p.closing = true
	back := p.back
	p.mu.Unlock()
	p.front.Close()
	back.Close()
	p.wg.Wait()
}

// rebind replaces the back socket: the back device sees a new source port.
func (p *udpProxy) rebind(t *testing.T) {
	t.Helper()
	back, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	old := p.back
	p.back = back
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
	p.wg.Add(1)
	go p.backward(back)
}

func (p *udpProxy) forward() {
	defer p.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, from, err := p.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		msg := append([]byte(nil), buf[:n]...)
		p.mu.Lock()
		p.client = from
		if n > 32 && msg[0] == 4 {
			p.data = msg
		}
		back := p.back
		p.mu.Unlock()
		_, _ = back.WriteToUDPAddrPort(msg, p.target)
	}
}

func (p *udpProxy) backward(back *net.UDPConn) {
	defer p.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		_ = back.SetReadDeadline(time.Now().Add(time.Minute))
		n, _, err := back.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		client := p.client
		p.mu.Unlock()
		if client.IsValid() {
			_, _ = p.front.WriteToUDPAddrPort(buf[:n], client)
		}
	}
}

func (p *udpProxy) lastData() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.data
}

// inject sends msg to the back device as if it came from the front one.
func (p *udpProxy) inject(msg []byte) {
	p.mu.Lock()
	back := p.back
	p.mu.Unlock()
	_, _ = back.WriteToUDPAddrPort(msg, p.target)
}
