package capture

import (
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
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
	ns, inject := newInjectPair(t)
	f, err := newFilters(probe.Magic, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := openRingIn(ns, topology.Point{ID: "p0", Interface: "l4b", NetNS: ns.ID()}, f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var frame []byte
	for _, tf := range transportFrames() {
		if tf.tc.accept {
			frame = onLink(t, LinkEthernet, tf.stack())
			break
		}
	}
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
