package ztnaprovider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/enroll"
	"github.com/ztna/ztna/provider/internal/acctest"
)

// TestAccIdentityEnrollmentTokenEphemeral: a client enrols during the apply with the
// ephemeral token (a local-exec provisioner running `ztna identity enroll`, as on the
// client's host), and no token in the state file enrols anything: the ephemeral one is not
// there, and the one the identity resource minted at create was revoked by the reissue.
// Later plans reissue and revoke again; the enrolled client keeps renewing.
func TestAccIdentityEnrollmentTokenEphemeral(t *testing.T) {
	needController(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ztna, err := acctest.Binary(ctx, testTmp, "ztna")
	if err != nil {
		t.Fatal(err)
	}
	identityFile := filepath.Join(t.TempDir(), "identity.json")
	name := uniqueName("ephemeral-token")
	cli := newTerraformCLI(t, fmt.Sprintf(`
resource "ztna_identity" "test" {
  name  = %q
  roles = ["integrations"]
}

ephemeral "ztna_identity_enrollment_token" "test" {
  identity_id = ztna_identity.test.id
  ttl         = "10m"
}

resource "terraform_data" "enroll" {
  input = ztna_identity.test.id
  provisioner "local-exec" {
    command     = "%s identity enroll --token \"$TOKEN\" --out %s"
    environment = { TOKEN = ephemeral.ztna_identity_enrollment_token.test.token }
  }
}
`, name, ztna, identityFile))
	cli.run(false, "apply", "-auto-approve")
	t.Cleanup(func() { cli.run(false, "destroy", "-auto-approve") })

	f, err := enroll.LoadIdentity(identityFile)
	if err != nil {
		t.Fatalf("the provisioner did not enrol: %v", err)
	}
	state, err := os.ReadFile(filepath.Join(cli.dir, "terraform.tfstate"))
	if err != nil {
		t.Fatal(err)
	}
	tokens := regexp.MustCompile(`ztna-key-v1\.[A-Za-z0-9._-]+`).FindAllString(string(state), -1)
	if len(tokens) == 0 {
		t.Fatal("the state holds no token at all: expected the identity resource's, revoked")
	}
	for _, tok := range tokens {
		if _, err := enroll.Identity(ctx, tok, filepath.Join(t.TempDir(), "from-state.json"), false, enroll.Options{}); err == nil {
			t.Fatalf("a token in the state file still enrols")
		}
	}

	for range 3 {
		cli.run(false, "plan")
	}
	cur, err := f.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enroll.RenewIdentity(ctx, f, cur, enroll.Options{}); err != nil {
		t.Fatalf("the client enrolled with the ephemeral token cannot renew after later plans: %v", err)
	}
	got, err := apiClient(t).GetIdentity(ctx, f.Config.ID)
	if err != nil || !got.Enrolled {
		t.Fatalf("identity after apply: %+v, %v", got, err)
	}
	// Every run reissued a token (the apply once: its plan had no identity id yet; then 3
	// plans) and every one but the token the provisioner used was revoked when its run closed.
	log := controller.Log()
	reissued := len(regexp.MustCompile(`identity enrolment token reissued" identity_id=`+f.Config.ID).FindAllString(log, -1))
	revoked := len(regexp.MustCompile(`identity enrolment token revoked" identity_id=`+f.Config.ID).FindAllString(log, -1))
	if reissued != 4 || revoked != reissued-1 {
		t.Fatalf("%d tokens reissued, %d revoked at close: want 4 and 3", reissued, revoked)
	}
}
