package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/allot/allot"
	"github.com/allot/allot/httpapi"
	"github.com/allot/allot/internal/bench"
	"github.com/allot/allot/metrics"
)

func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "claims" || args[0] == "flash-sale") {
		return runBenchPools(ctx, args[0], args[1:], getenv, stdout, stderr)
	}
	fs := newFlagSet("allot bench", `allot bench [flags]
       allot bench claims [flags]
       allot bench flash-sale [flags]

Measures allot side by side with the usual alternatives, with the same load
generator in the same run, and prints tables (--markdown for BENCHMARKS.md).
Three scenarios:

  allot bench             sequences: IDs per second and latency of next, the
                          targets below
  allot bench claims      pools: claims per second and latency on a pool that
                          never sells out, against a transaction per claim and
                          Redis + PostgreSQL (see "allot bench claims --help")
  allot bench flash-sale  pools: a whole flash sale, many customers racing for
                          fewer units; time to sell out, and that every
                          outcome is exact (see "allot bench flash-sale --help")

The targets of "allot bench":

  baseline noop        an HTTP handler that does nothing
  baseline nextval     an HTTP handler doing SELECT nextval per request
  baseline advisory    an HTTP handler doing advisory lock + MAX+1 insert per request
  cached count=1       allot, cached sequence, one ID per request
  cached count=1000    allot, cached sequence, 1000 IDs per request
  gapless count=1      allot, gapless sequence on the store, one ID per request
  steady 1000/s        allot cached, one ID per request, open loop at --rate

After the closed loop, "the limit" table shows what the store alone does
for the gapless target's work: the same group commits (the mean batch the
server formed), called on the store directly, one in flight, beside the
HTTP figure as a fraction of it. It needs the in-process server.

Every server runs in this process on loopback; --server points the allot
targets at a running server instead (with --key if it needs one).`, stdout)
	pgURL := fs.String("pg", envOr(getenv, "ALLOT_BENCH_PG", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "the PostgreSQL `URL` for the baselines and the allot store (env ALLOT_BENCH_PG)")
	storeURL := fs.String("store", "", "the store `URL` of the in-process allot server (default: the --pg database)")
	server := fs.String("server", "", "benchmark the running allot server at `URL` instead of an in-process one")
	key := fs.String("key", getenv("ALLOT_KEY"), "the API key `TOKEN` for --server")
	clients := fs.Int("clients", 64, "run `N` concurrent closed-loop clients")
	duration := fs.Duration("duration", 5*time.Second, "measure each target for `DURATION` per run")
	warmup := fs.Duration("warmup", time.Second, "warm each target up, unmeasured, for `DURATION` per run")
	repeat := fs.Int("repeat", 3, "run each target `N` times, interleaved; the median run is reported")
	rate := fs.Float64("rate", 1000, "send `N` requests per second in the steady (open-loop) scenario; 0 leaves it out")
	only := fs.String("only", "", "run only the `TARGETS` whose names contain one of these comma-separated strings (default all)")
	markdown := fs.Bool("markdown", false, "print markdown tables")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (load generator and servers) to `FILE`")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("bench: unknown scenario %s: use claims or flash-sale, or no scenario for sequences", quoteArgs(pos))
	}
	stopProfile, err := startCPUProfile(*cpuprofile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if *clients < 1 || *repeat < 1 || *duration <= 0 {
		return usagef("--clients, --repeat and --duration must be positive")
	}

	pool, err := pgxpool.New(ctx, *pgURL)
	if err != nil {
		return fmt.Errorf("--pg: %w", err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("--pg: the baselines need PostgreSQL: %w", err)
	}
	if err := bench.SetupNextval(ctx, pool); err != nil {
		return err
	}
	if err := bench.SetupAdvisory(ctx, pool); err != nil {
		return err
	}
	if err := bench.Reset(ctx, pool); err != nil {
		return err
	}

	startBaseline := func(h http.Handler) (string, error) {
		u, stop, err := bench.Serve(h)
		if err != nil {
			return "", err
		}
		stops = append(stops, stop)
		return u, nil
	}
	defer func() {
		for _, s := range stops {
			s()
		}
		stops = nil
	}()
	noopURL, err := startBaseline(bench.NoopHandler())
	if err != nil {
		return err
	}
	nextvalURL, err := startBaseline(bench.NextvalHandler(pool))
	if err != nil {
		return err
	}
	advisoryURL, err := startBaseline(bench.AdvisoryLockHandler(pool))
	if err != nil {
		return err
	}

	header := http.Header{"Content-Type": {"application/json"}}
	base := *server
	var inProcess *benchServer // nil with --server
	if base == "" {
		su := *storeURL
		if su == "" {
			su = *pgURL
		}
		srv, err := startBenchServer(ctx, su, stderr)
		if err != nil {
			return err
		}
		defer srv.close()
		inProcess = srv
		if base, err = startBaseline(srv.handler); err != nil {
			return err
		}
	} else if *key != "" {
		header.Set("Authorization", "Bearer "+*key)
	}
	base = strings.TrimRight(base, "/")
	// Fresh sequences per run, so runs don't share state.
	suffix := time.Now().UTC().Format("20060102-150405")
	cached, gapless := "bench-cached-"+suffix, "bench-gapless-"+suffix
	if err := benchCreate(ctx, base, header, allot.SequenceCreateParams{Name: cached}); err != nil {
		return err
	}
	if err := benchCreate(ctx, base, header, allot.SequenceCreateParams{Name: gapless, Mode: allot.ModeGapless}); err != nil {
		return err
	}

	one := []byte(`{"count":1}`)
	targets := []bench.Target{
		{Name: "baseline noop", URL: noopURL, Body: one, Header: header, IDsPerRequest: 1},
		{Name: "baseline nextval", URL: nextvalURL, Body: one, Header: header, IDsPerRequest: 1},
		{Name: "baseline advisory", URL: advisoryURL, Body: one, Header: header, IDsPerRequest: 1},
		{Name: "cached count=1", URL: base + "/v1/sequences/" + cached + "/next", Body: one, Header: header, IDsPerRequest: 1},
		{Name: "cached count=1000", URL: base + "/v1/sequences/" + cached + "/next", Body: []byte(`{"count":1000}`), Header: header, IDsPerRequest: 1000},
		{Name: "gapless count=1", URL: base + "/v1/sequences/" + gapless + "/next", Body: one, Header: header, IDsPerRequest: 1},
	}
	targets = filterTargets(targets, *only)
	opts := bench.Options{Clients: *clients, Duration: *duration, Warmup: *warmup, Repeat: *repeat}
	fmt.Fprintf(stderr, "closed loop: %d clients, %s per run, %d run(s) per target\n", *clients, *duration, *repeat)
	results, err := bench.Run(ctx, targets, opts)
	if err != nil {
		return err
	}
	printResults(stdout, *markdown, "closed loop, "+fmt.Sprint(*clients)+" clients", results)
	if inProcess != nil {
		ceilingSeq := "bench-ceiling-" + suffix
		var settleCeiling func(context.Context) error
		c, ok, err := inProcess.ceiling(ctx, "gapless numbers", "issued", *repeat, *warmup, *duration, func(size int) (func(context.Context) error, error) {
			q, err := allot.NewSequence(allot.SequenceCreateParams{Name: ceilingSeq, Mode: allot.ModeGapless, AllowOverlap: true})
			if err == nil {
				_, err = inProcess.st.SequenceCreate(ctx, q)
			}
			batch, settle := bench.AdvanceBatch(inProcess.st, ceilingSeq, "allot-bench-ceiling", size)
			settleCeiling = settle
			return batch, err
		})
		if settleCeiling != nil {
			if serr := settleCeiling(ctx); serr != nil && err == nil {
				err = serr
			}
		}
		if err != nil {
			return err
		}
		if ok {
			printCeiling(stdout, *markdown, c, "gapless count=1", results)
		}
	}

	steady := filterTargets([]bench.Target{
		{Name: "baseline noop steady", URL: noopURL, Body: one, Header: header, IDsPerRequest: 1},
		{Name: "cached count=1 steady", URL: base + "/v1/sequences/" + cached + "/next", Body: one, Header: header, IDsPerRequest: 1},
	}, *only)
	if len(steady) > 0 && *rate > 0 {
		opts.Rate = *rate
		fmt.Fprintf(stderr, "open loop: %.0f requests/s\n", *rate)
		results, err := bench.Run(ctx, steady, opts)
		if err != nil {
			return err
		}
		printResults(stdout, *markdown, fmt.Sprintf("open loop, %.0f requests/s", *rate), results)
	}
	return nil
}

// benchServer is allot running in this process for a benchmark: its
// store, the registry its group commits are observed in, and its HTTP
// handler.
type benchServer struct {
	st      allot.Store
	reg     *prometheus.Registry
	handler http.Handler
	close   func()
}

// startBenchServer opens the store at url and serves allot on it, with
// metrics and warnings-only logs.
func startBenchServer(ctx context.Context, url string, stderr io.Writer) (*benchServer, error) {
	st, err := openStore(ctx, url)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	metrics := metrics.New(reg)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := allot.New(context.Background(), allot.Config{Store: st, Logger: log, Metrics: metrics})
	if err != nil {
		st.Close()
		return nil, err
	}
	closeAll := func() {
		_ = svc.Close(context.Background())
		st.Close()
	}
	api, err := httpapi.New(httpapi.Config{Service: svc, Logger: log, Registry: reg, Metrics: metrics})
	if err != nil {
		closeAll()
		return nil, err
	}
	return &benchServer{st: st, reg: reg, handler: api.Handler(), close: closeAll}, nil
}

// ceiling measures the store alone doing the group commits of kind the
// server formed (see bench.Ceiling): prepare makes the batch of the mean
// size, which then runs repeat times for d each. ok is false when the
// server formed no batch of that kind (its target did not run).
func (b *benchServer) ceiling(ctx context.Context, name, kind string, repeat int, warmup, d time.Duration,
	prepare func(size int) (func(context.Context) error, error)) (c bench.Ceiling, ok bool, err error) {
	mean, err := bench.MeanBatchSize(b.reg, kind)
	if err != nil || mean == 0 {
		return c, false, err
	}
	c = bench.Ceiling{Name: name, Batch: bench.BatchOf(mean)}
	batch, err := prepare(c.Batch)
	if err != nil {
		return c, false, fmt.Errorf("bench: prepare the store-alone run: %w", err)
	}
	for range repeat {
		r, err := bench.MeasureCeiling(ctx, c.Batch, warmup, d, batch)
		if err != nil {
			return c, false, fmt.Errorf("bench: %s on the store alone: %w", name, err)
		}
		c.Runs = append(c.Runs, r)
	}
	return c, true, nil
}

// printCeiling prints c beside target's HTTP figure from results.
func printCeiling(w io.Writer, markdown bool, c bench.Ceiling, target string, results []bench.Result) {
	var rate float64
	for _, r := range results {
		if r.Target == target {
			rate = r.Throughput
		}
	}
	title := "the limit: " + c.Name + " on the store alone"
	if markdown {
		fmt.Fprintf(w, "\n#### %s\n\n%s", title, bench.CeilingTable(c, target, rate, true))
		return
	}
	fmt.Fprintf(w, "\n%s\n%s", title, bench.CeilingTable(c, target, rate, false))
}

// stops are the in-process servers to stop when the benchmark ends.
var stops []func()

func filterTargets(ts []bench.Target, only string) []bench.Target {
	if only == "" {
		return ts
	}
	var out []bench.Target
	for _, t := range ts {
		for _, o := range strings.Split(only, ",") {
			if o != "" && strings.Contains(t.Name, strings.TrimSpace(o)) {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

func printResults(w io.Writer, markdown bool, title string, results []bench.Result) {
	if markdown {
		fmt.Fprintf(w, "\n#### %s\n\n%s\n", title, bench.Markdown(results, "baseline noop"))
		return
	}
	fmt.Fprintf(w, "\n%s\n%s\n", title, bench.Text(results, "baseline noop"))
}

func benchCreate(ctx context.Context, base string, header http.Header, p allot.SequenceCreateParams) error {
	p.AllowOverlap = true // benchmark sequences are throwaway and share the default format
	body, _ := json.Marshal(p)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/sequences", strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header = header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("create bench sequence: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("create bench sequence: %s: %s", resp.Status, b)
	}
	return nil
}

// startCPUProfile writes a CPU profile to path until the returned func is
// called; with an empty path it does nothing.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
