// Package faultproxy puts an in-process toxiproxy (github.com/Shopify/toxiproxy/v2) between
// pgferry's tools and a test server, and injects network faults into it: connections reset,
// half-open connections (bytes stop flowing, nothing is closed), latency and cut bandwidth.
// It is for tests only.
package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// Proxy is one TCP proxy in front of an upstream address.
type Proxy struct {
	p      *toxiproxy.Proxy
	mu     sync.Mutex
	seq    int
	Faults atomic.Int64 // faults injected so far
}

var (
	serverOnce sync.Once
	server     *toxiproxy.ApiServer
)

// New starts a proxy listening on a free 127.0.0.1 port that forwards to upstream (host:port).
func New(name, upstream string) (*Proxy, error) {
	serverOnce.Do(func() {
		zerolog.SetGlobalLevel(zerolog.Disabled) // toxics log through the global logger
		server = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	})
	var err error
	for range 20 { // another process can take the port between the probe and the start
		addr, aerr := pgtest.FreeAddr()
		if aerr != nil {
			return nil, fmt.Errorf("start proxy %s: %w", name, aerr)
		}
		p := toxiproxy.NewProxy(server, name, addr, upstream)
		if err = p.Start(); err == nil {
			return &Proxy{p: p}, nil
		}
	}
	return nil, fmt.Errorf("start proxy %s: %w", name, err)
}

// restart starts the proxy again on its own port after a Stop, retrying for a while: a probe of
// another proxy (pgtest.FreeAddr) can hold the port for an instant.
func (p *Proxy) restart() error {
	var err error
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err = p.p.Start(); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("restart proxy %s on %s: %w", p.p.Name, p.p.Listen, err)
	}
	return nil
}

// Addr is the proxy's listening address (host:port): point the tools there.
func (p *Proxy) Addr() string { return p.p.Listen }

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() { p.p.Stop() }

// ResetAll closes every connection through the proxy now; new connections are accepted again
// at once.
func (p *Proxy) ResetAll() error {
	p.Faults.Add(1)
	p.p.Stop()
	return p.restart()
}

// ResetOnData resets (TCP RST) every connection that passes a byte in the next d, mid-frame for
// a connection carrying a COPY, then lets connections through again.
func (p *Proxy) ResetOnData(d time.Duration) error {
	return p.during(d, "reset_peer", "downstream", map[string]any{"timeout": 0})
}

// HalfOpen stops passing bytes in both directions for d without closing anything: each side
// sees a peer that accepts data and never answers. The proxy's own TCP stack still acknowledges
// what it is sent, so only an application-level deadline notices (see dbconn's network timeout).
func (p *Proxy) HalfOpen(d time.Duration) error {
	p.Faults.Add(1)
	unblock, err := p.block()
	if err != nil {
		return err
	}
	time.Sleep(d)
	unblock()
	return nil
}

// block stops passing bytes in both directions (dropping them) until unblock is called.
func (p *Proxy) block() (unblock func(), err error) {
	up, err := p.add("timeout", "upstream", map[string]any{"timeout": 0})
	if err != nil {
		return nil, err
	}
	down, err := p.add("timeout", "downstream", map[string]any{"timeout": 0})
	if err != nil {
		p.remove(up)
		return nil, err
	}
	return func() { p.remove(down); p.remove(up) }, nil
}

// Stall stops passing bytes in both directions for d, then resets every connection, as a load
// balancer that drops connections silently and resets them later. Unlike HalfOpen, no
// connection is left behind with bytes lost in the middle of its stream.
func (p *Proxy) Stall(d time.Duration) error {
	p.Faults.Add(1)
	unblock, err := p.block()
	if err != nil {
		return err
	}
	time.Sleep(d)
	p.p.Stop() // closes every connection, then the toxics go
	unblock()
	return p.restart()
}

// Latency delays every piece of data by ms (plus up to jitter ms) for d.
func (p *Proxy) Latency(d time.Duration, ms, jitter int) error {
	return p.during(d, "latency", "downstream", map[string]any{"latency": ms, "jitter": jitter})
}

// Bandwidth limits the flow from the server to kbps KB/s for d.
func (p *Proxy) Bandwidth(d time.Duration, kbps int) error {
	return p.during(d, "bandwidth", "downstream", map[string]any{"rate": kbps})
}

// Throttle limits the flow from the server to kbps KB/s until the returned stop is called (not
// counted as a fault: it makes a copy last long enough for faults to land in it).
func (p *Proxy) Throttle(kbps int) (stop func(), err error) {
	name, err := p.add("bandwidth", "downstream", map[string]any{"rate": kbps})
	if err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { p.remove(name) }) }, nil
}

// during adds a toxic, waits d and removes it; it counts as one fault.
func (p *Proxy) during(d time.Duration, kind, stream string, attrs map[string]any) error {
	p.Faults.Add(1)
	name, err := p.add(kind, stream, attrs)
	if err != nil {
		return err
	}
	time.Sleep(d)
	p.remove(name)
	return nil
}

// add installs a toxic on existing and new connections and returns its name.
func (p *Proxy) add(kind, stream string, attrs map[string]any) (string, error) {
	p.mu.Lock()
	p.seq++
	name := fmt.Sprintf("%s_%s_%d", kind, stream, p.seq)
	p.mu.Unlock()
	b, err := json.Marshal(map[string]any{"name": name, "type": kind, "stream": stream, "toxicity": 1.0, "attributes": attrs})
	if err != nil {
		return "", fmt.Errorf("encode toxic: %w", err)
	}
	if _, err := p.p.Toxics.AddToxicJson(bytes.NewReader(b)); err != nil {
		return "", fmt.Errorf("add toxic %s: %w", name, err)
	}
	return name, nil
}

func (p *Proxy) remove(name string) {
	p.p.Toxics.RemoveToxic(context.Background(), name)
}
