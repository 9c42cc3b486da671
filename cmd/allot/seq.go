package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/allot/allot"
	"github.com/allot/allot/client"
)

const seqUsage = `Usage: allot seq <command> [flags]

Commands:
  create NAME [--format F] [--start N] [--max N] [--mode cached|gapless]
              [--block-size N] [--reset never|yearly|monthly|daily]
              [--timezone TZ] [--warn-at F]
  get NAME
  list
  patch NAME [--max N] [--warn-at F]
  next NAME [--count N] [--date YYYY-MM-DD] [--idempotency-key K]
  void NAME (--number N [--date YYYY-MM-DD] | --id ID) --reason TEXT [--force]
  parse NAME ID
  ledger NAME [--after CURSOR] [--limit N]

Every command takes --server URL (env ALLOT_SERVER, default http://127.0.0.1:7070),
--key TOKEN (env ALLOT_KEY) and --json (print the API's JSON).
"next" prints one ID per line, ready for a label printer.
`

// clientFlags are the flags every client command shares.
type clientFlags struct {
	server, key string
	json        bool
}

func (c *clientFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&c.server, "server", envOr(getenv, "ALLOT_SERVER", "http://"+listenDefault), "server URL (env ALLOT_SERVER)")
	fs.StringVar(&c.key, "key", getenv("ALLOT_KEY"), "API key (env ALLOT_KEY)")
	fs.BoolVar(&c.json, "json", false, "print JSON instead of text")
}

func (c *clientFlags) client() (*client.Client, error) {
	var opts []client.Option
	if c.key != "" {
		opts = append(opts, client.WithKey(c.key))
	}
	cl, err := client.New(c.server, opts...)
	if err != nil {
		return nil, usagef("--server: %v", err)
	}
	return cl, nil
}

// setup parses a client command's flags, checks it got exactly n
// positional arguments (described by names), and returns them with a client.
func (c *clientFlags) setup(fs *flag.FlagSet, args []string, n int, names string) ([]string, *client.Client, error) {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if len(pos) != n {
		return nil, nil, usagef("%s needs %s, got %d argument(s)", fs.Name(), names, len(pos))
	}
	cl, err := c.client()
	if err != nil {
		return nil, nil, err
	}
	return pos, cl, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// int64Flag is an optional int64 flag: nil unless given.
type int64Flag struct{ v *int64 }

func (f *int64Flag) String() string {
	if f.v == nil {
		return ""
	}
	return strconv.FormatInt(*f.v, 10)
}

func (f *int64Flag) Set(s string) error {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	f.v = &v
	return nil
}

// float64Flag is an optional float64 flag: nil unless given.
type float64Flag struct{ v *float64 }

func (f *float64Flag) String() string {
	if f.v == nil {
		return ""
	}
	return strconv.FormatFloat(*f.v, 'g', -1, 64)
}

func (f *float64Flag) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("%q is not a number", s)
	}
	f.v = &v
	return nil
}

func runSeq(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, seqUsage)
		if len(args) == 0 {
			return usagef("allot seq needs a command")
		}
		return nil
	}
	cmd, args := args[0], args[1:]
	fs := newFlagSet("allot seq "+cmd, "allot seq "+cmd+" …\n\n"+seqUsage, stderr)
	var cf clientFlags
	cf.register(fs, getenv)

	switch cmd {
	case "create":
		var p allot.SequenceCreateParams
		var start, maxv, block int64Flag
		var warn float64Flag
		fs.StringVar(&p.Format, "format", "", `ID template, e.g. "LP{n:AA9}" or "INV-{yyyy}-{n:5}" (default "{n}")`)
		fs.Var(&start, "start", "first number of each period (default 1)")
		fs.Var(&maxv, "max", "last number that may be issued (default: the mask's capacity, or 2^63-1)")
		mode := fs.String("mode", "", "cached (default: fast, leased blocks) or gapless (every number committed)")
		fs.Var(&block, "block-size", "numbers a cached sequence leases at once (default 1000)")
		reset := fs.String("reset", "", "never (default), yearly, monthly or daily")
		fs.StringVar(&p.Timezone, "timezone", "", `IANA time zone for "today" (default UTC)`)
		fs.Var(&warn, "warn-at", "fraction of the range used past which the sequence warns (default 0.9)")
		pos, cl, err := cf.setup(fs, args, 1, "NAME")
		if err != nil {
			return err
		}
		p.Name, p.Mode, p.Reset = pos[0], allot.Mode(*mode), allot.Reset(*reset)
		p.Start, p.Max, p.BlockSize, p.WarnAt = start.v, maxv.v, block.v, warn.v
		st, err := cl.SequenceCreate(ctx, p)
		if err != nil {
			return err
		}
		return printState(stdout, cf.json, st)

	case "get":
		pos, cl, err := cf.setup(fs, args, 1, "NAME")
		if err != nil {
			return err
		}
		st, err := cl.SequenceGet(ctx, pos[0])
		if err != nil {
			return err
		}
		return printState(stdout, cf.json, st)

	case "list":
		_, cl, err := cf.setup(fs, args, 0, "no arguments")
		if err != nil {
			return err
		}
		list, err := cl.SequenceList(ctx)
		if err != nil {
			return err
		}
		if cf.json {
			return printJSON(stdout, map[string]any{"sequences": list})
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tFORMAT\tMODE\tRESET\tNEXT\tISSUED\tREMAINING\tWARNING")
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%v\n", s.Name, s.Format, s.Mode, s.Reset, s.Next, s.Issued, s.Remaining, s.Warning)
		}
		return tw.Flush()

	case "patch":
		var maxv int64Flag
		var warn float64Flag
		fs.Var(&maxv, "max", "new max")
		fs.Var(&warn, "warn-at", "new warning threshold, a fraction in (0, 1]")
		pos, cl, err := cf.setup(fs, args, 1, "NAME")
		if err != nil {
			return err
		}
		st, err := cl.SequencePatch(ctx, pos[0], allot.SequencePatchParams{Max: maxv.v, WarnAt: warn.v})
		if err != nil {
			return err
		}
		return printState(stdout, cf.json, st)

	case "next":
		var p allot.NextParams
		fs.Int64Var(&p.Count, "count", 1, "how many contiguous IDs to take (1..100000)")
		fs.StringVar(&p.Date, "date", "", "document date YYYY-MM-DD (default: today in the sequence's time zone)")
		fs.StringVar(&p.IdempotencyKey, "idempotency-key", "", "a retry with the same key returns the same IDs")
		pos, cl, err := cf.setup(fs, args, 1, "NAME")
		if err != nil {
			return err
		}
		p.Sequence = pos[0]
		r, err := cl.Next(ctx, p)
		if err != nil {
			return err
		}
		if cf.json {
			return printJSON(stdout, r)
		}
		_, err = io.WriteString(stdout, strings.Join(r.IDs, "\n")+"\n")
		return err

	case "void":
		var p allot.VoidParams
		var number int64Flag
		fs.Var(&number, "number", "the number to void")
		fs.StringVar(&p.ID, "id", "", "the ID to void (instead of --number)")
		fs.StringVar(&p.Date, "date", "", "with --number in a resetting sequence: a date in the number's period")
		fs.StringVar(&p.Reason, "reason", "", "why the number is voided (required)")
		fs.BoolVar(&p.Force, "force", false, "void a cached number even if another server that has not stopped leased it (for a crashed server)")
		pos, cl, err := cf.setup(fs, args, 1, "NAME")
		if err != nil {
			return err
		}
		p.Sequence, p.Number = pos[0], number.v
		e, err := cl.SequenceVoid(ctx, p)
		if err != nil {
			return err
		}
		if cf.json {
			return printJSON(stdout, e)
		}
		fmt.Fprintf(stdout, "voided %d in %s (%s)\n", e.First, periodText(e.Period), e.Reason)
		return nil

	case "parse":
		pos, cl, err := cf.setup(fs, args, 2, "NAME and ID")
		if err != nil {
			return err
		}
		r, err := cl.SequenceParse(ctx, pos[0], pos[1])
		if err != nil {
			return err
		}
		if cf.json {
			return printJSON(stdout, r)
		}
		valid := "valid"
		if !r.Valid {
			valid = "INVALID check character"
		}
		fmt.Fprintf(stdout, "%s: number %d in %s, %s, %s\n", r.ID, r.Number, periodText(r.Period), valid, r.Status)
		return nil

	case "ledger":
		after := fs.String("after", "", "cursor from the previous page")
		limit := fs.Int("limit", 100, "entries per page (1..1000)")
		pos, cl, err := cf.setup(fs, args, 1, "NAME")
		if err != nil {
			return err
		}
		page, err := cl.SequenceLedger(ctx, pos[0], *after, *limit)
		if err != nil {
			return err
		}
		if cf.json {
			return printJSON(stdout, page)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tKIND\tPERIOD\tFIRST\tLAST\tCOUNT\tOWNER\tREASON\tAT")
		for _, e := range page.Entries {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", e.ID, e.Kind, e.Period, e.First, e.Last, e.Count, e.Owner, e.Reason, e.CreatedAt.Format("2006-01-02 15:04:05Z07:00"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if page.Next != "" {
			fmt.Fprintf(stdout, "more: allot seq ledger %s --after %s\n", pos[0], page.Next)
		}
		return nil
	}
	fmt.Fprint(stderr, seqUsage)
	return usagef("unknown seq command %q", cmd)
}

func periodText(p string) string {
	if p == "" {
		return "the only period"
	}
	return "period " + p
}

func printState(w io.Writer, asJSON bool, s *allot.SequenceState) error {
	if asJSON {
		return printJSON(w, s)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	rows := [][2]string{
		{"name", s.Name}, {"format", s.Format}, {"mode", string(s.Mode)},
		{"range", fmt.Sprintf("%d..%d", s.Start, s.Max)}, {"block size", strconv.FormatInt(s.BlockSize, 10)},
		{"reset", string(s.Reset)}, {"timezone", s.Timezone}, {"warn at", strconv.FormatFloat(s.WarnAt, 'g', -1, 64)},
		{"period", periodText(s.Period)}, {"next", strconv.FormatInt(s.Next, 10)},
		{"issued", strconv.FormatInt(s.Issued, 10)}, {"voided", strconv.FormatInt(s.Voided, 10)},
		{"remaining", strconv.FormatInt(s.Remaining, 10)}, {"warning", strconv.FormatBool(s.Warning)},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}
