// Package logging builds the slog logger every ztna command writes to stderr, from a format
// (text or json) and a level, and registers the matching --log-format/--log-level flags.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/pflag"
)

// New returns a logger writing format ("text" or "json") at level ("debug", "info", "warn",
// "error") to w. Errors name the setting and its valid values.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	return build(w, format, level, "log format", "log level")
}

// build names the settings formatName and levelName in its errors (a config key or a flag).
func build(w io.Writer, format, level, formatName, levelName string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%s %q: use debug, info, warn or error", levelName, level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%s %q: use text or json", formatName, format)
}

// Flags are the --log-format and --log-level flags of a command that logs.
type Flags struct{ Format, Level string }

// Register adds the flags to fs, with defaultLevel as --log-level's default.
func (f *Flags) Register(fs *pflag.FlagSet, defaultLevel string) {
	fs.StringVar(&f.Format, "log-format", "text", "log format on stderr: text or json")
	fs.StringVar(&f.Level, "log-level", defaultLevel, "log level: debug, info, warn or error")
}

// Logger builds the logger the flags ask for.
func (f *Flags) Logger(w io.Writer) (*slog.Logger, error) {
	return build(w, f.Format, f.Level, "--log-format", "--log-level")
}
