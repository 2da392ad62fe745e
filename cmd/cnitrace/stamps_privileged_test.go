//go:build linux

package main

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// holdRXTimestampKey opens a socket with SO_TIMESTAMPNS, which turns on the
// host-wide RX timestamping key as chronyd or ping do, and keeps it open
// until t ends. The kernel flips the key from a work item, so it waits a
// little for it to take effect.
func holdRXTimestampKey(t *testing.T) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Close(fd)
		time.Sleep(100 * time.Millisecond) // let the key turn off again for the next test
	})
	time.Sleep(100 * time.Millisecond)
}

// TestPrivilegedAllSeparableWithoutRXTimestamps: with the key off, every
// tap stamps the time of its own copy, so no segment may be reported as
// not separable.
func TestPrivilegedAllSeparableWithoutRXTimestamps(t *testing.T) {
	l := labtest.New(t)
	r := traceLab(t, l, "--count", "20", "--interval", "10ms")
	var inherited []string
	for _, s := range r.Segments {
		if !s.Separable {
			inherited = append(inherited, s.Direction+" "+s.From+"->"+s.To)
		}
	}
	if len(inherited) == 0 {
		return
	}
	if os.Getenv("CI") != "true" {
		// Something else on this machine (chronyd, a running ping) holds the
		// key on; this case cannot be tested here.
		t.Skipf("skipping: the host's RX timestamping key is on (segments %v inherit stamps): some process holds SO_TIMESTAMP*", inherited)
	}
	t.Errorf("segments %v reported not separable with the RX timestamping key off", inherited)
}

// TestPrivilegedInheritedStampsMerged: with the key on, stacked devices
// share one RX stamp (veth -> bridge on the request, uplink -> VXLAN on the
// reply). Those segments must be reported not separable, with no time, and
// the next segment measured from the start of the merged span.
func TestPrivilegedInheritedStampsMerged(t *testing.T) {
	l := labtest.New(t)
	holdRXTimestampKey(t)
	r := traceLab(t, l, "--count", "20", "--interval", "10ms")

	kind := map[string]string{}
	for _, p := range r.Points {
		kind[p.ID] = p.Kind
	}
	for i, s := range r.Segments {
		span := s.Direction + " " + kind[s.From] + "->" + kind[s.To]
		wantInherited := span == "request veth->bridge" || span == "reply uplink->vxlan"
		if s.Separable == wantInherited {
			t.Errorf("%s: separable %v, want %v", span, s.Separable, !wantInherited)
			continue
		}
		if !wantInherited {
			continue
		}
		if s.US != nil {
			t.Errorf("%s: not separable but reports times %+v", span, s.US)
		}
		if i+1 >= len(r.Segments) {
			t.Fatalf("%s is the last segment; nothing to merge into", span)
		}
		if next := r.Segments[i+1]; next.MergedFrom != s.From || next.US == nil || next.US.P50 <= 0 {
			t.Errorf("segment after %s: merged_from %q, times %+v; want merged from %s with a positive p50", span, next.MergedFrom, next.US, s.From)
		}
	}
}
