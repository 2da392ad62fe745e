package capture

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
	"golang.org/x/sys/unix"
)

// TestPrivilegedRingHoldsWhileTheReaderIsLate: a ring must hold what
// arrives while its reader does not run, for as long as a loaded node
// keeps a process off the CPU. The kernel retires a TPACKET_V3 block when
// it fills or ringRetire after it opened, so at probe rates, below a
// block's bytes, every block holds ringRetire's worth of packets and the
// ring holds ringBlocks*ringRetire of them before it drops (8 blocks of
// 8 ms held 64 ms; a benchmark at a load average of 6 dropped 648 probe
// packets so). Probe frames arrive here every 2 ms for 300 ms while
// nobody reads the ring, with the blocks of an unknown rate and with the
// smaller ones geometryFor gives that rate; then every one must be read,
// none dropped.
func TestPrivilegedRingHoldsWhileTheReaderIsLate(t *testing.T) {
	const n, gap = 150, 2 * time.Millisecond
	if held := time.Duration(ringBlocks) * ringRetire; held < 2*n*gap {
		t.Errorf("the ring holds %s of probe packets (%d blocks retired every %s), want at least twice the %s this test leaves it unread",
			held, ringBlocks, ringRetire, n*gap)
	}
	for _, known := range []bool{false, true} {
		t.Run(fmt.Sprintf("rate known %v", known), func(t *testing.T) {
			r, inject, frame := injectedRing(t, func(frame []byte) geometry {
				if !known {
					return geometryFor(Rate{}, os.Getpagesize())
				}
				return geometryFor(Rate{Interval: gap, Packets: 1, Frame: len(frame)}, os.Getpagesize())
			})
			t.Logf("blocks of %d bytes", r.block)
			start := time.Now()
			for i := range n {
				time.Sleep(time.Until(start.Add(time.Duration(i) * gap))) // on a schedule: a late wake-up does not stretch the rest
				inject(frame)
			}
			time.Sleep(2 * ringRetire) // the last block retires
			if got, drops := readAll(t, r); got != n || drops != 0 {
				t.Errorf("read %d of %d probe frames sent %s apart while the ring was not read, the kernel dropped %d; want all, none dropped", got, n, gap, drops)
			}
		})
	}
}

// TestPrivilegedRingHoldsTheFastestRate: at the fastest rate a run may
// probe (100 us, probe.MinInterval), the ring geometryFor sizes holds a
// whole second of a point's packets (20,000, a request and a reply per
// probe) sent at once while nobody reads it, where the 16 KiB blocks of
// an unknown rate hold under 8,000 such frames. The frames are sent as
// fast as the injector goes, so the blocks fill by their bytes.
func TestPrivilegedRingHoldsTheFastestRate(t *testing.T) {
	const n = 20000
	r, inject, frame := injectedRing(t, func(frame []byte) geometry {
		return geometryFor(Rate{Interval: 100 * time.Microsecond, Packets: 2, Frame: len(frame)}, os.Getpagesize())
	})
	if fit := ringBlocks * ((r.block - blockHeader) / slot(len(frame))); fit < n {
		t.Fatalf("blocks of %d bytes hold %d frames of %d bytes, want at least %d", r.block, fit, len(frame), n)
	}
	start := time.Now()
	for range n {
		inject(frame)
	}
	took := time.Since(start)
	time.Sleep(2 * ringRetire) // the last block retires
	got, drops := readAll(t, r)
	t.Logf("%d frames of %d bytes sent in %v into %d blocks of %d bytes", n, len(frame), took, ringBlocks, r.block)
	if got != n || drops != 0 {
		t.Errorf("read %d of %d probe frames sent while the ring was not read, the kernel dropped %d; want all, none dropped", got, n, drops)
	}
}

// readAll reads every retired block of r, and returns how many packets it
// read and how many the kernel dropped.
func readAll(t *testing.T, r *ring) (int, uint64) {
	t.Helper()
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
	return got, st.drops
}

// TestPrivilegedPollerQuietOutsideWait: the poller's epoll set, which
// waits in Go's netpoller, must not become readable while the reader
// sleeps between scans, however many blocks its rings retire: a readable
// set wakes the netpoller, waited on or not (five wake-ups a probe for
// nothing). In wait, a ring holding a retired block ends the wait at once;
// after it the set is quiet again, with the block still unread.
func TestPrivilegedPollerQuietOutsideWait(t *testing.T) {
	r, inject, frame := injectedRing(t, func([]byte) geometry { return geometryFor(Rate{}, os.Getpagesize()) })
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

// injectedRing opens a probe-filtered ring of the geometry geo gives for
// its probe frame on one end of a veth pair of its own (closed at the
// test's end), and returns it, the injector of frames into the other end,
// and the probe frame, one the filter keeps.
func injectedRing(t *testing.T, geo func(frame []byte) geometry) (*ring, func([]byte), []byte) {
	t.Helper()
	var frame []byte
	for _, tf := range transportFrames() {
		if tf.tc.accept {
			frame = onLink(t, LinkEthernet, tf.stack())
			break
		}
	}
	if frame == nil {
		t.Fatal("no probe frame the filter keeps")
	}
	ns, inject := newInjectPair(t)
	f, err := newFilters(probe.Magic, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := openRingIn(ns, topology.Point{ID: "p0", Interface: "l4b", NetNS: ns.ID()}, f, geo(frame))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, inject, frame
}
