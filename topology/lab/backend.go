package lab

import (
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
)

// What every pod serves when the lab has backends (Config.Backends, or a
// Service): the endpoints a Service translates to really answer, and TCP
// and UDP probes to a pod get the replies a real workload gives.
const (
	// BackendPort is the TCP port every pod listens on, on each of its
	// addresses: the lab answers every connection with the address it was
	// made to (the pod's own, after any DNAT) and a newline, then closes
	// it (after reading what the client sends, for a second at most).
	BackendPort = 8080
	// DNSPort is where every pod's DNS server (dnsmasq) answers, on UDP and
	// TCP, on each of the pod's addresses and nowhere else.
	DNSPort = 53
)

// DNSZone is the zone every pod's DNS server is authoritative for, as
// CoreDNS is for a cluster's domain: a name in it that the server does not
// know gets an authoritative NXDOMAIN that echoes the question (the token
// of cnitrace's DNS probes), a name outside it REFUSED; nothing is
// forwarded anywhere.
const DNSZone = "cluster.local"

// WhoamiName is the one name in DNSZone every pod's DNS server knows: its
// A and AAAA records are the addresses of the pod that answers, so a query
// to the Service says which endpoint it reached.
const WhoamiName = "whoami." + DNSZone

// RunDir holds what the backends of the lab called name leave on disk
// while they run: the pid file and log of each pod's dnsmasq, and those of
// the TCP servers' background process. Down removes it.
func RunDir(name string) string { return filepath.Join(StateDir, name) }

// BackendPIDFile is where the pid of the background process serving
// BackendPort for the lab called name is recorded (Config.BackendCommand).
func BackendPIDFile(name string) string { return filepath.Join(RunDir(name), "backends.pid") }

// BackendLogFile is where that process writes its standard error.
func BackendLogFile(name string) string { return filepath.Join(RunDir(name), "backends.log") }

// dnsPIDFile and dnsLogFile are the pid file and log of the dnsmasq of
// the pod whose namespace is called pod.
func dnsPIDFile(lab, pod string) string { return filepath.Join(RunDir(lab), "dnsmasq."+pod+".pid") }
func dnsLogFile(lab, pod string) string { return filepath.Join(RunDir(lab), "dnsmasq."+pod+".log") }

// addrs returns the pod's addresses: IPv4, then IPv6 when it has one.
func (p *Pod) addrs() []netip.Addr {
	if p.Addr6.IsValid() {
		return []netip.Addr{p.Addr, p.Addr6}
	}
	return []netip.Addr{p.Addr}
}

// dnsmasqArgs are the arguments of the dnsmasq of pod p in the lab called
// lab: no configuration file, no upstream server, no /etc/hosts, bound to
// the pod's addresses only, authoritative for DNSZone with WhoamiName
// naming the pod, its pid file and log in RunDir. It daemonizes; its
// parent exits once the sockets are bound (non-zero, saying why, when
// they could not be).
func dnsmasqArgs(lab string, p *Pod) []string {
	var addrs []string
	for _, a := range p.addrs() {
		addrs = append(addrs, a.String())
	}
	list := strings.Join(addrs, ",")
	return []string{
		"--conf-file=/dev/null",
		"--pid-file=" + dnsPIDFile(lab, p.Name),
		"--log-facility=" + dnsLogFile(lab, p.Name),
		"--no-resolv", "--no-hosts", "--no-poll",
		"--bind-interfaces", "--listen-address=" + list,
		"--port=" + strconv.Itoa(DNSPort),
		"--auth-server=ns.dns." + DNSZone + "," + list,
		"--auth-zone=" + DNSZone,
		"--host-record=" + WhoamiName + "," + list,
	}
}
