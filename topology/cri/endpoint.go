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
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
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
	conn     *grpc.ClientConn
	rt       runtimeapi.RuntimeServiceClient
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
func dial(ctx context.Context, addr string) (*Client, error) {
	if _, err := os.Stat(strings.TrimPrefix(addr, "unix://")); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no socket (%w)", fs.ErrNotExist) // without a gRPC round trip
	} else if err != nil {
		return nil, err
	}
	d := &socketDialer{path: strings.TrimPrefix(addr, "unix://")}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(d.dial),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize)))
	if err != nil {
		return nil, err
	}
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	v, err := rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		conn.Close()
		if derr := d.err(); derr != nil {
			return nil, derr // the socket refused us: say why, typed
		}
		return nil, fmt.Errorf("ask CRI v1 version: %w", err)
	}
	name := strings.TrimSpace(v.GetRuntimeName() + " " + v.GetRuntimeVersion())
	return &Client{endpoint: addr, runtime: name, conn: conn, rt: rt}, nil
}

// socketDialer connects gRPC to a unix socket and keeps the first
// connection error: gRPC's status flattens it into text, and callers
// branch on what the kernel said (errors.Is os.ErrPermission for a socket
// they may not open, syscall.ECONNREFUSED for one nobody listens on).
type socketDialer struct {
	path  string
	mu    sync.Mutex
	first error
}

func (d *socketDialer) dial(ctx context.Context, _ string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "unix", d.path)
	if err != nil {
		d.mu.Lock()
		if d.first == nil {
			d.first = err
		}
		d.mu.Unlock()
	}
	return c, err
}

// err returns the first connection error, or nil.
func (d *socketDialer) err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.first
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
