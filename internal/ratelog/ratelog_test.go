package ratelog

import (
	"sync"
	"testing"
	"time"
)

func TestAllowOnePerInterval(t *testing.T) {
	var l Limiter
	t0 := time.Unix(1000, 0)
	steps := []struct {
		reason     string
		at         time.Duration
		ok         bool
		suppressed uint64
	}{
		{"a", 0, true, 0},
		{"a", time.Second, false, 0},
		{"b", time.Second, true, 0}, // reasons are independent
		{"a", 4 * time.Second, false, 0},
		{"a", 5 * time.Second, true, 2}, // two held back since t0
		{"a", 5*time.Second + 1, false, 0},
		{"a", 20 * time.Second, true, 1},
		{"b", 20 * time.Second, true, 0},
	}
	for i, s := range steps {
		ok, n := l.Allow(s.reason, t0.Add(s.at))
		if ok != s.ok || n != s.suppressed {
			t.Errorf("step %d (%s at %v): Allow = %v, %d; want %v, %d", i, s.reason, s.at, ok, n, s.ok, s.suppressed)
		}
	}
}

func TestCustomInterval(t *testing.T) {
	l := Limiter{Interval: time.Millisecond}
	t0 := time.Unix(0, 0)
	if ok, _ := l.Allow("x", t0); !ok {
		t.Fatal("first line held back")
	}
	if ok, _ := l.Allow("x", t0.Add(time.Millisecond/2)); ok {
		t.Fatal("second line within the interval passed")
	}
	if ok, n := l.Allow("x", t0.Add(time.Millisecond)); !ok || n != 1 {
		t.Fatalf("after the interval: %v, %d; want true, 1", ok, n)
	}
}

// TestFloodPassesFew hammers one reason from several goroutines over a
// simulated minute: exactly one line per interval passes, and the
// suppressed counts add up to every line held back.
func TestFloodPassesFew(t *testing.T) {
	var l Limiter
	t0 := time.Unix(0, 0)
	const goroutines, perG = 4, 6000 // one call per 10 ms of fake time each
	var mu sync.Mutex
	var passed, reported uint64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perG {
				ok, n := l.Allow("flood", t0.Add(time.Duration(i)*10*time.Millisecond+time.Duration(g)))
				if ok {
					mu.Lock()
					passed++
					reported += n
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if passed < 2 || passed > 13 {
		t.Errorf("%d lines passed over 60 s of fake time, want about 12", passed)
	}
	ok, n := l.Allow("flood", t0.Add(time.Hour))
	if !ok || reported+n+passed != goroutines*perG {
		t.Errorf("passed %d + reported suppressed %d + final %d = %d, want %d", passed, reported, n, passed+reported+n, goroutines*perG)
	}
}
