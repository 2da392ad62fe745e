// Package topology knows who and where: it turns a user's pod reference into a
// network namespace handle, and discovers with netlink the interfaces a probe
// crosses on the node (the Path). Path and Point are plain data that can be
// diffed and serialised; live handles exist only between Open and Close.
package topology

import "fmt"

// NetNS is an open handle to a network namespace. Its zero value is not
// usable; get one from OpenNetNS, NetNSOfPID, CurrentNetNS or NewNetNS.
//
// A NetNS is safe for concurrent use. Close releases the handle; sockets
// created inside the namespace with Do or Open stay bound to it regardless.
type NetNS struct {
	fd   int
	path string
	ino  uint64
}

// Path returns the file the namespace was opened from.
func (ns *NetNS) Path() string { return ns.path }

// ID returns the namespace in its readlink form, net:[4026532301], which
// names it uniquely on the running host.
func (ns *NetNS) ID() string { return NetNSID(ns.ino) }

// Inode returns the namespace's inode number on nsfs.
func (ns *NetNS) Inode() uint64 { return ns.ino }

// String returns the readlink form, for messages.
func (ns *NetNS) String() string { return ns.ID() }

// Fd returns the namespace file descriptor, valid until Close. Callers use it
// with netlink.NewHandleAt and must not close it.
func (ns *NetNS) Fd() int { return ns.fd }

// NetNSID formats a namespace inode as the kernel's readlink form.
func NetNSID(ino uint64) string { return fmt.Sprintf("net:[%d]", ino) }
