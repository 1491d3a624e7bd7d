package fabric

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/pki"
)

// The TLS application protocols of fabric links, so that a fabric connection can never be
// mistaken for (or by) another TLS service on the same address. Both name the same wire format
// but for flow control, which the handshake thus agrees on: under ALPN every stream starts with
// its full window (4 MiB) in each direction; under ALPNBudget with initialStreamWindow (16
// KiB), growing from the link's budget only while read (mux.Config.InitialWindow). Both ends
// offer both and prefer ALPNBudget. A peer that speaks only ALPN (from before the budget) is
// refused unless LinkLimits.AllowLegacy lets it link, and then its link holds at most
// LegacyMaxStreams streams: otherwise a peer that offered only ALPN would escape the budget.
const (
	ALPN       = "ztna-fabric/1"
	ALPNBudget = "ztna-fabric/2"
)

// nextProtos is what either end offers, best first (a server picks by its own order).
var nextProtos = []string{ALPNBudget, ALPN}

// DefaultPort is the fabric port from the product brief (TLS despite the number).
const DefaultPort = 80

// Peer is the authenticated other end of a link, named by its certificate's URI SAN.
type Peer struct {
	Kind string // api.KindRouter, api.KindIdentity, api.KindHub or api.KindController
	ID   string
}

func (p Peer) String() string { return p.Kind + "/" + p.ID }

// Credentials are what one end of a link presents and trusts.
type Credentials struct {
	Cert *pki.CertSlot     // this end's certificate chain and key; renewals replace it in place
	CA   *x509.Certificate // the network CA that issued every peer's certificate
}

func (c Credentials) check() error {
	if c.Cert == nil || c.Cert.Get() == nil {
		return errors.New("fabric: no certificate configured")
	}
	if c.CA == nil {
		return errors.New("fabric: no CA certificate configured")
	}
	return nil
}

// clientTLS is the configuration of a router or identity dialing a hub: the hub must present a
// certificate from the CA naming a hub or a controller (whose embedded hub serves the fabric).
func clientTLS(c Credentials) *tls.Config {
	cfg := pki.MutualClientConfig(c.Cert, c.CA, api.KindHub, api.KindController)
	cfg.NextProtos = nextProtos
	return cfg
}

// serverTLS is the configuration of a hub: clients must present a certificate from the CA naming
// a router or an identity, and authorize (if set) must accept it.
func serverTLS(c Credentials, authorize pki.Authorizer) *tls.Config {
	cfg := pki.MutualServerConfig(c.Cert, c.CA, authorize, api.KindRouter, api.KindIdentity)
	cfg.NextProtos = nextProtos
	return cfg
}

// peerOf checks the handshake's outcome and returns the verified peer.
func peerOf(cs tls.ConnectionState) (Peer, error) {
	if cs.NegotiatedProtocol != ALPN && cs.NegotiatedProtocol != ALPNBudget {
		return Peer{}, fmt.Errorf("peer does not speak %s or %s (ALPN %q)", ALPNBudget, ALPN, cs.NegotiatedProtocol)
	}
	if len(cs.PeerCertificates) == 0 {
		return Peer{}, errors.New("peer presented no certificate")
	}
	kind, id, err := pki.Identity(cs.PeerCertificates[0])
	if err != nil {
		return Peer{}, err
	}
	return Peer{Kind: kind, ID: id}, nil
}
