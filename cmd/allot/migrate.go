package main

import (
	"context"
	"fmt"
	"io"
)

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("allot migrate", "allot migrate [--store URL]\n\nApplies the embedded, versioned migrations that are not yet applied and exits.\nSafe to run again, and from several processes at once. Stop every server of\nan older version first: mixed versions on one database are not supported.", stdout)
	storeURL := fs.String("store", envOr(getenv, "ALLOT_STORE", storeDefault), "the store's `URL`: sqlite:///path/file.db or postgres://… (env ALLOT_STORE)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("migrate takes no arguments, got %s", quoteArgs(pos))
	}
	st, err := openServingStore(ctx, *storeURL)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}
