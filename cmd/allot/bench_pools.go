package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/bench"
	"github.com/allot/allot/postgres"
)

// Names of the claim targets.
const (
	targetNoop  = "baseline noop"
	targetNaive = "baseline naive"
	targetRedis = "baseline redis+pg"
	targetAllot = "allot"
)

// claimsCapacity is the pool of "allot bench claims": big enough never to
// sell out during a run.
const claimsCapacity = 100_000_000

// Hold TTLs (hold_ttl and max_hold_ttl) of the benchmark pools, long
// enough that no hold expires during a run. The holds of "claims" are
// never confirmed: they last the longest a pool allows, so that sweeping
// them does not disturb a later benchmark on the same database.
const (
	flashSaleHoldTTL = 30 * time.Minute
	claimsHoldTTL    = 168 * time.Hour
)

// runBenchPools is "allot bench claims" and "allot bench flash-sale".
func runBenchPools(ctx context.Context, which string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	switch which {
	case "claims":
		return withHelp(runBenchClaims(ctx, args, getenv, stdout, stderr), "allot bench claims")
	case "flash-sale":
		return withHelp(runBenchFlashSale(ctx, args, getenv, stdout, stderr), "allot bench flash-sale")
	}
	return usagef("bench: unknown scenario %q: use claims or flash-sale", which)
}

// poolBenchFlags are the flags both pool benchmarks take.
type poolBenchFlags struct {
	profile                       *string
	pg, store, server, key, redis *string
	repeat                        *int
	markdown                      *bool
}

func addPoolBenchFlags(fs *flag.FlagSet, getenv func(string) string) *poolBenchFlags {
	return &poolBenchFlags{
		pg:       fs.String("pg", envOr(getenv, "ALLOT_BENCH_PG", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "the PostgreSQL `URL` for the baselines and the allot store (env ALLOT_BENCH_PG)"),
		store:    fs.String("store", "", "the store `URL` of the in-process allot server (default: the --pg database)"),
		server:   fs.String("server", "", "benchmark the running allot server at `URL` instead of an in-process one"),
		key:      fs.String("key", getenv("ALLOT_KEY"), "the API key `TOKEN` for --server (it must be allowed to create pools)"),
		redis:    fs.String("redis", envOr(getenv, "ALLOT_BENCH_REDIS", "redis://127.0.0.1:6379"), "the Redis `URL` for the \"redis+pg\" baseline, \"\" to leave that baseline out (env ALLOT_BENCH_REDIS)"),
		repeat:   fs.Int("repeat", 3, "run each target `N` times, interleaved"),
		markdown: fs.Bool("markdown", false, "print markdown tables"),
		profile:  fs.String("cpuprofile", "", "write a CPU profile of the whole run (load generator and servers) to `FILE`"),
	}
}

// poolBench is what both pool benchmarks run against: the baselines' and
// allot's in-process servers (or a running allot server).
type poolBench struct {
	pg      *pgxpool.Pool
	rdb     *redis.Client // nil without --redis
	base    string        // allot's base URL
	header  http.Header   // every request's headers (Authorization for --server)
	suffix  string        // makes this run's pool names unique
	cleanup []func()      // run in reverse order by close
	keys    []string      // Redis keys to delete at the end
	// inProcess is allot in this process, nil with --server.
	inProcess *benchServer
}

// startPoolBench connects to PostgreSQL and Redis, creates the baselines'
// tables, and starts allot in process unless --server is given.
func startPoolBench(ctx context.Context, f *poolBenchFlags, stderr io.Writer) (_ *poolBench, err error) {
	b := &poolBench{
		header: http.Header{"Content-Type": {"application/json"}},
		suffix: time.Now().UTC().Format("20060102-150405"),
	}
	defer func() {
		if err != nil {
			b.close()
		}
	}()

	// The baselines get as many connections as allot's store.
	cfg, err := pgxpool.ParseConfig(*f.pg)
	if err != nil {
		return nil, usagef("--pg: %v", err)
	}
	if !strings.Contains(*f.pg, "pool_max_conns") {
		cfg.MaxConns = postgres.MaxConnsDefault
	}
	if b.pg, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("--pg: %w", err)
	}
	b.cleanup = append(b.cleanup, b.pg.Close)
	if err := b.pg.Ping(ctx); err != nil {
		return nil, fmt.Errorf("--pg: the baselines need PostgreSQL: %w", err)
	}
	if err := bench.SetupClaims(ctx, b.pg); err != nil {
		return nil, err
	}

	if *f.redis != "" {
		opts, err := redis.ParseURL(*f.redis)
		if err != nil {
			return nil, usagef("--redis: %v", err)
		}
		// Fail fast and visibly: no dial or command retries, so an
		// unreachable Redis is one error and a failing baseline request
		// is counted rather than hidden.
		opts.DialerRetries, opts.MaxRetries = 1, -1
		b.rdb = redis.NewClient(opts)
		b.cleanup = append(b.cleanup, func() {
			if len(b.keys) > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = b.rdb.Del(ctx, b.keys...).Err()
			}
			_ = b.rdb.Close()
		})
		if err := b.rdb.Ping(ctx).Err(); err != nil {
			return nil, fmt.Errorf("--redis: the %s baseline needs Redis at %s (--redis \"\" leaves it out): %w", strings.TrimPrefix(targetRedis, "baseline "), redactedURL(*f.redis), err)
		}
	}

	b.base = *f.server
	if b.base == "" {
		su := *f.store
		if su == "" {
			su = *f.pg
		}
		srv, err := startBenchServer(ctx, su, stderr)
		if err != nil {
			return nil, err
		}
		b.cleanup = append(b.cleanup, srv.close)
		b.inProcess = srv
		if b.base, err = b.serve(srv.handler); err != nil {
			return nil, err
		}
	} else if *f.key != "" {
		b.header.Set("Authorization", "Bearer "+*f.key)
	}
	b.base = strings.TrimRight(b.base, "/")
	return b, nil
}

// serve starts h in process on loopback until close.
func (b *poolBench) serve(h http.Handler) (string, error) {
	u, stop, err := bench.Serve(h)
	if err != nil {
		return "", err
	}
	b.cleanup = append(b.cleanup, stop)
	return u, nil
}

func (b *poolBench) close() {
	for i := len(b.cleanup) - 1; i >= 0; i-- {
		b.cleanup[i]()
	}
	b.cleanup = nil
}

// resetQuota gives the baselines a fresh quota called name.
func (b *poolBench) resetQuota(ctx context.Context, name string, quota int64) error {
	if b.rdb != nil {
		b.keys = append(b.keys, bench.RedisQuotaKey(name))
	}
	return bench.ResetClaims(ctx, b.pg, b.rdb, name, quota)
}

// createPool creates a pool on allot over HTTP.
func (b *poolBench) createPool(ctx context.Context, name string, capacity, perCustomer int64, holdTTL time.Duration) error {
	ttl := allot.Duration(holdTTL)
	one := int64(1)
	body, _ := json.Marshal(allot.PoolCreateParams{Name: name, Capacity: &capacity, PerCustomer: &perCustomer,
		HoldTTL: &ttl, MaxHoldTTL: &ttl, MaxQuantity: &one})
	status, resp, err := b.post(ctx, b.base+"/v1/pools", body)
	if err != nil {
		return fmt.Errorf("create bench pool: %w", err)
	}
	switch status {
	case http.StatusCreated:
		return nil
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return fmt.Errorf("create bench pool: POST %s/v1/pools answered HTTP %d (%s): this allot server does not serve pools",
			b.base, status, strings.TrimSpace(string(resp)))
	}
	return fmt.Errorf("create bench pool: HTTP %d: %s", status, strings.TrimSpace(string(resp)))
}

// poolConfirmed reads how many units of an allot pool are confirmed and
// held.
func (b *poolBench) poolConfirmed(ctx context.Context, name string) (confirmed, held int64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+"/v1/pools/"+url.PathEscape(name), nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header = b.header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var st allot.PoolState
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, 0, fmt.Errorf("GET pool %s: HTTP %d: %s", name, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, 0, fmt.Errorf("GET pool %s: %w", name, err)
	}
	return st.Confirmed, st.Held, nil
}

// ordersConfirmed reads how many units the baselines' orders table holds
// confirmed and held, and how many the quota row says are reserved.
func (b *poolBench) ordersConfirmed(ctx context.Context, quota string) (confirmed, held, reserved int64, err error) {
	err = b.pg.QueryRow(ctx, "SELECT coalesce(sum(quantity) FILTER (WHERE status = 'confirmed'), 0), coalesce(sum(quantity) FILTER (WHERE status = 'held'), 0), "+
		"(SELECT reserved FROM "+bench.QuotaTable+" WHERE name = $1) FROM "+bench.OrdersTable, quota).Scan(&confirmed, &held, &reserved)
	return confirmed, held, reserved, err
}

func (b *poolBench) post(ctx context.Context, u string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(string(body)))
	if err != nil {
		return 0, nil, err
	}
	req.Header = b.header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, out, err
}

func claimsURL(base, pool string) string {
	return base + "/v1/pools/" + url.PathEscape(pool) + "/claims"
}

func confirmURL(base string) func(id string) string {
	return func(id string) string { return base + "/v1/claims/" + url.PathEscape(id) + "/confirm" }
}

func redactedURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "the configured URL"
	}
	return u.Redacted()
}

// runBenchClaims is "allot bench claims".
func runBenchClaims(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("allot bench claims", `allot bench claims [flags]

Measures claims on a pool that never sells out (capacity 100,000,000,
per_customer 0), one unit per request, every request for a distinct
customer, side by side with the baselines, with the same closed-loop load
generator in the same run:

  baseline noop        an HTTP handler that does nothing
  baseline naive       one transaction per claim: UPDATE the quota's hot row
                       (reserved + 1 <= quota), INSERT the order, COMMIT
  baseline redis+pg    an atomic Lua check-and-DECRBY in Redis, then an
                       autocommit INSERT of the order per claim
  allot                POST /v1/pools/{name}/claims

and prints req/s, latency percentiles and throughput relative to noop and
to naive, and what the store alone does for the same work: the same
group commits (the mean batch the server formed), called on the store
directly, one in flight, with allot's HTTP figure as a fraction of it
(in-process server only). Then, unless --rate is 0, the same claims in
an open loop at a steady --rate requests per second, latency measured
from each request's intended send time (so a stall is not hidden by
requests never sent):

  baseline noop steady, baseline redis+pg steady, allot steady

(the naive baseline is left out: it can't keep up with 2,000 claims per
second on this machine, so its latency would only measure its backlog).

The baselines get as many PostgreSQL connections as allot's store (16
unless --pg sets pool_max_conns). Every server runs in this process on
loopback; --server points the allot target at a running server instead.`, stdout)
	f := addPoolBenchFlags(fs, getenv)
	clients := fs.Int("clients", 64, "run `N` concurrent closed-loop clients")
	duration := fs.Duration("duration", 5*time.Second, "measure each target for `DURATION` per run")
	warmup := fs.Duration("warmup", time.Second, "warm each target up, unmeasured, for `DURATION` per run")
	only := fs.String("only", "", "run only the `TARGETS` whose names contain one of these comma-separated strings (default all)")
	rate := fs.Float64("rate", 2000, "send `N` claims per second in the steady (open-loop) scenario; 0 leaves it out")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("bench claims takes no arguments, got %s", quoteArgs(pos))
	}
	if *rate < 0 {
		return usagef("--rate must be 0 (no open loop) or a positive number of claims per second, got %g", *rate)
	}
	stopProfile, err := startCPUProfile(*f.profile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if *clients < 1 || *f.repeat < 1 || *duration <= 0 {
		return usagef("--clients, --repeat and --duration must be positive")
	}
	b, err := startPoolBench(ctx, f, stderr)
	if err != nil {
		return err
	}
	defer b.close()

	name := "bench-claims-" + b.suffix
	if err := b.createPool(ctx, name, claimsCapacity, 0, claimsHoldTTL); err != nil {
		return err
	}
	if err := b.resetQuota(ctx, name, claimsCapacity); err != nil {
		return err
	}
	noopURL, err := b.serve(bench.NoopHandler())
	if err != nil {
		return err
	}
	naiveURL, err := b.serve(bench.NaiveClaimHandler(b.pg))
	if err != nil {
		return err
	}
	// A distinct customer per request; the numbering is per target.
	claim := func(i uint64) []byte {
		return append(strconv.AppendUint([]byte(`{"customer":"customer-`), i, 10), `","quantity":1}`...)
	}
	targets := []bench.Target{
		{Name: targetNoop, URL: claimsURL(noopURL, name), BodyFunc: claim, Header: b.header},
		{Name: targetNaive, URL: claimsURL(naiveURL, name), BodyFunc: claim, Header: b.header},
	}
	if b.rdb != nil {
		redisURL, err := b.serve(bench.RedisLuaClaimHandler(b.rdb, b.pg))
		if err != nil {
			return err
		}
		targets = append(targets, bench.Target{Name: targetRedis, URL: claimsURL(redisURL, name), BodyFunc: claim, Header: b.header})
	}
	targets = append(targets, bench.Target{Name: targetAllot, URL: claimsURL(b.base, name), BodyFunc: claim, Header: b.header})
	var steady []bench.Target
	if *rate > 0 {
		for _, t := range targets {
			if t.Name != targetNaive {
				t.Name += " steady"
				steady = append(steady, t)
			}
		}
		steady = filterTargets(steady, *only)
	}
	if targets = filterTargets(targets, *only); len(targets) == 0 && len(steady) == 0 {
		return usagef("--only %q matches no target", *only)
	}

	opts := bench.Options{Clients: *clients, Duration: *duration, Warmup: *warmup, Repeat: *f.repeat}
	if len(targets) > 0 {
		fmt.Fprintf(stderr, "claims, closed loop: %d clients, %s per run, %d run(s) per target\n", *clients, *duration, *f.repeat)
		results, err := bench.Run(ctx, targets, opts)
		if err != nil {
			return err
		}
		title := fmt.Sprintf("claims, closed loop, %d clients, 1 unit per claim, a distinct customer per claim", *clients)
		if *f.markdown {
			fmt.Fprintf(stdout, "\n#### %s\n\n%s\n", title, bench.MarkdownRatios(results, targetNoop, targetNaive))
		} else {
			fmt.Fprintf(stdout, "\n%s\n%s\n", title, bench.TextRatios(results, targetNoop, targetNaive))
		}
		if b.inProcess != nil {
			ceilingPool := name + "-ceiling"
			c, ok, err := b.inProcess.ceiling(ctx, "claims", "claim", *f.repeat, *warmup, *duration, func(size int) (func(context.Context) error, error) {
				return bench.ClaimBatch(b.inProcess.st, ceilingPool, size, claimsHoldTTL), b.createPool(ctx, ceilingPool, claimsCapacity, 0, claimsHoldTTL)
			})
			if err != nil {
				return err
			}
			if ok {
				printCeiling(stdout, *f.markdown, c, targetAllot, results)
			}
		}
	}
	if len(steady) > 0 {
		opts.Rate = *rate
		fmt.Fprintf(stderr, "claims, open loop: %.0f claims/s\n", *rate)
		results, err := bench.Run(ctx, steady, opts)
		if err != nil {
			return err
		}
		printResults(stdout, *f.markdown, fmt.Sprintf("claims, open loop, %.0f claims/s, latency from the intended send time", *rate), results)
	}
	return nil
}

// runBenchFlashSale is "allot bench flash-sale".
func runBenchFlashSale(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("allot bench flash-sale", `allot bench flash-sale [flags]

Runs a flash sale against allot and against the baselines (see "allot bench
claims --help"), each on a fresh pool of --capacity units: --customers
distinct customers each claim one unit at once (at most --concurrency
requests in flight), then every holder confirms. Counts every outcome
exactly and checks the database agrees; a run is exact when --capacity
units were confirmed, --customers minus --capacity customers were told
sold out, and nothing failed. Designs are interleaved, --repeat rounds.`, stdout)
	f := addPoolBenchFlags(fs, getenv)
	customers := fs.Int("customers", bench.DefaultFlashSaleCustomers, "`N` distinct customers, one claim each")
	capacity := fs.Int("capacity", bench.DefaultFlashSaleCapacity, "put `N` units on sale")
	concurrency := fs.Int("concurrency", bench.DefaultFlashSaleConcurrency, "keep at most `N` requests in flight at once")
	only := fs.String("only", "", "run only the `DESIGNS` whose names contain one of these comma-separated strings (default all)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("bench flash-sale takes no arguments, got %s", quoteArgs(pos))
	}
	stopProfile, err := startCPUProfile(*f.profile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if *customers < 1 || *capacity < 1 || *concurrency < 1 || *f.repeat < 1 {
		return usagef("--customers, --capacity, --concurrency and --repeat must be positive")
	}
	if *capacity > *customers {
		return usagef("--capacity (%d) must not exceed --customers (%d)", *capacity, *customers)
	}
	b, err := startPoolBench(ctx, f, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	naiveURL, err := b.serve(bench.NaiveClaimHandler(b.pg))
	if err != nil {
		return err
	}
	redisURL := ""
	if b.rdb != nil {
		if redisURL, err = b.serve(bench.RedisLuaClaimHandler(b.rdb, b.pg)); err != nil {
			return err
		}
	}

	// design prepares a fresh pool called name and returns its target and
	// a check of the database afterwards.
	type design struct {
		name    string
		prepare func(ctx context.Context, pool string) (bench.FlashSaleTarget, func(context.Context, bench.FlashSaleResult) error, error)
	}
	baseline := func(base string, inRedis bool) func(context.Context, string) (bench.FlashSaleTarget, func(context.Context, bench.FlashSaleResult) error, error) {
		return func(ctx context.Context, pool string) (bench.FlashSaleTarget, func(context.Context, bench.FlashSaleResult) error, error) {
			if err := b.resetQuota(ctx, pool, int64(*capacity)); err != nil {
				return bench.FlashSaleTarget{}, nil, err
			}
			check := func(ctx context.Context, r bench.FlashSaleResult) error {
				confirmed, held, reserved, err := b.ordersConfirmed(ctx, pool)
				if err != nil {
					return err
				}
				where := "on the quota row"
				if inRedis {
					left, err := b.rdb.Get(ctx, bench.RedisQuotaKey(pool)).Int64()
					if err != nil {
						return fmt.Errorf("read the Redis counter: %w", err)
					}
					reserved, where = int64(*capacity)-left, "by the Redis counter"
				}
				if confirmed != r.Confirmed || held != r.Claimed-r.Confirmed || reserved != r.Claimed {
					return fmt.Errorf("the database disagrees: %d confirmed and %d held orders, %d units taken %s; the answers said %d claimed, %d confirmed",
						confirmed, held, reserved, where, r.Claimed, r.Confirmed)
				}
				return nil
			}
			return bench.FlashSaleTarget{ClaimURL: claimsURL(base, pool), ConfirmURL: confirmURL(base), Header: b.header}, check, nil
		}
	}
	designs := []design{
		{targetAllot, func(ctx context.Context, pool string) (bench.FlashSaleTarget, func(context.Context, bench.FlashSaleResult) error, error) {
			if err := b.createPool(ctx, pool, int64(*capacity), 1, flashSaleHoldTTL); err != nil {
				return bench.FlashSaleTarget{}, nil, err
			}
			check := func(ctx context.Context, r bench.FlashSaleResult) error {
				confirmed, held, err := b.poolConfirmed(ctx, pool)
				if err != nil {
					return err
				}
				if confirmed != r.Confirmed || held != r.Claimed-r.Confirmed {
					return fmt.Errorf("the database disagrees: pool %s has %d confirmed and %d held; the answers said %d claimed, %d confirmed",
						pool, confirmed, held, r.Claimed, r.Confirmed)
				}
				return nil
			}
			return bench.FlashSaleTarget{ClaimURL: claimsURL(b.base, pool), ConfirmURL: confirmURL(b.base), Header: b.header}, check, nil
		}},
		{targetNaive, baseline(naiveURL, false)},
	}
	if redisURL != "" {
		designs = append(designs, design{targetRedis, baseline(redisURL, true)})
	}
	if *only != "" {
		var keep []design
		for _, d := range designs {
			for _, o := range strings.Split(*only, ",") {
				if o = strings.TrimSpace(o); o != "" && strings.Contains(d.name, o) {
					keep = append(keep, d)
					break
				}
			}
		}
		if designs = keep; len(designs) == 0 {
			return usagef("--only %q matches no design", *only)
		}
	}

	opts := bench.FlashSaleOptions{Customers: *customers, Capacity: *capacity, Concurrency: *concurrency}
	fmt.Fprintf(stderr, "flash sale: %d customers, %d units, %d in flight, %d round(s)\n", *customers, *capacity, *concurrency, *f.repeat)
	var results []bench.FlashSaleResult
	var disagreements []string
	for round := 1; round <= *f.repeat; round++ {
		for i, d := range designs {
			pool := fmt.Sprintf("bench-flash-%s-%d-%d", b.suffix, round, i)
			t, check, err := d.prepare(ctx, pool)
			if err != nil {
				return err
			}
			t.Name = d.name
			r, err := bench.FlashSale(ctx, t, opts)
			if err != nil {
				return err
			}
			results = append(results, r)
			exact := "exact"
			if !r.Exact() {
				exact = "NOT EXACT"
			}
			fmt.Fprintf(stderr, "  round %d %-18s %s: %d held, %d confirmed, %d sold out, %d errors, sell-out %s, claim p99 %s\n",
				round, d.name, exact, r.Claimed, r.Confirmed, r.SoldOut, r.Errors+r.ConfirmErrors, r.SellOut.Round(time.Millisecond), r.P99.Round(time.Microsecond))
			if err := check(ctx, r); err != nil {
				msg := fmt.Sprintf("round %d %s: %v", round, d.name, err)
				fmt.Fprintln(stderr, "  "+msg)
				disagreements = append(disagreements, msg)
			}
		}
	}

	title := fmt.Sprintf("flash sale, %s customers, %s units, %d in flight, %d round(s)",
		bench.GroupThousands(int64(*customers)), bench.GroupThousands(int64(*capacity)), *concurrency, *f.repeat)
	var verdict strings.Builder
	for _, s := range bench.SummarizeFlashSales(results) {
		mark := "every run exact"
		if !s.AllExact() {
			mark = fmt.Sprintf("NOT EXACT in %d of %d runs", len(s.Runs)-s.ExactRuns(), len(s.Runs))
		}
		fmt.Fprintf(&verdict, "%s: %s\n", s.Target, mark)
	}
	if len(disagreements) == 0 {
		verdict.WriteString("the database agreed with the answers in every run\n")
	} else {
		for _, d := range disagreements {
			verdict.WriteString("DATABASE DISAGREES: " + d + "\n")
		}
	}
	if *f.markdown {
		fmt.Fprintf(stdout, "\n#### %s\n\n%s\n%s", title, bench.FlashSaleMarkdown(results), markdownList(verdict.String()))
	} else {
		fmt.Fprintf(stdout, "\n%s\n%s\n%s", title, bench.FlashSaleText(results), verdict.String())
	}
	if len(disagreements) > 0 {
		return errors.New("the database disagreed with the answers")
	}
	return nil
}

func markdownList(lines string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(lines), "\n") {
		b.WriteString("- " + l + "\n")
	}
	return b.String()
}
