package probe

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestKeyTaken(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, true},
		{unix.EPERM, true},
		{os.NewSyscallError("sendto", unix.EPERM), true},
		{unix.ENETUNREACH, false},
		{unix.EINVAL, false},
		{unix.EACCES, false},
		{unix.EMSGSIZE, false},
		{unix.ENOBUFS, false},
	} {
		if got := keyTaken(tc.err); got != tc.want {
			t.Errorf("keyTaken(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
