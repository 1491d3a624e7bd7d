package edgeapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/enroll"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/internal/regkey"
)

func (e *env) router(t *testing.T, name string) *api.Router {
	t.Helper()
	r, err := e.client.CreateRouter(context.Background(), api.RouterCreate{Name: name, Roles: []string{"edge"}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *env) key(t *testing.T, routerID string, ttl int) *api.RegistrationKey {
	t.Helper()
	k, err := e.client.CreateRegistrationKey(context.Background(), api.RegistrationKeyCreate{RouterID: routerID, TTLSeconds: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (e *env) keyState(t *testing.T, id string) string {
	t.Helper()
	k, err := e.client.GetRegistrationKey(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return k.State
}

func TestEnrolRouterLifecycle(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	r := e.router(t, "edge-1")
	k := e.key(t, r.ID, 0)
	if k.ExpiresAt.Sub(k.CreatedAt) < 3*time.Hour-time.Minute {
		t.Fatalf("default expiry is %v, want 3h", k.ExpiresAt.Sub(k.CreatedAt))
	}

	dir := filepath.Join(t.TempDir(), "state")
	cfg, err := enroll.Router(ctx, k.Key, dir, false, enroll.Options{})
	if err != nil {
		t.Fatalf("fresh key: %v", err)
	}
	if cfg.ID != r.ID || cfg.Name != "edge-1" || cfg.Kind != api.KindRouter || len(cfg.Control) != 1 || len(cfg.Fabric) != 1 || cfg.CAFingerprint != e.c.CA.Fingerprint() {
		t.Fatalf("config: %+v", cfg)
	}
	fi, err := os.Stat(filepath.Join(dir, enroll.KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key.pem: %v %v", fi.Mode(), err)
	}
	chain, _ := os.ReadFile(filepath.Join(dir, enroll.CertFile))
	leaf, _ := pki.ParseCertPEM(chain)
	if kind, id, _ := pki.Identity(leaf); kind != "router" || id != r.ID {
		t.Fatalf("certificate names %s/%s", kind, id)
	}
	if d := time.Until(leaf.NotAfter); d > time.Hour || d < 55*time.Minute {
		t.Fatalf("certificate lifetime %v, want the configured 1h", d)
	}
	if got, _ := e.client.GetRouter(ctx, r.ID); got.Status != api.RouterOffline {
		t.Fatalf("router status after enrolment: %q", got.Status)
	}
	if st := e.keyState(t, k.ID); st != api.KeyUsed {
		t.Fatalf("key state %q", st)
	}

	// Second use: "already used".
	_, err = enroll.Router(ctx, k.Key, t.TempDir(), false, enroll.Options{})
	if err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("second use: %v", err)
	}
	// The state dir is not overwritten by accident.
	if _, err := enroll.Router(ctx, e.key(t, r.ID, 0).Key, dir, false, enroll.Options{}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("re-enrol into an enrolled dir: %v", err)
	}
}

func TestEnrolRefusals(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	r := e.router(t, "edge-1")

	expired := e.key(t, r.ID, 1)
	revoked := e.key(t, r.ID, 0)
	if _, err := e.client.RevokeRegistrationKey(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	if st := e.keyState(t, revoked.ID); st != api.KeyRevoked {
		t.Fatalf("revoked key state %q", st)
	}
	parsed, _ := regkey.Parse(e.key(t, r.ID, 0).Key)
	unknown := *parsed
	unknown.ID = "doesnotexist"
	wrongSecret := *parsed
	wrongSecret.Secret = regkey.NewSecret()
	otherCA, _ := pki.NewCA("someone else")
	pinnedElsewhere := *parsed
	pinnedElsewhere.CA = otherCA.Fingerprint()
	time.Sleep(1100 * time.Millisecond) // let the 1 s key expire

	for _, tc := range []struct {
		name, key, want string
	}{
		{"expired", expired.Key, "expired"},
		{"revoked", revoked.Key, "revoked"},
		{"unknown", unknown.Encode(), "does not know this key"},
		{"wrong secret", wrongSecret.Encode(), "does not know this key"},
		{"malformed", "ztna-key-v1.AAAA", "malformed registration key"},
		{"truncated", parsed.Encode()[:40], "malformed registration key"},
		{"pinned to another CA", pinnedElsewhere.Encode(), "TLS interception or wrong controller"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := enroll.Router(ctx, tc.key, t.TempDir(), false, enroll.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
	// None of the refusals consumed the real key behind them.
	if st := e.keyState(t, parsed.ID); st != api.KeyUnused {
		t.Fatalf("refused attempts changed the key: %q", st)
	}
	if got, _ := e.client.GetRouter(ctx, r.ID); got.Status != api.RouterUnenrolled {
		t.Fatalf("refused attempts enrolled the router: %q", got.Status)
	}

	// A bad CSR is refused with its own problem and changes nothing.
	for _, csr := range []string{"not a csr", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"} {
		body, _ := json.Marshal(api.EnrollRequest{Key: parsed.Encode(), CSR: csr})
		st, p := e.raw(t, http.MethodPost, "/v1/enroll", "", string(body))
		if st != http.StatusBadRequest || p.Type != api.ProblemCSRInvalid || len(p.Errors) != 1 || p.Errors[0].Field != "csr" {
			t.Fatalf("bad CSR: %d %+v", st, p)
		}
	}
	if st := e.keyState(t, parsed.ID); st != api.KeyUnused {
		t.Fatalf("a bad CSR consumed the key: %q", st)
	}
	// ... so the key still works once.
	if _, err := enroll.Router(ctx, parsed.Encode(), t.TempDir(), false, enroll.Options{}); err != nil {
		t.Fatalf("key after refusals: %v", err)
	}
	// Distinct problem types for each refusal, for programs.
	for key, typ := range map[string]string{expired.Key: api.ProblemKeyExpired, revoked.Key: api.ProblemKeyRevoked,
		parsed.Encode(): api.ProblemKeyUsed, unknown.Encode(): api.ProblemKeyUnknown, "garbage": api.ProblemKeyMalformed} {
		priv, _ := pki.GenerateKey()
		csr, _ := pki.NewCSR(priv, "x")
		body, _ := json.Marshal(api.EnrollRequest{Key: key, CSR: string(csr)})
		if _, p := e.raw(t, http.MethodPost, "/v1/enroll", "", string(body)); p.Type != typ {
			t.Errorf("problem type %q, want %q", p.Type, typ)
		}
	}
}

func TestParallelEnrolment(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	const n = 50

	// 50 routers, 50 keys, 50 concurrent enrolments: all succeed.
	keys := make([]string, n)
	for i := range n {
		r := e.router(t, "edge-"+string(rune('a'+i/26))+string(rune('a'+i%26)))
		keys[i] = e.key(t, r.ID, 0).Key
	}
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := enroll.Router(ctx, keys[i], t.TempDir(), false, enroll.Options{}); err != nil {
				failed.Add(1)
				t.Errorf("enrolment %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d parallel enrolments failed", failed.Load(), n)
	}

	// One key, 50 concurrent uses: exactly one succeeds, the others say "already used".
	one := e.key(t, e.router(t, "contended").ID, 0).Key
	var wins, used atomic.Int32
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := enroll.Router(ctx, one, t.TempDir(), false, enroll.Options{})
			switch {
			case err == nil:
				wins.Add(1)
			case strings.Contains(err.Error(), "already used"):
				used.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || used.Load() != n-1 {
		t.Fatalf("one key used %d times concurrently: %d succeeded, %d already used; want exactly 1", n, wins.Load(), used.Load())
	}
}

func TestEnrolIdentity(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	id, err := e.client.CreateIdentity(ctx, api.IdentityCreate{Name: "runtime", Roles: []string{"integrations"}})
	if err != nil {
		t.Fatal(err)
	}
	// A router key where an identity token is expected, and vice versa, is refused locally.
	if _, err := enroll.Router(ctx, id.EnrollmentToken, t.TempDir(), false, enroll.Options{}); err == nil || !strings.Contains(err.Error(), "identity key") {
		t.Fatalf("identity token used for a router: %v", err)
	}
	path := filepath.Join(t.TempDir(), "runtime.json")
	cfg, err := enroll.Identity(ctx, id.EnrollmentToken, path, false, enroll.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kind != api.KindIdentity || cfg.ID != id.ID || cfg.Roles[0] != "integrations" {
		t.Fatalf("config: %+v", cfg)
	}
	f, err := enroll.LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.TLSCertificate(); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.client.GetIdentity(ctx, id.ID); !got.Enrolled {
		t.Fatal("identity not marked enrolled")
	}
	if _, err := enroll.Identity(ctx, id.EnrollmentToken, filepath.Join(t.TempDir(), "again.json"), false, enroll.Options{}); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("token reuse: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := enroll.LoadIdentity(path); err == nil {
		t.Fatal("world-readable identity file accepted")
	}
}

// TestSecretsNeverLogged runs a create/enrol cycle and checks that no secret reached the log.
func TestSecretsNeverLogged(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	r := e.router(t, "edge-1")
	k := e.key(t, r.ID, 0)
	dir := t.TempDir()
	if _, err := enroll.Router(ctx, k.Key, dir, false, enroll.Options{}); err != nil {
		t.Fatal(err)
	}
	id, _ := e.client.CreateIdentity(ctx, api.IdentityCreate{Name: "rt"})
	if _, err := enroll.Identity(ctx, id.EnrollmentToken, filepath.Join(t.TempDir(), "id.json"), false, enroll.Options{}); err != nil {
		t.Fatal(err)
	}
	e.raw(t, http.MethodGet, "/v1/routers", "wrong-token-but-secret-ish", "")
	pk, _ := regkey.Parse(k.Key)
	pt, _ := regkey.Parse(id.EnrollmentToken)
	keyPEM, _ := os.ReadFile(filepath.Join(dir, enroll.KeyFile))
	logs := e.logs.String()
	if !strings.Contains(logs, `"msg":"enrolled"`) {
		t.Fatalf("the log lacks the enrolment record; is the logger wired? %s", logs)
	}
	for name, secret := range map[string]string{
		"admin token": testToken, "registration key": k.Key, "key secret": pk.Secret,
		"identity token": id.EnrollmentToken, "token secret": pt.Secret, "wrong token": "wrong-token-but-secret-ish",
		"router private key": strings.Split(string(keyPEM), "\n")[1],
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s appears in the log", name)
		}
	}
}

// TestReissueIdentityToken: a reissued token enrols the same identity again with a new key,
// once; the earlier unused token is refused as revoked; an expired reissued token is refused;
// ttl is validated as at create; an unknown identity is a 404 naming it.
func TestReissueIdentityToken(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	id, err := e.client.CreateIdentity(ctx, api.IdentityCreate{Name: "runtime", Roles: []string{"integrations"}})
	if err != nil {
		t.Fatal(err)
	}
	firstPath := filepath.Join(t.TempDir(), "first.json")
	if _, err := enroll.Identity(ctx, id.EnrollmentToken, firstPath, false, enroll.Options{}); err != nil {
		t.Fatal(err)
	}
	unused, err := e.client.ReissueIdentityToken(ctx, id.ID, api.IdentityTokenReissue{})
	if err != nil {
		t.Fatal(err)
	}
	re, err := e.client.ReissueIdentityToken(ctx, id.ID, api.IdentityTokenReissue{TokenTTLSeconds: 600})
	if err != nil {
		t.Fatal(err)
	}
	if re.ID != id.ID || re.EnrollmentToken == "" || re.EnrollmentToken == unused.EnrollmentToken || !re.Enrolled {
		t.Fatalf("reissue answer %+v", re)
	}
	if d := time.Until(re.TokenExpiresAt); d < 590*time.Second || d > 601*time.Second {
		t.Fatalf("token_expires_at %s, want in 600 s", re.TokenExpiresAt)
	}
	if got, _ := e.client.GetIdentity(ctx, id.ID); !got.TokenExpiresAt.Equal(re.TokenExpiresAt) || got.EnrollmentToken != "" {
		t.Fatalf("stored identity %+v", got)
	}
	if _, err := enroll.Identity(ctx, unused.EnrollmentToken, filepath.Join(t.TempDir(), "old.json"), false, enroll.Options{}); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("earlier token after reissue: %v, want revoked", err)
	}
	path := filepath.Join(t.TempDir(), "again.json")
	second, err := enroll.Identity(ctx, re.EnrollmentToken, path, false, enroll.Options{})
	if err != nil {
		t.Fatalf("reissued token: %v", err)
	}
	if second.ID != id.ID || second.Kind != api.KindIdentity {
		t.Fatalf("re-enrolled config %+v, want identity %s", second, id.ID)
	}
	// A new key, a certificate naming the same identity; the first certificate stays usable.
	f, err := enroll.LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	old, err := enroll.LoadIdentity(firstPath)
	if err != nil {
		t.Fatal(err)
	}
	if f.Key == old.Key {
		t.Fatal("re-enrolment reused the first key")
	}
	for _, file := range []*enroll.IdentityFile{f, old} {
		c, err := file.TLSCertificate()
		if err != nil {
			t.Fatal(err)
		}
		if u := c.Leaf.URIs; len(u) != 1 || u[0].String() != "ztna://identity/"+id.ID {
			t.Fatalf("certificate names %v, want ztna://identity/%s", u, id.ID)
		}
	}
	if _, err := enroll.Identity(ctx, re.EnrollmentToken, filepath.Join(t.TempDir(), "twice.json"), false, enroll.Options{}); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("second use of the reissued token: %v", err)
	}

	short, err := e.client.ReissueIdentityToken(ctx, id.ID, api.IdentityTokenReissue{TokenTTLSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := enroll.Identity(ctx, short.EnrollmentToken, filepath.Join(t.TempDir(), "late.json"), false, enroll.Options{}); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired reissued token: %v", err)
	}

	// Revoked unused tokens are refused at enrolment; the enrolled identity stays enrolled.
	revoked, err := e.client.ReissueIdentityToken(ctx, id.ID, api.IdentityTokenReissue{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.client.RevokeIdentityTokens(ctx, id.ID); err != nil || got.ID != id.ID || !got.Enrolled {
		t.Fatalf("revoke tokens: %+v, %v", got, err)
	}
	if _, err := enroll.Identity(ctx, revoked.EnrollmentToken, filepath.Join(t.TempDir(), "revoked.json"), false, enroll.Options{}); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("token after revoke: %v, want revoked", err)
	}
	if st, p := e.raw(t, http.MethodPost, "/v1/identities/nosuchidentity/enrollment-token/revoke", testToken, ``); st != http.StatusNotFound || p.Type != api.ProblemNotFound {
		t.Fatalf("revoke tokens of an unknown identity: %d %+v", st, p)
	}
	if st, _ := e.raw(t, http.MethodPost, "/v1/identities/"+id.ID+"/enrollment-token/revoke", "", ``); st != http.StatusUnauthorized {
		t.Fatalf("revoke tokens without the admin token: %d", st)
	}

	if st, p := e.raw(t, http.MethodPost, "/v1/identities/"+id.ID+"/enrollment-token", testToken, `{"token_ttl_seconds": -5}`); st != http.StatusBadRequest || len(p.Errors) != 1 || p.Errors[0].Field != "token_ttl_seconds" {
		t.Fatalf("bad ttl: %d %+v", st, p)
	}
	if st, p := e.raw(t, http.MethodPost, "/v1/identities/nosuchidentity/enrollment-token", testToken, `{}`); st != http.StatusNotFound || p.Type != api.ProblemNotFound || !strings.Contains(p.Detail, "nosuchidentity") {
		t.Fatalf("unknown identity: %d %+v", st, p)
	}
	if st, _ := e.raw(t, http.MethodPost, "/v1/identities/"+id.ID+"/enrollment-token", "", `{}`); st != http.StatusUnauthorized {
		t.Fatalf("reissue without the admin token: %d", st)
	}
}

// TestReenrolEnrolledRouter: an enrolled router refuses a fresh key created without
// allow_reenrollment (409 router-enrolled, saying what to do; the key stays unused, the
// running enrolment is not superseded), while the lost-reply retry of the enrolment that holds
// it still works; a key created with allow_reenrollment enrols it again, and so does any key
// once after POST /v1/routers/{id}/reset-enrollment, which the enrolment spends.
func TestReenrolEnrolledRouter(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	r := e.router(t, "edge-1")
	csr := func() string {
		priv, _ := pki.GenerateKey()
		c, _ := pki.NewCSR(priv, "x")
		return string(c)
	}
	enrol := func(key, csr string) (int, api.Problem) {
		body, _ := json.Marshal(api.EnrollRequest{Key: key, CSR: csr})
		return e.raw(t, http.MethodPost, "/v1/enroll", "", string(body))
	}
	first := e.key(t, r.ID, 0)
	if first.AllowReenrollment {
		t.Fatal("a key created without allow_reenrollment reads back with it")
	}
	firstCSR := csr()
	if st, p := enrol(first.Key, firstCSR); st != http.StatusOK {
		t.Fatalf("first enrolment of a new router: %d %+v", st, p)
	}

	stray := e.key(t, r.ID, 0)
	st, p := enrol(stray.Key, csr())
	if st != http.StatusConflict || p.Type != api.ProblemRouterEnrolled ||
		!strings.Contains(p.Detail, "allow_reenrollment = true") || !strings.Contains(p.Detail, "/v1/routers/"+r.ID+"/reset-enrollment") ||
		!strings.Contains(p.Detail, "edge-1") {
		t.Fatalf("a stray key for the enrolled router: %d %+v, want 409 %s naming both fixes", st, p, api.ProblemRouterEnrolled)
	}
	if s := e.keyState(t, stray.ID); s != api.KeyUnused {
		t.Fatalf("the refused key is %q, want unused", s)
	}
	// Through the client the router daemon uses, the refusal reads as the controller wrote it.
	if _, err := enroll.Router(ctx, stray.Key, t.TempDir(), false, enroll.Options{}); err == nil || !strings.Contains(err.Error(), "already enrolled") {
		t.Fatalf("enroll.Router with the stray key: %v", err)
	}
	if st, p := enrol(first.Key, firstCSR); st != http.StatusOK {
		t.Fatalf("retry of the holding enrolment (reply lost): %d %+v", st, p)
	}

	reenrol, err := e.client.CreateRegistrationKey(ctx, api.RegistrationKeyCreate{RouterID: r.ID, AllowReenrollment: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := e.client.GetRegistrationKey(ctx, reenrol.ID); !got.AllowReenrollment {
		t.Fatal("allow_reenrollment does not read back")
	}
	if st, p := enrol(reenrol.Key, csr()); st != http.StatusOK {
		t.Fatalf("a key with allow_reenrollment: %d %+v", st, p)
	}

	reset, err := e.client.ResetRouterEnrollment(ctx, r.ID)
	if err != nil || !reset.ReenrollmentAllowed {
		t.Fatalf("reset-enrollment: %+v %v", reset, err)
	}
	if st, p := enrol(stray.Key, csr()); st != http.StatusOK {
		t.Fatalf("the stray key after an operator reset: %d %+v", st, p)
	}
	if got, _ := e.client.GetRouter(ctx, r.ID); got.ReenrollmentAllowed {
		t.Fatal("the enrolment did not spend the reset")
	}
	if st, p := enrol(e.key(t, r.ID, 0).Key, csr()); st != http.StatusConflict || p.Type != api.ProblemRouterEnrolled {
		t.Fatalf("a key after the reset was spent: %d %+v", st, p)
	}
	if st, p := e.raw(t, http.MethodPost, "/v1/routers/nosuchrouter/reset-enrollment", testToken, ""); st != http.StatusNotFound {
		t.Fatalf("reset of an unknown router: %d %+v", st, p)
	}
	if st, _ := e.raw(t, http.MethodPost, "/v1/routers/"+r.ID+"/reset-enrollment", "", ""); st != http.StatusUnauthorized {
		t.Fatalf("reset without a token: %d", st)
	}
}
