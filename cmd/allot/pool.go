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
  create NAME --capacity N [--per-customer N] [--hold-ttl DURATION]
              [--max-hold-ttl DURATION] [--max-quantity N] [--state open|paused|closed]
              [--opens-at TIME] [--closes-at TIME]
  get NAME
  list
  patch NAME [--capacity N] [--per-customer N] [--hold-ttl DURATION]
             [--max-hold-ttl DURATION] [--max-quantity N] [--state open|paused|closed]
             [--opens-at TIME] [--closes-at TIME]

Run "allot pool <command> --help" for what a command does and its flags.

A pool is a finite inventory: capacity units, held by claims (see "allot claim")
until confirmed, released or expired. Defaults: --per-customer 1 (0 = no limit),
--hold-ttl 10m, --max-hold-ttl 30m, --max-quantity 10, --state open.
Durations are Go durations (90s, 10m, 1h30m); times are RFC 3339
(2026-11-27T09:00:00Z).

Every command takes --server URL (env ALLOT_SERVER, default http://127.0.0.1:7070),
--key TOKEN (env ALLOT_KEY) and --json (print the API's JSON, and errors as JSON).
create and patch need an admin key.
`

const claimUsage = `Usage: allot claim <command> [flags]

Commands:
  create POOL --customer CUSTOMER [--quantity N] [--ttl DURATION] [--idempotency-key KEY]
  get ID
  confirm ID [--reference REFERENCE] [--idempotency-key KEY]
  release ID [--idempotency-key KEY]
  extend ID --ttl DURATION [--idempotency-key KEY]
  cancel ID --reason REASON [--idempotency-key KEY]
  list POOL [--customer CUSTOMER] [--status held|confirmed|released|expired|cancelled]
            [--after CURSOR] [--limit N]

Run "allot claim <command> --help" for what a command does and its flags.

create holds units until the hold expires (--ttl, default the pool's hold_ttl);
confirm sells them (a late confirm of an expired hold works only while units
are free: otherwise refund), release gives them back, extend moves the expiry,
cancel undoes a confirmed claim (a refund) and gives its units back.
With --idempotency-key a retry returns the same claim instead of a new one; a
confirm, release or cancel that finds its change made already changes nothing.

Every command takes --server URL (env ALLOT_SERVER, default http://127.0.0.1:7070),
--key TOKEN (env ALLOT_KEY) and --json (print the API's JSON, and errors as JSON).
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
	capHelp := "the pool has `N` units"
	if create {
		capHelp += " (required)"
	} else {
		capHelp += ", not fewer than held + confirmed"
	}
	fs.Var(&p.capacity, "capacity", capHelp)
	fs.Var(&p.perCustomer, "per-customer", "one customer may hold plus buy `N` units, 0 for no limit"+def("1"))
	fs.Var(&p.holdTTL, "hold-ttl", "a hold lasts `DURATION` unless its claim says otherwise"+def("10m"))
	fs.Var(&p.maxHoldTTL, "max-hold-ttl", "a hold lives at most `DURATION` from its creation, extensions included"+def("30m"))
	fs.Var(&p.maxQuantity, "max-quantity", "one claim may take at most `N` units"+def("10"))
	fs.StringVar(&p.state, "state", "", "the `STATE`: open, paused or closed"+def("open"))
	fs.Var(&p.opensAt, "opens-at", "no claims before `TIME`, RFC 3339 (the start of the sale window)")
	fs.Var(&p.closesAt, "closes-at", "no claims from `TIME` on, RFC 3339 (the end of the sale window)")
}

func (p *poolFlags) patch() allot.PoolPatchParams {
	return allot.PoolPatchParams{
		Capacity: p.capacity.v, PerCustomer: p.perCustomer.v, HoldTTL: p.holdTTL.v, MaxHoldTTL: p.maxHoldTTL.v,
		MaxQuantity: p.maxQuantity.v, State: allot.PoolStatus(p.state), OpensAt: p.opensAt.v, ClosesAt: p.closesAt.v,
	}
}

var poolCommands = map[string]subcommand{
	"create": {"allot pool create NAME --capacity N [--per-customer N] [--hold-ttl DURATION]\n" +
		"                         [--max-hold-ttl DURATION] [--max-quantity N] [--state STATE]\n" +
		"                         [--opens-at TIME] [--closes-at TIME]",
		`Creates the pool NAME of --capacity units (admin key) and prints it.
Claims hold units until confirmed, released or expired ("allot claim").
Durations are Go durations (90s, 10m, 1h30m); times are RFC 3339
(2026-11-27T09:00:00Z).`},
	"get": {"allot pool get NAME",
		`Prints the pool NAME: its settings, state and sale window, and how many
units are held, confirmed and available.`},
	"list": {"allot pool list",
		`Lists every pool with its figures, by name.`},
	"patch": {"allot pool patch NAME [--capacity N] [--per-customer N] [--hold-ttl DURATION]\n" +
		"                        [--max-hold-ttl DURATION] [--max-quantity N] [--state STATE]\n" +
		"                        [--opens-at TIME] [--closes-at TIME]",
		`Changes the settings given of the pool NAME (admin key) and prints it; the
others stay as they are. The capacity may be raised any time, and lowered
only down to held + confirmed.`},
}

// runPool is "allot pool create|get|list|patch".
func runPool(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	cmd, args, fs, cf, done, err := groupCommand(ctx, "pool", poolUsage, poolCommands, args, getenv, stdout, stderr, runPool)
	if done {
		return err
	}
	defer func() { err = cf.finish(err, fs, args) }()
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
		want, names = 0, ""
	}
	if err := checkArgs(fs, pos, want, names); err != nil {
		return err
	}
	if cmd == "create" && pf.capacity.v == nil {
		return usagef("pool create needs --capacity: how many units the pool has")
	}
	if err := checkNotEmpty(fs, "state"); err != nil {
		return err
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
			return usagef("pool patch needs at least one setting to change, e.g. --capacity N")
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

var claimCommands = map[string]subcommand{
	"create": {"allot claim create POOL --customer CUSTOMER [--quantity N] [--ttl DURATION] [--idempotency-key KEY]",
		`Holds --quantity units of the pool POOL for CUSTOMER until the hold
expires, and prints the claim: its id, for confirm, release and extend, and
when it expires. Refused when the pool is sold out, closed, or the customer
is at the pool's per-customer limit.`},
	"get": {"allot claim get ID",
		`Prints the claim ID. A hold past its expiry reads as expired.`},
	"confirm": {"allot claim confirm ID [--reference REFERENCE] [--idempotency-key KEY]",
		`Sells the units of the claim ID. Confirming an expired hold works only if
its units can be taken again; otherwise it is refused (claim_expired) and
the customer should be refunded.`},
	"release": {"allot claim release ID [--idempotency-key KEY]",
		`Gives the units of the held claim ID back to its pool.`},
	"extend": {"allot claim extend ID --ttl DURATION [--idempotency-key KEY]",
		`Makes the held claim ID last --ttl from now, but never past the pool's
max_hold_ttl from the claim's creation.`},
	"cancel": {"allot claim cancel ID --reason REASON [--idempotency-key KEY]",
		`Cancels the confirmed claim ID, a refund: its units go back to the pool,
the customer's usage follows, and the claim keeps --reason. A held claim
can't be cancelled (409 invalid_state): release it instead.`},
	"list": {"allot claim list POOL [--customer CUSTOMER] [--status STATUS] [--after CURSOR] [--limit N]",
		`Lists a page of the claims of the pool POOL, oldest first. When there is
more, a last line "more: ..." gives the command for the next page.`},
}

// runClaim is "allot claim create|get|confirm|release|extend|cancel|list".
func runClaim(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	cmd, args, fs, cf, done, err := groupCommand(ctx, "claim", claimUsage, claimCommands, args, getenv, stdout, stderr, runClaim)
	if done {
		return err
	}
	defer func() { err = cf.finish(err, fs, args) }()
	var (
		customer, key, reference, status, after, reason string
		quantity                                        int64Flag
		ttl                                             durationFlag
		limit                                           int
	)
	switch cmd {
	case "create":
		fs.StringVar(&customer, "customer", "", "the `CUSTOMER` the units are for (required)")
		fs.Var(&quantity, "quantity", "hold `N` units, up to the pool's max_quantity (default 1)")
		fs.Var(&ttl, "ttl", "hold them for `DURATION`, e.g. 5m (default: the pool's hold_ttl)")
	case "confirm":
		fs.StringVar(&reference, "reference", "", "an external `REFERENCE` to record, e.g. a payment id")
	case "extend":
		fs.Var(&ttl, "ttl", "hold the units for `DURATION` from now, e.g. 5m (required)")
	case "cancel":
		fs.StringVar(&reason, "reason", "", "why the purchase is undone, the `REASON` the claim keeps (required)")
	case "list":
		fs.StringVar(&customer, "customer", "", "only the claims of `CUSTOMER`")
		fs.StringVar(&status, "status", "", "only the claims in `STATUS`: held, confirmed, released, expired or cancelled")
		fs.StringVar(&after, "after", "", "start after `CURSOR`, from the previous page's \"more:\" line")
		fs.IntVar(&limit, "limit", 100, fmt.Sprintf("show `N` claims per page, 1..%d", limitMax))
	}
	switch cmd {
	case "create", "confirm", "release", "extend", "cancel":
		fs.StringVar(&key, "idempotency-key", "", "a retry with the same `KEY` returns the same outcome")
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	arg := "ID"
	if cmd == "create" || cmd == "list" {
		arg = "POOL"
	}
	if err := checkArgs(fs, pos, 1, arg); err != nil {
		return err
	}
	switch {
	case cmd == "create" && customer == "":
		return usagef("claim create needs --customer: who the units are for")
	case cmd == "create" && quantity.v != nil && *quantity.v < 1:
		return usagef("--quantity must be at least 1, got %d", *quantity.v)
	case cmd == "extend" && ttl.v == nil:
		return usagef("claim extend needs --ttl: how long the hold lasts from now, e.g. 5m")
	case cmd == "cancel" && reason == "":
		return usagef("claim cancel needs --reason: why the purchase is undone")
	case cmd == "list":
		if err := checkLimit(limit); err != nil {
			return err
		}
	}
	if err := checkNotEmpty(fs, "idempotency-key"); err != nil {
		return err
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
	case "cancel":
		c, err = cl.ClaimCancel(ctx, pos[0], reason, key)
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
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", c.ID, shown(c.Customer), c.Quantity, c.Status, c.ExpiresAt.Format(timeLayout), shown(c.Reference))
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
		status += " (replayed: done already by an earlier request, with this idempotency key or this reference or reason; nothing done twice)"
	}
	expires := c.ExpiresAt.Format(timeLayout)
	if c.Status != allot.ClaimHeld {
		expires += " (no longer held)"
	}
	rows := [][2]string{
		{"id", c.ID}, {"pool", c.Pool}, {"customer", shown(c.Customer)}, {"quantity", strconv.FormatInt(c.Quantity, 10)},
		{"status", status}, {"expires at", expires},
	}
	if c.Reference != "" {
		rows = append(rows, [2]string{"reference", shown(c.Reference)})
	}
	if c.Reason != "" {
		rows = append(rows, [2]string{"reason", shown(c.Reason)})
	}
	rows = append(rows, [2]string{"created at", c.CreatedAt.Format(timeLayout)})
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}
