package enroll

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/internal/pki"
)

// RefusedError is the controller's refusal of a renewal (expired certificate, deleted
// identity, ...): asking again, or another endpoint of the same controller, does not help.
type RefusedError struct {
	Edge    string
	Problem api.Problem
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("certificate renewal refused by %s: %s", e.Edge, e.Problem.Detail)
}

// RenewIdentity asks the controller for a new certificate of the identity f describes. It
// proves the identity with cur, the identity's current certificate and key, over mutual TLS
// pinned to the identity's CA, and sends a CSR for a new key generated here: every renewal
// rotates the key. It tries f's edge endpoints in order; a refusal is final (*RefusedError).
// The result is the renewed identity (new key and chain, the configuration the controller
// sent); nothing is written.
func RenewIdentity(ctx context.Context, f *IdentityFile, cur *tls.Certificate, opts Options) (*IdentityFile, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pinned, err := f.caFingerprint()
	if err != nil {
		return nil, err
	}
	if len(f.Config.Edge) == 0 {
		return nil, errors.New("the identity names no controller (edge) endpoint to renew with; enrol again")
	}
	priv, err := pki.GenerateKey()
	if err != nil {
		return nil, err
	}
	csr, err := pki.NewCSR(priv, api.KindIdentity+"/"+f.Config.ID)
	if err != nil {
		return nil, err
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	// A slot of its own: the request must present cur even if the caller's slot moves on.
	slot := pki.NewCertSlot(cur)
	var errs []error
	for _, edge := range f.Config.Edge {
		client, err := apiclient.New(edge, "", pinned, apiclient.WithTimeout(timeout), apiclient.WithClientCertificate(slot))
		if err != nil {
			return nil, err
		}
		log.Debug("renewing certificate", "edge", edge, "identity", f)
		resp, err := client.Renew(ctx, api.RenewRequest{CSR: string(csr)})
		client.CloseIdleConnections()
		if err != nil {
			// A 4xx is the controller's verdict on this identity; a 5xx may be one replica's
			// trouble, so the next endpoint is tried.
			var apiErr *apiclient.Error
			if errors.As(err, &apiErr) && apiErr.StatusCode/100 == 4 {
				return nil, &RefusedError{Edge: edge, Problem: apiErr.Problem}
			}
			errs = append(errs, fmt.Errorf("%s: %w", edge, err))
			log.Debug("edge endpoint failed", "edge", edge, "err", err) // the caller reports the joined errors
			if ctx.Err() != nil {
				break
			}
			continue
		}
		res, err := verify(resp, priv, pinned, api.KindIdentity)
		if err != nil {
			return nil, fmt.Errorf("%s answered with an unusable renewal: %w", edge, err)
		}
		if res.Config.ID != f.Config.ID {
			return nil, fmt.Errorf("%s renewed identity %s, but this is identity %s", edge, res.Config.ID, f.Config.ID)
		}
		return res.identityFile(), nil
	}
	return nil, fmt.Errorf("certificate renewal failed on every controller endpoint: %w", errors.Join(errs...))
}

func (f *IdentityFile) caFingerprint() (string, error) {
	ca, err := pki.ParseCertPEM([]byte(f.CA))
	if err != nil {
		return "", fmt.Errorf("identity CA: %w", err)
	}
	fp := pki.Fingerprint(ca.Raw)
	if f.Config.CAFingerprint != "" && fp != f.Config.CAFingerprint {
		return "", fmt.Errorf("the identity's CA (%s) is not the one it was enrolled with (%s); enrol again", fp, f.Config.CAFingerprint)
	}
	return fp, nil
}

// ErrFileChanged reports an identity file that another program changed since it was read:
// it now holds another identity (enrolled again) or a newer certificate (renewed elsewhere).
var ErrFileChanged = errors.New("the identity file changed since it was read")

// ReplaceIdentity writes a renewed identity to path (atomically, 0600) unless the file
// there now holds another identity or a certificate that lives longer, in which case it is
// left alone and ErrFileChanged returned. A symbolic link is followed, not replaced.
func ReplaceIdentity(path string, renewed *IdentityFile) error {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	onDisk, err := LoadIdentity(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: %s was removed", ErrFileChanged, path)
	case err != nil:
		return err
	case onDisk.Config.ID != renewed.Config.ID:
		return fmt.Errorf("%w: %s now holds identity %s", ErrFileChanged, path, onDisk.Config.ID)
	}
	if disk, err := pki.ParseCertPEM([]byte(onDisk.Cert)); err == nil {
		if cur, err := pki.ParseCertPEM([]byte(renewed.Cert)); err == nil && disk.NotAfter.After(cur.NotAfter) {
			return fmt.Errorf("%w: %s holds a newer certificate", ErrFileChanged, path)
		}
	}
	return renewed.Write(path)
}
