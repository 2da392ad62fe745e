package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The environment of a background delay line: wireEnv names its lab, so
// stopWireProcess can tell it from an unrelated process that got its pid;
// readyFDEnv names the inherited pipe it reports readiness on.
const (
	wireEnv    = "CNITRACE_LAB_WIRE"
	readyFDEnv = "CNITRACE_LAB_WIRE_READY_FD"
)

// How long the background delay line may take to open its sockets, and to
// go away when asked.
const (
	wireReadyTimeout = 5 * time.Second
	wireStopTimeout  = 2 * time.Second
)

// spawnWire starts cmd as the background delay line of the lab called
// name: detached in its own session, stdin and stdout on /dev/null, stderr
// to WireLogFile, its pid in WirePIDFile. It returns once the process said
// it is ready, or stops it and returns its log when it did not.
func spawnWire(name string, cmd *exec.Cmd) error {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return fmt.Errorf("start delay line of lab %s: %w", name, err)
	}
	logf, err := os.OpenFile(WireLogFile(name), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("start delay line of lab %s: %w", name, err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start delay line of lab %s: %w", name, err)
	}
	defer r.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, logf
	cmd.ExtraFiles = []*os.File{w} // fd 3
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, wireEnv+"="+name, readyFDEnv+"=3")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("start delay line of lab %s: %w", name, err)
	}
	if err := writePIDFile(name, cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return err
	}
	if err := awaitReady(r); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		log := readLog(name)
		os.Remove(WirePIDFile(name))
		os.Remove(WireLogFile(name))
		return fmt.Errorf("start delay line of lab %s: %w%s", name, err, QuoteOutput(log))
	}
	return cmd.Process.Release()
}

// awaitReady waits for the child to write "ready" on the pipe.
func awaitReady(r *os.File) error {
	if err := r.SetReadDeadline(time.Now().Add(wireReadyTimeout)); err != nil {
		return err
	}
	buf := make([]byte, 16)
	n, err := io.ReadAtLeast(r, buf, len("ready"))
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("not ready after %v", wireReadyTimeout)
	case err != nil || string(buf[:n]) != "ready\n":
		return errors.New("it exited before it was ready")
	}
	return nil
}

func writePIDFile(name string, pid int) error {
	tmp := WirePIDFile(name) + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("record pid of the delay line of lab %s: %w", name, err)
	}
	if err := os.Rename(tmp, WirePIDFile(name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("record pid of the delay line of lab %s: %w", name, err)
	}
	return nil
}

// readLog returns the end of the delay line's log, for an error message.
func readLog(name string) []byte {
	b, _ := os.ReadFile(WireLogFile(name))
	if len(b) > 400 {
		b = b[len(b)-400:]
	}
	return b
}

// stopWireProcess stops the background delay line of the lab called name,
// if its pid file names a live process whose environment names the lab
// (SIGTERM, then SIGKILL), checks it is gone and removes the pid file and
// the log. It reports whether there was a pid file.
func stopWireProcess(name string) (bool, error) {
	b, err := os.ReadFile(WirePIDFile(name))
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.Remove(WireLogFile(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("remove log of the delay line of lab %s: %w", name, err)
		}
		os.Remove(StateDir) // only when empty: other labs' files keep it
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("read pid of the delay line of lab %s: %w", name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err == nil && pid > 0 && isWireOf(pid, name) {
		if err := terminate(pid); err != nil {
			return true, fmt.Errorf("stop delay line of lab %s (pid %d): %w", name, pid, err)
		}
	}
	for _, f := range []string{WirePIDFile(name), WireLogFile(name)} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return true, fmt.Errorf("stop delay line of lab %s: %w", name, err)
		}
	}
	os.Remove(StateDir) // only when empty: other labs' files keep it
	return true, nil
}

// isWireOf reports whether pid is alive (not a zombie) and is the delay
// line of lab name.
func isWireOf(pid int, name string) bool {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false // gone, or a zombie's environment is unreadable
	}
	return bytes.Contains(append([]byte{0}, env...), []byte("\x00"+wireEnv+"="+name+"\x00"))
}

// terminate sends SIGTERM, waits for pid to go, then SIGKILL and waits again.
func terminate(pid int) error {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if err := syscall.Kill(pid, sig); err != nil {
			if errors.Is(err, syscall.ESRCH) {
				return nil
			}
			return err
		}
		deadline := time.Now().Add(wireStopTimeout)
		for time.Now().Before(deadline) {
			if !alive(pid) {
				return nil
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return fmt.Errorf("still running %v after SIGKILL", wireStopTimeout)
}

// alive reports whether pid exists and is not a zombie: a zombie holds no
// socket or namespace any more, only its exit status for its parent.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z' && stat[i+2] != 'X'
}

// ServeWire is the body of the background delay line Up and SetFaults
// start through Lab.WireCommand: it opens the standing lab called name,
// runs its delay line with n and tells the process that started it (if
// any) when the sockets are open. It returns when ctx ends, with what the
// delay line did.
func ServeWire(ctx context.Context, name string, n Network) (WireStats, error) {
	var ready *os.File
	if fd, err := strconv.Atoi(os.Getenv(readyFDEnv)); err == nil && fd > 2 {
		ready = os.NewFile(uintptr(fd), "ready")
		defer ready.Close()
	}
	l, err := Open(name)
	if err != nil {
		return WireStats{}, err
	}
	defer l.Close()
	return RunWire(ctx, l, n, func() {
		if ready != nil {
			ready.WriteString("ready\n")
			ready.Close()
		}
	})
}
