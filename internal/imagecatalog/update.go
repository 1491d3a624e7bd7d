package imagecatalog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Update loads the catalog at path (an absent file is an empty catalog), applies fn and saves the
// result atomically. An exclusive lock on path+".lock" serialises writers, so parallel Packer
// builds recording their images never lose each other's entries. When fn fails, the file is left
// untouched.
func Update(ctx context.Context, path string, fn func(*Catalog) error) error {
	unlock, err := lock(ctx, path+".lock")
	if err != nil {
		return err
	}
	defer unlock()

	c, err := Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		c, err = &Catalog{Version: FormatVersion}, nil
	}
	if err != nil {
		return err
	}
	if err := fn(c); err != nil {
		return err
	}
	return c.Save(path)
}

// lockPoll is how often a waiting writer retries the lock; writers hold it for milliseconds.
const lockPoll = 20 * time.Millisecond

func lock(ctx context.Context, path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("image catalog lock: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("image catalog lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("image catalog lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("image catalog lock %s: another writer holds it: %w", path, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}
