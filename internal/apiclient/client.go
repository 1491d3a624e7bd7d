// Package apiclient is the Go client of the ztna management API, shared by the Terraform
// provider, the ztna CLI and enrolment. It talks HTTPS to the edge API and trusts only the
// controller CA named by its fingerprint.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/backoff"
	"github.com/ztna/ztna/internal/pki"
)

// Client calls the management API of one controller.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client
	userAgent string
}

// Option adjusts a Client.
type Option func(*Client)

// WithTimeout bounds every request (default 30 s), and a call's retries when its context has
// no deadline.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.http.Timeout = d } }

// WithUserAgent sets the User-Agent header (for example "terraform-provider-ztna/1.2").
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithClientCertificate presents the certificate in slot when the server asks for one: an
// identity proves itself this way when it renews its certificate (POST /v1/renew).
func WithClientCertificate(slot *pki.CertSlot) Option {
	return func(c *Client) {
		c.http.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = slot.GetClientCertificate
	}
}

// New returns a client for the controller at baseURL (https://host:port), authenticating with
// the bearer token (may be empty for enrolment) and trusting only the CA whose fingerprint is
// caFingerprint ("sha256:<hex>"). A server presenting another CA fails with an error that says
// "TLS interception or wrong controller".
func New(baseURL, token, caFingerprint string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("controller address %q must be an https:// URL such as https://controller.example.com", baseURL)
	}
	tlsConf, err := pki.PinnedClientConfig(caFingerprint, api.KindController)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		TLSClientConfig:     tlsConf,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	c := &Client{base: u, token: token, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, userAgent: "ztna-apiclient"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// BaseURL returns the controller address the client talks to.
func (c *Client) BaseURL() string { return c.base.String() }

// Error is a non-2xx answer of the API.
type Error struct {
	StatusCode int
	Problem    api.Problem
	// RetryAfter is the server's Retry-After (0 if none), sent with 503.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("controller answered %d: %s", e.StatusCode, e.Problem.Error())
}

// Temporary reports whether a request that failed with err may succeed if sent again
// unchanged: the controller was not reached or its answer was lost (a transport error), or it
// said so (503, store unavailable; 502/504 from a proxy in front of it). A refusal or a bug
// (any other status) is final.
func Temporary(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || IsPinMismatch(err) {
		return false // a server that is not the pinned controller stays one
	}
	var e *Error
	if !errors.As(err, &e) {
		return true
	}
	switch e.StatusCode {
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func statusIs(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == code
}

// IsNotFound reports whether err is a 404 (the object does not exist, e.g. deleted out of band).
func IsNotFound(err error) bool { return statusIs(err, http.StatusNotFound) }

// IsConflict reports whether err is a 409 (a name is already taken).
func IsConflict(err error) bool { return statusIs(err, http.StatusConflict) }

// IsUnauthorized reports whether err is a 401 (missing or wrong token).
func IsUnauthorized(err error) bool { return statusIs(err, http.StatusUnauthorized) }

// IsBadRequest reports whether err is a 400 (validation or malformed request).
func IsBadRequest(err error) bool { return statusIs(err, http.StatusBadRequest) }

// ProblemType returns the problem type of an API error ("" for other errors).
func ProblemType(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Problem.Type
	}
	return ""
}

// IsPinMismatch reports whether err comes from a server that did not present the pinned CA.
func IsPinMismatch(err error) bool {
	var e *pki.PinMismatchError
	return errors.As(err, &e)
}

// Retry delays: a server's Retry-After wins; without one, backoff from retryMin to retryMax.
const (
	retryMin = 200 * time.Millisecond
	retryMax = 5 * time.Second
)

// do sends in (if not nil) as JSON and decodes a 2xx body into out (if not nil; a *[]byte
// receives the body as is).
//
// It sends the request again after a 503 (the controller's store is unavailable, so the
// request was not applied), whatever the method, and after a transport error only for GET,
// PUT and DELETE: those are idempotent, while a POST or PATCH whose reply was lost may have
// been applied. It waits the server's Retry-After, or a growing backoff, and gives up with
// the last error once the next attempt would start after ctx's deadline (without one, after
// the client's timeout from the first attempt).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var payload []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		payload = b
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.http.Timeout)
	}
	bo := backoff.New(retryMin, retryMax)
	for {
		err := c.once(ctx, method, path, payload, out)
		wait, retry := retryDelay(method, err, bo)
		if !retry || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// transportError is a request that got no HTTP answer.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// retryDelay says whether a failed call may be sent again (see do) and after how long.
func retryDelay(method string, err error, bo *backoff.Backoff) (time.Duration, bool) {
	var apiErr *Error
	var tErr *transportError
	var netErr *net.OpError
	switch {
	case errors.As(err, &apiErr):
		if apiErr.StatusCode != http.StatusServiceUnavailable {
			return 0, false
		}
		if apiErr.RetryAfter > 0 {
			return apiErr.RetryAfter, true
		}
		return bo.Next(), true
	case errors.As(err, &tErr):
		// Only a connection that failed or broke (refused, reset, closed early) may work
		// next time; a controller that shows the wrong certificate stays wrong.
		if !errors.As(err, &netErr) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, false
		}
		switch method {
		case http.MethodGet, http.MethodPut, http.MethodDelete:
			return bo.Next(), true
		}
	}
	return 0, false
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// once sends one request; see do.
func (c *Client) once(ctx context.Context, method, path string, payload []byte, out any) error {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, "+api.ProblemContentType)
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &transportError{fmt.Errorf("%s %s: %w", method, path, err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{StatusCode: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
		if json.Unmarshal(raw, &e.Problem) != nil || e.Problem.Title == "" {
			e.Problem = api.Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode), Detail: strings.TrimSpace(string(raw))}
		}
		return e
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if b, ok := out.(*[]byte); ok {
		*b = raw
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

func get[T any](ctx context.Context, c *Client, path string) (*T, error) {
	var out T
	if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func send[T any](ctx context.Context, c *Client, method, path string, in any) (*T, error) {
	var out T
	if err := c.do(ctx, method, path, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func idPath(collection, id string) string { return "/v1/" + collection + "/" + url.PathEscape(id) }

// CloseIdleConnections closes kept-alive connections to the controller (for example before
// the controller shuts down, so it need not wait for them).
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }
