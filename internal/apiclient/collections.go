package apiclient

import (
	"context"
	"net/http"

	"github.com/ztna/ztna/internal/api"
)

// Routers.

func (c *Client) CreateRouter(ctx context.Context, in api.RouterCreate) (*api.Router, error) {
	return send[api.Router](ctx, c, http.MethodPost, "/v1/routers", in)
}
func (c *Client) GetRouter(ctx context.Context, id string) (*api.Router, error) {
	return get[api.Router](ctx, c, idPath("routers", id))
}
func (c *Client) ListRouters(ctx context.Context, opts ...ListOption) ([]api.Router, error) {
	return list[api.Router](ctx, c, "/v1/routers", opts)
}
func (c *Client) UpdateRouter(ctx context.Context, id string, in api.RouterUpdate) (*api.Router, error) {
	return send[api.Router](ctx, c, http.MethodPatch, idPath("routers", id), in)
}
func (c *Client) DeleteRouter(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, idPath("routers", id), nil, nil)
}

// ResetRouterEnrollment lets the router's next enrolment through with any valid key, although
// the router is enrolled (POST /v1/routers/{id}/reset-enrollment).
func (c *Client) ResetRouterEnrollment(ctx context.Context, id string) (*api.Router, error) {
	return send[api.Router](ctx, c, http.MethodPost, idPath("routers", id)+"/reset-enrollment", nil)
}

// Registration keys (no update: revoke instead).

func (c *Client) CreateRegistrationKey(ctx context.Context, in api.RegistrationKeyCreate) (*api.RegistrationKey, error) {
	return send[api.RegistrationKey](ctx, c, http.MethodPost, "/v1/registration-keys", in)
}
func (c *Client) GetRegistrationKey(ctx context.Context, id string) (*api.RegistrationKey, error) {
	return get[api.RegistrationKey](ctx, c, idPath("registration-keys", id))
}
func (c *Client) ListRegistrationKeys(ctx context.Context, opts ...ListOption) ([]api.RegistrationKey, error) {
	return list[api.RegistrationKey](ctx, c, "/v1/registration-keys", opts)
}
func (c *Client) RevokeRegistrationKey(ctx context.Context, id string) (*api.RegistrationKey, error) {
	return send[api.RegistrationKey](ctx, c, http.MethodPost, idPath("registration-keys", id)+"/revoke", nil)
}
func (c *Client) DeleteRegistrationKey(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, idPath("registration-keys", id), nil, nil)
}

// Services.

func (c *Client) CreateService(ctx context.Context, in api.ServiceCreate) (*api.Service, error) {
	return send[api.Service](ctx, c, http.MethodPost, "/v1/services", in)
}
func (c *Client) GetService(ctx context.Context, id string) (*api.Service, error) {
	return get[api.Service](ctx, c, idPath("services", id))
}
func (c *Client) ListServices(ctx context.Context, opts ...ListOption) ([]api.Service, error) {
	return list[api.Service](ctx, c, "/v1/services", opts)
}

// ServiceRouters lists the routers selected to host the service, with what each last
// reported about it (GET /v1/services/{id}/routers, every page).
func (c *Client) ServiceRouters(ctx context.Context, id string, opts ...ListOption) ([]api.ServiceRoute, error) {
	return list[api.ServiceRoute](ctx, c, idPath("services", id)+"/routers", opts)
}
func (c *Client) UpdateService(ctx context.Context, id string, in api.ServiceUpdate) (*api.Service, error) {
	return send[api.Service](ctx, c, http.MethodPatch, idPath("services", id), in)
}
func (c *Client) DeleteService(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, idPath("services", id), nil, nil)
}

// Identities.

func (c *Client) CreateIdentity(ctx context.Context, in api.IdentityCreate) (*api.Identity, error) {
	return send[api.Identity](ctx, c, http.MethodPost, "/v1/identities", in)
}
func (c *Client) GetIdentity(ctx context.Context, id string) (*api.Identity, error) {
	return get[api.Identity](ctx, c, idPath("identities", id))
}
func (c *Client) ListIdentities(ctx context.Context, opts ...ListOption) ([]api.Identity, error) {
	return list[api.Identity](ctx, c, "/v1/identities", opts)
}
func (c *Client) UpdateIdentity(ctx context.Context, id string, in api.IdentityUpdate) (*api.Identity, error) {
	return send[api.Identity](ctx, c, http.MethodPatch, idPath("identities", id), in)
}

// ReissueIdentityToken mints a new enrolment token for the identity (in the answer's
// EnrollmentToken) and revokes its earlier unused ones.
func (c *Client) ReissueIdentityToken(ctx context.Context, id string, in api.IdentityTokenReissue) (*api.Identity, error) {
	return send[api.Identity](ctx, c, http.MethodPost, idPath("identities", id)+"/enrollment-token", in)
}

// RevokeIdentityTokens revokes the identity's unused enrolment tokens.
func (c *Client) RevokeIdentityTokens(ctx context.Context, id string) (*api.Identity, error) {
	return send[api.Identity](ctx, c, http.MethodPost, idPath("identities", id)+"/enrollment-token/revoke", nil)
}
func (c *Client) DeleteIdentity(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, idPath("identities", id), nil, nil)
}

// Service policies.

func (c *Client) CreateServicePolicy(ctx context.Context, in api.ServicePolicyCreate) (*api.ServicePolicy, error) {
	return send[api.ServicePolicy](ctx, c, http.MethodPost, "/v1/service-policies", in)
}
func (c *Client) GetServicePolicy(ctx context.Context, id string) (*api.ServicePolicy, error) {
	return get[api.ServicePolicy](ctx, c, idPath("service-policies", id))
}
func (c *Client) ListServicePolicies(ctx context.Context, opts ...ListOption) ([]api.ServicePolicy, error) {
	return list[api.ServicePolicy](ctx, c, "/v1/service-policies", opts)
}
func (c *Client) UpdateServicePolicy(ctx context.Context, id string, in api.ServicePolicyUpdate) (*api.ServicePolicy, error) {
	return send[api.ServicePolicy](ctx, c, http.MethodPatch, idPath("service-policies", id), in)
}
func (c *Client) DeleteServicePolicy(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, idPath("service-policies", id), nil, nil)
}

// Enroll exchanges a registration key or enrolment token and a CSR for a certificate.
// It needs no bearer token: the key authenticates.
func (c *Client) Enroll(ctx context.Context, in api.EnrollRequest) (*api.EnrollResponse, error) {
	return send[api.EnrollResponse](ctx, c, http.MethodPost, "/v1/enroll", in)
}

// Renew exchanges a CSR for a new certificate of the identity whose current certificate the
// client presents (WithClientCertificate): no bearer token, the certificate authenticates.
func (c *Client) Renew(ctx context.Context, in api.RenewRequest) (*api.EnrollResponse, error) {
	return send[api.EnrollResponse](ctx, c, http.MethodPost, "/v1/renew", in)
}

// OpenAPIDocument returns the controller's OpenAPI document, byte for byte.
func (c *Client) OpenAPIDocument(ctx context.Context) ([]byte, error) {
	var raw []byte
	if err := c.do(ctx, http.MethodGet, "/v1/openapi.json", nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}
