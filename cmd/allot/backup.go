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

const restoreSynopsis = `allot restore [--store URL] [--from FILE [--force]] [--margin N|auto]
              [--backup-time RFC3339] [--dry-run]

Makes a restored backup safe to serve again. A backup knows every number
issued until it was taken, not those issued after: served as it is, it would
hand those numbers out a second time. So restore moves every counter of
every sequence past what may have been issued since the backup (the margin)
and voids the numbers it skips, with the reason "restored from backup": for
every period a document date could fall in since the backup (periods_back
before the backup's period to periods_ahead after today's). It records that
no server of the database is running (their leases read as held by servers
that stopped without saying what they handed out).

Stop every server first: restore refuses a database a server was seen on in
the last minute. It also refuses a path with no allot database (a typo).

With --from (SQLite), FILE (a backup from "allot backup") is copied next to
the store's path and made safe there; only then is it put at the path, so a
failure changes nothing. An existing database at the path is kept, renamed
to <path>.replaced-<time>, only with --force. For PostgreSQL, restore the
dump (pg_restore) or recover to a point in time first, then run this.

--margin N skips N numbers in every period. --margin auto (the default)
takes the sequence's rate as the highest of its last hour's, day's and
week's before the backup, and skips, per period, an hour at that rate (at
least the last hour's count) or twice that rate times the backup's age if
that is more, plus, per server running at the backup, two leases of a cached
sequence (a block each, at most 1/32 of what the period had left) or ten
numbers of a gapless one. A sequence that took nothing in the week before
the backup gives no rate: auto then refuses, and you give --margin. The
backup's age comes from the time "allot backup" recorded, else
--backup-time, else the last write in the database. --dry-run says what
would be done and writes nothing (with --from it works on a copy it then
discards).

Claims and idempotency keys made after the backup are not in it, and the
holds in it will expire: so restore pauses every open pool. Reconcile each
with your payment records, then reopen it (allot pool patch NAME --state
open). Run "allot audit" afterwards. Serving a backup that was not restored
is refused (allot serve and allot migrate say so).`

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
	from := fs.String("from", "", "make a copy of the SQLite backup `FILE` safe, then put it at the store's path")
	force := fs.Bool("force", false, "with --from: replace an existing database (kept aside, renamed) instead of refusing")
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
	o := restoreOpts{fixed: -1, dryRun: *dryRun, force: *force}
	if *margin != "auto" {
		n, err := strconv.ParseInt(*margin, 10, 64)
		if err != nil || n < 0 {
			return withHelp(usagef("--margin %q: give a whole number of 0 or more, or auto", *margin), "allot restore")
		}
		o.fixed = n
	}
	if *backupTime != "" {
		if o.at, err = time.Parse(time.RFC3339, *backupTime); err != nil {
			return withHelp(usagef("--backup-time %q is not an RFC 3339 time, e.g. 2026-11-27T09:00:00Z", *backupTime), "allot restore")
		}
	}
	if *from != "" {
		return restoreFrom(ctx, *storeURL, *from, o, stdout)
	}
	if *force {
		return withHelp(usagef("--force only goes with --from (it lets a restored copy replace an existing database)"), "allot restore")
	}
	return restoreInPlace(ctx, *storeURL, o, stdout)
}

// restoreOpts are the choices of "allot restore".
type restoreOpts struct {
	fixed  int64     // the margin per period, -1 for auto
	at     time.Time // when the backup was taken, zero if not given
	dryRun bool
	force  bool
}

// restoreFrom makes a copy of a SQLite backup safe next to the store's
// path, then puts it in place. Nothing at the path changes until the copy
// is migrated and moved past the margin: a failure leaves the database
// there as it was.
func restoreFrom(ctx context.Context, storeURL, from string, o restoreOpts, stdout io.Writer) error {
	if !strings.HasPrefix(storeURL, "sqlite:") {
		return usagef("--from restores SQLite backups; for PostgreSQL restore the dump with pg_restore, then run restore without --from")
	}
	path, err := sqlite.PathFromURL(storeURL)
	if err != nil {
		return usagef("--store: %v", err)
	}
	if _, err := os.Stat(from); err != nil {
		return usagef("--from: %v", unwrapPath(err))
	}
	_, err = os.Stat(path)
	live := err == nil
	if live && !o.force && !o.dryRun {
		return usagef("a database exists at %s: stop its servers and pass --force to keep it aside and restore over it", path)
	}
	if live {
		if err := refuseRunning(ctx, "sqlite://"+path, path, time.Time{}, stdout); err != nil {
			return err
		}
	}
	tmp := fmt.Sprintf("%s.restoring-%s", path, time.Now().UTC().Format("20060102T150405.000Z"))
	defer removeDB(tmp) // a no-op once it is in place
	if err := copyFile(from, tmp); err != nil {
		return err
	}
	if err := checkAllotDB(ctx, "sqlite://"+tmp, from); err != nil {
		return err
	}
	st, err := openStore(ctx, "sqlite://"+tmp) // a backup of an older allot gets its migrations
	if err != nil {
		return err
	}
	err = restoreStore(ctx, st.(allot.AdminStore), o, true, stdout)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if o.dryRun {
		fmt.Fprintf(stdout, "dry run: the copy of %s was discarded; %s was not changed\n", from, path)
		return nil
	}
	aside := fmt.Sprintf("%s.replaced-%s", path, time.Now().UTC().Format("20060102T150405.000000000Z"))
	if _, err := os.Lstat(aside); err == nil {
		return fmt.Errorf("keep the old database aside: %s already exists; try again", aside)
	}
	if live {
		if err := moveDB(path, aside); err != nil {
			return fmt.Errorf("keep the old database aside: %w", err)
		}
		fmt.Fprintf(stdout, "kept the old database as %s\n", aside)
	}
	if err := moveDB(tmp, path); err != nil {
		if live {
			if berr := moveDB(aside, path); berr != nil {
				return fmt.Errorf("put the restored database at %s: %w; the old one stays at %s (%v)", path, err, aside, berr)
			}
		}
		return fmt.Errorf("put the restored database at %s: %w (nothing at %s changed)", path, err, path)
	}
	fmt.Fprintf(stdout, "restored %s to %s; run `allot audit --store %s` to check it\n", from, path, redactURL(storeURL))
	return nil
}

// restoreInPlace makes the database at the store (a backup put there by
// hand, or a PostgreSQL dump restored with pg_restore) safe to serve.
func restoreInPlace(ctx context.Context, storeURL string, o restoreOpts, stdout io.Writer) error {
	if strings.HasPrefix(storeURL, "sqlite:") {
		path, err := sqlite.PathFromURL(storeURL)
		if err != nil {
			return usagef("--store: %v", err)
		}
		if _, err := os.Stat(path); err != nil {
			return usagef("--store: no database at %s: give the path of the restored backup, or use --from FILE", path)
		}
	}
	if err := checkAllotDB(ctx, storeURL, redactURL(storeURL)); err != nil {
		return err
	}
	if err := refuseRunning(ctx, storeURL, redactURL(storeURL), o.at, stdout); err != nil {
		return err
	}
	if o.dryRun {
		// Read only: no migration, nothing written.
		st, err := openStoreReadOnly(ctx, storeURL)
		if err != nil {
			return err
		}
		defer st.Close()
		have, want, err := st.SchemaVersion(ctx)
		if err != nil {
			return err
		}
		if have != want {
			return fmt.Errorf("the database's schema is version %d, this allot's is %d: a dry run only reads; "+
				"run `allot migrate --store %s` first, or leave --dry-run out", have, want, redactURL(storeURL))
		}
		return restoreStore(ctx, st, o, false, stdout)
	}
	st, err := openStore(ctx, storeURL) // a backup of an older allot gets its migrations
	if err != nil {
		return err
	}
	defer st.Close()
	return restoreStore(ctx, st.(allot.AdminStore), o, true, stdout)
}

// checkAllotDB refuses a database with no allot schema (a mistyped path,
// a file that is not a backup), which a restore would otherwise create
// and report as restored.
func checkAllotDB(ctx context.Context, url, name string) error {
	st, err := openStoreReadOnly(ctx, url)
	if err != nil {
		return err
	}
	defer st.Close()
	have, _, err := st.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("%s is not an allot database: %w", name, err)
	}
	if have == 0 {
		return fmt.Errorf("%s holds no allot database (no schema): give the restored backup", name)
	}
	return nil
}

// heartbeatSchema is the first schema version whose servers say they are
// alive (allot_servers.seen_at).
const heartbeatSchema = 5

// refuseRunning refuses to restore over a database servers are using:
// moving counters under them, and marking them stopped, would let them
// hand out numbers the ledger then gets wrong. A server counts as running
// if it was seen within allot.ServerSilentAfter; with since set (the
// backup's time, known for sure), only if seen after it: a backup's own
// record of the servers running when it was taken is frozen before.
func refuseRunning(ctx context.Context, url, name string, since time.Time, stdout io.Writer) error {
	st, err := openStoreReadOnly(ctx, url)
	if err != nil {
		return err
	}
	defer st.Close()
	if have, _, err := st.SchemaVersion(ctx); err != nil {
		return err
	} else if have < heartbeatSchema {
		fmt.Fprintf(stdout, "warning: %s is from an allot without server heartbeats: make sure no server runs on it\n", name)
		return nil
	}
	if since.IsZero() {
		if sq, ok := st.(*sqlite.Store); ok {
			if _, done, found, err := sq.BackupTime(ctx); err == nil && found {
				since = done
			}
		}
	}
	seen, err := st.ServersRunning(ctx, time.Now())
	if err != nil {
		return fmt.Errorf("check that no server runs on %s: %w", name, err)
	}
	var running []string
	for _, sv := range seen {
		if since.IsZero() || sv.SeenAt.After(since) {
			running = append(running, sv.Owner)
		}
	}
	if len(running) > 0 {
		return fmt.Errorf("servers seem to run on %s (%s: seen within the last %s): stop them first; "+
			"a server that crashed counts as stopped once it has not been seen for %[3]s", name, strings.Join(running, ", "), allot.ServerSilentAfter)
	}
	return nil
}

// restoreStore moves every counter of st past the margin (or, with apply
// false, only says what it would skip).
func restoreStore(ctx context.Context, as allot.AdminStore, o restoreOpts, apply bool, stdout io.Writer) error {
	sq, isSQLite := as.(*sqlite.Store)
	at := o.at
	if isSQLite && at.IsZero() {
		if t, _, found, err := sq.BackupTime(ctx); err != nil {
			return err
		} else if found {
			at = t
		}
	}
	if at.IsZero() {
		var err error
		if at, err = as.LastActivity(ctx); err != nil {
			return err
		}
	}
	now := time.Now()
	age := now.Sub(at)
	if at.IsZero() {
		age = 0
	}
	servers := 0
	if !at.IsZero() {
		running, err := as.ServersRunning(ctx, at)
		if err != nil {
			return err
		}
		servers = len(running)
	}
	fmt.Fprintf(stdout, "backup taken at %s (%s ago), %d server(s) running then\n", at.UTC().Format(time.RFC3339), age.Round(time.Second), servers)
	if at.IsZero() && o.fixed < 0 {
		return errors.New("nothing tells when this backup was taken (the database has no activity at all): give --backup-time, or --margin N")
	}
	// Plan every skip first: nothing is written if any sequence can't be
	// planned.
	type skip struct {
		seq          *allot.Sequence
		period       string
		before, skip int64
	}
	var plan []skip
	var unknown []string
	seqs, err := as.SequenceList(ctx)
	if err != nil {
		return err
	}
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
			for _, p := range allot.RestorePeriods(seq, at, now) {
				if _, ok := periods[p]; !ok {
					periods[p] = seq.Start - 1
				}
			}
		}
		var act allot.RestoreActivity
		if o.fixed < 0 {
			for _, w := range []struct {
				n *int64
				d time.Duration
			}{{&act.Hour, time.Hour}, {&act.Day, 24 * time.Hour}, {&act.Week, 7 * 24 * time.Hour}} {
				if *w.n, err = as.SequenceActivity(ctx, seq.Name, at.Add(-w.d), at.Add(time.Second)); err != nil {
					return err
				}
			}
		}
		for _, period := range sortedKeys(periods) {
			before := periods[period]
			left := allot.Remaining(before, seq.Max)
			n := o.fixed
			if n < 0 {
				var ok bool
				if n, ok = allot.RestoreMargin(seq, act, age, left, servers); !ok {
					unknown = append(unknown, seq.Name)
					break
				}
			}
			if n = min(n, left); n > 0 {
				plan = append(plan, skip{seq, period, before, n})
			}
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("sequence(s) %s took no numbers in the week before the backup, so nothing tells how many they may have "+
			"taken since: give --margin N (skipped in every period of every sequence), after checking what they issued", strings.Join(unknown, ", "))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQUENCE\tPERIOD\tLAST BEFORE\tLAST AFTER\tSKIPPED (VOIDED)")
	var total int64
	for _, k := range plan {
		after := k.before + k.skip
		if apply {
			c, err := as.SequenceSkip(ctx, allot.SequenceSkipParams{Sequence: k.seq.Name, Period: k.period, Count: k.skip,
				Reason: allot.RestoreReason, Owner: allot.RestoreOwner})
			if err != nil {
				return err
			}
			after = c.Last
		}
		total += after - k.before
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", k.seq.Name, periodText(k.period), k.before, after, after-k.before)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Units sold after the backup are not in it, and the holds in it will
	// expire: an open pool would sell them again. Pause it until the
	// operator has reconciled it with the payment records.
	pools, err := as.PoolList(ctx, now)
	if err != nil {
		return err
	}
	var paused []string
	for _, pl := range pools {
		if pl.State != allot.PoolOpen {
			continue
		}
		if apply {
			if _, err := as.PoolUpdate(ctx, pl.Name, allot.PoolPatchParams{State: allot.PoolPaused}, now); err != nil {
				return err
			}
		}
		paused = append(paused, pl.Name)
	}
	if len(paused) > 0 {
		verb := "paused"
		if !apply {
			verb = "would pause"
		}
		fmt.Fprintf(stdout, "%s pool(s) %s: claims made after the backup are not in it; reconcile them with your payment records, "+
			"then `allot pool patch NAME --state open`\n", verb, strings.Join(paused, ", "))
	}
	if !apply {
		fmt.Fprintf(stdout, "dry run: would skip and void %d numbers; nothing was changed\n", total)
		return nil
	}
	if err := as.ServersForget(ctx); err != nil {
		return err
	}
	if isSQLite {
		if err := sq.ForgetBackupTime(ctx); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "skipped and voided %d numbers (%q)\n", total, allot.RestoreReason)
	return nil
}

// copyFile copies from to a new file to, synced to disk.
func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return usagef("--from: %v", unwrapPath(err))
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("copy the backup: %w", err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("copy the backup to %s: %w", to, err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return fmt.Errorf("copy the backup to %s: %w", to, err)
	}
	return dst.Close()
}

// sqliteFiles are the files of a SQLite database at a path.
var sqliteFiles = []string{"", "-wal", "-shm", "-journal"}

// moveDB renames the SQLite database at from, with its side files, to to.
func moveDB(from, to string) error {
	for _, suffix := range sqliteFiles {
		if err := os.Rename(from+suffix, to+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// removeDB removes the SQLite database at path, with its side files.
func removeDB(path string) {
	for _, suffix := range sqliteFiles {
		_ = os.Remove(path + suffix)
	}
}

// unwrapPath drops the operation from a *fs.PathError ("open x: no such
// file" reads better than "stat x: no such file" for a flag).
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

func sortedKeys(m map[string]int64) []string { return slices.Sorted(maps.Keys(m)) }
