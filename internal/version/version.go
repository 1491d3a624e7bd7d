// Package version holds the build version of every ztna binary, set at link time.
package version

// Version is overridden by -ldflags "-X github.com/ztna/ztna/internal/version.Version=...".
var Version = "dev"
