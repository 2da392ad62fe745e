package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cnitrace/cnitrace/topology"
)

// How long a backend connection may stay open after the answer, reading
// what the client sends, and how many connections one listener serves at
// once.
const (
	backendLinger   = time.Second
	backendParallel = 64
)

// startBackends starts every pod's backends: creates RunDir (refusing one
// that exists: another lab of the name, or one whose Down never ran),
// starts each pod's dnsmasq, then the TCP servers, in a background process
// when l.BackendCommand is set, else on goroutines of this process until
// Close.
func (l *Lab) startBackends(ctx context.Context) error {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return fmt.Errorf("start backends of lab %s: %w", l.Name, err)
	}
	err := os.Mkdir(RunDir(l.Name), 0o755)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("start backends of lab %s: %w (is lab %s already up? 'cnitrace-lab down %s' removes it)", l.Name, err, l.Name, l.Name)
	}
	if err != nil {
		return fmt.Errorf("start backends of lab %s: %w", l.Name, err)
	}
	l.run.runDir = true
	l.Backends = true
	for _, n := range l.Nodes {
		for _, p := range n.pods() {
			if err := l.startDNS(ctx, p); err != nil {
				return err
			}
		}
	}
	if l.BackendCommand != nil {
		return backendHelper(l.Name).spawn(l.BackendCommand(l.Name))
	}
	srv, err := listenBackends(l)
	if err != nil {
		return err
	}
	l.run.backends = srv
	return nil
}

// startDNS starts the dnsmasq of pod p inside p's namespace (dnsmasqArgs)
// and returns once it has bound its sockets: dnsmasq's parent waits for
// the daemon to be ready and exits non-zero, saying why on stderr (into
// the log), when it is not.
func (l *Lab) startDNS(ctx context.Context, p *Pod) error {
	bin, err := lookPath("dnsmasq", "dnsmasq-base")
	if err != nil {
		return fmt.Errorf("start DNS server in %s: %w", p.Name, err)
	}
	logFile := dnsLogFile(l.Name, p.Name)
	logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start DNS server in %s: %w", p.Name, err)
	}
	defer logf.Close()
	cmd := l.Command(ctx, p.NSPath, bin, dnsmasqArgs(l.Name, p)...)
	// A file, not a pipe: the daemon may keep its parent's stderr open.
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("start DNS server in %s: %w%s", p.Name, err, QuoteOutput(readTail(logFile)))
	}
	return nil
}

// stopBackends stops the backends of the lab called name: the TCP
// servers' background process and every pod's dnsmasq (each only when its
// pid file names a live process that is it), then removes RunDir. It
// reports whether RunDir existed. A process that will not go keeps RunDir,
// so a later Down tries again.
func stopBackends(name string) (bool, error) {
	dir := RunDir(name)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	var errs []error
	if _, err := backendHelper(name).stop(); err != nil {
		errs = append(errs, err)
	}
	pids, _ := filepath.Glob(filepath.Join(dir, "dnsmasq.*.pid"))
	for _, f := range pids {
		if err := stopDNS(f); err != nil {
			errs = append(errs, fmt.Errorf("stop DNS server of lab %s: %w", name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return true, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return true, fmt.Errorf("remove %s: %w", dir, err)
	}
	os.Remove(StateDir) // only when empty: other labs' files keep it
	return true, nil
}

// stopDNS stops the dnsmasq whose pid file is pidFile, if the pid names a
// live dnsmasq started with that pid file (a reused pid is left alone).
func stopDNS(pidFile string) error {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !hasArg(pid, "--pid-file="+pidFile) {
		return nil
	}
	if err := terminate(pid); err != nil {
		return fmt.Errorf("pid %d: %w", pid, err)
	}
	return nil
}

// hasArg reports whether pid is alive and has arg among its arguments.
func hasArg(pid int, arg string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !alive(pid) {
		return false
	}
	for _, a := range strings.Split(string(b), "\x00") {
		if a == arg {
			return true
		}
	}
	return false
}

// Processes returns the pids of the live processes this tool started for
// the lab called name: its background delay line, its backends' process
// and its pods' DNS servers. After Down or Close there are none.
func Processes(name string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	run := RunDir(name) + string(filepath.Separator)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !alive(pid) {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if hasEnv(pid, wireEnv+"="+name) || hasEnv(pid, backendEnv+"="+name) || strings.Contains(string(cmdline), run) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// backendServers are the TCP listeners of the backends, served on
// goroutines of this process.
type backendServers struct {
	listeners []net.Listener
	wg        sync.WaitGroup
}

// listenBackends opens a listener on BackendPort at each address of each
// pod of l, inside the pod's namespace (the listener stays bound to it),
// and serves them.
func listenBackends(l *Lab) (*backendServers, error) {
	s := &backendServers{}
	for _, n := range l.Nodes {
		for _, p := range n.pods() {
			for _, a := range p.addrs() {
				addr := netip.AddrPortFrom(a, BackendPort).String()
				ln, err := topology.Open(p.NS, func() (net.Listener, error) {
					return net.Listen("tcp", addr) // a literal address: no resolver in the netns
				})
				if err != nil {
					s.stop()
					return nil, fmt.Errorf("listen on %s in %s: %w", addr, p.Name, err)
				}
				s.listeners = append(s.listeners, ln)
			}
		}
	}
	for _, ln := range s.listeners {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			serveBackend(ln)
		}()
	}
	return s, nil
}

// stop closes the listeners and waits until every connection is done.
func (s *backendServers) stop() {
	if s == nil {
		return
	}
	for _, ln := range s.listeners {
		ln.Close()
	}
	s.wg.Wait()
}

// serveBackend answers each connection on ln with the address it was made
// to and a newline, then half-closes it and reads what the client sends
// until it closes too, for backendLinger at most, so neither side resets
// the connection. It returns when ln is closed, once its connections are
// done.
func serveBackend(ln net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, backendParallel)
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed; a lab's listener sees no other error worth a retry
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			answerBackend(c)
		}()
	}
}

func answerBackend(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(backendLinger))
	local := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	if _, err := io.WriteString(c, local.String()+"\n"); err != nil {
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	io.Copy(io.Discard, io.LimitReader(c, 1<<16))
}

// ServeBackends is the body of the background process Up starts through
// Lab.BackendCommand: it opens the standing lab called name, listens on
// BackendPort in every pod, tells the process that started it (if any)
// that it is ready, and serves until ctx ends.
func ServeBackends(ctx context.Context, name string) error {
	pipe := openReadyPipe(backendReadyFDEnv)
	defer pipe.close()
	l, err := Open(name)
	if err != nil {
		return err
	}
	defer l.Close()
	s, err := listenBackends(l)
	if err != nil {
		return err
	}
	pipe.ready()
	<-ctx.Done()
	s.stop()
	return nil
}
