// Package interceptproxy is a TLS-intercepting proxy for tests, like a corporate deep packet
// inspection box: it terminates each connection's TLS with a certificate that its own CA issues
// for the requested name, opens its own TLS connection to the real upstream, and relays bytes.
package interceptproxy

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/pki"
)

// Proxy is a running intercepting proxy.
type Proxy struct {
	Addr string  // where clients connect
	CA   *pki.CA // the proxy's own CA (what a DPI box would push to managed clients)
}

// Start intercepts connections to upstream (host:port) on a loopback port until the test ends.
func Start(t testing.TB, upstream string) *Proxy {
	t.Helper()
	ca, err := pki.NewCA("Corporate Inspection CA")
	if err != nil {
		t.Fatal(err)
	}
	iss, key, err := ca.IssueServer("controller", "intercepted", []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.TLSCertificate(iss.ChainPEM, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*cert}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				relay(c, upstream)
			}()
		}
	}()
	return &Proxy{Addr: ln.Addr().String(), CA: ca}
}

func relay(client net.Conn, upstream string) {
	defer client.Close()
	client.SetDeadline(time.Now().Add(30 * time.Second))
	if err := client.(*tls.Conn).Handshake(); err != nil {
		return
	}
	// The box trusts whatever is upstream, as inspection proxies do.
	up, err := tls.Dial("tcp", upstream, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, client); done <- struct{}{} }()
	go func() { io.Copy(client, up); done <- struct{}{} }()
	<-done
}
