package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/sqlite"
)

const auditSynopsis = `allot audit [--store URL] [--json]
       allot audit --server URL [--key TOKEN] [--json]

Checks every invariant allot promises against the database: no sequence number
taken twice, no unexplained gap, voids within taken ranges, counters equal to
the ledger, no reservation left past its deadline, every gapless number
answered (a server that died between its commit and its answer leaves numbers
nobody knows the caller got: confirm them with "allot seq confirm" if a
document has them, void them otherwise), pool counters equal to their claims,
held + confirmed <= capacity, no customer over the per-customer limit, no hold
left past its expiry.

By default it opens the store directly (--store, env ALLOT_STORE, default
` + storeDefault + `), read-only: it never writes to the database nor migrates it
(so it works on a read-only copy), and refuses a database whose schema is
not this allot's (run "allot migrate" first). No server is needed.
A hold past its expiry is a violation only if a server swept after it expired
and missed it; with every server stopped, holds wait for the next sweep (reads
count them as expired meanwhile). With --server it asks a running
server instead (GET /v1/audit, an admin key).

Prints "ok   <check>" or "FAIL <check>: <violations>" for each check, then a
summary, and exits 1 if any check failed. --json prints {"ok":…,"checks":[…]}.`

// runAudit is "allot audit".
func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("allot audit", auditSynopsis, stdout)
	storeURL := fs.String("store", envOr(getenv, "ALLOT_STORE", storeDefault), "the store's `URL`: sqlite:///path/file.db or postgres://… (env ALLOT_STORE)")
	var cf clientFlags
	fs.StringVar(&cf.server, "server", "", "ask the allot server at `URL` instead of opening the store")
	fs.StringVar(&cf.key, "key", getenv("ALLOT_KEY"), "the admin API key `TOKEN`, with --server (env ALLOT_KEY)")
	fs.BoolVar(&cf.json, "json", false, "print JSON instead of text, errors included")
	defer func() { err = cf.finish(err, fs, args) }()
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("audit takes no arguments, got %s", quoteArgs(pos))
	}
	storeGiven := false
	fs.Visit(func(f *flag.Flag) { storeGiven = storeGiven || f.Name == "store" })
	if cf.server != "" && storeGiven {
		return usagef("give --store or --server, not both")
	}

	var (
		ok     bool
		checks []allot.AuditCheck
		where  string
	)
	if cf.server != "" {
		cl, err := cf.client()
		if err != nil {
			return err
		}
		if ok, checks, err = cl.Audit(ctx); err != nil {
			return err
		}
		where = cf.server
	} else {
		if checks, err = auditDatabase(ctx, *storeURL); err != nil {
			return err
		}
		ok = true
		for _, c := range checks {
			ok = ok && c.OK
		}
		where = redactURL(*storeURL)
	}

	failed := 0
	for _, c := range checks {
		if !c.OK {
			failed++
		}
	}
	if cf.json {
		if checks == nil {
			checks = []allot.AuditCheck{}
		}
		if err := printJSON(stdout, struct {
			OK     bool               `json:"ok"`
			Checks []allot.AuditCheck `json:"checks"`
		}{ok, checks}); err != nil {
			return err
		}
	} else {
		for _, c := range checks {
			if c.OK {
				fmt.Fprintf(stdout, "ok   %s\n", c.Name)
			} else {
				fmt.Fprintf(stdout, "FAIL %s: %s\n", c.Name, c.Detail)
			}
		}
		if ok {
			fmt.Fprintf(stdout, "audit of %s: all %d checks passed\n", where, len(checks))
		} else {
			fmt.Fprintf(stdout, "audit of %s: %d of %d checks FAILED\n", where, failed, len(checks))
		}
	}
	if !ok {
		return fmt.Errorf("audit: %d of %d checks failed", failed, len(checks))
	}
	return nil
}

// auditDatabase opens the store at url and audits it. A SQLite file must
// exist: auditing a database just created would pass, and say nothing.
func auditDatabase(ctx context.Context, url string) ([]allot.AuditCheck, error) {
	if strings.HasPrefix(url, "sqlite:") {
		path, err := sqlite.PathFromURL(url)
		if err != nil {
			return nil, usagef("--store: %v", err)
		}
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, usagef("--store: no database at %s: give the store the server uses (--store or ALLOT_STORE)", path)
			}
			return nil, fmt.Errorf("--store: %w", err)
		}
	}
	st, err := openStoreReadOnly(ctx, url)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	have, want, err := st.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	if have != want {
		return nil, fmt.Errorf("the database's schema is version %d, this allot's is %d: run `allot migrate --store %s` first (audit only reads)", have, want, redactURL(url))
	}
	return st.Audit(ctx, time.Now())
}
