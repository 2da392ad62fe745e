package topology

import (
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestNeedsCapability(t *testing.T) {
	for _, errno := range []unix.Errno{unix.EPERM, unix.EACCES} {
		err := NeedsCapability(errno, "CAP_NET_RAW")
		var capErr *CapabilityError
		if !errors.As(err, &capErr) || capErr.Capability != "CAP_NET_RAW" {
			t.Errorf("%v: got %v, want a *CapabilityError naming CAP_NET_RAW", errno, err)
		}
		if !errors.Is(err, errno) || !errors.Is(err, os.ErrPermission) {
			t.Errorf("%v: got %v, want it to wrap %v and os.ErrPermission", errno, err, errno)
		}
		if !strings.HasSuffix(err.Error(), "(needs CAP_NET_RAW)") {
			t.Errorf("%v: got message %q, want it to end naming the capability", errno, err)
		}
	}
	if err := NeedsCapability(unix.EINVAL, "CAP_NET_RAW"); err != unix.EINVAL {
		t.Errorf("EINVAL: got %v, want it unchanged", err)
	}
	if err := NeedsCapability(nil, "CAP_NET_RAW"); err != nil {
		t.Errorf("nil: got %v, want nil", err)
	}
}
