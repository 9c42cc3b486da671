package main

// Tests that run the real binary: several server processes on one database,
// real kill -9, restarts, and the CLI. Every invariant is checked from the
// database itself afterwards.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/testdb"
	"github.com/allot/allot/internal/testkit"
	"github.com/allot/allot/postgres"
	"github.com/allot/allot/sqlite"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "allot-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "allot")
	out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build allot: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running `allot serve`.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	logs *testkit.Buffer
	done chan error
	// exited is set by the test goroutine once it has received from done.
	exited bool
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer starts a server on store and waits until it is ready.
func startServer(t *testing.T, store string, env ...string) *proc {
	t.Helper()
	return startServerAt(t, freeAddr(t), store, env...)
}

func startServerAt(t *testing.T, addr, store string, env ...string) *proc {
	t.Helper()
	p := &proc{t: t, url: "http://" + addr, logs: &testkit.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(binPath, "serve", "--listen", addr, "--store", store, "--log-format", "text")
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = p.logs
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if !p.exited {
			_ = p.cmd.Process.Kill()
			<-p.done
			p.exited = true
		}
		if t.Failed() {
			t.Logf("server %s logs:\n%s", addr, p.logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("server exited during start: %v\n%s", err, p.logs.String())
		default:
		}
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server did not become ready\n%s", p.logs.String())
	return nil
}

// kill9 kills the server with SIGKILL and waits for it.
func (p *proc) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.exited = true
}

// term sends SIGTERM and returns how long the shutdown took and its error.
func (p *proc) term() (time.Duration, error) {
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.exited = true
		return time.Since(start), err
	case <-time.After(30 * time.Second):
		return time.Since(start), fmt.Errorf("no exit 30s after SIGTERM")
	}
}

var httpc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}

// call sends a JSON request and decodes the JSON answer into out.
func call(method, url string, body any, header map[string]string, out any) (int, http.Header, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, resp.Header, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, resp.Header, fmt.Errorf("decode %s: %w", b, err)
		}
	} else if resp.StatusCode >= 300 && out != nil {
		return resp.StatusCode, resp.Header, fmt.Errorf("%s: %s", resp.Status, b)
	}
	return resp.StatusCode, resp.Header, nil
}

func createSeq(t *testing.T, base string, p allot.SequenceCreateParams) {
	t.Helper()
	// These tests' sequences share formats on purpose; overlap refusal
	// has tests of its own.
	p.AllowOverlap = true
	var st allot.SequenceState
	if code, _, err := call("POST", base+"/v1/sequences", p, nil, &st); err != nil || code != 201 {
		t.Fatalf("create %s: %d %v", p.Name, code, err)
	}
}

func ptr[T any](v T) *T { return &v }

// openStoreT opens the database the servers use, to check invariants.
func openStoreT(t *testing.T, url string) allot.Store {
	t.Helper()
	var st allot.Store
	var err error
	if strings.HasPrefix(url, "postgres") {
		st, err = postgres.Open(context.Background(), url)
	} else {
		var path string
		path, err = sqlite.PathFromURL(url)
		if err == nil {
			st, err = sqlite.Open(context.Background(), path)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// ledgerCheck reads a sequence's ledger and counter from the database and
// checks that the taken ranges (issued, leased and reserved) are disjoint and cover
// start..last exactly, that voids lie inside taken ranges, and that every
// number a client received is taken and not voided. It returns the voided
// numbers.
func ledgerCheck(t *testing.T, st allot.Store, seq string, start int64, received map[int64]bool) (last int64, voided map[int64]bool) {
	t.Helper()
	ctx := context.Background()
	c, err := st.SequenceCounterGet(ctx, seq, "")
	if err != nil {
		t.Fatal(err)
	}
	var entries []allot.LedgerEntry
	var after int64
	for {
		page, err := st.SequenceLedger(ctx, allot.SequenceLedgerParams{Sequence: seq, AfterID: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		entries = append(entries, page...)
		after = page[len(page)-1].ID
	}
	var taken []allot.LedgerEntry
	voided = make(map[int64]bool)
	for _, e := range entries {
		if e.Kind == allot.LedgerVoided {
			for n := e.First; n <= e.Last; n++ {
				if voided[n] {
					t.Fatalf("%s: number %d voided twice", seq, n)
				}
				voided[n] = true
			}
			continue
		}
		if !e.Kind.Taken() {
			continue // a note: numbers handed back (returned) or confirmed
		}
		taken = append(taken, e)
	}
	sort.Slice(taken, func(i, j int) bool { return taken[i].First < taken[j].First })
	next := start
	for _, e := range taken {
		if e.First != next {
			t.Fatalf("%s: ledger ranges not contiguous: expected a range starting at %d, got %d-%d (%s)", seq, next, e.First, e.Last, e.Kind)
		}
		next = e.Last + 1
	}
	if next-1 != c.Last {
		t.Fatalf("%s: ledger covers up to %d but the counter says %d", seq, next-1, c.Last)
	}
	for n := range voided {
		if n < start || n > c.Last {
			t.Fatalf("%s: void of %d outside the taken range", seq, n)
		}
	}
	for n := range received {
		if n < start || n > c.Last {
			t.Fatalf("%s: received %d outside the ledger's taken range %d..%d", seq, n, start, c.Last)
		}
		if voided[n] {
			t.Fatalf("%s: received number %d is voided", seq, n)
		}
	}
	if int64(len(voided)) != c.Voided {
		t.Fatalf("%s: counter says %d voided, ledger holds %d", seq, c.Voided, len(voided))
	}
	return c.Last, voided
}

// collector records numbers received and requests that failed.
type collector struct {
	mu       sync.Mutex
	got      map[string]map[int64]bool
	failed   map[string]int64 // numbers asked for by requests that got no answer
	dups     []string
	rejected int
}

func newCollector() *collector {
	return &collector{got: map[string]map[int64]bool{}, failed: map[string]int64{}}
}

func (c *collector) add(seq string, r *allot.NextResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.got[seq]
	if m == nil {
		m = map[int64]bool{}
		c.got[seq] = m
	}
	if int64(len(r.IDs)) != r.Count || r.Last-r.First+1 != r.Count {
		c.dups = append(c.dups, fmt.Sprintf("%s: malformed result %+v", seq, r))
	}
	for n := r.First; n <= r.Last; n++ {
		if m[n] {
			c.dups = append(c.dups, fmt.Sprintf("%s: %d issued twice", seq, n))
		}
		m[n] = true
	}
}

// load runs clients that call next on the servers until stop is closed or
// each has made perClient requests.
func load(servers func() []string, seqs []string, clients, perClient int, stop <-chan struct{}, c *collector) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for i := 0; i < perClient; i++ {
				select {
				case <-stop:
					return
				default:
				}
				srv := servers()
				base := srv[(w+i)%len(srv)]
				seq := seqs[rng.IntN(len(seqs))]
				count := int64(1 + rng.IntN(5))
				var r allot.NextResult
				code, _, err := call("POST", base+"/v1/sequences/"+seq+"/next", map[string]int64{"count": count}, nil, &r)
				switch {
				case err == nil && code == 200:
					c.add(seq, &r)
				case code == 409: // exhausted: expected near the end of a range
					c.mu.Lock()
					c.rejected++
					c.mu.Unlock()
				default:
					// No answer (server killed) or an error: the numbers
					// may or may not have been taken.
					c.mu.Lock()
					c.failed[seq] += count
					c.mu.Unlock()
					time.Sleep(20 * time.Millisecond)
				}
			}
		}(w)
	}
	return &wg
}

// TestThreeProcessesNoDuplicates runs 3 server processes on one Postgres
// with 64 concurrent clients and checks that no number is issued twice,
// every number is within range, and the ledger explains everything.
func TestThreeProcessesNoDuplicates(t *testing.T) {
	url := testdb.Postgres(t)
	var procs []*proc
	for i := 0; i < 3; i++ {
		procs = append(procs, startServer(t, url))
	}
	base := procs[0].url
	const policyStart, policyMax = 202043200000000, 202043200001999 // a reserved range of 2000
	createSeq(t, base, allot.SequenceCreateParams{Name: "cached", BlockSize: ptr[int64](50)})
	createSeq(t, base, allot.SequenceCreateParams{Name: "gapless", Mode: allot.ModeGapless})
	createSeq(t, base, allot.SequenceCreateParams{Name: "policy", Start: ptr[int64](policyStart), Max: ptr[int64](policyMax), BlockSize: ptr[int64](100)})
	urls := []string{procs[0].url, procs[1].url, procs[2].url}
	c := newCollector()
	wg := load(func() []string { return urls }, []string{"cached", "gapless", "policy"}, 64, 40, nil, c)
	wg.Wait()
	// Drain the policy range to exhaustion across all three processes.
	wg = load(func() []string { return urls }, []string{"policy"}, 16, 200, nil, c)
	wg.Wait()
	if len(c.dups) > 0 {
		t.Fatalf("duplicates: %v", c.dups[:min(10, len(c.dups))])
	}
	for seq, n := range c.failed {
		if n > 0 {
			t.Fatalf("%d numbers of %s asked for by requests that failed with no server killed", n, seq)
		}
	}
	for n := range c.got["policy"] {
		if n < policyStart || n > policyMax {
			t.Fatalf("policy number %d outside its reserved range", n)
		}
	}
	if c.rejected == 0 {
		t.Fatal("the policy range was never exhausted; the test did not reach the end of the range")
	}
	// Graceful shutdown of all three voids the unused rest of their blocks.
	for _, p := range procs {
		if d, err := p.term(); err != nil || d > 10*time.Second {
			t.Fatalf("graceful shutdown took %s: %v", d, err)
		}
	}
	st := openStoreT(t, url)
	ledgerCheck(t, st, "gapless", 1, c.got["gapless"])
	_, cachedVoid := ledgerCheck(t, st, "cached", 1, c.got["cached"])
	last, policyVoid := ledgerCheck(t, st, "policy", policyStart, c.got["policy"])
	// With every process shut down gracefully there is no gap: every
	// taken number was received by a client or voided with a reason.
	for seq, v := range map[string]map[int64]bool{"cached": cachedVoid, "policy": policyVoid, "gapless": {}} {
		cnt, _ := st.SequenceCounterGet(context.Background(), seq, "")
		start := int64(1)
		if seq == "policy" {
			start = policyStart
		}
		if got := int64(len(c.got[seq]) + len(v)); got != cnt.Last-start+1 {
			t.Fatalf("%s: %d received + %d voided != %d taken", seq, len(c.got[seq]), len(v), cnt.Last-start+1)
		}
	}
	if last != policyMax {
		t.Fatalf("policy range used up to %d, want all of it to %d", last, policyMax)
	}
}

// TestKill9UnderLoad kills a server with SIGKILL while clients hammer it,
// restarts it, continues, and checks: no duplicate; gapless has no gap
// except numbers whose request never got an answer; in cached mode every
// gap lies in a leased block recorded in the ledger.
func TestKill9UnderLoad(t *testing.T) {
	bothStores(t, func(t *testing.T, kind, url string) {
		addr := freeAddr(t)
		p := startServerAt(t, addr, url)
		createSeq(t, p.url, allot.SequenceCreateParams{Name: "g", Mode: allot.ModeGapless})
		createSeq(t, p.url, allot.SequenceCreateParams{Name: "c", BlockSize: ptr[int64](100)})
		var mu sync.Mutex
		current := []string{p.url}
		servers := func() []string { mu.Lock(); defer mu.Unlock(); return current }
		c := newCollector()
		stop := make(chan struct{})
		wg := load(servers, []string{"g", "c"}, 16, 1_000_000, stop, c)
		time.Sleep(700 * time.Millisecond)
		p.kill9()
		p2 := startServerAt(t, addr, url) // restart on the same address
		time.Sleep(700 * time.Millisecond)
		close(stop)
		wg.Wait()
		if len(c.dups) > 0 {
			t.Fatalf("duplicates after kill -9: %v", c.dups[:min(10, len(c.dups))])
		}
		if len(c.got["g"]) < 10 || len(c.got["c"]) < 10 {
			t.Fatalf("too little load to prove anything: %d gapless, %d cached", len(c.got["g"]), len(c.got["c"]))
		}
		if d, err := p2.term(); err != nil || d > 10*time.Second {
			t.Fatalf("graceful shutdown after restart took %s: %v", d, err)
		}
		st := openStoreT(t, url)
		// Gapless: the ledger covers 1..last with no hole, and the
		// numbers no client received are at most what failed requests
		// asked for (committed just before the kill, answer lost).
		last, voided := ledgerCheck(t, st, "g", 1, c.got["g"])
		missing := last - int64(len(c.got["g"])) - int64(len(voided))
		if missing < 0 || missing > c.failed["g"] {
			t.Fatalf("gapless: %d numbers taken but never received, more than the %d asked for by failed requests", missing, c.failed["g"])
		}
		// Cached: every gap is inside a ledger range (checked by
		// ledgerCheck's contiguity); the rest of the blocks the killed
		// process held are the only unexplained-by-client numbers.
		ledgerCheck(t, st, "c", 1, c.got["c"])
		t.Logf("%s: gapless %d received, %d unanswered; cached %d received, %d requests failed",
			kind, len(c.got["g"]), missing, len(c.got["c"]), c.failed["c"])
	})
}

// TestIdempotentReplayAfterKill kills the server between the commit of an
// Idempotency-Key request and its response, restarts it, and retries: the
// retry must return the committed numbers, and nothing is taken twice.
func TestIdempotentReplayAfterKill(t *testing.T) {
	bothStores(t, func(t *testing.T, _, url string) {
		addr := freeAddr(t)
		p := startServerAt(t, addr, url, "ALLOT_FAILPOINT="+allot.FailpointAfterCommit)
		createSeq(t, p.url, allot.SequenceCreateParams{Name: "inv", Format: "INV-{n:5}", Mode: allot.ModeGapless})
		key := map[string]string{"Idempotency-Key": "order-42"}
		body := map[string]any{"count": 3}
		var r allot.NextResult
		if _, _, err := call("POST", p.url+"/v1/sequences/inv/next", body, key, &r); err == nil {
			t.Fatalf("the failpoint should have killed the server before it answered, got %+v", r)
		}
		select {
		case <-p.done:
			p.exited = true
		case <-time.After(10 * time.Second):
			t.Fatal("server still running after the failpoint")
		}
		st := openStoreT(t, url)
		rec, err := st.IdempotencyGet(context.Background(), "sequence:inv", "order-42")
		if err != nil {
			t.Fatalf("the key must be committed with its numbers before the kill: %v", err)
		}
		p2 := startServerAt(t, addr, url)
		code, hdr, err := call("POST", p2.url+"/v1/sequences/inv/next", body, key, &r)
		if err != nil || code != 200 {
			t.Fatalf("retry: %d %v", code, err)
		}
		if r.First != rec.First || r.Last != rec.Last || r.First != 1 || strings.Join(r.IDs, ",") != "INV-00001,INV-00002,INV-00003" {
			t.Fatalf("retry returned %+v, the database holds %d-%d", r, rec.First, rec.Last)
		}
		if hdr.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("retry is not marked as a replay")
		}
		var r2 allot.NextResult
		if _, _, err := call("POST", p2.url+"/v1/sequences/inv/next", nil, nil, &r2); err != nil || r2.First != 4 {
			t.Fatalf("the next request must get 4, got %+v %v", r2, err)
		}
		ledgerCheck(t, st, "inv", 1, map[int64]bool{1: true, 2: true, 3: true, 4: true})
	})
}

// TestCLISmoke drives the built binary as a person would.
func TestCLISmoke(t *testing.T) {
	dbPath := testdb.SQLitePath(t)
	p := startServer(t, "sqlite://"+dbPath)
	cli := func(wantCode int, args ...string) string {
		t.Helper()
		cmd := exec.Command(binPath, args...)
		cmd.Env = append(os.Environ(), "ALLOT_SERVER="+p.url)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantCode {
			t.Fatalf("allot %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	if out := cli(0, "--help"); !strings.Contains(out, "allot serve") {
		t.Fatalf("help: %s", out)
	}
	if out := cli(0, "serve", "--help"); !strings.Contains(out, "-store") {
		t.Fatalf("serve help: %s", out)
	}
	cli(2, "frobnicate")
	cli(0, "seq", "create", "lp", "--format", "LP{n:AA9}", "--start", "0", "--block-size", "10")
	if out := cli(0, "seq", "next", "lp", "--count", "3"); out != "LPAA0\nLPAA1\nLPAA2\n" {
		t.Fatalf("next: %q", out)
	}
	var st allot.SequenceState
	// The three labels came from the server's lease of one block (10),
	// which reads as leased until the server says what it handed out.
	if err := json.Unmarshal([]byte(cli(0, "seq", "get", "lp", "--json")), &st); err != nil || st.Max != 6759 || st.Leased != 10 || st.Issued != 0 {
		t.Fatalf("get --json: %+v %v", st, err)
	}
	if out := cli(0, "seq", "parse", "lp", "LPAA1"); !strings.Contains(out, "leased") {
		t.Fatalf("parse: %s", out)
	}
	cli(0, "seq", "void", "lp", "--id", "LPAA1", "--reason", "label jammed in the printer")
	if out := cli(0, "seq", "parse", "lp", "LPAA1"); !strings.Contains(out, "voided") {
		t.Fatalf("parse after void: %s", out)
	}
	if out := cli(0, "seq", "ledger", "lp"); !strings.Contains(out, "label jammed") || !strings.Contains(out, "leased") {
		t.Fatalf("ledger: %s", out)
	}
	if out := cli(0, "seq", "list"); !strings.Contains(out, "LP{n:AA9}") {
		t.Fatalf("list: %s", out)
	}
	if out := cli(1, "seq", "next", "nope"); !strings.Contains(out, "not found") && !strings.Contains(out, "nope") {
		t.Fatalf("unknown sequence: %s", out)
	}
	if out := cli(1, "seq", "create", "bad", "--format", "X{q}"); !strings.Contains(out, "position") {
		t.Fatalf("bad template: %s", out)
	}
	if out := cli(2, "serve", "--listen", "0.0.0.0:0", "--store", "sqlite://"+filepath.Join(t.TempDir(), "x.db")); !strings.Contains(out, "without API keys") {
		t.Fatalf("serve on a public address without keys: %s", out)
	}
	// A graceful shutdown finishes quickly and hands the unused rest of
	// the leased block back to the counter (nothing was leased after it),
	// so a restart burns no labels and the ledger explains every number.
	d, err := p.term()
	if err != nil || d > 10*time.Second {
		t.Fatalf("SIGTERM: exit after %s: %v", d, err)
	}
	st2 := openStoreT(t, "sqlite://"+dbPath)
	last, voided := ledgerCheck(t, st2, "lp", 0, map[int64]bool{0: true, 2: true})
	if last != 2 || len(voided) != 1 { // LPAA0-LPAA2 handed out, the voided LPAA1; LPAA3-LPAA9 back at the counter
		t.Fatalf("after shutdown: counter at %d with %d voided; want 2 and 1 (the unused 7 handed back)", last, len(voided))
	}
}

// TestMigrateCommand checks `allot migrate` runs twice on the same database.
func TestMigrateCommand(t *testing.T) {
	for _, url := range []string{"sqlite://" + testdb.SQLitePath(t), testdb.Postgres(t)} {
		for i := 0; i < 2; i++ {
			out, err := exec.Command(binPath, "migrate", "--store", url).CombinedOutput()
			if err != nil {
				t.Fatalf("migrate %d on %s: %v\n%s", i, url, err, out)
			}
		}
	}
}

// TestBenchSmoke runs `allot bench` for a moment so the benchmark that
// produces BENCHMARKS.md keeps working: every target runs and none errs.
func TestBenchSmoke(t *testing.T) {
	url := testdb.Postgres(t)
	out, err := exec.Command(binPath, "bench", "--pg", url, "--duration", "300ms", "--warmup", "100ms", "--repeat", "1", "--clients", "8", "--rate", "200").CombinedOutput()
	if err != nil {
		t.Fatalf("allot bench: %v\n%s", err, out)
	}
	for _, target := range []string{"baseline noop", "baseline nextval", "baseline advisory", "cached count=1 ", "cached count=1000", "gapless count=1", "cached count=1 steady", "the limit: gapless numbers on the store alone"} {
		if !strings.Contains(string(out), target) {
			t.Fatalf("bench output lacks %q:\n%s", target, out)
		}
	}
	if strings.Contains(string(out), "errors:") {
		t.Fatalf("bench reported errors:\n%s", out)
	}
}

// TestBenchClaimsSmoke runs `allot bench claims` for a moment, closed and
// open loop: every target runs, none errs, and the naive baseline is
// left out of the open loop.
func TestBenchClaimsSmoke(t *testing.T) {
	url, redis := testdb.Postgres(t), testdb.RedisURL(t)
	out, err := exec.Command(binPath, "bench", "claims", "--pg", url, "--redis", redis, "--duration", "300ms", "--warmup", "100ms",
		"--repeat", "1", "--clients", "8", "--rate", "200").CombinedOutput()
	if err != nil {
		t.Fatalf("allot bench claims: %v\n%s", err, out)
	}
	for _, target := range []string{"\nbaseline naive ", "\nbaseline redis+pg ", "\nallot ", "claims, open loop, 200 claims/s",
		"baseline noop steady", "baseline redis+pg steady", "allot steady", "the limit: claims on the store alone"} {
		if !strings.Contains(string(out), target) {
			t.Fatalf("bench claims output lacks %q:\n%s", target, out)
		}
	}
	if strings.Contains(string(out), "naive steady") || strings.Contains(string(out), "errors:") {
		t.Fatalf("bench claims ran the naive baseline open loop, or reported errors:\n%s", out)
	}
}

// bothStores runs fn as a subtest on a fresh PostgreSQL schema and on a
// fresh SQLite file, with the database URL a server takes.
func bothStores(t *testing.T, fn func(t *testing.T, kind, url string)) {
	for _, kind := range []string{"postgres", "sqlite"} {
		t.Run(kind, func(t *testing.T) {
			url := "sqlite://" + testdb.SQLitePath(t)
			if kind == "postgres" {
				url = testdb.Postgres(t)
			}
			fn(t, kind, url)
		})
	}
}
