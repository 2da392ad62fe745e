//go:build linux

package capture

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

// TestPrivilegedArmedBeforeFirstPacket: Config.Armed hears every point's
// link type, in target order, before any reader runs, even with packets
// already waiting in the rings; an error from it fails Start and leaves
// nothing open.
func TestPrivilegedArmedBeforeFirstPacket(t *testing.T) {
	ns, tun := newTun(t)
	upLoopback(t, ns) // a ring on a down device fails with ENETDOWN
	targets := []Target{
		{NS: ns, Point: topology.Point{ID: "p0", Interface: "tun0", NetNS: ns.ID()}},
		{NS: ns, Point: topology.Point{ID: "p1", Interface: "lo", NetNS: ns.ID()}},
	}
	request := onLinkChecksummed(t, LinkRawIP, echo(8, netip.MustParseAddr("10.97.0.2"), netip.MustParseAddr("10.97.0.1"), probeHi))

	t.Run("called first", func(t *testing.T) {
		var armed atomic.Bool
		var got []Interface
		var early, sunk atomic.Int32
		cfg := Config{
			Magic: probe.Magic,
			Armed: func(ifaces []Interface) error {
				got = ifaces
				// The request and the kernel's reply wait in tun0's ring
				// while no reader runs yet.
				if _, err := tun.Write(request); err != nil {
					return err
				}
				time.Sleep(50 * time.Millisecond)
				armed.Store(true)
				return nil
			},
			Sink: func(Observation) {
				if !armed.Load() {
					early.Add(1)
				}
				sunk.Add(1)
			},
		}
		s, err := Start(context.Background(), targets, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		lag := geometryFor(Rate{}, 4096).lag()
		want := []Interface{{Point: targets[0].Point, Link: LinkRawIP, Lag: lag}, {Point: targets[1].Point, Link: LinkEthernet, Lag: lag}}
		if !slices.Equal(got, want) {
			t.Errorf("Armed got %+v, want %+v", got, want)
		}
		if sunk.Load() != 2 || early.Load() != 0 {
			t.Errorf("Sink got %d observations, %d of them before Armed returned; want the request and its reply, none early", sunk.Load(), early.Load())
		}
	})

	t.Run("error", func(t *testing.T) {
		fds, goroutines := openFDs(t), runtime.NumGoroutine()
		boom := errors.New("no room for the pcapng header")
		var sunk atomic.Int32
		cfg := Config{Magic: probe.Magic, Armed: func([]Interface) error { return boom }, Sink: func(Observation) { sunk.Add(1) }}
		s, err := Start(context.Background(), targets, cfg)
		if err == nil {
			s.Stop()
			t.Fatal("Start with a failing Armed: got no error")
		}
		if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "start capture: ") {
			t.Errorf("got error %q, want start capture: and Armed's error", err)
		}
		if _, err := tun.Write(request); err != nil {
			t.Fatal(err)
		}
		time.Sleep(drainTime)
		if sunk.Load() != 0 {
			t.Errorf("Sink got %d observations after Start failed", sunk.Load())
		}
		checkNoLeaks(t, fds, goroutines)
	})
}

// TestPrivilegedStreamVXLAN streams a real capture of the VXLAN lab, with
// background traffic, into a pcapng file as cnitrace trace does: the file
// holds exactly what the sink saw, labelled, in time order, and the ring
// counters.
func TestPrivilegedStreamVXLAN(t *testing.T) {
	lab := newVXLANLab(t)
	conn := openICMP(t, lab.a.ns)
	udp := openUDP(t, lab.a.ns)

	var buf bytes.Buffer
	var stream *PcapNGStream
	var mu sync.Mutex
	var sunk []Observation
	label := func(o Observation) string {
		p, err := probe.ParsePayload(o.Payload)
		if err != nil {
			return ""
		}
		return ProbeLabel(p.RunID, p.Seq)
	}
	cfg := Config{
		Magic:      probe.Magic,
		KeepFrames: true,
		Armed: func(ifaces []Interface) (err error) {
			stream, err = NewPcapNGStream(&buf, ifaces, label)
			return err
		},
		Sink: func(o Observation) {
			stream.Add(o)
			mu.Lock()
			sunk = append(sunk, o)
			mu.Unlock()
		},
	}
	s, err := Start(context.Background(), lab.targets(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range probeCount {
		sendBackground(t, conn, udp, lab.b.overlay)
		ping(t, conn, lab.b.overlay, i, probe.Payload{RunID: 0xc0ffee, Seq: uint32(i), SentAt: time.Now()}.Marshal(56))
	}
	c, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Close(c.Stats); err != nil {
		t.Fatal(err)
	}

	got := readStream(t, buf.Bytes())
	if len(got.obs) != 4*probeCount || len(sunk) != len(got.obs) {
		t.Fatalf("the file holds %d packets, the sink got %d; want %d each", len(got.obs), len(sunk), 4*probeCount)
	}
	if !slices.IsSortedFunc(got.obs, func(a, b Observation) int { return a.At.Compare(b.At) }) {
		t.Error("the file is not in time order")
	}
	byKey := func(a, b Observation) int {
		return cmp.Or(a.At.Compare(b.At), strings.Compare(a.Point, b.Point), strings.Compare(string(a.Dir), string(b.Dir)))
	}
	slices.SortFunc(sunk, byKey)
	inFile := slices.SortedFunc(slices.Values(got.obs), byKey)
	for i, o := range inFile {
		o.At = sunk[i].At // time.Time locations differ
		if !bytes.Equal(o.Frame, sunk[i].Frame) || o.Point != sunk[i].Point || o.Dir != sunk[i].Dir || o.Stamp != sunk[i].Stamp {
			t.Errorf("packet %d: the file has %s %s %s, the sink got %s %s %s (or the frames differ)", i, o.Point, o.Dir, o.Stamp, sunk[i].Point, sunk[i].Dir, sunk[i].Stamp)
		}
	}
	for i, o := range got.obs {
		if !strings.HasPrefix(got.comments[i], label(o)+" point="+o.Point+" ") {
			t.Errorf("packet %d: comment %q, want it to open with %q", i, got.comments[i], label(o))
		}
	}
	for id, st := range c.Stats {
		isb := got.stats[id]
		if isb.PacketsReceived != st.Packets || isb.PacketsDropped != st.Drops {
			t.Errorf("interface %d: statistics say %d received, %d dropped; the ring %d and %d", id, isb.PacketsReceived, isb.PacketsDropped, st.Packets, st.Drops)
		}
	}
}

func upLoopback(t *testing.T, ns *topology.NetNS) {
	t.Helper()
	h, err := topology.NetlinkHandle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("set lo up: %v", err)
	}
}
