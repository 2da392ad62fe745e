package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
)

// NewNamedNetNS creates a new network namespace, pins it with a bind mount
// at dir/name (as `ip netns add` does) and returns an open handle to it.
// The unshare happens on a fresh locked OS thread that is moved back before
// it is released, so no goroutine of the caller ever changes namespace.
func NewNamedNetNS(dir, name string) (*topology.NetNS, error) {
	if name == "" || filepath.Base(name) != name {
		return nil, fmt.Errorf("create netns %q: name must be a plain file name", name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create netns %s: %w", name, err)
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return nil, fmt.Errorf("create netns %s: %w", name, err)
	}
	f.Close()

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("read current netns: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread() // unshare failed: the thread did not move
			errc <- fmt.Errorf("unshare: %w", topology.NeedsCapability(err, "CAP_SYS_ADMIN"))
			return
		}
		merr := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, "")
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(merr, fmt.Errorf("return to original netns: %w (OS thread discarded)", err))
			return // still locked: the runtime discards this thread
		}
		runtime.UnlockOSThread()
		if merr != nil {
			merr = fmt.Errorf("bind mount: %w", merr)
		}
		errc <- merr
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("create netns %s: %w", name, err)
	}
	ns, err := topology.OpenNetNS(path)
	if err != nil {
		RemoveNamedNetNS(dir, name)
		return nil, err
	}
	return ns, nil
}

// RemoveNamedNetNS unpins the namespace at dir/name. The namespace itself
// goes away with its last reference (open handles, processes, sockets), and
// with it every interface inside. A missing name is not an error.
func RemoveNamedNetNS(dir, name string) error {
	path := filepath.Join(dir, name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove netns %s: unmount: %w", name, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", name, err)
	}
	return nil
}
