//go:build linux

package capture

import (
	"runtime"
	"strings"
	"testing"

	"github.com/cnitrace/cnitrace/topology/lab/labtest"
	"golang.org/x/sys/unix"
)

// TestPrivilegedOpenRingWithoutCapNetRaw drops CAP_NET_RAW from one locked
// OS thread (capabilities are per thread) and opens a ring there: the error
// must name the capability. The thread is never unlocked, so it dies with
// its reduced capabilities instead of going back to the scheduler.
func TestPrivilegedOpenRingWithoutCapNetRaw(t *testing.T) {
	labtest.Require(t)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		data[0].Effective &^= 1 << unix.CAP_NET_RAW
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		r, err := openRing("lo", 0, nil, geometryFor(Rate{}, 4096))
		if err == nil {
			r.Close()
		}
		errc <- err
	}()
	err := <-errc
	t.Logf("without CAP_NET_RAW: %v", err)
	if err == nil || !strings.Contains(err.Error(), "(needs CAP_NET_RAW)") {
		t.Errorf("got error %v, want one naming CAP_NET_RAW", err)
	}
}
