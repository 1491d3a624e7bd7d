package ec2fake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// DefaultAccount is the account of every request while no access key is registered (the tests
// that model one account), and the default owner of images and snapshots.
const DefaultAccount = "123456789012"

// accessKey is a registered credential: a long-term key of an account, or temporary credentials
// STS issued for a role (with their session token).
type accessKey struct {
	account, secret, token string
	// principal is the ARN GetCallerIdentity answers.
	principal string
}

// role is an IAM role the principals of the trusted accounts may assume.
type role struct {
	arn, account string
	trusted      []string
}

// AddAccount registers a long-term access key of account. Once any key is registered, a request
// signed with another key, or whose SigV4 signature does not verify with the key's secret, is
// refused as AWS refuses it.
func (s *Server) AddAccount(account, accessKeyID, secretAccessKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[accessKeyID] = &accessKey{account: account, secret: secretAccessKey, principal: "arn:aws:iam::" + account + ":user/ztna-test"}
}

var roleARNRE = regexp.MustCompile(`^arn:aws:iam::([0-9]{12}):role/[\w+=,.@/-]{1,64}$`)

// AddRole registers an IAM role (arn:aws:iam::<account>:role/<name>) whose trust policy lets the
// principals of the trusted accounts assume it.
func (s *Server) AddRole(arn string, trusted ...string) {
	m := roleARNRE.FindStringSubmatch(arn)
	if m == nil {
		panic("ec2fake: not a role ARN: " + arn)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles[arn] = &role{arn: arn, account: m[1], trusted: trusted}
}

// signature is what a request's Authorization header says: who signed it, for which service.
type signature struct {
	keyID, date, region, service, signed, sig string
	account, principal                        string
}

var authRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/([0-9]{8})/([^/]+)/([^/]+)/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$`)

// authenticate returns the signer of r (body raw). With no key registered any well-formed SigV4
// request is DefaultAccount's; otherwise the key must be known, its session token presented,
// and the signature must verify.
func (s *Server) authenticate(r *http.Request, raw []byte) (signature, *apiErr) {
	m := authRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return signature{}, &apiErr{http.StatusUnauthorized, "AuthFailure", "request is not signed with SigV4"}
	}
	sig := signature{keyID: m[1], date: m[2], region: m[3], service: m[4], signed: m[5], sig: m[6], account: DefaultAccount,
		principal: "arn:aws:iam::" + DefaultAccount + ":user/ztna-test"}
	if len(s.keys) == 0 {
		return sig, nil
	}
	key, ok := s.keys[sig.keyID]
	if !ok {
		code := "AuthFailure"
		if sig.service == "sts" {
			code = "InvalidClientTokenId"
		}
		return sig, &apiErr{http.StatusUnauthorized, code, "AWS was not able to validate the provided access credentials"}
	}
	if key.token != r.Header.Get("X-Amz-Security-Token") {
		return sig, &apiErr{http.StatusUnauthorized, "AuthFailure", "The security token included in the request is invalid"}
	}
	if !verify(r, raw, sig, key) {
		return sig, &apiErr{http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}
	}
	sig.account, sig.principal = key.account, key.principal
	return sig, nil
}

// verify signs a copy of r (its signed headers and body) with the key's secret, as the SDK
// signed it, and compares the signatures.
func verify(r *http.Request, raw []byte, sig signature, key *accessKey) bool {
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return false
	}
	req, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(raw))
	if err != nil {
		return false
	}
	for _, h := range strings.Split(sig.signed, ";") {
		if h != "host" && h != "content-length" {
			req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(raw)
	creds := awssdk.Credentials{AccessKeyID: sig.keyID, SecretAccessKey: key.secret, SessionToken: key.token}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), sig.service, sig.region, when); err != nil {
		return false
	}
	m := authRE.FindStringSubmatch(req.Header.Get("Authorization"))
	return m != nil && m[6] == sig.sig
}

// STS, Query protocol: the answer is <ActionResponse><ActionResult>, errors <ErrorResponse>.

type stsCredentialsX struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumeRoleX struct {
	User struct {
		Arn    string `xml:"Arn"`
		RoleID string `xml:"AssumedRoleId"`
	} `xml:"AssumedRoleUser"`
	Credentials stsCredentialsX `xml:"Credentials"`
}

type callerIdentityX struct {
	Arn     string `xml:"Arn"`
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
}

var sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

func (s *Server) serveSTS(w http.ResponseWriter, action string, v url.Values) {
	var body any
	var err *apiErr
	switch action {
	case "AssumeRole":
		body, err = s.assumeRole(v)
	case "GetCallerIdentity":
		body = callerIdentityX{Arn: s.callerARN, UserID: "AIDAFAKE", Account: s.caller}
	default:
		err = &apiErr{http.StatusBadRequest, "InvalidAction", "the fake STS does not implement " + action}
	}
	if err != nil {
		writeSTSError(w, err)
		return
	}
	inner, merr := innerXML(body)
	if merr != nil {
		writeSTSError(w, &apiErr{http.StatusInternalServerError, "InternalFailure", merr.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<%sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%sResult>%s</%sResult><ResponseMetadata><RequestId>fake-req</RequestId></ResponseMetadata></%sResponse>`,
		action, action, inner, action, action)
}

func writeSTSError(w http.ResponseWriter, e *apiErr) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>fake-req</RequestId></ErrorResponse>`,
		xmlEscape(e.code), xmlEscape(e.message))
}

// assumeRole issues temporary credentials of the role's account when the caller's account is
// trusted by the role.
func (s *Server) assumeRole(v url.Values) (any, *apiErr) {
	arn, session := v.Get("RoleArn"), v.Get("RoleSessionName")
	if !sessionNameRE.MatchString(session) {
		return nil, &apiErr{http.StatusBadRequest, "ValidationError", "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint"}
	}
	if d := v.Get("DurationSeconds"); d != "" {
		if n, err := strconv.Atoi(d); err != nil || n < 900 || n > 43200 {
			return nil, &apiErr{http.StatusBadRequest, "ValidationError", "DurationSeconds must be between 900 and 43200"}
		}
	}
	ro, ok := s.roles[arn]
	if !ok || !slices.Contains(ro.trusted, s.caller) {
		return nil, &apiErr{http.StatusForbidden, "AccessDenied", fmt.Sprintf("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", s.callerARN, arn)}
	}
	s.seq++
	id := fmt.Sprintf("ASIAFAKE%012d", s.seq)
	name := arn[strings.LastIndexByte(arn, '/')+1:]
	key := &accessKey{account: ro.account, secret: fmt.Sprintf("temp-secret-%d", s.seq), token: fmt.Sprintf("temp-token-%d", s.seq),
		principal: "arn:aws:sts::" + ro.account + ":assumed-role/" + name + "/" + session}
	s.keys[id] = key
	var out assumeRoleX
	out.User.Arn, out.User.RoleID = key.principal, "AROAFAKE:"+session
	out.Credentials = stsCredentialsX{id, key.secret, key.token, time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}
	return out, nil
}
