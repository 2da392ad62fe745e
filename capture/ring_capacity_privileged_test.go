package capture

import (
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
	"golang.org/x/sys/unix"
)

// TestPrivilegedRingHoldsWhileTheReaderIsLate: a ring must hold what
// arrives while its reader does not run, for as long as a loaded node
// keeps a process off the CPU. The kernel retires a TPACKET_V3 block when
// it fills or ringRetire after it opened, so at probe rates, far below a
// block's bytes, every block holds ringRetire's worth of packets and the
// ring holds ringBlocks*ringRetire of them before it drops (8 blocks of
// 8 ms held 64 ms; a benchmark at a load average of 6 dropped 648 probe
// packets so). Probe frames arrive here every 2 ms for 300 ms while
// nobody reads the ring; then every one must be read, none dropped.
func TestPrivilegedRingHoldsWhileTheReaderIsLate(t *testing.T) {
	r, inject, frame := injectedRing(t)
	const n, gap = 150, 2 * time.Millisecond
	if held := time.Duration(ringBlocks) * ringRetire; held < 2*n*gap {
		t.Errorf("the ring holds %s of probe packets (%d blocks retired every %s), want at least twice the %s this test leaves it unread",
			held, ringBlocks, ringRetire, n*gap)
	}
	start := time.Now()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * gap))) // on a schedule: a late wake-up does not stretch the rest
		inject(frame)
	}
	time.Sleep(2 * ringRetire) // the last block retires
	got := 0
	for range 3 {
		k, err := r.readBlocks(func(packet) {})
		if err != nil {
			t.Fatal(err)
		}
		got += k
	}
	st, err := r.stats()
	if err != nil {
		t.Fatal(err)
	}
	if got != n || st.drops != 0 {
		t.Errorf("read %d of %d probe frames sent %s apart while the ring was not read, the kernel dropped %d; want all, none dropped", got, n, gap, st.drops)
	}
}

// TestPrivilegedPollerQuietOutsideWait: the poller's epoll set, which
// waits in Go's netpoller, must not become readable while the reader
// sleeps between scans, however many blocks its rings retire: a readable
// set wakes the netpoller, waited on or not (five wake-ups a probe for
// nothing). In wait, a ring holding a retired block ends the wait at once;
// after it the set is quiet again, with the block still unread.
func TestPrivilegedPollerQuietOutsideWait(t *testing.T) {
	r, inject, frame := injectedRing(t)
	p, err := newPoller([]*ring{r})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for range 5 {
		inject(frame)
		time.Sleep(2 * ringRetire) // each in a block of its own, retired
	}
	if pending, err := r.pending(); err != nil || !pending {
		t.Fatalf("the ring holds no packet to read (pending %v, %v): the test injected nothing", pending, err)
	}
	if setReadable(t, p) {
		t.Error("the epoll set is readable outside wait, with a retired block in its ring: it wakes the netpoller for nothing")
	}
	start := time.Now()
	got, err := p.wait(start.Add(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ring != 0 || got[0].failed {
		t.Errorf("wait returned %+v, want ring 0 ready", got)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("wait for a ring already holding a retired block took %v, want at once", took)
	}
	if setReadable(t, p) {
		t.Error("the epoll set is readable after wait returned")
	}
}

// setReadable reports whether p's epoll set is readable now, as the
// netpoller would see it.
func setReadable(t *testing.T, p *poller) bool {
	t.Helper()
	var n int
	var perr error
	if err := p.raw.Control(func(fd uintptr) {
		n, perr = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
	}); err != nil || perr != nil {
		t.Fatal(err, perr)
	}
	return n > 0
}

// injectedRing opens a probe-filtered ring on one end of a veth pair of
// its own (closed at the test's end), and returns it, the injector of
// frames into the other end, and a probe frame the filter keeps.
func injectedRing(t *testing.T) (*ring, func([]byte), []byte) {
	t.Helper()
	ns, inject := newInjectPair(t)
	f, err := newFilters(probe.Magic, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := openRingIn(ns, topology.Point{ID: "p0", Interface: "l4b", NetNS: ns.ID()}, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	for _, tf := range transportFrames() {
		if tf.tc.accept {
			return r, inject, onLink(t, LinkEthernet, tf.stack())
		}
	}
	t.Fatal("no probe frame the filter keeps")
	return nil, nil, nil
}
