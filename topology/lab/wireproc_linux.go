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
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The environment of a background process: wireEnv (backendEnv) names
// its lab, so stopping it can tell it from an unrelated process that got
// its pid; readyFDEnv (backendReadyFDEnv) names the inherited pipe it
// reports readiness on.
const (
	wireEnv           = "CNITRACE_LAB_WIRE"
	readyFDEnv        = "CNITRACE_LAB_WIRE_READY_FD"
	backendEnv        = "CNITRACE_LAB_BACKENDS"
	backendReadyFDEnv = "CNITRACE_LAB_BACKENDS_READY_FD"
)

// How long a background process may take to get ready, and to go away
// when asked.
const (
	wireReadyTimeout = 5 * time.Second
	wireStopTimeout  = 2 * time.Second
)

// helper is a background process that runs for a lab whose builder exits
// while the lab stands (`cnitrace-lab up`): the delay line, or the
// backends' TCP servers.
type helper struct {
	what     string // for messages: "delay line", "backends"
	lab      string
	pidFile  string
	logFile  string
	env      string // the environment variable naming the lab
	readyEnv string // the environment variable naming the readiness pipe
}

func wireHelper(name string) helper {
	return helper{"delay line", name, WirePIDFile(name), WireLogFile(name), wireEnv, readyFDEnv}
}

func backendHelper(name string) helper {
	return helper{"backends", name, BackendPIDFile(name), BackendLogFile(name), backendEnv, backendReadyFDEnv}
}

// spawnWire starts cmd as the background delay line of the lab called
// name.
func spawnWire(name string, cmd *exec.Cmd) error { return wireHelper(name).spawn(cmd) }

// stopWireProcess stops the background delay line of the lab called name
// (see helper.stop).
func stopWireProcess(name string) (bool, error) { return wireHelper(name).stop() }

// spawn starts cmd as h: detached in its own session, stdin and stdout on
// /dev/null, stderr to h.logFile, its pid in h.pidFile. It returns once the
// process said it is ready, or stops it and returns its log when it did
// not.
func (h helper) spawn(cmd *exec.Cmd) error {
	if err := os.MkdirAll(filepath.Dir(h.pidFile), 0o755); err != nil {
		return fmt.Errorf("start %s of lab %s: %w", h.what, h.lab, err)
	}
	logf, err := os.OpenFile(h.logFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("start %s of lab %s: %w", h.what, h.lab, err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start %s of lab %s: %w", h.what, h.lab, err)
	}
	defer r.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, logf
	cmd.ExtraFiles = []*os.File{w} // fd 3
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, h.env+"="+h.lab, h.readyEnv+"=3")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("start %s of lab %s: %w", h.what, h.lab, err)
	}
	if err := h.writePIDFile(cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return err
	}
	if err := awaitReady(r); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		log := readTail(h.logFile)
		os.Remove(h.pidFile)
		os.Remove(h.logFile)
		return fmt.Errorf("start %s of lab %s: %w%s", h.what, h.lab, err, QuoteOutput(log))
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

func (h helper) writePIDFile(pid int) error {
	tmp := h.pidFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("record pid of the %s of lab %s: %w", h.what, h.lab, err)
	}
	if err := os.Rename(tmp, h.pidFile); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("record pid of the %s of lab %s: %w", h.what, h.lab, err)
	}
	return nil
}

// readTail returns the end of a log, for an error message.
func readTail(file string) []byte {
	b, _ := os.ReadFile(file)
	if len(b) > 400 {
		b = b[len(b)-400:]
	}
	return b
}

// stop stops h, if its pid file names a live process whose environment
// names the lab (SIGTERM, then SIGKILL), checks it is gone and removes the
// pid file and the log. It reports whether there was a pid file.
func (h helper) stop() (bool, error) {
	b, err := os.ReadFile(h.pidFile)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.Remove(h.logFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("remove log of the %s of lab %s: %w", h.what, h.lab, err)
		}
		os.Remove(StateDir) // only when empty: other labs' files keep it
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("read pid of the %s of lab %s: %w", h.what, h.lab, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err == nil && pid > 0 && hasEnv(pid, h.env+"="+h.lab) {
		if err := terminate(pid); err != nil {
			return true, fmt.Errorf("stop %s of lab %s (pid %d): %w", h.what, h.lab, pid, err)
		}
	}
	for _, f := range []string{h.pidFile, h.logFile} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return true, fmt.Errorf("stop %s of lab %s: %w", h.what, h.lab, err)
		}
	}
	os.Remove(StateDir) // only when empty: other labs' files keep it
	return true, nil
}

// hasEnv reports whether pid is alive (not a zombie) and has the
// environment entry kv (NAME=value).
func hasEnv(pid int, kv string) bool {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false // gone, or a zombie's environment is unreadable
	}
	return bytes.Contains(append([]byte{0}, env...), []byte("\x00"+kv+"\x00"))
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

// readyPipe is the pipe a background process tells its starter on that
// it is ready.
type readyPipe struct{ f *os.File }

// openReadyPipe opens the pipe named in the environment variable env, if
// any: a process started by hand has none, and ready does nothing.
func openReadyPipe(env string) *readyPipe {
	fd, err := strconv.Atoi(os.Getenv(env))
	if err != nil || fd <= 2 {
		return &readyPipe{}
	}
	return &readyPipe{os.NewFile(uintptr(fd), "ready")}
}

// ready writes "ready" and closes the pipe.
func (p *readyPipe) ready() {
	if p.f != nil {
		p.f.WriteString("ready\n")
	}
	p.close()
}

// close closes the pipe without a word: the starter sees the process
// exit before it was ready.
func (p *readyPipe) close() {
	if p.f != nil {
		p.f.Close()
		p.f = nil
	}
}

// ServeWire is the body of the background delay line Up and SetFaults
// start through Lab.WireCommand: it opens the standing lab called name,
// runs its delay line with n and tells the process that started it (if
// any) when the sockets are open. It returns when ctx ends, with what the
// delay line did.
func ServeWire(ctx context.Context, name string, n Network) (WireStats, error) {
	pipe := openReadyPipe(readyFDEnv)
	defer pipe.close()
	l, err := Open(name)
	if err != nil {
		return WireStats{}, err
	}
	defer l.Close()
	return RunWire(ctx, l, n, pipe.ready)
}
