package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/sqlite"
)

const backupSynopsis = `allot backup [--store URL] FILE

Writes a consistent snapshot of the SQLite store to FILE (a new file), safe
to take while servers run: SQLite's VACUUM INTO copies one transaction's
view of the database. The snapshot records when it was taken, so
"allot restore" knows how old it is. A plain copy of allot.db (cp) while a
server runs is NOT a backup: it can miss the schema or the latest numbers.

For PostgreSQL use its own tools: pg_dump --format=custom (a consistent
snapshot of one database) or continuous archiving with point-in-time
recovery. After restoring one, run "allot restore --store postgres://…".`

const restoreSynopsis = `allot restore [--store URL] [--from FILE] [--force] [--margin N|auto]
              [--backup-time RFC3339] [--dry-run]

Makes a restored backup safe to serve again. A backup knows every number
issued until it was taken, not those issued after: served as it is, it would
hand those numbers out a second time. So restore moves every counter of
every sequence past what may have been issued since the backup (the margin)
and voids the numbers it skips, with the reason "restored from backup". For
a resetting sequence it also does so for the periods that began after the
backup. It records that no server of the database is running (their leases
read as held by servers that stopped without saying what they handed out).

With --from (SQLite), FILE (a backup from "allot backup") is copied to the
store's path first; an existing database there is kept, renamed to
<path>.replaced-<time>, only with --force. For PostgreSQL, restore the dump
(pg_restore) or recover to a point in time first, then run this.

--margin N skips N numbers in every period. --margin auto (the default)
skips, per period, what the sequence took in the hour before the backup, or
twice that rate times the backup's age if that is more, plus two blocks for
a cached sequence (ten numbers for a gapless one). The backup's age comes from the
time "allot backup" recorded, else --backup-time, else the newest entry in
the database. Stop every server first. Claims and idempotency keys made
after the backup are not in it: reconcile pools with your payment records,
and run "allot audit" afterwards.`

// runBackup is "allot backup".
func runBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("allot backup", backupSynopsis, stdout)
	storeURL := fs.String("store", envOr(getenv, "ALLOT_STORE", storeDefault), "the store's `URL` (env ALLOT_STORE)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return withHelp(err, "allot backup")
	}
	if err := checkArgs(fs, pos, 1, "FILE"); err != nil {
		return withHelp(err, "allot backup")
	}
	if !strings.HasPrefix(*storeURL, "sqlite:") {
		return withHelp(usagef("backup copies SQLite stores; for PostgreSQL use pg_dump --format=custom or point-in-time recovery, "+
			"then `allot restore --store %s` after restoring", redactURL(*storeURL)), "allot backup")
	}
	path, err := sqlite.PathFromURL(*storeURL)
	if err != nil {
		return withHelp(usagef("--store: %v", err), "allot backup")
	}
	if _, err := os.Stat(path); err != nil {
		return withHelp(usagef("--store: no database at %s", path), "allot backup")
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	taken, err := st.Backup(ctx, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s at %s\n", path, pos[0], taken.UTC().Format(time.RFC3339))
	return nil
}

// runRestore is "allot restore".
func runRestore(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("allot restore", restoreSynopsis, stdout)
	storeURL := fs.String("store", envOr(getenv, "ALLOT_STORE", storeDefault), "the store's `URL` (env ALLOT_STORE)")
	from := fs.String("from", "", "copy the SQLite backup `FILE` to the store's path first")
	force := fs.Bool("force", false, "with --from: keep an existing database aside (renamed) instead of refusing")
	margin := fs.String("margin", "auto", "skip `N` numbers per period, or auto")
	backupTime := fs.String("backup-time", "", "when the backup was taken, `RFC3339` (default: recorded by allot backup, else the newest entry)")
	dryRun := fs.Bool("dry-run", false, "print what would be skipped, change nothing")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return withHelp(err, "allot restore")
	}
	if err := checkArgs(fs, pos, 0, ""); err != nil {
		return withHelp(err, "allot restore")
	}
	fixed := int64(-1)
	if *margin != "auto" {
		n, err := strconv.ParseInt(*margin, 10, 64)
		if err != nil || n < 0 {
			return withHelp(usagef("--margin %q: give a whole number of 0 or more, or auto", *margin), "allot restore")
		}
		fixed = n
	}
	var at time.Time
	if *backupTime != "" {
		if at, err = time.Parse(time.RFC3339, *backupTime); err != nil {
			return withHelp(usagef("--backup-time %q is not an RFC 3339 time, e.g. 2026-11-27T09:00:00Z", *backupTime), "allot restore")
		}
	}
	if *from != "" {
		if *dryRun {
			return withHelp(usagef("--dry-run reads the store as it is: copy the backup with --from first, or leave --dry-run out"), "allot restore")
		}
		if err := copyBackup(*storeURL, *from, *force, stdout); err != nil {
			return err
		}
	}
	st, err := openStore(ctx, *storeURL) // a backup of an older allot gets its migrations
	if err != nil {
		return err
	}
	defer st.Close()
	as, ok := st.(allot.AdminStore)
	if !ok {
		return errors.New("this store can't be restored")
	}
	if sq, ok := st.(*sqlite.Store); ok && at.IsZero() {
		if t, found, err := sq.BackupTime(ctx); err != nil {
			return err
		} else if found {
			at = t
		}
	}
	if at.IsZero() {
		if at, err = as.LastActivity(ctx); err != nil {
			return err
		}
	}
	now := time.Now()
	age := now.Sub(at)
	if at.IsZero() {
		age = 0
	}
	fmt.Fprintf(stdout, "backup taken at %s (%s ago)\n", at.UTC().Format(time.RFC3339), age.Round(time.Second))
	seqs, err := as.SequenceList(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQUENCE\tPERIOD\tLAST BEFORE\tLAST AFTER\tSKIPPED (VOIDED)")
	var total int64
	for _, seq := range seqs {
		counters, err := as.SequenceCounters(ctx, seq.Name)
		if err != nil {
			return err
		}
		periods := map[string]int64{}
		for _, c := range counters {
			periods[c.Period] = c.Last
		}
		if !at.IsZero() {
			for _, p := range allot.PeriodsBetween(seq, at, now) {
				if _, ok := periods[p]; !ok {
					periods[p] = seq.Start - 1
				}
			}
		}
		n := fixed
		if n < 0 {
			taken, err := as.SequenceActivity(ctx, seq.Name, at.Add(-time.Hour), at.Add(time.Second))
			if err != nil {
				return err
			}
			n = allot.RestoreMargin(seq, taken, age)
		}
		for _, period := range sortedKeys(periods) {
			before := periods[period]
			skip := min(n, allot.Remaining(before, seq.Max))
			if skip == 0 {
				continue
			}
			after := before + skip
			if !*dryRun {
				c, err := as.SequenceSkip(ctx, allot.SequenceSkipParams{Sequence: seq.Name, Period: period, Count: skip,
					Reason: allot.RestoreReason, Owner: "allot restore"})
				if err != nil {
					return err
				}
				after = c.Last
			}
			total += after - before
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", seq.Name, periodText(period), before, after, after-before)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if *dryRun {
		fmt.Fprintf(stdout, "dry run: would skip and void %d numbers; nothing was changed\n", total)
		return nil
	}
	if err := as.ServersForget(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored: %d numbers skipped and voided (%q); run `allot audit` to check the database\n", total, allot.RestoreReason)
	return nil
}

// copyBackup puts a SQLite backup at the store's path.
func copyBackup(storeURL, from string, force bool, stdout io.Writer) error {
	if !strings.HasPrefix(storeURL, "sqlite:") {
		return usagef("--from restores SQLite backups; for PostgreSQL restore the dump with pg_restore, then run restore without --from")
	}
	path, err := sqlite.PathFromURL(storeURL)
	if err != nil {
		return usagef("--store: %v", err)
	}
	src, err := os.Open(from)
	if err != nil {
		return usagef("--from: %v", err)
	}
	defer src.Close()
	if _, err := os.Stat(path); err == nil {
		if !force {
			return usagef("a database exists at %s: stop the servers and pass --force to keep it aside and restore over it", path)
		}
		aside := fmt.Sprintf("%s.replaced-%s", path, time.Now().UTC().Format("20060102T150405Z"))
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Rename(path+suffix, aside+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("keep the old database aside: %w", err)
			}
		}
		fmt.Fprintf(stdout, "kept the old database as %s\n", aside)
	}
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("restore to %s: %w", path, err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("restore to %s: %w", path, err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return fmt.Errorf("restore to %s: %w", path, err)
	}
	return dst.Close()
}

func sortedKeys(m map[string]int64) []string { return slices.Sorted(maps.Keys(m)) }
