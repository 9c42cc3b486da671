// Command allot hands out scarce things exactly once: sequence numbers and
// units of finite pools. One binary runs the server, migrates the
// database, talks to a server as a client, and benchmarks.
//
// Run `allot help` for the commands.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/allot/allot/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `allot hands out scarce things exactly once (sequence numbers, and units of finite
pools), fast, and never loses track of them.

Usage:
  allot serve   [flags]          run the HTTP server (SQLite at ./allot.db by default)
  allot migrate [flags]          apply database migrations and exit
  allot seq     <command> ...    manage and use sequences on a running server
  allot pool    <command> ...    manage pools of inventory on a running server
  allot claim   <command> ...    claim, confirm, release, extend and cancel units of a pool
  allot audit   [--store URL]    check every invariant against the database (read-only)
  allot backup  [--store URL] FILE
                                 write a consistent snapshot of a SQLite store
  allot restore [--store URL] [--from FILE]
                                 make a restored backup safe to serve again
  allot bench   [claims|flash-sale] [flags]
                                 load-test a server against baselines
  allot version                  print the version

Run "allot help <command>" or "allot <command> --help" for the flags of a command.

Environment:
  ALLOT_STORE    store URL: sqlite:///path/file.db (default sqlite://./allot.db) or postgres://…
  ALLOT_LISTEN   address serve listens on (default 127.0.0.1:7070)
  ALLOT_SERVER   server URL the client commands talk to (default http://127.0.0.1:7070)
  ALLOT_KEY      API key the client commands send
  ALLOT_API_KEYS API keys serve accepts, "role:token,role:token" (roles: admin, client, metrics)
`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const versionHelp = `allot version

Prints the version of this allot binary.`

// run is the whole program, testable without a process. Help asked for
// goes to stdout with exit code 0; errors go to stderr, once, with exit
// code 2 for the caller's mistakes (usage errors) and 1 for the rest.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	err := dispatch(ctx, args, getenv, stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	}
	code := 1
	var ue *usageError
	if errors.As(err, &ue) {
		code = 2
	}
	var je *jsonError
	if errors.As(err, &je) {
		printJSONError(stderr, err, code)
		return code
	}
	fmt.Fprintln(stderr, "allot: "+message(err))
	if ue != nil && ue.help != "" && !ue.shown {
		fmt.Fprintf(stderr, "Run %q for usage.\n", ue.help+" --help")
	}
	return code
}

// dispatch runs the command args name.
func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		err = runMigrate(ctx, args[1:], getenv, stdout, stderr)
	case "seq", "sequence":
		err = runSeq(ctx, args[1:], getenv, stdout, stderr)
	case "pool":
		err = runPool(ctx, args[1:], getenv, stdout, stderr)
	case "claim":
		err = runClaim(ctx, args[1:], getenv, stdout, stderr)
	case "audit":
		err = runAudit(ctx, args[1:], getenv, stdout, stderr)
	case "backup":
		err = runBackup(ctx, args[1:], getenv, stdout, stderr)
	case "restore":
		err = runRestore(ctx, args[1:], getenv, stdout, stderr)
	case "bench":
		err = runBench(ctx, args[1:], getenv, stdout, stderr)
	case "version", "--version":
		err = runVersion(args[1:], stdout)
	case "help", "-h", "-help", "--help":
		return runHelp(ctx, args[1:], getenv, stdout, stderr)
	default:
		return &usageError{msg: fmt.Sprintf("unknown command %q", args[0]), help: "allot"}
	}
	name := args[0]
	switch name {
	case "sequence":
		name = "seq"
	case "--version":
		name = "version"
	}
	return withHelp(err, "allot "+name)
}

// runHelp is "allot help [command [subcommand]]": the help of a command,
// as "allot command [subcommand] --help" prints it.
func runHelp(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	switch args[0] {
	case "serve", "migrate", "seq", "sequence", "pool", "claim", "audit", "backup", "restore", "bench", "version":
	default:
		return &usageError{msg: fmt.Sprintf("no help for %q: it is not a command", args[0]), help: "allot"}
	}
	return dispatch(ctx, append(args[:len(args):len(args)], "--help"), getenv, stdout, stderr)
}

// runVersion is "allot version".
func runVersion(args []string, stdout io.Writer) error {
	fs := newFlagSet("allot version", versionHelp, stdout)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("version takes no arguments, got %s", quoteArgs(pos))
	}
	fmt.Fprintln(stdout, "allot", version)
	return nil
}

// usageError is an error of the caller's (exit code 2). Its message is
// a sentence without the "allot: " prefix; help names the command whose
// help explains what to do, e.g. "allot seq next".
type usageError struct {
	msg   string
	help  string
	shown bool // the help was printed already: don't point at it
}

func (e *usageError) Error() string { return e.msg }

// usagef returns a usage error: exit code 2.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// withHelp points a usage error that names no command at cmd (e.g.
// "allot seq next"), and starts its message with the command's name
// ("seq next: …") unless the message already names it.
func withHelp(err error, cmd string) error {
	var ue *usageError
	if !errors.As(err, &ue) || ue.help != "" {
		return err
	}
	ue.help = cmd
	if short := strings.TrimPrefix(cmd, "allot"); short != "" {
		short = strings.TrimPrefix(short, " ")
		if !strings.HasPrefix(ue.msg, short+" ") && !strings.HasPrefix(ue.msg, short+":") {
			ue.msg = short + ": " + ue.msg
		}
	}
	return err
}

// jsonError marks the error of a command run with --json: run prints it
// as one JSON object.
type jsonError struct{ err error }

func (e *jsonError) Error() string { return e.err.Error() }
func (e *jsonError) Unwrap() error { return e.err }

// message is err's text without "allot: " prefixes (the client's errors
// carry one): run adds exactly one.
func message(err error) string {
	msg := err.Error()
	for strings.HasPrefix(msg, "allot: ") {
		msg = strings.TrimPrefix(msg, "allot: ")
	}
	return msg
}

// printJSONError prints err as one JSON object on a line: the server's
// problem document as received for an error the server reported, else
// {"error": "<message>", "code": "usage"|"error"}.
func printJSONError(w io.Writer, err error, code int) {
	var p *client.Problem
	if errors.As(err, &p) {
		var buf bytes.Buffer
		if json.Compact(&buf, p.Document()) == nil {
			buf.WriteByte('\n')
			_, _ = w.Write(buf.Bytes())
			return
		}
	}
	kind := "error"
	if code == 2 {
		kind = "usage"
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}{message(err), kind})
}

// wantsJSON reports whether args, the arguments of a command whose flags
// may not have parsed, ask for --json.
func wantsJSON(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "json" {
			continue
		}
		if !hasValue {
			return true
		}
		if v, err := strconv.ParseBool(value); err == nil {
			return v
		}
	}
	return false
}

// newFlagSet returns a flag set for the command name (e.g. "allot seq
// next") whose help is help: its usage line(s), then a blank line and a
// description. --help prints the help and the flags to stdout; parse
// errors are returned, not printed (see parseFlags).
func newFlagSet(name, help string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: %s\n", strings.TrimRight(help, "\n"))
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(stdout, "\nFlags:\n")
			printFlags(stdout, fs)
		}
	}
	return fs
}

// helpWidth is the width flag help is wrapped to.
const helpWidth = 80

// printFlags prints fs's flags as the synopses spell them, "--name VALUE",
// each with its help and its default.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	type row struct{ left, help string }
	var rows []row
	col := 0
	fs.VisitAll(func(f *flag.Flag) {
		value, help := flag.UnquoteUsage(f)
		left := "--" + f.Name
		if value != "" {
			left += " " + value
		}
		if d := shownDefault(f); d != "" {
			help += " (default " + d + ")"
		}
		rows = append(rows, row{left, help})
		col = max(col, utf8.RuneCountInString(left))
	})
	col = min(col, 24)
	for _, r := range rows {
		lines := wrapText(r.help, helpWidth-col-4)
		pad := strings.Repeat(" ", col+4)
		if n := utf8.RuneCountInString(r.left); n <= col {
			fmt.Fprintf(w, "  %s%s%s\n", r.left, strings.Repeat(" ", col-n+2), lines[0])
			lines = lines[1:]
		} else {
			fmt.Fprintf(w, "  %s\n", r.left)
		}
		for _, l := range lines {
			fmt.Fprintf(w, "%s%s\n", pad, l)
		}
	}
}

// shownDefault is the default help shows for f: none for empty, zero and
// false defaults, none for --key (it may hold a token from the
// environment), and URLs without their passwords.
func shownDefault(f *flag.Flag) string {
	switch f.DefValue {
	case "", "0", "0s", "false":
		return ""
	}
	if f.Name == "key" {
		return ""
	}
	if strings.Contains(f.DefValue, "://") {
		return redactURL(f.DefValue)
	}
	return f.DefValue
}

// wrapText breaks s into lines of at most width characters where it can.
func wrapText(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		switch {
		case line == "":
			line = word
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > width:
			lines = append(lines, line)
			line = word
		default:
			line += " " + word
		}
	}
	return append(lines, line)
}

// parseFlags parses flags that may come before, between or after
// positional arguments, and returns the positional ones. With -h or
// --help it prints the help to stdout and returns flag.ErrHelp; a bad
// flag is a usage error pointing at the command's help.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	help := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = help }()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				help()
				return nil, err
			}
			return nil, &usageError{msg: strings.TrimPrefix(fs.Name(), "allot ") + ": " + flagErrorText(err), help: fs.Name()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// flagErrorText rewords the flag package's errors with two-dash flags.
func flagErrorText(err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return "unknown flag --" + name
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return "--" + name + " needs a value"
	}
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		// invalid value "x" for flag -count: parse error
		if i := strings.Index(rest, " for flag -"); i >= 0 {
			value := rest[:i]
			name, reason, _ := strings.Cut(rest[i+len(" for flag -"):], ": ")
			if strings.Contains(reason, value) {
				return "--" + name + ": " + reason
			}
			return "--" + name + ": invalid value " + value + ": " + reason
		}
	}
	if rest, ok := strings.CutPrefix(msg, "invalid boolean value "); ok {
		if i := strings.Index(rest, " for -"); i >= 0 {
			name, _, _ := strings.Cut(rest[i+len(" for -"):], ": ")
			return "--" + name + ": " + rest[:i] + " is not true or false"
		}
	}
	return msg
}

// flagGiven reports whether the flag name was set on the command line.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// envOr returns the environment variable key, or def when it is empty.
func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
