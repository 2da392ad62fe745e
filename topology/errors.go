package topology

import (
	"errors"
	"fmt"
	"os"
)

// ErrNotSupported is returned on systems without Linux network namespaces.
var ErrNotSupported = errors.New("network namespaces are not supported")

// ErrNotNetNS is returned when a path exists but is not a network namespace.
var ErrNotNetNS = errors.New("not a network namespace")

// ErrUnsupportedLayout is returned when the path uses a layout discovery does
// not handle yet (a pod interface that is neither a veth nor a macvlan or
// ipvlan, a hairpinned Service, a tunnel without a known remote, a node
// that answers by another device than the probes entered by);
// docs/known-issues.md lists them.
var ErrUnsupportedLayout = errors.New("unsupported network layout")

// ErrNoForwardRoute is returned when the node netns does not forward the
// pod's traffic because its forwarding sysctl for that traffic
// (net.ipv4.ip_forward, net.ipv4.conf.<dev>.forwarding,
// net.ipv6.conf.all.forwarding) is 0; the error names the sysctl. Other
// failed route lookups are not this error.
var ErrNoForwardRoute = errors.New("no forwarding route")

// CapabilityError is a permission error that names the capability the
// operation most likely lacks. Callers find it with errors.As to say how
// to grant it; it unwraps to the permission error, so errors.Is(err,
// os.ErrPermission) still holds.
type CapabilityError struct {
	Capability string // CAP_NET_RAW, CAP_SYS_ADMIN, ...
	Err        error
}

func (e *CapabilityError) Error() string { return fmt.Sprintf("%v (needs %s)", e.Err, e.Capability) }
func (e *CapabilityError) Unwrap() error { return e.Err }

// NeedsCapability returns err as a *CapabilityError naming capability when
// err is a permission error (EPERM, EACCES), and err unchanged otherwise
// (nil included). Every package that makes privileged syscalls names the
// capability with it, so the command can branch on the type.
func NeedsCapability(err error, capability string) error {
	if errors.Is(err, os.ErrPermission) {
		return &CapabilityError{Capability: capability, Err: err}
	}
	return err
}
