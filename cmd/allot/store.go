package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/postgres"
	"github.com/allot/allot/sqlite"
)

// storeDefault is the embedded default: a SQLite file in the working directory.
const storeDefault = "sqlite://" + sqlite.PathDefault

// openStore opens the store a URL names and runs its migrations.
func openStore(ctx context.Context, url string) (allot.Store, error) {
	var st allot.Store
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		s, err := postgres.Open(ctx, url)
		if err != nil {
			return nil, err
		}
		st = s
	case strings.HasPrefix(url, "sqlite:"):
		path, err := sqlite.PathFromURL(url)
		if err != nil {
			return nil, usagef("--store: %v", err)
		}
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, err
		}
		st = s
	default:
		return nil, usagef("--store %q: use sqlite:///path/to/file.db or postgres://user@host:5432/db", url)
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, err // the stores' errors say "sqlite: migrate: …" or "postgres: migrate: …"
	}
	return st, nil
}

// openServingStore is openStore for serve and migrate: it also refuses a
// SQLite backup made by "allot backup" that "allot restore" has not made
// safe yet, since serving it as it is would hand out again the numbers
// issued after it was taken. It looks before migrating, so a refused
// backup is left exactly as it was.
func openServingStore(ctx context.Context, url string) (allot.Store, error) {
	if strings.HasPrefix(url, "sqlite:") {
		if path, err := sqlite.PathFromURL(url); err == nil {
			if _, err := os.Stat(path); err == nil {
				if err := refuseUnrestored(ctx, path, url); err != nil {
					return nil, err
				}
			}
		}
	}
	return openStore(ctx, url)
}

// refuseUnrestored fails for a SQLite file that still carries the record
// "allot backup" writes and "allot restore" removes.
func refuseUnrestored(ctx context.Context, path, url string) error {
	ro, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		return nil // openStore says what is wrong with the file
	}
	defer ro.Close()
	taken, _, found, err := ro.BackupTime(ctx)
	if err != nil {
		return err
	}
	if found {
		return fmt.Errorf("%s is a backup taken at %s that was not restored: serving it as it is would issue again the numbers issued after it; "+
			"run `allot restore --store %s` first (--margin 0 if you know nothing was issued since)", redactURL(url), taken.UTC().Format(time.RFC3339), redactURL(url))
	}
	return nil
}

// openStoreReadOnly opens the store a URL names for reading only, without
// migrating it.
func openStoreReadOnly(ctx context.Context, url string) (allot.AdminStore, error) {
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return postgres.OpenReadOnly(ctx, url)
	case strings.HasPrefix(url, "sqlite:"):
		path, err := sqlite.PathFromURL(url)
		if err != nil {
			return nil, usagef("--store: %v", err)
		}
		return sqlite.OpenReadOnly(ctx, path)
	}
	return nil, usagef("--store %q: use sqlite:///path/to/file.db or postgres://user@host:5432/db", url)
}
