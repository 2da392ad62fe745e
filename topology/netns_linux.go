package topology

import (
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// nsfsMagic is NSFS_MAGIC from linux/magic.h.
const nsfsMagic = 0x6e736673

// nsGetNSType is NS_GET_NSTYPE from linux/nsfs.h: _IO(0xb7, 0x3).
const nsGetNSType = 0xb703

// OpenNetNS opens the network namespace at path, for example
// /run/netns/web or /proc/4242/ns/net. It returns an error wrapping
// os.ErrNotExist when nothing is there and ErrNotNetNS when the file is not a
// network namespace. Opening /proc/PID/ns/net of another user's (or a
// more privileged) process is refused without CAP_SYS_PTRACE; the error
// then names it.
func OpenNetNS(path string) (*NetNS, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if isProcNetNS(path) {
			err = NeedsCapability(err, "CAP_SYS_PTRACE")
		}
		return nil, fmt.Errorf("open netns %s: %w", path, err)
	}
	ino, err := checkNetNS(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open netns %s: %w", path, err)
	}
	return &NetNS{fd: fd, path: path, ino: ino}, nil
}

// NetNSOfPID opens the network namespace of process pid through procRoot
// (usually /proc; with hostPID and the host's / at /host it can stay /proc).
// The kernel lets a process open another's namespace only if it may read
// it as ptrace would (PTRACE_MODE_READ): same user and no more
// capabilities than the caller, or CAP_SYS_PTRACE. A refusal is a
// *CapabilityError naming CAP_SYS_PTRACE.
func NetNSOfPID(procRoot string, pid int) (*NetNS, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("open netns of pid %d: pid must be positive", pid)
	}
	return OpenNetNS(filepath.Join(procRoot, strconv.Itoa(pid), "ns", "net"))
}

// isProcNetNS reports whether path names a process's network namespace
// link, DIR/PID/ns/net, whose opening the kernel checks as a ptrace read.
func isProcNetNS(path string) bool {
	nsDir, base := filepath.Split(filepath.Clean(path))
	pidDir, ns := filepath.Split(filepath.Clean(nsDir))
	pid := filepath.Base(pidDir)
	_, err := strconv.ParseUint(pid, 10, 32)
	return base == "net" && ns == "ns" && err == nil
}

// CurrentNetNS opens the network namespace of the calling process. cnitrace
// never moves its own threads, only fresh locked ones inside Do, so the
// process's namespace is the one it was started in.
func CurrentNetNS() (*NetNS, error) {
	return OpenNetNS("/proc/self/ns/net")
}

// checkNetNS verifies fd is an nsfs file of type CLONE_NEWNET and returns its
// inode.
func checkNetNS(fd int) (uint64, error) {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return 0, fmt.Errorf("statfs: %w", err)
	}
	if fs.Type != nsfsMagic {
		return 0, ErrNotNetNS
	}
	typ, err := unix.IoctlRetInt(fd, nsGetNSType)
	if err != nil {
		return 0, fmt.Errorf("query namespace type: %w", err)
	}
	if typ != unix.CLONE_NEWNET {
		return 0, fmt.Errorf("%w (a namespace of another type)", ErrNotNetNS)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, fmt.Errorf("stat: %w", err)
	}
	return st.Ino, nil
}

// Close releases the handle. It is safe to call more than once.
func (ns *NetNS) Close() error {
	if ns == nil || ns.fd < 0 {
		return nil
	}
	err := unix.Close(ns.fd)
	ns.fd = -1
	return err
}

// Do runs fn on a fresh, locked OS thread moved into ns. fn should only
// create things (sockets, AF_PACKET handles, netlink handles): no goroutines,
// no name resolution, no UnlockOSThread. What it creates stays bound to ns and
// can be used from any goroutine afterwards.
//
// The thread is handed back to the Go scheduler only after it was verifiably
// moved back to its original namespace; otherwise it stays locked and the
// runtime discards it when the goroutine ends.
func (ns *NetNS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() { // never the caller's thread, never main (golang/go#34031)
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread() // nothing changed yet
			errc <- fmt.Errorf("read current netns: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread() // setns failed: the thread did not move
			errc <- fmt.Errorf("enter %s: %w", ns, NeedsCapability(err, "CAP_SYS_ADMIN"))
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("leave %s: %w (OS thread discarded)", ns, err)
			return // still locked: the runtime discards this thread
		}
		runtime.UnlockOSThread() // the only unlock after a switch, and only after a verified restore
		errc <- ferr
	}()
	return <-errc
}

// Open creates a resource inside ns with open, on a thread handled as in Do.
// The resource stays bound to ns. If open succeeded but the thread could not
// be restored, the resource is closed and the error returned.
func Open[T io.Closer](ns *NetNS, open func() (T, error)) (T, error) {
	var v T
	opened := false
	err := ns.Do(func() error {
		var e error
		v, e = open()
		opened = e == nil
		return e
	})
	if err != nil && opened {
		v.Close()
		var zero T
		return zero, err
	}
	return v, err
}
