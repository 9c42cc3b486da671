package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/client"
)

const seqUsage = `Usage: allot seq <command> [flags]

Commands:
  create NAME [--format TEMPLATE] [--start N] [--max N] [--mode cached|gapless]
              [--block-size N] [--reset never|yearly|monthly|daily]
              [--timezone ZONE] [--warn-at FRACTION] [--periods-back N]
              [--periods-ahead N] [--confirm-within DURATION] [--allow-overlap]
              [--label JSON]
  get NAME [--date YYYY-MM-DD]
  list
  patch NAME [--max N] [--warn-at FRACTION] [--periods-back N] [--periods-ahead N]
             [--confirm-within DURATION] [--label JSON]
  next NAME [--count N] [--date YYYY-MM-DD] [--reference REF]
            [--confirm-within DURATION] [--idempotency-key KEY]
  labels NAME [--count N] [--format zpl|pdf|png] [--barcode BARCODE] [--size SIZE]
              [--dpi 203|300] [--layout label|a4|letter] [--no-text] [--title TITLE]
              [--date YYYY-MM-DD] [--reference REF] [--confirm-within DURATION]
              [--idempotency-key KEY] [-o FILE]
  reprint NAME (--first ID --last ID | --ids ID,ID | --idempotency-key KEY)
               [label flags as for labels] [-o FILE]
  confirm NAME --first N --last N [--period PERIOD] [--reference REF]
  void NAME (--number N [--date YYYY-MM-DD] | --id ID) --reason REASON [--force]
  parse NAME ID
  ledger NAME [--after CURSOR] [--limit N] [--format table|csv]
  close-period NAME PERIOD
  reopen-period NAME PERIOD

Run "allot seq <command> --help" for what a command does and its flags.

Every command takes --server URL (env ALLOT_SERVER, default http://127.0.0.1:7070),
--key TOKEN (env ALLOT_KEY) and --json (print the API's JSON, and errors as JSON).
"next" prints one ID per line, ready for a label printer; "labels" prints the
labels themselves (ZPL, PDF or PNG) and "reprint" prints issued ones again.
`

// subcommand is the help of one command of a group such as "allot seq".
type subcommand struct {
	synopsis    string // the usage line(s), e.g. "allot seq get NAME"
	description string // what the command does, in a few lines
}

func (s subcommand) help() string { return s.synopsis + "\n\n" + s.description }

var seqCommands = map[string]subcommand{
	"create": {"allot seq create NAME [--format TEMPLATE] [--start N] [--max N] [--mode cached|gapless]\n" +
		"                        [--block-size N] [--reset never|yearly|monthly|daily]\n" +
		"                        [--timezone ZONE] [--warn-at FRACTION] [--periods-back N]\n" +
		"                        [--periods-ahead N] [--confirm-within DURATION] [--allow-overlap]\n" +
		"                        [--label JSON]",
		`Creates the sequence NAME (admin key) and prints its settings.

The template renders each number: {n} as it is, {n:6} zero-padded to 6
digits, {n:AA9} as a mixed-radix mask (A = A-Z, a = a-z, 9 = 0-9), {yyyy}
{yy} {mm} {dd} as the date, {check:luhn|mod97|mod37|gs1} as a check character.
A cached sequence leases blocks of numbers and serves them from memory; a
gapless one commits every number before answering, so each number from
--start on is issued or voided with a reason. With --reset every period
counts from --start again, and a document date is accepted only from
--periods-back periods before the current one to --periods-ahead after it.
With --confirm-within every number is two-phase: next returns it reserved,
and it is voided unless confirmed ("allot seq confirm") in time.
A sequence that could issue the same IDs as another is refused unless
--allow-overlap. --label saves label settings for "allot seq labels" as a
JSON object, e.g. {"format":"zpl","size":"4x6in","title":"ACME"}.`},
	"get": {"allot seq get NAME [--date YYYY-MM-DD]",
		`Prints the sequence NAME's settings and its figures for the current period
(or the period --date falls in): the next number, how many were issued,
are leased to servers that have not said what they handed out, are
reserved awaiting confirmation, voided and remain, whether more than
--warn-at of the range is used, and whether the period is closed. The
figures come from the database, so every server shows the same.`},
	"list": {"allot seq list",
		`Lists every sequence with its figures for the current period, by name.`},
	"patch": {"allot seq patch NAME [--max N] [--warn-at FRACTION] [--periods-back N] [--periods-ahead N]\n" +
		"                       [--confirm-within DURATION] [--label JSON]",
		`Changes settings of the sequence NAME (admin key) and prints them. Give at
least one flag. --confirm-within 0s turns two-phase numbers off. --label
replaces the saved label settings (a JSON object, as for create); --label {}
removes them.`},
	"next": {"allot seq next NAME [--count N] [--date YYYY-MM-DD] [--reference REF]\n" +
		"                      [--confirm-within DURATION] [--idempotency-key KEY]",
		`Takes the next --count numbers of the sequence NAME and prints their IDs,
one per line, ready for a label printer (--json prints the API's answer).
With --idempotency-key a retry returns the same IDs instead of new ones.
--reference keeps the document's id in the ledger with the numbers. With
--confirm-within (or the sequence's setting) the numbers are reserved:
confirm them with "allot seq confirm" before the deadline printed on
stderr, or they are voided. A warning on stderr says when the range is
nearly used up.`},
	"labels":  seqLabelsCommand,
	"reprint": seqReprintCommand,
	"confirm": {"allot seq confirm NAME --first N --last N [--period PERIOD] [--reference REF]",
		`Confirms reserved (two-phase) numbers --first..--last of the sequence NAME:
they become issued, with --reference. --period is required when the
sequence resets (2026, 2026-11 or 2026-11-22). Confirming them again with
the same reference changes nothing. An operator may also confirm issued
numbers "allot audit" reports as unanswered, when a document has them.`},
	"close-period": {"allot seq close-period NAME PERIOD",
		`Closes PERIOD (2026, 2026-11 or 2026-11-22) of the resetting sequence NAME
(admin key): it takes no new numbers; confirms and voids go on. Refused
while a running server holds a lease in the period.`},
	"reopen-period": {"allot seq reopen-period NAME PERIOD",
		`Opens a closed PERIOD of the sequence NAME again (admin key).`},
	"void": {"allot seq void NAME (--number N [--date YYYY-MM-DD] | --id ID) --reason REASON [--force]",
		`Voids one issued number of the sequence NAME, with a reason the ledger
keeps (admin key). Name the number by its --id, or by --number (with --date
in a resetting sequence, for the period). A cached number in a block
another running server leased is refused, as that server may not have
handed it out yet; --force voids it anyway, for a server that crashed.`},
	"parse": {"allot seq parse NAME ID",
		`Decodes ID, an ID of the sequence NAME: prints its number and period,
whether its check character is valid, and what the ledger says of it:
issued, leased (to a server that has not said whether it handed it out),
reserved, voided or unissued, with why, the document it went to, and the
ID it was really issued as when this one shows another date.`},
	"ledger": {"allot seq ledger NAME [--after CURSOR] [--limit N] [--format table|csv]",
		`Prints the ledger of the sequence NAME (admin key): every range issued,
leased, reserved, voided, handed back or confirmed, oldest first. As a
table it prints a page; when there is more, a last line "more: ..." gives
the command for the next page. --format csv exports the whole ledger (from
--after on), with a header line.`},
}

// groupCommand starts a command of a group: it answers the group's help
// (done is then true), refuses an unknown command (done, with the usage
// error), and makes the command's flag set with the client flags on it;
// the caller defers cf.finish.
func groupCommand(ctx context.Context, group, help string, commands map[string]subcommand, args []string, getenv func(string) string,
	stdout, stderr io.Writer, runGroup func(context.Context, []string, func(string) string, io.Writer, io.Writer) error,
) (cmd string, rest []string, fs *flag.FlagSet, cf *clientFlags, done bool, err error) {
	if done, err := groupHelp(ctx, group, help, args, getenv, stdout, stderr, runGroup); done {
		return "", nil, nil, nil, true, err
	}
	cmd, rest = args[0], args[1:]
	sub, ok := commands[cmd]
	if !ok {
		return "", nil, nil, nil, true, &usageError{msg: fmt.Sprintf("%s: unknown command %q", group, cmd), help: "allot " + group}
	}
	fs = newFlagSet("allot "+group+" "+cmd, sub.help(), stdout)
	cf = &clientFlags{}
	cf.register(fs, getenv)
	return cmd, rest, fs, cf, false, nil
}

// groupHelp handles a group's arguments before its command: with none it
// prints the group's help to stderr and returns a usage error; with
// help, -h or --help it prints the help to stdout ("help CMD" is the
// help of CMD). done is false when args name a command to run.
func groupHelp(ctx context.Context, group, help string, args []string, getenv func(string) string, stdout, stderr io.Writer,
	runGroup func(context.Context, []string, func(string) string, io.Writer, io.Writer) error) (done bool, err error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, help)
		return true, &usageError{msg: group + " needs a command", shown: true}
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if args[0] == "help" && len(args) > 1 {
			return true, runGroup(ctx, []string{args[1], "--help"}, getenv, stdout, stderr)
		}
		fmt.Fprint(stdout, help)
		return true, nil
	}
	return false, nil
}

// clientFlags are the flags every client command shares.
type clientFlags struct {
	server, key string
	json        bool
	base        string // the client's base URL, once it is made
	serverEnv   bool   // --server defaults to ALLOT_SERVER
}

func (c *clientFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	c.serverEnv = true
	fs.StringVar(&c.server, "server", envOr(getenv, "ALLOT_SERVER", "http://"+listenDefault), "the allot server's `URL`, or host:port for http:// (env ALLOT_SERVER)")
	fs.StringVar(&c.key, "key", getenv("ALLOT_KEY"), "the API key `TOKEN` to send (env ALLOT_KEY)")
	fs.BoolVar(&c.json, "json", false, "print JSON instead of text, errors included")
}

func (c *clientFlags) client() (*client.Client, error) {
	var opts []client.Option
	if c.key != "" {
		opts = append(opts, client.WithKey(c.key))
	}
	cl, err := client.New(c.server, opts...)
	if err != nil {
		return nil, usagef("--server: %s", strings.TrimPrefix(err.Error(), "client: "))
	}
	c.base = cl.BaseURL()
	return cl, nil
}

// finish is the last step of a client command: it points a usage error
// at the command's help (fs), explains a server that can't be reached,
// and marks the error for JSON output under --json (args are the
// command's arguments, for a --json that did not get parsed).
func (c *clientFlags) finish(err error, fs *flag.FlagSet, args []string) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	err = withHelp(err, fs.Name())
	err = c.explainUnreachable(err)
	if c.json || wantsJSON(args) {
		err = &jsonError{err}
	}
	return err
}

// unreachableError is a client command's failure to connect to the server.
type unreachableError struct {
	msg string
	err error
}

func (e *unreachableError) Error() string { return e.msg }
func (e *unreachableError) Unwrap() error { return e.err }

// explainUnreachable rewords the failure to connect to the server as
// what to do about it.
func (c *clientFlags) explainUnreachable(err error) error {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return err
	}
	base := c.base
	if base == "" {
		base = c.server
	}
	set := "--server"
	if c.serverEnv {
		set += " or ALLOT_SERVER"
	}
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return &unreachableError{fmt.Sprintf("cannot reach the allot server at %s (connection refused): is `allot serve` running? Set %s", base, set), err}
	case errors.As(err, &dns):
		return &unreachableError{fmt.Sprintf("cannot reach the allot server at %s (%s %s): check %s", base, dns.Err, dns.Name, set), err}
	}
	return &unreachableError{fmt.Sprintf("cannot reach the allot server at %s (%v): check %s, and that `allot serve` is running there", base, op.Err, set), err}
}

// setup parses a client command's flags, checks it got exactly n
// positional arguments (described by names), and returns them with a client.
func (c *clientFlags) setup(fs *flag.FlagSet, args []string, n int, names string) ([]string, *client.Client, error) {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if err := checkArgs(fs, pos, n, names); err != nil {
		return nil, nil, err
	}
	cl, err := c.client()
	if err != nil {
		return nil, nil, err
	}
	return pos, cl, nil
}

// checkArgs checks that a command got n positional arguments, described
// by names ("NAME", "NAME and ID").
func checkArgs(fs *flag.FlagSet, pos []string, n int, names string) error {
	if len(pos) == n {
		return nil
	}
	cmd := strings.TrimPrefix(fs.Name(), "allot ")
	switch {
	case n == 0:
		return usagef("%s takes no arguments, got %s", cmd, quoteArgs(pos))
	case len(pos) == 0:
		return usagef("%s needs %s", cmd, names)
	case len(pos) < n:
		return usagef("%s needs %s, got only %s", cmd, names, quoteArgs(pos))
	}
	return usagef("%s needs %s, got %d arguments: %s", cmd, names, len(pos), quoteArgs(pos))
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = strconv.Quote(a)
	}
	return strings.Join(q, " ")
}

// checkNotEmpty refuses flags given explicitly as "", which the server
// refuses too (the CLI would otherwise leave them out, meaning the
// default).
func checkNotEmpty(fs *flag.FlagSet, names ...string) error {
	for _, name := range names {
		if f := fs.Lookup(name); f != nil && flagGiven(fs, name) && f.Value.String() == "" {
			return usagef("--%s is empty: give a value, or leave --%s out", name, name)
		}
	}
	return nil
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

// limitMax is the most entries one page of a ledger or claim list holds.
const limitMax = 1000

// checkLimit refuses a --limit the server would refuse (it must be
// 1..1000; the CLI would send 0 as "the default").
func checkLimit(limit int) error {
	if limit < 1 || limit > limitMax {
		return usagef("--limit must be between 1 and %d, got %d", limitMax, limit)
	}
	return nil
}

// runSeq is "allot seq create|get|list|patch|next|labels|reprint|void|parse|ledger|...".
func runSeq(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	cmd, args, fs, cf, done, err := groupCommand(ctx, "seq", seqUsage, seqCommands, args, getenv, stdout, stderr, runSeq)
	if done {
		return err
	}
	defer func() { err = cf.finish(err, fs, args) }()

	switch cmd {
	case "create":
		var p allot.SequenceCreateParams
		var start, maxv, block int64Flag
		var warn float64Flag
		fs.StringVar(&p.Format, "format", "", "the ID `TEMPLATE`, e.g. \"LP{n:AA9}\" or \"INV-{yyyy}-{n:5}\" (default \"{n}\")")
		fs.Var(&start, "start", "start each period at `N` (default 1)")
		fs.Var(&maxv, "max", "issue no number past `N` (default: the mask's capacity - 1, or 2^63-1)")
		mode := fs.String("mode", "", "the `MODE`: cached (the default: leased blocks served from memory) or gapless (every number committed before it is returned)")
		fs.Var(&block, "block-size", "a cached sequence leases `N` numbers at once (default 1000)")
		reset := fs.String("reset", "", "the `PERIOD` after which numbering restarts at --start: never (the default), yearly, monthly or daily")
		fs.StringVar(&p.Timezone, "timezone", "", "the IANA time `ZONE` \"today\" is taken in (default UTC)")
		fs.Var(&warn, "warn-at", "warn once this `FRACTION` of the range is used (default 0.9)")
		var back, ahead intFlag
		var within durationFlag
		fs.Var(&back, "periods-back", "accept document dates from `N` periods before the current one (default 1)")
		fs.Var(&ahead, "periods-ahead", "accept document dates up to `N` periods after the current one (default 0)")
		fs.Var(&within, "confirm-within", "make every number two-phase, voided unless confirmed within `DURATION` (e.g. 30s; default off)")
		fs.BoolVar(&p.AllowOverlap, "allow-overlap", false, "create it even if another sequence could issue the same IDs")
		var label labelSpecFlag
		fs.Var(&label, "label", "save label settings for seq labels, a `JSON` object, e.g. {\"format\":\"zpl\",\"size\":\"4x6in\"}")
		pos, cl, err := cf.setup(fs, args, 1, "NAME")
		if err != nil {
			return err
		}
		p.Name, p.Mode, p.Reset = pos[0], allot.Mode(*mode), allot.Reset(*reset)
		p.Start, p.Max, p.BlockSize, p.WarnAt = start.v, maxv.v, block.v, warn.v
		p.PeriodsBack, p.PeriodsAhead, p.ConfirmWithin, p.Label = back.v, ahead.v, within.v, label.v
		st, err := cl.SequenceCreate(ctx, p)
		if err != nil {
			return err
		}
		return printState(stdout, cf.json, st)

	case "get":
		date := fs.String("date", "", "show the period this `YYYY-MM-DD` falls in (default today)")
		pos, cl, err := cf.setup(fs, args, 1, "NAME")
		if err != nil {
			return err
		}
		if err := checkNotEmpty(fs, "date"); err != nil {
			return err
		}
		st, err := cl.SequenceGetAt(ctx, pos[0], *date)
		if err != nil {
			return err
		}
		return printState(stdout, cf.json, st)

	case "list":
		_, cl, err := cf.setup(fs, args, 0, "")
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
		fmt.Fprintln(tw, "NAME\tFORMAT\tMODE\tRESET\tNEXT\tISSUED\tLEASED\tRESERVED\tVOIDED\tREMAINING\tWARNING")
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%v\n", s.Name, s.Format, s.Mode, s.Reset, s.Next, s.Issued,
				s.Leased, s.Reserved, s.Voided, s.Remaining, s.Warning)
		}
		return tw.Flush()

	case "patch":
		var maxv int64Flag
		var warn float64Flag
		fs.Var(&maxv, "max", "the new max: issue no number past `N`")
		fs.Var(&warn, "warn-at", "warn once this `FRACTION` of the range is used, in (0, 1]")
		var back, ahead intFlag
		var within durationFlag
		fs.Var(&back, "periods-back", "accept document dates from `N` periods before the current one")
		fs.Var(&ahead, "periods-ahead", "accept document dates up to `N` periods after the current one")
		fs.Var(&within, "confirm-within", "make numbers two-phase within `DURATION` (0s: off)")
		var label labelSpecFlag
		fs.Var(&label, "label", "replace the saved label settings with a `JSON` object ({} removes them)")
		pos, cl, err := cf.setup(fs, args, 1, "NAME")
		if err != nil {
			return err
		}
		p := allot.SequencePatchParams{Max: maxv.v, WarnAt: warn.v, PeriodsBack: back.v, PeriodsAhead: ahead.v, ConfirmWithin: within.v, Label: label.v}
		if p == (allot.SequencePatchParams{}) {
			return usagef("seq patch needs at least one of --max, --warn-at, --periods-back, --periods-ahead, --confirm-within, --label: nothing to change")
		}
		st, err := cl.SequencePatch(ctx, pos[0], p)
		if err != nil {
			return err
		}
		return printState(stdout, cf.json, st)

	case "next":
		var p allot.NextParams
		fs.Int64Var(&p.Count, "count", 1, fmt.Sprintf("take `N` contiguous IDs, 1..%d", allot.CountMax))
		fs.StringVar(&p.Date, "date", "", "the document's date, `YYYY-MM-DD` (default: today in the sequence's time zone)")
		fs.StringVar(&p.IdempotencyKey, "idempotency-key", "", "a retry with the same `KEY` returns the same IDs")
		fs.StringVar(&p.Reference, "reference", "", "the document `REF` the numbers are for (an invoice, an order), kept in the ledger")
		var within durationFlag
		fs.Var(&within, "confirm-within", "two-phase: the numbers are voided unless confirmed within `DURATION` (e.g. 30s)")
		pos, cl, err := cf.setup(fs, args, 1, "NAME")
		if err != nil {
			return err
		}
		if p.Count < 1 || p.Count > allot.CountMax {
			return usagef("--count must be between 1 and %d, got %d", allot.CountMax, p.Count)
		}
		if err := checkNotEmpty(fs, "date", "idempotency-key", "reference"); err != nil {
			return err
		}
		if within.v != nil {
			if *within.v <= 0 {
				return usagef("--confirm-within must be between 1s and %s, got %s", allot.ConfirmWithinMax, time.Duration(*within.v))
			}
			p.ConfirmWithin = time.Duration(*within.v)
		}
		p.Sequence = pos[0]
		r, err := cl.Next(ctx, p)
		if err != nil {
			return err
		}
		if cf.json {
			return printJSON(stdout, r)
		}
		if _, err := io.WriteString(stdout, strings.Join(r.IDs, "\n")+"\n"); err != nil {
			return err
		}
		// Notes go to stderr, so stdout stays one ID per line.
		nextNotes(stderr, r.Sequence, r)
		return nil

	case "labels":
		return seqLabels(ctx, fs, cf, args, stdout, stderr)

	case "reprint":
		return seqReprint(ctx, fs, cf, args, stdout, stderr)

	case "confirm":
		var first, last int64Flag
		fs.Var(&first, "first", "the first reserved number `N` (as next returned it)")
		fs.Var(&last, "last", "the last reserved number `N`")
		period := fs.String("period", "", "the numbers' `PERIOD` (2026, 2026-11 or 2026-11-22), for a resetting sequence")
		reference := fs.String("reference", "", "the document `REF` the numbers went to")
		pos, cl, err := cf.setup(fs, args, 1, "NAME")
		if err != nil {
			return err
		}
		if first.v == nil || last.v == nil {
			return usagef("seq confirm needs --first and --last: the numbers next returned")
		}
		e, replayed, err := cl.SequenceConfirm(ctx, allot.ConfirmParams{Sequence: pos[0], Period: *period, First: *first.v, Last: *last.v, Reference: *reference})
		if err != nil {
			return err
		}
		if cf.json {
			return printJSON(stdout, e)
		}
		again := ""
		if replayed {
			again = " (already confirmed)"
		}
		fmt.Fprintf(stdout, "confirmed %s in %s%s\n", allot.Span{First: e.First, Last: e.Last}, periodText(e.Period), again)
		return nil

	case "close-period", "reopen-period":
		pos, cl, err := cf.setup(fs, args, 2, "NAME and PERIOD")
		if err != nil {
			return err
		}
		st, err := cl.SequencePeriodClose(ctx, pos[0], pos[1], cmd == "reopen-period")
		if err != nil {
			return err
		}
		return printState(stdout, cf.json, st)

	case "void":
		var p allot.VoidParams
		var number int64Flag
		fs.Var(&number, "number", "void the number `N`")
		fs.StringVar(&p.ID, "id", "", "void the number of `ID` (instead of --number)")
		fs.StringVar(&p.Date, "date", "", "with --number in a resetting sequence: a date `YYYY-MM-DD` in the number's period")
		fs.StringVar(&p.Reason, "reason", "", "the `REASON` the number is voided, kept in the ledger (required)")
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
		fmt.Fprintf(stdout, "voided %d in %s (%s)\n", e.First, periodText(e.Period), shown(e.Reason))
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
		if r.Detail != "" && r.Detail != string(r.Status) {
			fmt.Fprintf(stdout, "  %s\n", shown(r.Detail))
		}
		if r.Reference != "" {
			fmt.Fprintf(stdout, "  reference: %s\n", shown(r.Reference))
		}
		if r.ConfirmBy != nil {
			fmt.Fprintf(stdout, "  confirm by: %s\n", r.ConfirmBy.Format(time.RFC3339))
		}
		if r.IssuedAs != "" {
			fmt.Fprintf(stdout, "  issued as: %s\n", r.IssuedAs)
		}
		return nil

	case "ledger":
		after := fs.String("after", "", "start after `CURSOR`, from the previous page's \"more:\" line")
		limit := fs.Int("limit", 100, fmt.Sprintf("show `N` entries per page, 1..%d", limitMax))
		outFormat := fs.String("format", "table", "print as `FORMAT`: table (a page) or csv (the whole ledger)")
		pos, cl, err := cf.setup(fs, args, 1, "NAME")
		if err != nil {
			return err
		}
		if err := checkLimit(*limit); err != nil {
			return err
		}
		switch {
		case *outFormat == "csv" && cf.json:
			return usagef("give --format csv or --json, not both")
		case *outFormat == "csv":
			return exportLedger(ctx, cl, stdout, pos[0], *after)
		case *outFormat != "table":
			return usagef("--format %q: use table or csv", *outFormat)
		}
		page, err := cl.SequenceLedger(ctx, pos[0], *after, *limit)
		if err != nil {
			return err
		}
		if cf.json {
			return printJSON(stdout, page)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tKIND\tPERIOD\tFIRST\tLAST\tCOUNT\tREFERENCE\tOWNER\tREASON\tAT")
		for _, e := range page.Entries {
			kind := string(e.Kind)
			if e.Pending {
				kind += "*"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", e.ID, kind, e.Period, e.First, e.Last, e.Count, shown(e.Reference), shown(e.Owner), shown(e.Reason),
				e.CreatedAt.Format("2006-01-02 15:04:05Z07:00"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if page.Next != "" {
			fmt.Fprintf(stdout, "more: allot seq ledger %s --after %s\n", pos[0], page.Next)
		}
		if slices.ContainsFunc(page.Entries, func(e allot.LedgerEntry) bool { return e.Pending }) {
			fmt.Fprintln(stdout, "* pending: not known yet what became of these numbers (a lease not settled, a reservation not confirmed, an answer not confirmed sent)")
		}
		return nil
	}
	return fmt.Errorf("seq %s is not implemented", cmd) // not reached: seqCommands and the switch list the same commands
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
		{"issued", strconv.FormatInt(s.Issued, 10)}, {"leased", strconv.FormatInt(s.Leased, 10)},
		{"reserved", strconv.FormatInt(s.Reserved, 10)}, {"voided", strconv.FormatInt(s.Voided, 10)},
		{"remaining", strconv.FormatInt(s.Remaining, 10)}, {"warning", strconv.FormatBool(s.Warning)},
	}
	if s.Reset != allot.ResetNever {
		rows = append(rows, [2]string{"dates accepted", fmt.Sprintf("%d period(s) back, %d ahead", s.PeriodsBack, s.PeriodsAhead)})
		closed := "open"
		if s.Closed != nil {
			closed = "closed at " + s.Closed.Format(time.RFC3339)
		}
		rows = append(rows, [2]string{"period state", closed})
	}
	if s.ConfirmWithin != 0 {
		rows = append(rows, [2]string{"confirm within", time.Duration(s.ConfirmWithin).String()})
	}
	if s.AllowOverlap {
		rows = append(rows, [2]string{"overlap", "allowed"})
	}
	if s.Label != nil {
		rows = append(rows, [2]string{"label", allot.LabelSetting(s.Label)})
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// exportLedger prints the whole ledger of a sequence (after the cursor
// after) as CSV, page by page.
func exportLedger(ctx context.Context, cl *client.Client, w io.Writer, name, after string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"id", "kind", "period", "first", "last", "count", "reference", "date", "confirm_by", "pending",
		"owner", "reason", "created_at"}); err != nil {
		return err
	}
	for {
		page, err := cl.SequenceLedger(ctx, name, after, limitMax)
		if err != nil {
			return err
		}
		for _, e := range page.Entries {
			confirmBy := ""
			if e.ConfirmBy != nil {
				confirmBy = e.ConfirmBy.Format(time.RFC3339Nano)
			}
			if err := cw.Write([]string{strconv.FormatInt(e.ID, 10), string(e.Kind), e.Period, strconv.FormatInt(e.First, 10),
				strconv.FormatInt(e.Last, 10), strconv.FormatInt(e.Count, 10), e.Reference, e.Date, confirmBy, strconv.FormatBool(e.Pending),
				e.Owner, e.Reason, e.CreatedAt.Format(time.RFC3339Nano)}); err != nil {
				return err
			}
		}
		if page.Next == "" {
			cw.Flush()
			return cw.Error()
		}
		after = page.Next
	}
}

// intFlag is an optional int flag: nil unless given.
type intFlag struct{ v *int }

func (f *intFlag) String() string {
	if f.v == nil {
		return ""
	}
	return strconv.Itoa(*f.v)
}

func (f *intFlag) Set(s string) error {
	v, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	f.v = &v
	return nil
}
