package topology

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// nlHandle adapts *netlink.Handle to io.Closer so it can be made with Open.
type nlHandle struct{ *netlink.Handle }

func (h nlHandle) Close() error { h.Handle.Close(); return nil }

// NetlinkHandle returns a netlink handle whose sockets live in ns: one
// for each netlink family given (unix.NETLINK_ROUTE, ...), or, with none,
// one for each family the netlink package supports (route, XFRM and
// netfilter), as netlink.NewHandle does. A handle that only reads links,
// addresses, routes and neighbours needs NETLINK_ROUTE alone, and costs
// one socket instead of three. It is created with Open rather than
// netlink.NewHandleAt, which switches the caller's own thread and unlocks
// it even when switching back failed. Close it when done.
func NetlinkHandle(ns *NetNS, families ...int) (*netlink.Handle, error) {
	h, err := Open(ns, func() (nlHandle, error) {
		h, err := netlink.NewHandle(families...)
		return nlHandle{h}, NeedsCapability(err, "CAP_NET_ADMIN")
	})
	if err != nil {
		return nil, fmt.Errorf("open netlink in %s: %w", ns, err)
	}
	return h.Handle, nil
}

// maxDumpRetries bounds retries of netlink dumps that the kernel interrupted
// because the table changed while it was being read.
const maxDumpRetries = 5

// RetryDump calls a netlink dump until the kernel does not interrupt it
// (netlink.ErrDumpInterrupted: the table changed while it was read), at
// most maxDumpRetries times, as the CNI plugins' netlinksafe does. Every
// dump the product makes goes through it: discovery's and the bundle's.
func RetryDump[T any](dump func() (T, error)) (T, error) {
	var v T
	var err error
	for range maxDumpRetries {
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}
