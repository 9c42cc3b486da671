package main

import (
	"context"
	"fmt"
	"io"
)

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("allot migrate", "allot migrate [--store URL]\n\nApplies the embedded, versioned migrations that are not yet applied and exits.\nSafe to run again, and from several processes at once.", stderr)
	storeURL := fs.String("store", envOr(getenv, "ALLOT_STORE", storeDefault), "store URL (env ALLOT_STORE)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	st, err := openStore(ctx, *storeURL)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}
