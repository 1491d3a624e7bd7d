package ztnaprovider

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/internal/pki"
)

// fakeController serves the management API's wire format for one router: status answers
// every request for it, with a problem+json body unless it is 200.
func fakeController(t *testing.T, status int) *clientData {
	t.Helper()
	ca, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	iss, key, err := ca.IssueServer(api.KindController, "c", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.TLSCertificate(iss.ChainPEM, key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/routers/r1" {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		}
		if status == http.StatusOK {
			w.Write([]byte(`{"id":"r1","name":"edge-renamed","roles":["b"],"cost":7,"status":"online"}`))
			return
		}
		w.Header().Set("Content-Type", api.ProblemContentType)
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"title":%q,"status":%d,"detail":"injected by the test"}`, http.StatusText(status), status)
	}))
	srv.Listener = tls.NewListener(srv.Listener, pki.ServerConfig(pki.NewCertSlot(cert)))
	srv.Start()
	t.Cleanup(srv.Close)
	client, err := apiclient.New("https://"+srv.Listener.Addr().String(), "tok", ca.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	return &clientData{client: client}
}

// routerState is the state of a ztna_router "r1" named edge.
func routerState(t *testing.T) tfsdk.State {
	t.Helper()
	ctx := context.Background()
	var sr resource.SchemaResponse
	(&routerResource{}).Schema(ctx, resource.SchemaRequest{}, &sr)
	state := tfsdk.State{Schema: sr.Schema, Raw: tftypes.NewValue(sr.Schema.Type().TerraformType(ctx), nil)}
	m := routerModel{
		ID: types.StringValue("r1"), Name: types.StringValue("edge"), Roles: stringSet([]string{"a"}),
		Cost: types.Int64Value(0), Status: types.StringValue("unenrolled"), Version: types.StringValue(""),
		FailureDomain: types.StringValue(""),
	}
	if d := state.Set(ctx, &m); d.HasError() {
		t.Fatal(d)
	}
	return state
}

// TestReadObject: Read refreshes the model from the controller, drops an object deleted
// outside Terraform from state (drift: the next plan creates it again), and reports anything
// else as an error naming the object.
func TestReadObject(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		wantGone bool
		wantErr  string // "" for none
		wantName string // name in the new state
	}{
		{"refreshed", http.StatusOK, false, "", "edge-renamed"},
		{"deleted outside Terraform", http.StatusNotFound, true, "", ""},
		{"controller error", http.StatusInternalServerError, false, "Cannot read router r1", "edge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			state := routerState(t)
			resp := resource.ReadResponse{State: state}
			readObject(ctx, fakeController(t, tc.status), resource.ReadRequest{State: state}, &resp,
				"router", (*apiclient.Client).GetRouter, (*routerModel).fromAPI)
			checkDiags(t, resp.Diagnostics, tc.wantErr)
			if gone := resp.State.Raw.IsNull(); gone != tc.wantGone {
				t.Fatalf("removed from state: %v, want %v", gone, tc.wantGone)
			}
			if tc.wantGone {
				return
			}
			var m routerModel
			resp.State.Get(ctx, &m)
			if m.Name.ValueString() != tc.wantName {
				t.Errorf("state name %q, want %q", m.Name.ValueString(), tc.wantName)
			}
		})
	}
}

// TestDeleteObject: an object already deleted outside Terraform counts as deleted; any other
// failure is an error naming the object by its label attribute.
func TestDeleteObject(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		wantErr string
	}{
		{"deleted", http.StatusNoContent, ""},
		{"already gone", http.StatusNotFound, ""},
		{"controller error", http.StatusInternalServerError, "Cannot delete router edge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := routerState(t)
			var resp resource.DeleteResponse
			deleteObject(context.Background(), fakeController(t, tc.status), resource.DeleteRequest{State: state}, &resp,
				"router", "name", (*apiclient.Client).DeleteRouter)
			checkDiags(t, resp.Diagnostics, tc.wantErr)
		})
	}
}

// TestCRUDWithoutController: with no controller configured, every handler says how to
// configure one instead of failing on a nil client.
func TestCRUDWithoutController(t *testing.T) {
	state := routerState(t)
	var read resource.ReadResponse
	readObject(context.Background(), nil, resource.ReadRequest{State: state}, &read, "router", (*apiclient.Client).GetRouter, (*routerModel).fromAPI)
	checkDiags(t, read.Diagnostics, "ztna provider is not configured")
	var del resource.DeleteResponse
	deleteObject(context.Background(), &clientData{}, resource.DeleteRequest{State: state}, &del, "router", "name", (*apiclient.Client).DeleteRouter)
	checkDiags(t, del.Diagnostics, "ztna provider is not configured")
}

func checkDiags(t *testing.T, diags diag.Diagnostics, wantErr string) {
	t.Helper()
	switch {
	case wantErr == "" && diags.HasError():
		t.Fatalf("unexpected diagnostics: %v", diags)
	case wantErr != "" && (len(diags) != 1 || !strings.Contains(diags[0].Summary(), wantErr)):
		t.Fatalf("diagnostics %v, want one error %q", diags, wantErr)
	}
}
