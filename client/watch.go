package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"

	"github.com/ztna/ztna/internal/fabric"
)

// ErrWatchUnsupported: the hub cannot push service-list changes (it predates OpWatch); poll
// Services instead.
var ErrWatchUnsupported = errors.New("hub does not push service-list changes")

// WatchServices calls fn with the services this identity may dial: once at once, then each time
// a policy or service change alters the list, as the hub pushes it. It blocks until ctx ends
// (then it returns nil) or the hub's link fails (then it returns the error; call it again to go
// on through the best hub left). fn runs on WatchServices' goroutine.
func (c *Client) WatchServices(ctx context.Context, fn func([]Service)) error {
	var s net.Conn
	var first []Service
	err := c.withHub(ctx, func(ctx context.Context, link *fabric.Link) error {
		st, resp, err := c.open(ctx, link, &fabric.Request{Op: fabric.OpWatch})
		if err != nil {
			var fe *fabric.Error
			if errors.As(err, &fe) && fe.Code == fabric.BadRequest {
				return ErrWatchUnsupported
			}
			return err
		}
		if err := json.Unmarshal(resp.Payload, &first); err != nil {
			st.Close()
			return fmt.Errorf("service list: %w", err)
		}
		s = st
		return nil
	})
	if err != nil {
		return fmt.Errorf("ztna: watch services: %w", err)
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	fn(first)
	for {
		resp, err := fabric.ReadResponse(s)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ztna: watch services: %w", err)
		}
		if err := resp.Err(); err != nil {
			return fmt.Errorf("ztna: watch services: %w", err)
		}
		var list []Service
		if err := json.Unmarshal(resp.Payload, &list); err != nil {
			return fmt.Errorf("ztna: watch services: service list: %w", err)
		}
		fn(list)
	}
}
