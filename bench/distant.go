package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/testpki"
)

// pki is a throwaway CA and a certificate it signed for 127.0.0.1, for the
// sandbox's TLS; the facade and the direct door trust the CA alone.
type pki struct {
	caFile, certFile, keyFile string
	roots                     *x509.CertPool
}

func makePKI(dir string) (*pki, error) {
	ca, err := testpki.MakeCA("opentact bench CA")
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := ca.Leaf("opentact-sandbox", true)
	if err != nil {
		return nil, err
	}
	p := &pki{caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem"), roots: x509.NewCertPool()}
	p.roots.AddCert(ca.Cert)
	for path, data := range map[string][]byte{p.caFile: ca.PEM(), p.certFile: certPEM, p.keyFile: keyPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// connCounter counts the connections a door opened and how many were open
// at once.
type connCounter struct {
	opened atomic.Int64
	open   atomic.Int64
	most   atomic.Int64
}

func (c *connCounter) dialer(d *net.Dialer) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c.opened.Add(1)
		n := c.open.Add(1)
		for m := c.most.Load(); n > m && !c.most.CompareAndSwap(m, n); m = c.most.Load() {
		}
		return &countedConn{Conn: conn, c: c}, nil
	}
}

// resetMost makes the most open at once the number open now.
func (c *connCounter) resetMost() { c.most.Store(c.open.Load()) }

type countedConn struct {
	net.Conn
	c    *connCounter
	once sync.Once
}

func (cc *countedConn) Close() error {
	cc.once.Do(func() { cc.c.open.Add(-1) })
	return cc.Conn.Close()
}

// h2Door is GET target with the user's Basic credential through Go's
// HTTP client as a backend would set it up to call Opentact: the default
// transport (HTTP/2 over TLS), trusting roots.
func h2Door(target string, c int, roots *x509.CertPool, conns *connCounter) (caller, func(), error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	tr.DialContext = conns.dialer(&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second})
	call, _, err := httpCaller(target, &http.Client{Transport: tr}, c)
	return call, tr.CloseIdleConnections, err
}

// upstreamSide is what a facade did to the upstream, read from its
// /metrics: connections made and open, and requests sent.
type upstreamSide struct {
	opened, open, requests float64
	stack, heap            float64 // the facade's goroutine stacks and heap in use
}

func readUpstreamSide(f *facadeProc) upstreamSide {
	m := f.metrics()
	return upstreamSide{
		opened:   metricValue(m, "opentact_upstream_connections_opened_total"),
		open:     metricValue(m, "opentact_upstream_connections_open"),
		requests: metricSum(m, "opentact_upstream_requests_total"),
		stack:    metricValue(m, "go_memstats_stack_inuse_bytes"),
		heap:     metricValue(m, "go_memstats_heap_inuse_bytes"),
	}
}

// metricSum is the sum of every sample of the metric name, over its labels.
func metricSum(text, name string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		if i := strings.LastIndexByte(rest, '}'); i >= 0 {
			rest = rest[i+1:]
		}
		var v float64
		if _, err := fmt.Sscan(strings.TrimSpace(rest), &v); err == nil {
			sum += v
		}
	}
	return sum
}

// watchOpen samples f's open upstream connections every interval until
// stop is closed, and returns the most it saw.
func watchOpen(f *facadeProc, interval time.Duration, stop <-chan struct{}) <-chan float64 {
	out := make(chan float64, 1)
	go func() {
		most := 0.0
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			most = max(most, metricValue(f.metrics(), "opentact_upstream_connections_open"))
			select {
			case <-stop:
				out <- most
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// oneCallerStretch lengthens the distant one-caller phases.
const oneCallerStretch = 4

// distantFacadeArgs point a facade at the distant sandbox. Every caller
// of the REST door holds a connection of its own, so the listeners allow
// more than the 2,048 callers of the largest shape.
func (b *bench) distantFacadeArgs(p *pki) []string {
	return []string{"--upstream-ca=" + p.caFile, "--max-connections=" + fmt.Sprint(max(4096, b.opts.overloadCallers+64))}
}

// distantGroup measures one group against the distant sandbox: direct,
// facade gRPC and REST with the cache off, and with sh == shapeSame the
// facade's doors with its cache on too.
func (b *bench) distantGroup(ctx context.Context, procs *registry, rep *report, p *pki, sh shape, c int, doors []doorKind, cacheOK bool) error {
	start, stop := b.groupFacades(ctx, procs)
	defer stop()
	facadeArgs := b.distantFacadeArgs(p)
	var lanes []lane
	for _, d := range doors {
		if d == doorDirect {
			lanes = append(lanes, lane{door: d})
			continue
		}
		f, err := start(b.opts.facade, facadeArgs...)
		if err != nil {
			return err
		}
		lanes = append(lanes, lane{door: d, fac: f})
	}
	// bench/floor beside the facade. With distinct credentials, forward
	// (one request per call to the upstream, over Go's transport) is the
	// least a facade on this stack costs in CPU and latency, and at the
	// largest number of callers hold (echo after the same delay, no
	// upstream connection) is the least memory holding that many calls
	// costs. With one account and the cache on, echo is the least a cache
	// hit costs.
	type floorMode struct {
		name string // its label in the rows
		args []string
	}
	var modes []floorMode
	switch {
	case b.opts.floor == "" || !slices.Contains(doors, doorDirect):
	case sh == shapeDistinct:
		modes = []floorMode{{"forward", []string{"--mode=forward", "--upstream-ca=" + p.caFile}}}
		if c == slices.Max(b.opts.distantCallers) {
			modes = append(modes, floorMode{"hold", []string{"--mode=echo", "--delay=" + b.opts.delay.String()}})
		}
	case cacheOK:
		modes = []floorMode{{"echo", []string{"--mode=echo"}}}
	}
	for _, m := range modes {
		for _, d := range []doorKind{doorGRPC, doorREST} {
			// A process per door, as the facade's: its peak RSS is its own.
			f, err := start(b.opts.floor, m.args...)
			if err != nil {
				return fmt.Errorf("bench/floor: %w", err)
			}
			f.floor = m.name
			lanes = append(lanes, lane{door: d, fac: f})
		}
	}
	if cacheOK && sh == shapeSame {
		for _, d := range []doorKind{doorGRPC, doorREST} {
			f, err := start(b.opts.facade, append(slices.Clone(facadeArgs), "--cache-ttl="+b.opts.cacheTTL)...)
			if err != nil {
				return err
			}
			lanes = append(lanes, lane{door: d, fac: f, cache: true})
		}
	}
	if c == 1 {
		// One caller makes a call per delay: a phase of -duration would
		// hold too few calls for a steady p50.
		defer func(d time.Duration) { b.opts.duration = d }(b.opts.duration)
		b.opts.duration *= oneCallerStretch
	}
	rs, err := b.measure(ctx, sh, c, lanes...)
	if err != nil {
		return err
	}
	for _, r := range rs {
		rep.add(r)
	}
	return nil
}

// runDistant is the distant part of the run: a TLS sandbox answering
// -delay after each request, and the same shapes through the three doors.
func runDistant(ctx context.Context, o options, procs *registry, rep *report, tmp string, users []*user, accountsFile string, cacheOK bool) error {
	p, err := makePKI(tmp)
	if err != nil {
		return err
	}
	probe := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.roots}, DisableKeepAlives: true}}
	h := http.Header{"Authorization": {users[0].basic}}
	sb, err := startSandboxWith(ctx, procs, o.sandbox,
		[]string{"--accounts", accountsFile, "--tls-cert", p.certFile, "--tls-key", p.keyFile, "--delay", o.delay.String()},
		func(addr string) bool { return getOK(probe, "https://"+addr+"/rest/auth", h) })
	if err != nil {
		return err
	}
	defer procs.stop(sb.proc)
	b := &bench{opts: o, users: users, sandbox: sb, upstream: "https://" + sb.addr, reruns: o.reruns, roots: p.roots, directConns: &connCounter{}}
	rep.delay = o.delay
	fmt.Printf("\ndistant upstream: the sandbox over TLS (HTTP/2 offered), %s per answer\n", o.delay)
	printHeader()
	all := []doorKind{doorDirect, doorGRPC, doorREST}
	for _, c := range o.distantCallers {
		if err := b.distantGroup(ctx, procs, rep, p, shapeDistinct, c, all, false); err != nil {
			return err
		}
	}
	if o.hotCallers > 0 {
		if err := b.distantGroup(ctx, procs, rep, p, shapeSame, o.hotCallers, all, cacheOK); err != nil {
			return err
		}
	}
	if o.overloadCallers > 0 {
		fmt.Printf("overload: %d callers, facade gRPC alone\n", o.overloadCallers)
		if err := b.distantGroup(ctx, procs, rep, p, shapeDistinct, o.overloadCallers, []doorKind{doorGRPC}, false); err != nil {
			return err
		}
	}
	return nil
}
