package cri

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// wellKnownSockets are the runtimes' default CRI sockets on a node, in the
// order FindEndpoint tries them.
var wellKnownSockets = [...]string{
	"/run/containerd/containerd.sock",     // containerd
	"/run/crio/crio.sock",                 // CRI-O
	"/var/run/crio/crio.sock",             // CRI-O, older packages
	"/run/k3s/containerd/containerd.sock", // k3s and RKE2's embedded containerd
	"/run/cri-dockerd.sock",               // cri-dockerd (Docker Engine)
}

// ProbeTimeout bounds FindEndpoint's wait for one endpoint's answer.
const ProbeTimeout = 3 * time.Second

// maxMsgSize is the largest CRI response accepted: the kubelet's limit,
// room for a ListPodSandbox of a crowded node.
const maxMsgSize = 16 << 20

// Endpoints returns the usual CRI sockets under hostRoot, as unix://
// addresses in the order FindEndpoint tries them: containerd
// (/run/containerd/containerd.sock), CRI-O (/run/crio/crio.sock,
// /var/run/crio/crio.sock), k3s (/run/k3s/containerd/containerd.sock),
// cri-dockerd (/run/cri-dockerd.sock). Symlinks on the way (/var/run ->
// /run) are resolved inside hostRoot, as HostPath does.
func Endpoints(hostRoot string) []string {
	eps := make([]string, len(wellKnownSockets))
	for i, s := range wellKnownSockets {
		eps[i] = "unix://" + HostPath(hostRoot, s)
	}
	return eps
}

// Client is a connection to a CRI runtime. It is safe for concurrent use.
type Client struct {
	endpoint string // unix:///run/containerd/containerd.sock
	runtime  string // "containerd 1.6.20~ds1"
	conn     *rpcConn
}

// Endpoint returns the address the client is connected to, as unix://PATH.
func (c *Client) Endpoint() string { return c.endpoint }

// Runtime returns the runtime's name and version as its Version call
// reported them, "containerd 1.6.20~ds1".
func (c *Client) Runtime() string { return c.runtime }

// String names the runtime and its endpoint, for messages.
func (c *Client) String() string { return c.runtime + " at " + c.endpoint }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Dial connects to the CRI runtime at endpoint, unix:///PATH or a plain
// PATH, used as given (no host root), and checks that it answers CRI v1's
// Version within ctx. A runtime that does not answer is an error wrapping
// ErrNoRuntime (a *NoRuntimeError with this one endpoint); any other
// scheme (tcp://, npipe://) is refused.
func Dial(ctx context.Context, endpoint string) (*Client, error) {
	addr, err := unixAddr(endpoint)
	if err != nil {
		return nil, err
	}
	c, err := dial(ctx, addr)
	if err != nil {
		return nil, &NoRuntimeError{Tried: []EndpointError{{Endpoint: addr, Err: err}}}
	}
	return c, nil
}

// unixAddr turns endpoint into unix:///ABSOLUTE/PATH.
func unixAddr(endpoint string) (string, error) {
	p := endpoint
	if scheme, rest, ok := strings.Cut(endpoint, "://"); ok {
		if scheme != "unix" {
			return "", fmt.Errorf("use runtime endpoint %q: only unix:// sockets are supported", endpoint)
		}
		p = rest
	}
	if p == "" {
		return "", fmt.Errorf("use runtime endpoint %q: no socket path", endpoint)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("use runtime endpoint %q: %w", endpoint, err)
	}
	return "unix://" + abs, nil
}

// dial connects to addr (unix:///PATH) and asks for the runtime's version.
// A socket that refuses the connection gives the kernel's error, typed:
// callers branch on it (errors.Is os.ErrPermission for a socket they may
// not open, syscall.ECONNREFUSED for one nobody listens on).
func dial(ctx context.Context, addr string) (*Client, error) {
	path := strings.TrimPrefix(addr, "unix://")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no socket (%w)", fs.ErrNotExist) // without a gRPC round trip
	} else if err != nil {
		return nil, err
	}
	nc, err := (&net.Dialer{}).DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	conn, err := newRPCConn(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("ask CRI v1 version: %w", connError(err))
	}
	c := &Client{endpoint: addr, conn: conn}
	b, err := c.call(ctx, "Version", nil)
	var v versionResponse
	if err == nil {
		v, err = parseVersion(b)
		err = parseError(err)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ask CRI v1 version: %w", err)
	}
	c.runtime = strings.TrimSpace(v.runtimeName + " " + v.runtimeVersion)
	return c, nil
}

// call makes the RuntimeService call method with the message req.
func (c *Client) call(ctx context.Context, method string, req []byte) ([]byte, error) {
	return c.conn.call(ctx, "/runtime.v1.RuntimeService/"+method, req)
}

// FindEndpoint connects to the node's runtime. With override set (the
// user's --runtime-endpoint), it dials only that, as Dial does. Otherwise
// it tries Endpoints(hostRoot) in order, each for at most ProbeTimeout,
// and returns the first that answers; when none does, a *NoRuntimeError
// (errors.Is ErrNoRuntime) lists every endpoint tried and why it failed.
func FindEndpoint(ctx context.Context, hostRoot, override string) (*Client, error) {
	if override != "" {
		return Dial(ctx, override)
	}
	var tried []EndpointError
	for _, ep := range Endpoints(hostRoot) {
		pctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
		c, err := dial(pctx, ep)
		cancel()
		if err == nil {
			return c, nil
		}
		tried = append(tried, EndpointError{Endpoint: ep, Err: err})
		if ctx.Err() != nil {
			break
		}
	}
	return nil, &NoRuntimeError{Tried: tried}
}

// HostPath returns p, a path on the node, as a path under hostRoot.
// Symlinks in p's directories are followed inside hostRoot, as if
// hostRoot were /: /var/run is a link to /run on most nodes, and a plain
// join would lead /host/var/run to this machine's /run. The last element
// is kept as it is (it may be a magic link such as /proc/PID/ns/net).
// Resolution stops at the first directory that cannot be read; the rest
// is joined as given. With hostRoot "/" or "" the path is only cleaned.
func HostPath(hostRoot, p string) string {
	p = filepath.Clean("/" + p)
	if hostRoot == "" || filepath.Clean(hostRoot) == "/" {
		return p
	}
	root := filepath.Clean(hostRoot)
	dir, err := resolveDir(root, filepath.Dir(p))
	if err != nil {
		return filepath.Join(root, p)
	}
	return filepath.Join(root, dir, filepath.Base(p))
}

// maxLinks is how many symlinks resolveDir follows before it gives up, as
// the kernel's ELOOP limit.
const maxLinks = 40

// errTooManyLinks ends a resolution that went round in circles.
var errTooManyLinks = errors.New("too many levels of symbolic links")

// resolveDir resolves every symlink of dir (absolute, clean) inside root
// and returns the result relative to root, absolute.
func resolveDir(root, dir string) (string, error) {
	todo := strings.Split(strings.TrimPrefix(dir, "/"), "/")
	done := "/"
	for links := 0; len(todo) > 0; {
		elem := todo[0]
		todo = todo[1:]
		if elem == "" || elem == "." {
			continue
		}
		if elem == ".." {
			done = filepath.Dir(done) // never above root: Dir("/") is "/"
			continue
		}
		next := filepath.Join(done, elem)
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return "", err
			}
			done = next // not a link (EINVAL): a directory, or a file
			continue
		}
		if links++; links > maxLinks {
			return "", errTooManyLinks
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(done, target)
		}
		todo = append(strings.Split(strings.TrimPrefix(filepath.Clean(target), "/"), "/"), todo...)
		done = "/"
	}
	return done, nil
}
