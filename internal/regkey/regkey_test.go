package regkey

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

const fp = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func sample() *Key {
	return &Key{ID: "k1", Secret: NewSecret(), Kind: KindRouter, Edge: []string{"https://127.0.0.1:8443"}, CA: fp, Exp: time.Now().Add(time.Hour).Unix()}
}

func TestRoundTrip(t *testing.T) {
	k := sample()
	got, err := Parse("  " + k.Encode() + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if got.Encode() != k.Encode() {
		t.Fatalf("round trip changed the key: %+v vs %+v", got, k)
	}
	if !Matches(Hash(k.Secret), got.Secret) || Matches(Hash(k.Secret), NewSecret()) {
		t.Fatal("hash comparison is wrong")
	}
}

func TestParseErrors(t *testing.T) {
	good := sample().Encode()
	mutate := func(f func(k *Key)) string { k := sample(); f(k); return k.Encode() }
	for name, in := range map[string]string{
		"empty":        "",
		"other prefix": "ztna-key-v2." + strings.TrimPrefix(good, Prefix),
		"truncated":    good[:len(good)-7],
		"not base64":   Prefix + "!!!",
		"short secret": mutate(func(k *Key) { k.Secret = "abc" }),
		"bad kind":     mutate(func(k *Key) { k.Kind = "admin" }),
		"no edge":      mutate(func(k *Key) { k.Edge = nil }),
		"http edge":    mutate(func(k *Key) { k.Edge = []string{"http://x"} }),
		"bad ca":       mutate(func(k *Key) { k.CA = "md5:00" }),
		"no id":        mutate(func(k *Key) { k.ID = "" }),
	} {
		_, err := Parse(in)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Parse = %v, want ErrMalformed", name, err)
		}
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	k := sample()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("minted", "key", k)
	printed := fmt.Sprintf("%v %s %+v", k, k, k) + buf.String()
	if strings.Contains(printed, k.Secret) {
		t.Fatalf("secret leaked: %s", printed)
	}
	if !strings.Contains(buf.String(), `"id":"k1"`) {
		t.Fatalf("log lacks the key id: %s", buf.String())
	}
}
