package main

// Process tests for the books a sequence keeps, on the real binary: what
// a restart and a kill -9 do to a small range, a lost answer with a
// database lock held, backup and restore, a read-only audit, /metrics
// behind a key.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/testdb"
	"github.com/allot/allot/postgres"
)

// runCLI runs the binary with args and returns its output and exit code.
func binCLI(t *testing.T, server string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), "ALLOT_SERVER="+server)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func getState(t *testing.T, base, name string) allot.SequenceState {
	t.Helper()
	var st allot.SequenceState
	if code, _, err := call("GET", base+"/v1/sequences/"+name, nil, nil, &st); err != nil || code != 200 {
		t.Fatalf("get %s: %d %v", name, code, err)
	}
	return st
}

// TestRestartKeepsTheRange is the licence plates with the real
// binary: LP{n:AA9} has 6,760 IDs; after a roll of 1,000 and 14 single
// labels, SIGTERM and a restart leave 5,746, not 2,760.
func TestRestartKeepsTheRange(t *testing.T) {
	db := "sqlite://" + testdb.SQLitePath(t)
	addr := freeAddr(t)
	p := startServerAt(t, addr, db)
	if out, code := binCLI(t, p.url, "seq", "create", "lp", "--format", "LP{n:AA9}", "--start", "0"); code != 0 {
		t.Fatalf("create: %s", out)
	}
	if out, code := binCLI(t, p.url, "seq", "next", "lp", "--count", "1000"); code != 0 || strings.Count(out, "\n") != 1000 {
		t.Fatalf("roll: %d lines, %s", strings.Count(out, "\n"), out[:min(len(out), 200)])
	}
	for i := 0; i < 14; i++ {
		if _, code := binCLI(t, p.url, "seq", "next", "lp"); code != 0 {
			t.Fatal("single label")
		}
	}
	// The 14 labels came from a lease, capped at 1/32 of what was left.
	if st := getState(t, p.url, "lp"); st.Remaining+st.Leased != 5760 || st.Leased > allot.LeaseCap(5760) {
		t.Fatalf("before the restart: remaining %d, leased %d", st.Remaining, st.Leased)
	}
	if _, err := p.term(); err != nil {
		t.Fatal(err)
	}
	p = startServerAt(t, addr, db)
	st := getState(t, p.url, "lp")
	if st.Remaining != 5746 || st.Voided != 0 || st.Issued != 1014 {
		t.Fatalf("after a restart: remaining %d, voided %d, issued %d; want 5746, 0, 1014", st.Remaining, st.Voided, st.Issued)
	}
	if out, _ := binCLI(t, p.url, "seq", "next", "lp"); strings.TrimSpace(out) != "LPDX4" {
		t.Fatalf("the next label after the restart is %q, want LPDX4 (number 1014)", out)
	}
}

// TestCrashLeavesNumbersLeased is the crash1: a number leased to a
// server that died is not known to be issued, and two servers on one
// database report the same figures.
func TestCrashLeavesNumbersLeased(t *testing.T) {
	db := testdb.Postgres(t)
	a := startServer(t, db)
	b := startServer(t, db)
	if out, code := binCLI(t, a.url, "seq", "create", "crash1"); code != 0 {
		t.Fatal(out)
	}
	if out, _ := binCLI(t, a.url, "seq", "next", "crash1"); strings.TrimSpace(out) != "1" {
		t.Fatalf("next: %q", out)
	}
	binCLI(t, b.url, "seq", "next", "crash1")
	sa, sb := getState(t, a.url, "crash1"), getState(t, b.url, "crash1")
	if sa.Issued != sb.Issued || sa.Leased != sb.Leased || sa.Next != sb.Next || sa.Remaining != sb.Remaining {
		t.Fatalf("two servers disagree: %+v and %+v", sa, sb)
	}
	a.kill9()
	out, _ := binCLI(t, b.url, "seq", "parse", "crash1", "999")
	if !strings.Contains(out, "leased") || strings.Contains(out, ", issued") {
		t.Fatalf("parse 999 after a kill -9: %s", out)
	}
	st := getState(t, b.url, "crash1")
	if st.Issued != 0 || st.Leased != 2000 {
		t.Fatalf("figures after a kill -9: issued %d, leased %d; want 0 and 2000 (both servers' leases)", st.Issued, st.Leased)
	}
	if _, err := b.term(); err != nil {
		t.Fatal(err)
	}
	c := startServer(t, db)
	st = getState(t, c.url, "crash1")
	if st.Issued != 1 || st.Leased != 1000 {
		t.Fatalf("after b stopped gracefully: issued %d, leased %d; want b's 1 issued, a's 1000 still leased", st.Issued, st.Leased)
	}
}

// TestLostAnswerWithLockHeld is the fault-injection run's reproduction on
// PostgreSQL: a second session holds the counter row lock for 3 s, the
// caller gives up after 1 s; the number must not be issued to nobody.
func TestLostAnswerWithLockHeld(t *testing.T) {
	url := testdb.Postgres(t)
	p := startServer(t, url)
	createSeq(t, p.url, allot.SequenceCreateParams{Name: "g", Mode: allot.ModeGapless})
	if _, _, err := call("POST", p.url+"/v1/sequences/g/next", nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tx, err := st.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM allot_sequence_counters WHERE sequence = 'g' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: time.Second}
	if resp, err := hc.Post(p.url+"/v1/sequences/g/next", "application/json", strings.NewReader("{}")); err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d while the lock was held", resp.StatusCode)
	}
	time.Sleep(2 * time.Second)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := getState(t, p.url, "g")
		if s.Next == 2 && s.Issued == 1 && s.Voided == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the lost answer: %+v; want issued 1, voided 0, next 2", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var r allot.NextResult
	if _, _, err := call("POST", p.url+"/v1/sequences/g/next", nil, nil, &r); err != nil || r.First != 2 {
		t.Fatalf("the next caller got %+v %v, want 2", r, err)
	}
}

// TestKillBeforeAnswerIsAudited: a kill -9 between the commit of gapless
// numbers and their answer leaves numbers nobody knows the caller got; the
// audit reports them instead of passing, and an operator resolves them.
func TestKillBeforeAnswerIsAudited(t *testing.T) {
	db := "sqlite://" + testdb.SQLitePath(t)
	addr := freeAddr(t)
	p := startServerAt(t, addr, db, "ALLOT_FAILPOINT="+allot.FailpointAfterCommit)
	createSeq(t, p.url, allot.SequenceCreateParams{Name: "inv", Mode: allot.ModeGapless})
	if _, _, err := call("POST", p.url+"/v1/sequences/inv/next", map[string]any{"count": 2}, nil, nil); err == nil {
		t.Fatal("the failpoint should have killed the server before it answered")
	}
	<-p.done
	p.exited = true
	st := openStoreT(t, db)
	checks, err := st.Audit(context.Background(), time.Now().Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, c := range checks {
		if !c.OK {
			failed = append(failed, c.Name+": "+c.Detail)
		}
	}
	if len(failed) != 1 || !strings.Contains(failed[0], "answered") || !strings.Contains(failed[0], "first=1, last=2") {
		t.Fatalf("the audit after a kill between commit and answer: %v", failed)
	}
	st.Close()
	p = startServerAt(t, addr, db)
	if out, code := binCLI(t, p.url, "seq", "confirm", "inv", "--first", "1", "--last", "2", "--reference", "invoices 1-2 were printed"); code != 0 {
		t.Fatalf("confirm: %s", out)
	}
	st = openStoreT(t, db)
	checks, _ = st.Audit(context.Background(), time.Now().Add(2*time.Minute))
	for _, c := range checks {
		if !c.OK {
			t.Fatalf("after the operator confirmed them: %s: %s", c.Name, c.Detail)
		}
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestBackupRestore: a backup taken while the server runs, numbers issued
// after it, a restore: no number is issued twice, and the skipped numbers
// are voided with the reason. The audit of a copy reads it only.
func TestBackupRestore(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "allot.db")
	db := "sqlite://" + dbPath
	addr := freeAddr(t)
	p := startServerAt(t, addr, db)
	createSeq(t, p.url, allot.SequenceCreateParams{Name: "inv", Format: "INV-{yyyy}-{n:5}", Mode: allot.ModeGapless, Reset: allot.ResetYearly})
	createSeq(t, p.url, allot.SequenceCreateParams{Name: "lp", Format: "LP{n:AA9}", Start: ptr[int64](0), BlockSize: ptr[int64](20)})
	issued := map[string]bool{}
	take := func(n int) {
		for i := 0; i < n; i++ {
			for _, name := range []string{"inv", "lp"} {
				var r allot.NextResult
				if _, _, err := call("POST", p.url+"/v1/sequences/"+name+"/next", nil, nil, &r); err != nil {
					t.Fatal(err)
				}
				issued[r.IDs[0]] = true
			}
		}
	}
	createSeq(t, p.url, allot.SequenceCreateParams{Name: "fy", Format: "FY-{yyyy}-{n}", Mode: allot.ModeGapless, Reset: allot.ResetYearly,
		PeriodsAhead: ptr(1)})
	nextYear := fmt.Sprintf("%d-01-15", time.Now().Year()+1)
	takeNextYear := func(n int) {
		for i := 0; i < n; i++ {
			var r allot.NextResult
			if _, _, err := call("POST", p.url+"/v1/sequences/fy/next", map[string]any{"date": nextYear}, nil, &r); err != nil {
				t.Fatal(err)
			}
			if issued[r.IDs[0]] {
				t.Fatalf("%s issued a second time", r.IDs[0])
			}
			issued[r.IDs[0]] = true
		}
	}
	createPool(t, p.url, allot.PoolCreateParams{Name: "gig", Capacity: ptr[int64](10), PerCustomer: ptr[int64](0)})
	take(30)
	takeNextYear(2)
	backup := filepath.Join(dir, "backup.db")
	if out, code := binCLI(t, p.url, "backup", "--store", db, backup); code != 0 || !strings.Contains(out, "backed up") {
		t.Fatalf("backup: %s", out)
	}
	take(25) // issued after the backup: a restore must not issue these again
	// Dated in next year's period, which the backup has no counter for.
	takeNextYear(5)
	// A restore refuses a database a server runs on.
	if out, code := binCLI(t, "", "restore", "--store", db, "--from", backup, "--force"); code == 0 || !strings.Contains(out, "seem to run") {
		t.Fatalf("restore under a running server: %d %s", code, out)
	}
	if _, err := p.term(); err != nil {
		t.Fatal(err)
	}
	liveSum := fileSum(t, dbPath)
	noLeftovers := func() {
		t.Helper()
		if m, _ := filepath.Glob(dbPath + ".restoring-*"); len(m) > 0 {
			t.Fatalf("a failed restore left %v", m)
		}
	}
	// A file that is not a backup changes nothing at the path.
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, []byte("not a database at all, not even close, longer than a header........................................................"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := binCLI(t, "", "restore", "--store", db, "--from", junk, "--force"); code == 0 || fileSum(t, dbPath) != liveSum {
		t.Fatalf("restore from a file that is not a backup: %d %s (database changed: %v)", code, out, fileSum(t, dbPath) != liveSum)
	}
	noLeftovers()
	// A mistyped path is refused, not created.
	typo := filepath.Join(dir, "typo.db")
	if out, code := binCLI(t, "", "restore", "--store", "sqlite://"+typo); code == 0 || !strings.Contains(out, "no database") {
		t.Fatalf("restore of a mistyped path: %d %s", code, out)
	}
	if _, err := os.Stat(typo); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("restore created %s: %v", typo, err)
	}
	// A backup served as it is would issue again what was issued after it.
	served := filepath.Join(dir, "served.db")
	if err := copyFile(backup, served); err != nil {
		t.Fatal(err)
	}
	if out, code := binCLI(t, "", "migrate", "--store", "sqlite://"+served); code == 0 || !strings.Contains(out, "was not restored") {
		t.Fatalf("migrate of a backup not restored: %d %s", code, out)
	}
	// A dry run writes nothing, in place or from a copy.
	backupSum := fileSum(t, backup)
	if out, code := binCLI(t, "", "restore", "--store", "sqlite://"+backup, "--dry-run"); code != 0 || !strings.Contains(out, "nothing was changed") {
		t.Fatalf("dry run in place: %d %s", code, out)
	}
	if out, code := binCLI(t, "", "restore", "--store", db, "--from", backup, "--dry-run"); code != 0 || !strings.Contains(out, "was not changed") {
		t.Fatalf("dry run from a copy: %d %s", code, out)
	}
	if fileSum(t, backup) != backupSum || fileSum(t, dbPath) != liveSum {
		t.Fatal("a dry run changed a file")
	}
	noLeftovers()

	// The audit of the backup copy reads it without changing a byte.
	sum := fileSum(t, backup)
	if out, code := binCLI(t, "", "audit", "--store", "sqlite://"+backup); code != 0 {
		t.Fatalf("audit of the backup: %s", out)
	}
	if fileSum(t, backup) != sum {
		t.Fatal("audit changed the backup file")
	}
	if _, err := os.Stat(backup + "-wal"); err == nil {
		t.Fatal("audit left a -wal file next to the backup")
	}

	if out, code := binCLI(t, "", "restore", "--store", db, "--from", backup); code != 2 || !strings.Contains(out, "--force") {
		t.Fatalf("restore over an existing database without --force: %d %s", code, out)
	}
	out, code := binCLI(t, "", "restore", "--store", db, "--from", backup, "--force")
	if code != 0 || !strings.Contains(out, "restored") || !strings.Contains(out, "paused pool(s) gig") {
		t.Fatalf("restore: %s", out)
	}
	noLeftovers()
	p = startServerAt(t, addr, db)
	takeNextYear(10)
	for i := 0; i < 40; i++ {
		for _, name := range []string{"inv", "lp"} {
			var r allot.NextResult
			if _, _, err := call("POST", p.url+"/v1/sequences/"+name+"/next", nil, nil, &r); err != nil {
				t.Fatal(err)
			}
			if issued[r.IDs[0]] {
				t.Fatalf("after the restore %s was issued a second time", r.IDs[0])
			}
		}
	}
	var page allot.LedgerPage
	if _, _, err := call("GET", p.url+"/v1/sequences/inv/ledger?limit=1000", nil, nil, &page); err != nil {
		t.Fatal(err)
	}
	restored := false
	for _, e := range page.Entries {
		restored = restored || e.Kind == allot.LedgerVoided && e.Reason == allot.RestoreReason
	}
	if !restored {
		t.Fatalf("no void with the reason %q in the ledger", allot.RestoreReason)
	}
	if out, code := binCLI(t, p.url, "audit", "--store", db); code != 0 {
		t.Fatalf("audit after the restore: %s", out)
	}
	// Pools stay paused until reopened: what was sold after the backup is
	// not in it.
	var pl allot.PoolState
	if _, _, err := call("GET", p.url+"/v1/pools/gig", nil, nil, &pl); err != nil || pl.State != allot.PoolPaused {
		t.Fatalf("pool after the restore: %+v %v", pl, err)
	}
	// A sequence with no numbers in the week before a backup gives no
	// rate: auto refuses, and a margin given does it.
	createSeq(t, p.url, allot.SequenceCreateParams{Name: "idle", Mode: allot.ModeGapless})
	backup2 := filepath.Join(dir, "backup2.db")
	if out, code := binCLI(t, "", "backup", "--store", db, backup2); code != 0 {
		t.Fatalf("second backup: %s", out)
	}
	if out, code := binCLI(t, "", "restore", "--store", "sqlite://"+backup2, "--dry-run"); code == 0 || !strings.Contains(out, "idle") || !strings.Contains(out, "--margin") {
		t.Fatalf("auto margin for a sequence with no history: %d %s", code, out)
	}
	if out, code := binCLI(t, "", "restore", "--store", "sqlite://"+backup2, "--margin", "50"); code != 0 || !strings.Contains(out, "idle") {
		t.Fatalf("restore with a margin: %d %s", code, out)
	}
	if out, code := binCLI(t, "", "backup", "--store", testdb.Postgres(t), filepath.Join(dir, "x")); code != 2 || !strings.Contains(out, "pg_dump") {
		t.Fatalf("backup of PostgreSQL: %d %s", code, out)
	}
}

// TestMetricsBehindKeys: with keys /metrics needs an admin or metrics key;
// --metrics-listen serves it without one on another address.
func TestMetricsBehindKeys(t *testing.T) {
	metricsAddr := freeAddr(t)
	p := startServer(t, "sqlite://"+testdb.SQLitePath(t),
		"ALLOT_API_KEYS=admin:admin-token-0123456789,metrics:metrics-token-012345,client:client-token-0123456",
		"ALLOT_METRICS_LISTEN="+metricsAddr)
	get := func(url, key string) int {
		req, _ := http.NewRequest("GET", url, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		url, key string
		want     int
	}{
		{p.url + "/metrics", "", 401},
		{p.url + "/metrics", "client-token-0123456", 403},
		{p.url + "/metrics", "metrics-token-012345", 200},
		{p.url + "/metrics", "admin-token-0123456789", 200},
		{p.url + "/v1/sequences", "metrics-token-012345", 403},
		{"http://" + metricsAddr + "/metrics", "", 200},
		{"http://" + metricsAddr + "/v1/sequences", "", 404},
	} {
		if got := get(tc.url, tc.key); got != tc.want {
			t.Errorf("GET %s with key %q: %d, want %d", tc.url, tc.key, got, tc.want)
		}
	}
}

// TestAuditNeverMigrates: an audit of a database at another schema
// version refuses, naming `allot migrate`, and writes nothing.
func TestAuditNeverMigrates(t *testing.T) {
	path := testdb.SQLitePath(t)
	if out, code := binCLI(t, "", "migrate", "--store", "sqlite://"+path); code != 0 {
		t.Fatal(out)
	}
	st := openStoreT(t, "sqlite://"+path)
	if _, err := st.(interface{ DB() *sql.DB }).DB().Exec(`DELETE FROM allot_schema_migrations WHERE version = (SELECT max(version) FROM allot_schema_migrations)`); err != nil {
		t.Fatal(err)
	}
	st.Close()
	sum := fileSum(t, path)
	out, code := binCLI(t, "", "audit", "--store", "sqlite://"+path)
	if code == 0 || !strings.Contains(out, "allot migrate") {
		t.Fatalf("audit of an older schema: %d %s", code, out)
	}
	if fileSum(t, path) != sum {
		t.Fatal("the audit changed the database")
	}
}

// TestManyDatesBounded: a cached daily sequence fed many distinct dates
// keeps a bounded number of leases (the rest are given back as newer
// dates push them out), and a SIGTERM still stops within its budget with
// every lease given back.
func TestManyDatesBounded(t *testing.T) {
	db := "sqlite://" + testdb.SQLitePath(t)
	p := startServer(t, db)
	createSeq(t, p.url, allot.SequenceCreateParams{Name: "d", Format: "D{yyyy}{mm}{dd}-{n}", Reset: allot.ResetDaily,
		BlockSize: ptr[int64](100), PeriodsBack: ptr(allot.PeriodsMax)})
	day := time.Now().UTC().AddDate(0, 0, -999)
	for i := 0; i < 1000; i++ {
		body := map[string]any{"date": day.AddDate(0, 0, i).Format(time.DateOnly)}
		if code, _, err := call("POST", p.url+"/v1/sequences/d/next", body, nil, nil); err != nil || code != 200 {
			t.Fatalf("next %d: %d %v", i, code, err)
		}
	}
	d, err := p.term()
	if err != nil || d > 10*time.Second {
		t.Fatalf("SIGTERM after 1,000 dates: %s, %v", d, err)
	}
	st := openStoreT(t, db)
	entries, err := st.SequenceLedger(context.Background(), allot.SequenceLedgerParams{Sequence: "d", Limit: 1000})
	for err == nil && len(entries) > 0 {
		for _, e := range entries {
			if e.Pending {
				t.Fatalf("a lease still pending after a graceful stop: %+v", e)
			}
		}
		entries, err = st.SequenceLedger(context.Background(), allot.SequenceLedgerParams{Sequence: "d", AfterID: entries[len(entries)-1].ID, Limit: 1000})
	}
	if err != nil {
		t.Fatal(err)
	}
	checks, err := st.Audit(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if !c.OK {
			t.Fatalf("audit: %s: %s", c.Name, c.Detail)
		}
	}
}
