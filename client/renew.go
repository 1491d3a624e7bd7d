package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/backoff"
	"github.com/ztna/ztna/internal/enroll"
)

// KeepRenewed renews the certificate at about two thirds of its life — at a random point
// between 62 % and 72 %, so that clients started together do not renew together — until ctx
// ends, and then returns nil. A failed attempt (controller unreachable, ...) is retried with
// exponential backoff and jitter while the certificate is valid. It returns an error when
// renewing cannot succeed: the controller refused (the identity was deleted, ...) or the
// certificate expired first. Links and dials keep working until the certificate expires.
func (id *Identity) KeepRenewed(ctx context.Context) error {
	if len(id.File().Config.Edge) == 0 {
		err := errors.New("the identity names no controller (edge) endpoint: its certificate cannot be renewed; enrol it again")
		id.log.Warn("certificate renewal off", "identity", id.File(), "err", err)
		return err
	}
	for {
		if !sleep(ctx, time.Until(id.RenewAt())) {
			return nil
		}
		if err := id.renewRetrying(ctx); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (id *Identity) renewRetrying(ctx context.Context) error {
	// Retries are spaced by the life left, so short test certificates and 24-hour ones both
	// get several attempts before they expire.
	left := time.Until(id.Certificate().NotAfter)
	lo := min(max(left/50, 20*time.Millisecond), time.Second)
	b := backoff.New(lo, min(max(left/10, lo), 5*time.Minute))
	for {
		err := id.Renew(ctx)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		leaf := id.Certificate()
		var refused *enroll.RefusedError
		switch {
		case errors.As(err, &refused):
			id.log.Error("certificate renewal refused; the identity stops working when its certificate expires",
				"identity", id.File(), "problem", refused.Problem.Type, "err", err)
			return err
		case time.Now().After(leaf.NotAfter):
			err = fmt.Errorf("the certificate of identity %s expired at %s before it could be renewed (%w): %s",
				id.File().Config.Name, leaf.NotAfter.UTC().Format(time.RFC3339), err, api.ReenrolHint)
			id.log.Error("certificate expired without renewal", "identity", id.File(), "err", err)
			return err
		}
		wait := b.Next()
		id.log.Warn("certificate renewal failed; retrying", "identity", id.File(), "err", err, "retry_in", wait, "expires_at", leaf.NotAfter.UTC())
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// Renew renews the certificate now. The controller checks the current certificate (mutual
// TLS) and signs a new key generated here. The identity file is rewritten first, then the
// certificate slot switched: links already open stay up, new links and dials present the new
// certificate.
func (id *Identity) Renew(ctx context.Context) error {
	id.renewing.Lock()
	defer id.renewing.Unlock()
	renewed, err := enroll.RenewIdentity(ctx, id.File(), id.slot.Get(), enroll.Options{Logger: id.log, Timeout: id.opts.RenewTimeout})
	if err != nil {
		return err
	}
	cert, err := renewed.TLSCertificate()
	if err != nil {
		return fmt.Errorf("renewed certificate: %w", err)
	}
	received := time.Now()
	switch err := enroll.ReplaceIdentity(id.path, renewed); {
	case errors.Is(err, enroll.ErrFileChanged):
		id.log.Info("identity file left as it is", "file", id.path, "reason", err)
	case err != nil:
		id.log.Warn("renewed certificate not written to the identity file; a restart uses the file's older certificate", "file", id.path, "err", err)
	}
	id.slot.Set(cert)
	next := renewalTime(received, cert.Leaf.NotAfter, rand.Float64())
	id.mu.Lock()
	id.file, id.renewAt = renewed, next
	id.mu.Unlock()
	id.log.Info("certificate renewed", "identity", renewed, "serial", cert.Leaf.SerialNumber.Text(16),
		"expires_at", cert.Leaf.NotAfter.UTC(), "next_renewal_at", next.UTC())
	return nil
}

// renewalTime is when a certificate valid until notAfter, counted from from, is renewed:
// after 62 % to 72 % of that span (r in [0, 1) picks the point).
func renewalTime(from, notAfter time.Time, r float64) time.Time {
	frac := 2.0/3 + (r-0.5)/10
	return from.Add(time.Duration(float64(notAfter.Sub(from)) * frac))
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
