package edgeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/ztna/ztna/controller/policy"
	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/regkey"
)

// Routers.

func (s *Server) createRouter(ctx context.Context, in *api.RouterCreate) (*api.Router, error) {
	r := &api.Router{Name: in.Name, Roles: in.Roles, Cost: in.Cost}
	if err := s.store.CreateRouter(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

func (s *Server) getRouter(ctx context.Context, id string) (*api.Router, error) {
	r, err := s.store.GetRouter(ctx, id)
	if err == nil {
		s.checkAttestation(r)
	}
	return r, err
}

func (s *Server) listRouters(ctx context.Context, p store.Page) ([]api.Router, error) {
	rs, err := s.store.PageRouters(ctx, p)
	for i := range rs {
		s.checkAttestation(&rs[i])
	}
	return rs, err
}

// resetEnrollment lets the router's next enrolment through with any valid registration key
// (store.AdmitEnrolment), for an operator who lost the router's host and holds a key created
// without allow_reenrollment. The running router, if any, keeps its certificate until that
// enrolment supersedes it; the enrolment spends the reset.
func (s *Server) resetEnrollment(ctx context.Context, id string) (*api.Router, error) {
	r, err := s.store.UpdateRouter(ctx, id, func(r *api.Router) error {
		r.ReenrollmentAllowed = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "router enrolment reset: its next enrolment is admitted with any valid key", "router_id", id)
	s.checkAttestation(r)
	return r, nil
}

func (s *Server) updateRouter(ctx context.Context, id string, in *api.RouterUpdate) (*api.Router, error) {
	r, err := s.store.UpdateRouter(ctx, id, func(r *api.Router) error {
		setIf(&r.Name, in.Name)
		setIf(&r.Roles, in.Roles)
		setIf(&r.Cost, in.Cost)
		return nil
	})
	if err == nil {
		s.checkAttestation(r)
	}
	return r, err
}

// checkAttestation fills in the verdict on the router's reported attestation. It is checked
// when read, so a build key added to or removed from the configuration applies at once.
func (s *Server) checkAttestation(r *api.Router) {
	status := control.AttestationMissing
	if len(r.Attestation) > 0 {
		var a control.Attestation
		if err := json.Unmarshal(r.Attestation, &a); err != nil {
			status = control.AttestationBadSignature
		} else {
			status = s.attKeys.Verify(&a)
		}
	}
	r.AttestationVerified = status == control.AttestationVerified
	r.AttestationReason = string(status)
}

// Services.

func (s *Server) createService(ctx context.Context, in *api.ServiceCreate) (*api.Service, error) {
	v := &api.Service{Name: in.Name, Address: in.Address, Port: in.Port, PortRanges: in.PortRanges, Protocol: in.Protocol, RouterRoles: in.RouterRoles}
	if v.Protocol == "" {
		v.Protocol = api.ProtocolTCP
	}
	if err := s.store.CreateService(ctx, v); err != nil {
		return nil, err
	}
	return s.serviceView(ctx, v)
}

func (s *Server) getService(ctx context.Context, id string) (*api.Service, error) {
	v, err := s.store.GetService(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.serviceView(ctx, v)
}

func (s *Server) listServices(ctx context.Context, p store.Page) ([]api.Service, error) {
	svcs, err := s.store.PageServices(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := s.summarise(ctx, svcs); err != nil {
		return nil, err
	}
	return svcs, nil
}

func (s *Server) updateService(ctx context.Context, id string, in *api.ServiceUpdate) (*api.Service, error) {
	v, err := s.store.UpdateService(ctx, id, func(v *api.Service) error {
		setIf(&v.Name, in.Name)
		setIf(&v.Address, in.Address)
		setIf(&v.Port, in.Port)
		setIf(&v.PortRanges, in.PortRanges)
		setIf(&v.Protocol, in.Protocol)
		setIf(&v.RouterRoles, in.RouterRoles)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.serviceView(ctx, v)
}

func (s *Server) serviceView(ctx context.Context, v *api.Service) (*api.Service, error) {
	one := []api.Service{*v}
	if err := s.summarise(ctx, one); err != nil {
		return nil, err
	}
	return &one[0], nil
}

// summarise fills in the router summary of every service of a page from one pass over the
// routers that hold any of their roles: a page of services costs one scan of its hosting
// routers, not one per service, and the answer no longer grows with the fleet (inlining
// every router made the list of 1,000 services 8 MB when 10 were hosted by 5,010 routers).
func (s *Server) summarise(ctx context.Context, svcs []api.Service) error {
	var roles []string
	for i := range svcs {
		svcs[i].RouterSummary = api.RouterSummary{FailureDomains: []string{}}
		for _, r := range svcs[i].RouterRoles {
			if !slices.Contains(roles, r) {
				roles = append(roles, r)
			}
		}
	}
	err := s.eachRouter(ctx, roles, func(r *api.Router) {
		for i := range svcs {
			if policy.Hosts(r, &svcs[i]) {
				addToSummary(&svcs[i].RouterSummary, r, svcs[i].Name)
			}
		}
	})
	return err
}

func addToSummary(sum *api.RouterSummary, r *api.Router, service string) {
	sum.Total++
	switch r.Status {
	case api.RouterOnline:
		sum.Online++
		if sr := serviceRoute(r, service); sr.CheckedAt != nil && !(sr.Resolvable && sr.Reachable) {
			sum.Unhealthy++
		}
	case api.RouterOffline:
		sum.Offline++
	default:
		sum.Unenrolled++
	}
	if fd := r.FailureDomain; fd != "" {
		if i, found := slices.BinarySearch(sum.FailureDomains, fd); !found {
			sum.FailureDomains = slices.Insert(sum.FailureDomains, i, fd)
		}
	}
}

// serviceRoute is router r as a host of the named service, with what it last reported.
func serviceRoute(r *api.Router, service string) api.ServiceRoute {
	sr := api.ServiceRoute{RouterID: r.ID, RouterName: r.Name, Status: r.Status, FailureDomain: r.FailureDomain}
	for _, h := range r.Services {
		if h.Name == service {
			sr.Resolvable, sr.Reachable = h.Resolvable, h.Reachable
			t := h.CheckedAt
			sr.CheckedAt = &t
		}
	}
	return sr
}

// serviceRoutes answers GET /v1/services/{id}/routers: a page of the routers whose roles
// select the service, with what each last reported about it, so operators (and the
// provider) see where it runs and whether it spans two failure domains.
func (s *Server) serviceRoutes(w http.ResponseWriter, r *http.Request) {
	v, err := s.store.GetService(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	handleList(s, nil, func(sr *api.ServiceRoute) string { return sr.RouterID },
		func(ctx context.Context, p store.Page) ([]api.ServiceRoute, error) {
			out := []api.ServiceRoute{}
			if len(v.RouterRoles) == 0 {
				return out, nil // no role selects no router (an empty Page.Roles would select all)
			}
			p.Roles = v.RouterRoles
			rs, err := s.store.PageRouters(ctx, p)
			for i := range rs {
				out = append(out, serviceRoute(&rs[i], v.Name))
			}
			return out, err
		})(w, r)
}

// Identities.

// newKey mints a one-time secret and the stored key holding only its SHA-256.
func newKey(ttlSeconds int) (*store.Key, string) {
	ttl := ttlOrDefault(ttlSeconds)
	secret := regkey.NewSecret()
	return &store.Key{SecretHash: regkey.Hash(secret), TTLSeconds: int(ttl.Seconds()), ExpiresAt: time.Now().Add(ttl)}, secret
}

func (s *Server) createIdentity(ctx context.Context, in *api.IdentityCreate) (*api.Identity, error) {
	tok, secret := newKey(in.TokenTTLSeconds)
	v := &api.Identity{Name: in.Name, Roles: in.Roles}
	if err := s.store.CreateIdentity(ctx, v, tok); err != nil {
		return nil, err
	}
	v.EnrollmentToken = s.keyString(tok, secret)
	s.log.InfoContext(ctx, "identity created", "identity_id", v.ID, "token_id", tok.ID, "token_expires_at", tok.ExpiresAt)
	return v, nil
}

// reissueIdentityToken mints a new enrolment token for an existing identity and revokes its
// earlier unused ones, so an identity whose token expired unused or whose certificate
// expired enrols again under the same id. Certificates issued earlier stay valid until they
// expire, as with renewal.
func (s *Server) reissueIdentityToken(ctx context.Context, id string, in *api.IdentityTokenReissue) (*api.Identity, error) {
	tok, secret := newKey(in.TokenTTLSeconds)
	v, err := s.store.ReissueIdentityToken(ctx, id, tok)
	if err != nil {
		return nil, err
	}
	v.EnrollmentToken = s.keyString(tok, secret)
	s.log.InfoContext(ctx, "identity enrolment token reissued", "identity_id", v.ID, "token_id", tok.ID, "token_expires_at", tok.ExpiresAt)
	return v, nil
}

// revokeIdentityTokens revokes every unused enrolment token of an identity, so that a token
// handed out for one enrolment that did not happen (Terraform's ephemeral token at the end
// of a run) cannot be used later. A token used meanwhile stays used.
func (s *Server) revokeIdentityTokens(ctx context.Context, id string) (*api.Identity, error) {
	v, err := s.store.GetIdentity(ctx, id)
	if err != nil {
		return nil, err
	}
	toks, err := s.store.ListKeys(ctx, api.KindIdentity)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for _, k := range toks {
		if k.SubjectID != id || k.State(now) != api.KeyUnused {
			continue
		}
		if _, err := s.store.RevokeKey(ctx, k.ID); err != nil && !errors.Is(err, store.ErrKeyUsed) {
			return nil, err
		}
		s.log.InfoContext(ctx, "identity enrolment token revoked", "identity_id", id, "token_id", k.ID)
	}
	return v, nil
}

func (s *Server) updateIdentity(ctx context.Context, id string, in *api.IdentityUpdate) (*api.Identity, error) {
	return s.store.UpdateIdentity(ctx, id, func(v *api.Identity) error {
		setIf(&v.Name, in.Name)
		setIf(&v.Roles, in.Roles)
		return nil
	})
}

// Service policies.

func (s *Server) createPolicy(ctx context.Context, in *api.ServicePolicyCreate) (*api.ServicePolicy, error) {
	v := &api.ServicePolicy{Name: in.Name, IdentityRoles: in.IdentityRoles, ServiceNames: in.ServiceNames}
	if err := s.store.CreateServicePolicy(ctx, v); err != nil {
		return nil, err
	}
	return v, nil
}

func (s *Server) updatePolicy(ctx context.Context, id string, in *api.ServicePolicyUpdate) (*api.ServicePolicy, error) {
	return s.store.UpdateServicePolicy(ctx, id, func(v *api.ServicePolicy) error {
		setIf(&v.Name, in.Name)
		setIf(&v.IdentityRoles, in.IdentityRoles)
		setIf(&v.ServiceNames, in.ServiceNames)
		return nil
	})
}

// Registration keys.

func (s *Server) createKey(ctx context.Context, in *api.RegistrationKeyCreate) (*api.RegistrationKey, error) {
	k, secret := newKey(in.TTLSeconds)
	k.Kind, k.SubjectID, k.AllowReenrollment = api.KindRouter, in.RouterID, in.AllowReenrollment
	if err := s.store.CreateKey(ctx, k); err != nil {
		return nil, err
	}
	v := keyView(k, time.Now())
	v.Key = s.keyString(k, secret)
	s.log.InfoContext(ctx, "registration key created", "key_id", k.ID, "router_id", k.SubjectID, "expires_at", k.ExpiresAt,
		"allow_reenrollment", k.AllowReenrollment)
	return v, nil
}

// routerKey returns a key of kind router; identity tokens are not registration keys.
func (s *Server) routerKey(ctx context.Context, id string) (*store.Key, error) {
	k, err := s.store.GetKey(ctx, id)
	if err != nil {
		return nil, err
	}
	if k.Kind != api.KindRouter {
		return nil, fmt.Errorf("registration key %q: %w", id, store.ErrNotFound)
	}
	return k, nil
}

func (s *Server) getKey(ctx context.Context, id string) (*api.RegistrationKey, error) {
	k, err := s.routerKey(ctx, id)
	if err != nil {
		return nil, err
	}
	return keyView(k, time.Now()), nil
}

func (s *Server) listKeys(ctx context.Context, p store.Page) ([]api.RegistrationKey, error) {
	keys, err := s.store.PageKeys(ctx, api.KindRouter, p)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]api.RegistrationKey, len(keys))
	for i := range keys {
		out[i] = *keyView(&keys[i], now)
	}
	return out, nil
}

func (s *Server) revokeKey(ctx context.Context, id string) (*api.RegistrationKey, error) {
	if _, err := s.routerKey(ctx, id); err != nil {
		return nil, err
	}
	k, err := s.store.RevokeKey(ctx, id)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "registration key revoked", "key_id", id)
	return keyView(k, time.Now()), nil
}

func (s *Server) deleteKey(ctx context.Context, id string) error {
	if _, err := s.routerKey(ctx, id); err != nil {
		return err
	}
	return s.store.DeleteKey(ctx, id)
}

func keyView(k *store.Key, now time.Time) *api.RegistrationKey {
	return &api.RegistrationKey{ID: k.ID, RouterID: k.SubjectID, TTLSeconds: k.TTLSeconds, AllowReenrollment: k.AllowReenrollment,
		ExpiresAt: k.ExpiresAt, State: k.State(now), UsedAt: k.UsedAt, CreatedAt: k.CreatedAt}
}

// keyString encodes the copy-pasteable key: the secret plus everything the enrolling host
// needs to find and pin this controller.
func (s *Server) keyString(k *store.Key, secret string) string {
	return (&regkey.Key{ID: k.ID, Secret: secret, Kind: k.Kind, Edge: s.endpoints.Edge, Control: s.endpoints.Control,
		Fabric: s.endpoints.Fabric, CA: s.issuer.CA.Fingerprint(), Exp: k.ExpiresAt.Unix()}).Encode()
}

func ttlOrDefault(seconds int) time.Duration {
	if seconds == 0 {
		return api.DefaultKeyTTL
	}
	return time.Duration(seconds) * time.Second
}

func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}
