package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/client/tunnel"
	"github.com/ztna/ztna/internal/logging"
)

func dialCommand() *cobra.Command {
	var (
		identity string
		timeout  time.Duration
		logs     logging.Flags
	)
	cmd := &cobra.Command{
		Use:   "dial HOST:PORT",
		Short: "Connect stdin and stdout to a service through the overlay (like nc)",
		Long: `dial opens an end-to-end encrypted stream to the service named HOST:PORT (as the service is
defined, e.g. prod-db.customerdomain.me:5432) and copies stdin to it and its answer to stdout.
When stdin ends, the end is passed on (a half-close) and dial keeps printing the service's
answer until the service ends the stream; dial then exits 0. A stream that breaks, and a dial
that is refused — not authorized, no router reachable, target refused or unreachable — exit 1
with the reason on stderr.

Useful as an SSH ProxyCommand:  ssh -o ProxyCommand='ztna dial %h:%p' admin@host.customer.me`,
		Example: `  echo 'SELECT 1' | ztna dial prod-db.customerdomain.me:5432 --identity app.identity`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := logs.Logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			c, _, closeOverlay, err := overlayClient(cmd.Context(), identity, log)
			if err != nil {
				return err
			}
			defer closeOverlay()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			conn, err := c.Dial(ctx, args[0])
			cancel()
			if err != nil {
				return explainDial(err)
			}
			s, ok := conn.(tunnel.Stream)
			if !ok {
				conn.Close()
				return errors.New("the SDK returned a stream that cannot half-close")
			}
			return pipe(cmd.Context(), s, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	identityFlag(cmd, &identity)
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Second, "how long setting up the stream may take")
	logs.Register(cmd.Flags(), "warn")
	return cmd
}

// explainDial adds what to do to the SDK's reason.
func explainDial(err error) error {
	switch {
	case errors.Is(err, client.ErrNotAuthorized):
		return fmt.Errorf("%w (no service policy lets this identity dial it; 'ztna services' lists what it may dial)", err)
	case errors.Is(err, client.ErrNoRoute):
		return fmt.Errorf("%w (no router hosting the service is online)", err)
	}
	return err
}

// pipe copies in to the stream and the stream to out. The stream's end decides: a clean end
// (after everything arrived) returns nil even while in is still open, like nc; a broken
// stream or a failure sending returns an error.
func pipe(ctx context.Context, s tunnel.Stream, in io.Reader, out io.Writer) error {
	stop := context.AfterFunc(ctx, func() { abortStream(s) })
	defer stop()
	sent := make(chan error, 1)
	go func() {
		// Plain writes, not the stream's ReadFrom: that would hold the stream's write lock
		// while waiting for stdin, and a stream that ends first could not then be closed.
		_, err := io.CopyBuffer(struct{ io.Writer }{s}, struct{ io.Reader }{in}, make([]byte, 256<<10))
		if err == nil {
			err = s.CloseWrite()
		}
		sent <- err
	}()
	_, err := io.Copy(out, s)
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	if err != nil {
		abortStream(s)
		return fmt.Errorf("the stream to %s broke: %w", s.RemoteAddr(), err)
	}
	select {
	case err := <-sent:
		if err != nil {
			abortStream(s)
			return fmt.Errorf("sending stdin: %w", err)
		}
	default: // stdin still open: the service has said all it will
	}
	return s.Close()
}

func abortStream(s tunnel.Stream) {
	if a, ok := s.(interface{ Abort() error }); ok {
		a.Abort()
		return
	}
	s.Close()
}
