// Command allot hands out scarce things exactly once: sequence numbers and
// units of finite pools. One binary runs the server, migrates the
// database, talks to a server as a client, and benchmarks.
//
// Run `allot help` for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
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
  allot claim   <command> ...    claim, confirm, release and extend units of a pool
  allot audit   [--store URL]    check every invariant against the database
  allot bench   [claims|flash-sale] [flags]
                                 load-test a server against baselines
  allot version                  print the version

Run "allot <command> --help" for the flags of a command.

Environment:
  ALLOT_STORE    store URL: sqlite:///path/file.db (default sqlite://./allot.db) or postgres://…
  ALLOT_LISTEN   address serve listens on (default 127.0.0.1:7070)
  ALLOT_SERVER   server URL the client commands talk to (default http://127.0.0.1:7070)
  ALLOT_KEY      API key the client commands send
  ALLOT_API_KEYS API keys serve accepts, "role:token,role:token" (roles: admin, client)
`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// errUsage marks errors that are the caller's: exit code 2.
var errUsage = errors.New("usage")

// run is the whole program, testable without a process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
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
	case "bench":
		err = runBench(ctx, args[1:], getenv, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "allot", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "allot: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "allot:", strings.TrimPrefix(err.Error(), "allot: "))
		return 2
	default:
		// Errors from the client package already say "allot: ".
		fmt.Fprintln(stderr, "allot:", strings.TrimPrefix(err.Error(), "allot: "))
		return 1
	}
}

// usagef returns an error that exits with code 2.
func usagef(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errUsage)
}

// newFlagSet returns a flag set that prints its usage to stderr and returns
// errors instead of exiting.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses flags that may come before, between or after
// positional arguments, and returns the positional ones.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%v: %w", err, errUsage)
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

// envOr returns the environment variable key, or def when it is empty.
func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
