//go:build linux

package topology_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
	"golang.org/x/sys/unix"
)

// withoutCaps runs fn on a locked OS thread whose effective set lacks
// caps (capabilities are per thread). The thread is never unlocked, so it
// dies with its reduced set instead of going back to the scheduler.
func withoutCaps(t *testing.T, fn func() error, caps ...uintptr) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		for _, c := range caps {
			data[c/32].Effective &^= 1 << (c % 32)
		}
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// TestPrivilegedNetNSOfPIDWithoutPtrace opens the netns of a child that
// has every capability this test has, from a thread without
// CAP_SYS_PTRACE: the kernel refuses it as a ptrace read (EACCES), and the
// error must name CAP_SYS_PTRACE, through NetNSOfPID and through OpenNetNS
// of /proc/PID/ns/net alike. A permission error on any other file is not
// the ptrace check and must not name it.
func TestPrivilegedNetNSOfPIDWithoutPtrace(t *testing.T) {
	labtest.Require(t)
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatalf("start a process to read: %v", err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	pid := child.Process.Pid

	opens := map[string]func() (*topology.NetNS, error){
		"NetNSOfPID": func() (*topology.NetNS, error) { return topology.NetNSOfPID("/proc", pid) },
		"OpenNetNS":  func() (*topology.NetNS, error) { return topology.OpenNetNS("/proc/" + strconv.Itoa(pid) + "/ns/net") },
	}
	for name, open := range opens {
		err := withoutCaps(t, func() error {
			ns, err := open()
			if err == nil {
				ns.Close()
			}
			return err
		}, unix.CAP_SYS_PTRACE)
		var capErr *topology.CapabilityError
		if !errors.As(err, &capErr) || capErr.Capability != "CAP_SYS_PTRACE" || !errors.Is(err, os.ErrPermission) {
			t.Errorf("%s without CAP_SYS_PTRACE: got %v, want a permission error naming CAP_SYS_PTRACE", name, err)
		}
		if ns, err := open(); err != nil {
			t.Errorf("%s with CAP_SYS_PTRACE: %v", name, err)
		} else {
			ns.Close()
		}
	}

	unreadable := filepath.Join(t.TempDir(), "net")
	if err := os.WriteFile(unreadable, nil, 0); err != nil {
		t.Fatal(err)
	}
	err := withoutCaps(t, func() error {
		_, err := topology.OpenNetNS(unreadable)
		return err
	}, unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH)
	var capErr *topology.CapabilityError
	if !errors.Is(err, os.ErrPermission) || errors.As(err, &capErr) {
		t.Errorf("open an unreadable plain file: got %v, want a permission error naming no capability", err)
	}
}
