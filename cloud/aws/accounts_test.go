package aws

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/aws/ec2fake"
)

const (
	devAccount  = "111111111111"
	prodAccount = "222222222222"
	prodRole    = "arn:aws:iam::222222222222:role/ztna-promoter"
)

// twoAccounts is a fake with a dev and a prod account (one access key each), a role in prod
// that dev may assume, and an image of dev's.
func twoAccounts(t *testing.T) *ec2fake.Server {
	t.Helper()
	fake := ec2fake.New("eu-west-1")
	t.Cleanup(fake.Close)
	fake.AddAccount(devAccount, "AKIADEV", "dev-secret")
	fake.AddAccount(prodAccount, "AKIAPROD", "prod-secret")
	fake.AddRole(prodRole, devAccount)
	fake.AddSnapshot(ec2fake.Snapshot{ID: "snap-dev-root", Owner: devAccount, VolumeGiB: 8})
	fake.AddSnapshot(ec2fake.Snapshot{ID: "snap-dev-data", Owner: devAccount, VolumeGiB: 2})
	fake.AddImage(ec2fake.Image{ID: "ami-dev", Name: "ztna-router-1.2.3", Owner: devAccount, RootDevice: "/dev/xvda",
		Architecture: "x86_64", Snapshots: []string{"snap-dev-root", "snap-dev-data"}})
	return fake
}

func awsConfig(key, secret string) awssdk.Config {
	return awssdk.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider(key, secret, ""), HTTPClient: http.DefaultClient}
}

func accountDriver(fake *ec2fake.Server, cfg awssdk.Config) *Driver {
	return NewFromConfig(cfg, Options{Endpoint: fake.URL, PollInterval: time.Millisecond, Timeout: 5 * time.Second})
}

func snapshot(t *testing.T, fake *ec2fake.Server, id string) ec2fake.Snapshot {
	t.Helper()
	snaps := fake.Snapshots()
	i := slices.IndexFunc(snaps, func(s ec2fake.Snapshot) bool { return s.ID == id })
	if i < 0 {
		t.Fatalf("no snapshot %s in %+v", id, snaps)
	}
	return snaps[i]
}

// TestCrossAccountCopyNeedsSnapshots is what AWS enforces: another account copies an AMI only
// when the AMI and every one of its snapshots are shared with it, and the copy (AMI and new
// snapshots) is the copying account's.
func TestCrossAccountCopyNeedsSnapshots(t *testing.T) {
	fake := twoAccounts(t)
	ctx := context.Background()
	dev := accountDriver(fake, awsConfig("AKIADEV", "dev-secret"))
	prod := accountDriver(fake, awsConfig("AKIAPROD", "prod-secret"))
	tags := map[string]string{"ztna-environment": "prod"}

	if _, err := prod.CopyImage(ctx, "eu-west-1", "ami-dev", "ztna-router-1.2.3-prod", tags); err == nil || !strings.Contains(err.Error(), "InvalidAMIID.NotFound") {
		t.Fatalf("copy of an unshared image: %v", err)
	}
	if err := prod.ShareImage(ctx, "ami-dev", []string{prodAccount}); !errors.Is(err, cloud.ErrNotFound) {
		t.Fatalf("prod shared dev's image: %v", err)
	}
	// Launch permission alone, as promotion did before: EC2 refuses the copy.
	_, err := ec2.NewFromConfig(awsConfig("AKIADEV", "dev-secret"), func(o *ec2.Options) { o.BaseEndpoint = awssdk.String(fake.URL) }).
		ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: awssdk.String("ami-dev"),
			LaunchPermission: &types.LaunchPermissionModifications{Add: []types.LaunchPermission{{UserId: awssdk.String(prodAccount)}}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = prod.CopyImage(ctx, "eu-west-1", "ami-dev", "ztna-router-1.2.3-prod", tags)
	if err == nil || !strings.Contains(err.Error(), "permission to access the storage") || !strings.Contains(err.Error(), "createVolumePermission") {
		t.Fatalf("copy with launch permission only: %v", err)
	}

	if err := dev.ShareImage(ctx, "ami-dev", []string{prodAccount}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"snap-dev-root", "snap-dev-data"} {
		if got := snapshot(t, fake, id).CreateVolumeUsers; !slices.Equal(got, []string{prodAccount}) {
			t.Errorf("%s createVolumePermission %v, want %s", id, got, prodAccount)
		}
	}
	img, err := prod.CopyImage(ctx, "eu-west-1", "ami-dev", "ztna-router-1.2.3-prod", tags)
	if err != nil {
		t.Fatal(err)
	}
	if owner, err := prod.ImageOwner(ctx, img.ID); err != nil || owner != prodAccount {
		t.Errorf("copy owned by %q (%v), want %s", owner, err, prodAccount)
	}
	i := slices.IndexFunc(fake.Images(), func(x ec2fake.Image) bool { return x.ID == img.ID })
	copied := fake.Images()[i]
	if len(copied.Snapshots) != 2 || copied.Tags["ztna-environment"] != "prod" {
		t.Fatalf("copy %+v", copied)
	}
	for _, id := range copied.Snapshots {
		if sn := snapshot(t, fake, id); sn.Owner != prodAccount || sn.Tags["ztna-environment"] != "prod" || sn.Tags["Name"] != "ztna-router-1.2.3-prod" {
			t.Errorf("copied snapshot %+v: want prod's, tagged", sn)
		}
	}
	// Names are unique per account, not across accounts.
	if _, err := dev.CopyImage(ctx, "eu-west-1", "ami-dev", "ztna-router-1.2.3-prod", nil); err != nil {
		t.Errorf("dev copying under a name prod uses: %v", err)
	}
}

func TestShareImageRefusals(t *testing.T) {
	fake := twoAccounts(t)
	ctx := context.Background()
	fake.AddSnapshot(ec2fake.Snapshot{ID: "snap-aws-key", Owner: devAccount, Encrypted: true})
	fake.AddImage(ec2fake.Image{ID: "ami-enc", Name: "enc", Owner: devAccount, RootDevice: "/dev/xvda", Snapshots: []string{"snap-aws-key"}})
	dev := accountDriver(fake, awsConfig("AKIADEV", "dev-secret"))
	if err := dev.ShareImage(ctx, "ami-enc", []string{prodAccount}); err == nil || !strings.Contains(err.Error(), "customer-managed KMS key") {
		t.Errorf("sharing a snapshot under the AWS-managed key: %v", err)
	}
	fake.AddImage(ec2fake.Image{ID: "ami-public", Name: "debian", Owner: DebianOwner, Public: true, RootDevice: "/dev/xvda"})
	if err := dev.ShareImage(ctx, "ami-public", []string{prodAccount}); err == nil || !strings.Contains(err.Error(), "InvalidSnapshot.NotFound") {
		t.Errorf("sharing another account's public image: %v", err)
	}
}

func TestFakeAuthenticatesRequests(t *testing.T) {
	fake := twoAccounts(t)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		cfg  awssdk.Config
		want string
	}{
		"unknown key":  {awsConfig("AKIANOBODY", "x"), "AuthFailure"},
		"wrong secret": {awsConfig("AKIADEV", "not-the-secret"), "SignatureDoesNotMatch"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := accountDriver(fake, tc.cfg).Image(ctx, "ami-dev")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
			if _, err := CallerAccount(ctx, tc.cfg, fake.URL); err == nil {
				t.Fatal("STS accepted the request")
			}
		})
	}
}

func TestAssumeRoleIntoTargetAccount(t *testing.T) {
	fake := twoAccounts(t)
	ctx := context.Background()
	cfg, err := AssumeRole(awsConfig("AKIADEV", "dev-secret"), prodRole, "ztna-test", fake.URL)
	if err != nil {
		t.Fatal(err)
	}
	if account, err := CallerAccount(ctx, cfg, fake.URL); err != nil || account != prodAccount {
		t.Fatalf("account %q (%v), want %s", account, err, prodAccount)
	}
	dev := accountDriver(fake, awsConfig("AKIADEV", "dev-secret"))
	if err := dev.ShareImage(ctx, "ami-dev", []string{prodAccount}); err != nil {
		t.Fatal(err)
	}
	img, err := accountDriver(fake, cfg).CopyImage(ctx, "eu-west-1", "ami-dev", "ztna-router-1.2.3-prod", nil)
	if err != nil {
		t.Fatal(err)
	}
	if owner, _ := dev.ImageOwner(ctx, img.ID); owner != "" {
		t.Errorf("dev sees prod's unshared copy (owner %s)", owner)
	}

	// prod's own key may not assume the role: its trust policy names dev only.
	untrusted, _ := AssumeRole(awsConfig("AKIAPROD", "prod-secret"), prodRole, "ztna-test", fake.URL)
	if _, err := CallerAccount(ctx, untrusted, fake.URL); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("untrusted AssumeRole: %v", err)
	}
	if _, err := AssumeRole(awsConfig("AKIADEV", "dev-secret"), "arn:aws:iam::2222:role/x", "s", fake.URL); err == nil || !strings.Contains(err.Error(), "not an IAM role ARN") {
		t.Errorf("bad role ARN: %v", err)
	}
}
