package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/client"
)

const poolUsage = `Usage: allot pool <command> [flags]

Commands:
  create NAME --capacity N [--per-customer N] [--hold-ttl 10m] [--max-hold-ttl 30m]
              [--max-quantity N] [--state open|paused|closed]
              [--opens-at RFC3339] [--closes-at RFC3339]
  get NAME
  list
  patch NAME [--capacity N] [--per-customer N] [--hold-ttl D] [--max-hold-ttl D]
             [--max-quantity N] [--state open|paused|closed]
             [--opens-at RFC3339] [--closes-at RFC3339]

A pool is a finite inventory: capacity units, held by claims (see "allot claim")
until confirmed, released or expired. Defaults: --per-customer 1 (0 = no limit),
--hold-ttl 10m, --max-hold-ttl 30m, --max-quantity 10, --state open.
Durations are Go durations (90s, 10m, 1h30m); times are RFC 3339
(2026-11-27T09:00:00Z).

Every command takes --server URL (env ALLOT_SERVER, default http://127.0.0.1:7070),
--key TOKEN (env ALLOT_KEY) and --json (print the API's JSON).
create and patch need an admin key.
`

const claimUsage = `Usage: allot claim <command> [flags]

Commands:
  create POOL --customer C [--quantity N] [--ttl 5m] [--idempotency-key K]
  get ID
  confirm ID [--reference R] [--idempotency-key K]
  release ID [--idempotency-key K]
  extend ID --ttl 5m [--idempotency-key K]
  list POOL [--customer C] [--status held|confirmed|released|expired]
            [--after CURSOR] [--limit N]

create holds units until the hold expires (--ttl, default the pool's hold_ttl);
confirm sells them (a late confirm of an expired hold works only while units
are free: otherwise refund), release gives them back, extend moves the expiry.
With --idempotency-key a retry returns the same claim instead of a new one.

Every command takes --server URL (env ALLOT_SERVER, default http://127.0.0.1:7070),
--key TOKEN (env ALLOT_KEY) and --json (print the API's JSON).
`

// durationFlag is an optional duration flag: nil unless given.
type durationFlag struct{ v *allot.Duration }

func (f *durationFlag) String() string {
	if f.v == nil {
		return ""
	}
	return time.Duration(*f.v).String()
}

func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration: use e.g. 90s, 10m or 1h30m", s)
	}
	v := allot.Duration(d)
	f.v = &v
	return nil
}

// timeFlag is an optional RFC 3339 time flag: nil unless given.
type timeFlag struct{ v *time.Time }

func (f *timeFlag) String() string {
	if f.v == nil {
		return ""
	}
	return f.v.Format(time.RFC3339)
}

func (f *timeFlag) Set(s string) error {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("%q is not an RFC 3339 time: use e.g. 2026-11-27T09:00:00Z", s)
	}
	f.v = &t
	return nil
}

// poolFlags are the settings flags of pool create and patch.
type poolFlags struct {
	capacity, perCustomer, maxQuantity int64Flag
	holdTTL, maxHoldTTL                durationFlag
	state                              string
	opensAt, closesAt                  timeFlag
}

func (p *poolFlags) register(fs *flag.FlagSet, create bool) {
	def := func(d string) string {
		if create {
			return " (default " + d + ")"
		}
		return ""
	}
	capHelp := "units the pool has"
	if create {
		capHelp += " (required)"
	} else {
		capHelp += "; not below held + confirmed"
	}
	fs.Var(&p.capacity, "capacity", capHelp)
	fs.Var(&p.perCustomer, "per-customer", "units one customer may hold plus buy, 0 for no limit"+def("1"))
	fs.Var(&p.holdTTL, "hold-ttl", "how long a hold lasts unless the claim says"+def("10m"))
	fs.Var(&p.maxHoldTTL, "max-hold-ttl", "cap on a hold's life from its creation, extensions included"+def("30m"))
	fs.Var(&p.maxQuantity, "max-quantity", "most units one claim may take"+def("10"))
	fs.StringVar(&p.state, "state", "", "open, paused or closed"+def("open"))
	fs.Var(&p.opensAt, "opens-at", "start of the sale window, RFC 3339 (no claims before)")
	fs.Var(&p.closesAt, "closes-at", "end of the sale window, RFC 3339 (no claims from then on)")
}

func (p *poolFlags) patch() allot.PoolPatchParams {
	return allot.PoolPatchParams{
		Capacity: p.capacity.v, PerCustomer: p.perCustomer.v, HoldTTL: p.holdTTL.v, MaxHoldTTL: p.maxHoldTTL.v,
		MaxQuantity: p.maxQuantity.v, State: allot.PoolStatus(p.state), OpensAt: p.opensAt.v, ClosesAt: p.closesAt.v,
	}
}

var poolSynopses = map[string]string{
	"create": "allot pool create NAME --capacity N [flags]",
	"get":    "allot pool get NAME",
	"list":   "allot pool list",
	"patch":  "allot pool patch NAME [flags]",
}

// runPool is "allot pool create|get|list|patch".
func runPool(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, poolUsage)
		if len(args) == 0 {
			return usagef("allot pool needs a command")
		}
		return nil
	}
	cmd, args := args[0], args[1:]
	synopsis, ok := poolSynopses[cmd]
	if !ok {
		fmt.Fprint(stderr, poolUsage)
		return usagef("unknown pool command %q", cmd)
	}
	fs := newFlagSet("allot pool "+cmd, synopsis+"\n\n"+poolUsage, stderr)
	var cf clientFlags
	cf.register(fs, getenv)
	var pf poolFlags
	if cmd == "create" || cmd == "patch" {
		pf.register(fs, cmd == "create")
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	want, names := 1, "NAME"
	if cmd == "list" {
		want, names = 0, "no arguments"
	}
	if len(pos) != want {
		return usagef("allot pool %s needs %s, got %d argument(s)", cmd, names, len(pos))
	}
	if cmd == "create" && pf.capacity.v == nil {
		return usagef("allot pool create needs --capacity: how many units the pool has")
	}
	cl, err := cf.client()
	if err != nil {
		return err
	}

	var st *allot.PoolState
	switch cmd {
	case "create":
		p := pf.patch()
		st, err = cl.PoolCreate(ctx, allot.PoolCreateParams{
			Name: pos[0], Capacity: p.Capacity, PerCustomer: p.PerCustomer, HoldTTL: p.HoldTTL, MaxHoldTTL: p.MaxHoldTTL,
			MaxQuantity: p.MaxQuantity, State: p.State, OpensAt: p.OpensAt, ClosesAt: p.ClosesAt,
		})
	case "get":
		st, err = cl.PoolGet(ctx, pos[0])
	case "patch":
		p := pf.patch()
		if p == (allot.PoolPatchParams{}) {
			return usagef("allot pool patch needs at least one setting to change, e.g. --capacity N")
		}
		st, err = cl.PoolPatch(ctx, pos[0], p)
	case "list":
		list, err := cl.PoolList(ctx)
		if err != nil {
			return err
		}
		return printPools(stdout, cf.json, list)
	}
	if err != nil {
		return err
	}
	return printPool(stdout, cf.json, st)
}

const timeLayout = "2006-01-02 15:04:05Z07:00"

// windowText describes a pool's sale window.
func windowText(p *allot.PoolState) string {
	switch {
	case p.OpensAt == nil && p.ClosesAt == nil:
		return "always"
	case p.ClosesAt == nil:
		return "from " + p.OpensAt.Format(timeLayout)
	case p.OpensAt == nil:
		return "until " + p.ClosesAt.Format(timeLayout)
	}
	return p.OpensAt.Format(timeLayout) + " to " + p.ClosesAt.Format(timeLayout)
}

func perCustomerText(n int64) string {
	if n == 0 {
		return "no limit"
	}
	return strconv.FormatInt(n, 10)
}

func printPool(w io.Writer, asJSON bool, p *allot.PoolState) error {
	if asJSON {
		return printJSON(w, p)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	rows := [][2]string{
		{"name", p.Name}, {"state", string(p.State)}, {"sale window", windowText(p)},
		{"capacity", strconv.FormatInt(p.Capacity, 10)}, {"held", strconv.FormatInt(p.Held, 10)},
		{"confirmed", strconv.FormatInt(p.Confirmed, 10)}, {"available", strconv.FormatInt(p.Available, 10)},
		{"per customer", perCustomerText(p.PerCustomer)}, {"max quantity", strconv.FormatInt(p.MaxQuantity, 10)},
		{"hold ttl", time.Duration(p.HoldTTL).String()}, {"max hold ttl", time.Duration(p.MaxHoldTTL).String()},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

func printPools(w io.Writer, asJSON bool, list []*allot.PoolState) error {
	if asJSON {
		return printJSON(w, map[string]any{"pools": list})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tCAPACITY\tHELD\tCONFIRMED\tAVAILABLE\tPER CUSTOMER\tWINDOW")
	for _, p := range list {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", p.Name, p.State, p.Capacity, p.Held, p.Confirmed, p.Available,
			perCustomerText(p.PerCustomer), windowText(p))
	}
	return tw.Flush()
}

var claimSynopses = map[string]string{
	"create":  "allot claim create POOL --customer C [--quantity N] [--ttl 5m] [--idempotency-key K]",
	"get":     "allot claim get ID",
	"confirm": "allot claim confirm ID [--reference R] [--idempotency-key K]",
	"release": "allot claim release ID [--idempotency-key K]",
	"extend":  "allot claim extend ID --ttl 5m [--idempotency-key K]",
	"list":    "allot claim list POOL [--customer C] [--status S] [--after CURSOR] [--limit N]",
}

// runClaim is "allot claim create|get|confirm|release|extend|list".
func runClaim(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, claimUsage)
		if len(args) == 0 {
			return usagef("allot claim needs a command")
		}
		return nil
	}
	cmd, args := args[0], args[1:]
	synopsis, ok := claimSynopses[cmd]
	if !ok {
		fmt.Fprint(stderr, claimUsage)
		return usagef("unknown claim command %q", cmd)
	}
	fs := newFlagSet("allot claim "+cmd, synopsis+"\n\n"+claimUsage, stderr)
	var cf clientFlags
	cf.register(fs, getenv)
	var (
		customer, key, reference, status, after string
		quantity                                int64Flag
		ttl                                     durationFlag
		limit                                   int
	)
	switch cmd {
	case "create":
		fs.StringVar(&customer, "customer", "", "who the units are for (required)")
		fs.Var(&quantity, "quantity", "units to hold, up to the pool's max_quantity (default 1)")
		fs.Var(&ttl, "ttl", "how long the hold lasts, e.g. 5m (default: the pool's hold_ttl)")
	case "confirm":
		fs.StringVar(&reference, "reference", "", "external reference, e.g. a payment id")
	case "extend":
		fs.Var(&ttl, "ttl", "how long the hold lasts from now, e.g. 5m (required)")
	case "list":
		fs.StringVar(&customer, "customer", "", "only this customer's claims")
		fs.StringVar(&status, "status", "", "only claims that are held, confirmed, released or expired")
		fs.StringVar(&after, "after", "", "cursor from the previous page")
		fs.IntVar(&limit, "limit", 100, "claims per page (1..1000)")
	}
	switch cmd {
	case "create", "confirm", "release", "extend":
		fs.StringVar(&key, "idempotency-key", "", "a retry with the same key returns the same outcome")
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	arg := "ID"
	if cmd == "create" || cmd == "list" {
		arg = "POOL"
	}
	if len(pos) != 1 {
		return usagef("allot claim %s needs %s, got %d argument(s)", cmd, arg, len(pos))
	}
	switch {
	case cmd == "create" && customer == "":
		return usagef("allot claim create needs --customer: who the units are for")
	case cmd == "create" && quantity.v != nil && *quantity.v < 1:
		return usagef("--quantity must be at least 1, got %d", *quantity.v)
	case cmd == "extend" && ttl.v == nil:
		return usagef("allot claim extend needs --ttl: how long the hold lasts from now, e.g. 5m")
	}
	cl, err := cf.client()
	if err != nil {
		return err
	}

	var c *allot.Claim
	switch cmd {
	case "create":
		p := allot.ClaimCreateParams{Pool: pos[0], Customer: customer, TTL: ttl.v, IdempotencyKey: key}
		if quantity.v != nil {
			p.Quantity = *quantity.v
		}
		c, _, err = cl.ClaimCreate(ctx, p)
	case "get":
		c, err = cl.ClaimGet(ctx, pos[0])
	case "confirm":
		c, err = cl.ClaimConfirm(ctx, pos[0], reference, key)
	case "release":
		c, err = cl.ClaimRelease(ctx, pos[0], key)
	case "extend":
		c, err = cl.ClaimExtend(ctx, pos[0], time.Duration(*ttl.v), key)
	case "list":
		return listClaims(ctx, cl, stdout, cf.json, allot.ClaimListParams{
			Pool: pos[0], Customer: customer, Status: allot.ClaimStatus(status), After: after, Limit: limit,
		})
	}
	if err != nil {
		return err
	}
	return printClaim(stdout, cf.json, c)
}

func listClaims(ctx context.Context, cl *client.Client, w io.Writer, asJSON bool, p allot.ClaimListParams) error {
	page, err := cl.ClaimList(ctx, p)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, page)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCUSTOMER\tQUANTITY\tSTATUS\tEXPIRES AT\tREFERENCE")
	for _, c := range page.Claims {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", c.ID, c.Customer, c.Quantity, c.Status, c.ExpiresAt.Format(timeLayout), c.Reference)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.Next != "" {
		more := "allot claim list " + p.Pool
		if p.Customer != "" {
			more += " --customer " + strconv.Quote(p.Customer)
		}
		if p.Status != "" {
			more += " --status " + string(p.Status)
		}
		if p.Limit != 0 && p.Limit != 100 {
			more += " --limit " + strconv.Itoa(p.Limit)
		}
		fmt.Fprintf(w, "more: %s --after %s\n", more, page.Next)
	}
	return nil
}

func printClaim(w io.Writer, asJSON bool, c *allot.Claim) error {
	if asJSON {
		return printJSON(w, c)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	status := string(c.Status)
	if c.Replayed {
		status += " (replayed: an earlier request with this idempotency key)"
	}
	expires := c.ExpiresAt.Format(timeLayout)
	if c.Status != allot.ClaimHeld {
		expires += " (no longer held)"
	}
	rows := [][2]string{
		{"id", c.ID}, {"pool", c.Pool}, {"customer", c.Customer}, {"quantity", strconv.FormatInt(c.Quantity, 10)},
		{"status", status}, {"expires at", expires},
	}
	if c.Reference != "" {
		rows = append(rows, [2]string{"reference", c.Reference})
	}
	rows = append(rows, [2]string{"created at", c.CreatedAt.Format(timeLayout)})
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}
