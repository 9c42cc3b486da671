package main

// Tests of the command line itself (help, flags, error messages, --json
// errors, exit codes), driving run() in process against an in-process
// server.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/testkit"
	"github.com/allot/allot/internal/testserver"
	"github.com/allot/allot/sqlite"
)

// result is what one run of the CLI printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the CLI in process with env as its whole environment.
func runCLI(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code := run(context.Background(), args, getenv, &out, &errb)
	return result{code, out.String(), errb.String()}
}

// want fails the test unless r exited with code.
func (r result) want(t *testing.T, code int, args ...string) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("allot %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	return r
}

// cliFor returns a function that runs the CLI against the server at url
// and checks its exit code.
func cliFor(t *testing.T, url string) func(code int, args ...string) result {
	return func(code int, args ...string) result {
		t.Helper()
		return runCLI(t, map[string]string{"ALLOT_SERVER": url}, args...).want(t, code, args...)
	}
}

// newAPI starts the real HTTP API over a SQLite store in process, without
// API keys, and returns its URL.
func newAPI(t *testing.T) string {
	t.Helper()
	return testserver.Start(t, testserver.Options{}).URL
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// helpCommands are the commands with a help of their own.
func helpCommands() [][]string {
	cmds := [][]string{{"serve"}, {"migrate"}, {"audit"}, {"bench"}, {"bench", "claims"}, {"bench", "flash-sale"}, {"version"}}
	for group, subs := range map[string]map[string]subcommand{"seq": seqCommands, "pool": poolCommands, "claim": claimCommands} {
		for sub := range subs {
			cmds = append(cmds, []string{group, sub})
		}
	}
	slices.SortFunc(cmds, func(a, b []string) int { return strings.Compare(strings.Join(a, " "), strings.Join(b, " ")) })
	return cmds
}

// TestSeqCommandHelp: every seq command has a usage line of its own, a
// description and only its own flags; "allot seq --help" keeps the
// group's help.
func TestSeqCommandHelp(t *testing.T) {
	ownFlags := map[string][]string{
		"create": {"--format TEMPLATE", "--start N", "--max N", "--mode MODE", "--block-size N", "--reset PERIOD", "--timezone ZONE", "--warn-at FRACTION",
			"--periods-back N", "--periods-ahead N", "--confirm-within DURATION", "--allow-overlap", "--label JSON"},
		"get":           {"--date YYYY-MM-DD"},
		"list":          {},
		"patch":         {"--max N", "--warn-at FRACTION", "--periods-back N", "--periods-ahead N", "--confirm-within DURATION", "--label JSON"},
		"next":          {"--count N", "--date YYYY-MM-DD", "--idempotency-key KEY", "--reference REF", "--confirm-within DURATION"},
		"confirm":       {"--first N", "--last N", "--period PERIOD", "--reference REF"},
		"void":          {"--number N", "--id ID", "--date YYYY-MM-DD", "--reason REASON", "--force"},
		"parse":         {},
		"ledger":        {"--after CURSOR", "--limit N", "--format FORMAT"},
		"close-period":  {},
		"reopen-period": {},
		"labels": {"--count N", "--format FORMAT", "--barcode BARCODE", "--size SIZE", "--dpi DPI", "--layout LAYOUT", "--no-text", "--title TITLE",
			"--date YYYY-MM-DD", "--reference REF", "--confirm-within DURATION", "--idempotency-key KEY", "--output FILE", "--o FILE"},
		"reprint": {"--first ID", "--last ID", "--ids ID,ID", "--idempotency-key KEY", "--format FORMAT", "--barcode BARCODE", "--size SIZE",
			"--dpi DPI", "--layout LAYOUT", "--no-text", "--title TITLE", "--output FILE", "--o FILE"},
	}
	if len(ownFlags) != len(seqCommands) {
		t.Fatalf("the test knows %d seq commands, seqCommands has %d", len(ownFlags), len(seqCommands))
	}
	all := map[string]bool{}
	for _, fl := range ownFlags {
		for _, f := range fl {
			all[strings.Fields(f)[0]] = true
		}
	}
	for cmd, flags := range ownFlags {
		r := runCLI(t, nil, "seq", cmd, "--help").want(t, 0, "seq", cmd, "--help")
		out := r.stdout
		if r.stderr != "" {
			t.Errorf("seq %s --help wrote to stderr: %s", cmd, r.stderr)
		}
		if !strings.HasPrefix(out, "Usage: allot seq "+cmd+" ") && out != "Usage: allot seq "+cmd+"\n" && !strings.HasPrefix(out, "Usage: allot seq "+cmd+"\n") {
			t.Errorf("seq %s --help does not start with its usage line:\n%s", cmd, out)
		}
		if strings.Contains(out, "…") || strings.Contains(out, "Commands:") {
			t.Errorf("seq %s --help has a placeholder or the group's help:\n%s", cmd, out)
		}
		usageLine, rest, _ := strings.Cut(out, "\n\n")
		desc, _, _ := strings.Cut(rest, "\n\nFlags:")
		if len(strings.Fields(desc)) < 5 {
			t.Errorf("seq %s --help has no description after %q:\n%s", cmd, usageLine, out)
		}
		for _, f := range flags {
			if !strings.Contains(out, "\n  "+f) {
				t.Errorf("seq %s --help lacks its flag %q:\n%s", cmd, f, out)
			}
		}
		for f := range all {
			if !slices.ContainsFunc(flags, func(own string) bool { return strings.Fields(own)[0] == f }) && strings.Contains(out, "\n  "+f+" ") {
				t.Errorf("seq %s --help shows %s, a flag of another command:\n%s", cmd, f, out)
			}
		}
		for _, common := range []string{"--server URL", "--key TOKEN", "--json"} {
			if !strings.Contains(out, "\n  "+common) {
				t.Errorf("seq %s --help lacks %q:\n%s", cmd, common, out)
			}
		}
	}
	for _, args := range [][]string{{"seq", "--help"}, {"seq", "-h"}, {"seq", "help"}} {
		r := runCLI(t, nil, args...).want(t, 0, args...)
		if !strings.Contains(r.stdout, "Commands:") || !strings.Contains(r.stdout, "ledger NAME") || r.stderr != "" {
			t.Errorf("allot %s: want the group's help on stdout, got\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.stdout, r.stderr)
		}
	}
}

// flagLine is a line of the flags of a help: "  --name VALUE  help".
var flagLine = regexp.MustCompile(`^  (-+)([a-z0-9-]+)(?: ([^ ]+))?(?:  |$)`)

// TestHelpNamesFlagValues: every flag of every command shows with two
// dashes, and with a name for its value instead of "value".
func TestHelpNamesFlagValues(t *testing.T) {
	seen := map[string]bool{}
	for _, args := range helpCommands() {
		args = append(args, "--help")
		r := runCLI(t, nil, args...).want(t, 0, args...)
		_, flags, ok := strings.Cut(r.stdout, "\nFlags:\n")
		if !ok {
			if args[0] != "version" {
				t.Errorf("allot %s has no flags section:\n%s", strings.Join(args, " "), r.stdout)
			}
			continue
		}
		n := 0
		for _, line := range strings.Split(flags, "\n") {
			m := flagLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			n++
			if m[1] != "--" {
				t.Errorf("allot %s: flag %q shown without two dashes", strings.Join(args, " "), line)
			}
			switch v := m[3]; {
			case v == "":
			case v != strings.ToUpper(v), slices.Contains([]string{"VALUE", "STRING", "INT", "INT64", "FLOAT", "FLOAT64", "DURATION_"}, v):
				t.Errorf("allot %s: flag value shown as %q: %q", strings.Join(args, " "), v, line)
			}
			if m[3] != "" {
				seen["--"+m[2]+" "+m[3]] = true
			}
		}
		if n == 0 {
			t.Errorf("allot %s: no flag lines in\n%s", strings.Join(args, " "), flags)
		}
	}
	for _, want := range []string{"--start N", "--format TEMPLATE", "--date YYYY-MM-DD", "--ttl DURATION", "--server URL", "--key TOKEN", "--count N", "--store URL", "--listen ADDRESS", "--capacity N", "--customer CUSTOMER"} {
		if !seen[want] {
			t.Errorf("no help shows %q", want)
		}
	}
}

// TestHelpHidesKeyFromEnvironment: --key defaults to ALLOT_KEY, a secret
// help must not print.
func TestHelpHidesKeyFromEnvironment(t *testing.T) {
	env := map[string]string{"ALLOT_KEY": "s3cret-token-0123456789", "ALLOT_STORE": "postgres://allot:hunter2@db:5432/allot"}
	for _, args := range [][]string{{"seq", "next", "--help"}, {"audit", "--help"}, {"bench", "--help"}, {"serve", "--help"}} {
		r := runCLI(t, env, args...).want(t, 0, args...)
		if out := r.stdout + r.stderr; strings.Contains(out, "s3cret") || strings.Contains(out, "hunter2") {
			t.Errorf("allot %s prints a secret from the environment:\n%s%s", strings.Join(args, " "), r.stdout, r.stderr)
		}
	}
}

// TestBadFlag: a bad flag prints its error once and where to find help,
// with exit code 2; --help prints the help to stdout with exit code 0.
func TestBadFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"seq", "next", "lp", "--cout", "3"}, "allot: seq next: unknown flag --cout\nRun \"allot seq next --help\" for usage.\n"},
		{[]string{"seq", "next", "lp", "--count"}, "allot: seq next: --count needs a value\nRun \"allot seq next --help\" for usage.\n"},
		{[]string{"seq", "create", "lp", "--start", "x"}, "allot: seq create: --start: \"x\" is not a whole number\nRun \"allot seq create --help\" for usage.\n"},
		{[]string{"pool", "create", "p", "--capcity", "3"}, "allot: pool create: unknown flag --capcity\nRun \"allot pool create --help\" for usage.\n"},
		{[]string{"claim", "extend", "clm_1", "--ttl", "soon"}, "allot: claim extend: --ttl: \"soon\" is not a duration: use e.g. 90s, 10m or 1h30m\nRun \"allot claim extend --help\" for usage.\n"},
		{[]string{"serve", "--lissen", ":1"}, "allot: serve: unknown flag --lissen\nRun \"allot serve --help\" for usage.\n"},
		{[]string{"bench", "claims", "--clients", "many"}, "allot: bench claims: --clients: invalid value \"many\": parse error\nRun \"allot bench claims --help\" for usage.\n"},
	} {
		r := runCLI(t, nil, tc.args...).want(t, 2, tc.args...)
		if r.stderr != tc.want || r.stdout != "" {
			t.Errorf("allot %s:\nstderr: %q\nwant:   %q\nstdout: %q", strings.Join(tc.args, " "), r.stderr, tc.want, r.stdout)
		}
	}
	for _, args := range helpCommands() {
		for _, h := range []string{"-h", "--help"} {
			args := append(slices.Clone(args), h)
			r := runCLI(t, nil, args...).want(t, 0, args...)
			if !strings.HasPrefix(r.stdout, "Usage: allot "+args[0]) || r.stderr != "" {
				t.Errorf("allot %s: want the help on stdout only\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.stdout, r.stderr)
			}
		}
	}
}

// TestErrorMessages: one "allot:" prefix, no sentinel text, no doubled
// prefixes; usage errors point at the command's help.
func TestErrorMessages(t *testing.T) {
	url := newAPI(t)
	cli := cliFor(t, url)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"seq", "next"}, "allot: seq next needs NAME\nRun \"allot seq next --help\" for usage.\n"},
		{[]string{"seq", "parse", "lp"}, "allot: seq parse needs NAME and ID, got only \"lp\"\nRun \"allot seq parse --help\" for usage.\n"},
		{[]string{"seq", "list", "x"}, "allot: seq list takes no arguments, got \"x\"\nRun \"allot seq list --help\" for usage.\n"},
		{[]string{"seq", "frob"}, "allot: seq: unknown command \"frob\"\nRun \"allot seq --help\" for usage.\n"},
		{[]string{"pool", "create", "p"}, "allot: pool create needs --capacity: how many units the pool has\nRun \"allot pool create --help\" for usage.\n"},
		{[]string{"claim", "create", "p"}, "allot: claim create needs --customer: who the units are for\nRun \"allot claim create --help\" for usage.\n"},
		{[]string{"frobnicate"}, "allot: unknown command \"frobnicate\"\nRun \"allot --help\" for usage.\n"},
		{[]string{"serve", "--log-level", "loud"}, "allot: serve: --log-level \"loud\": use debug, info, warn or error\nRun \"allot serve --help\" for usage.\n"},
		{[]string{"migrate", "--store", "mysql://x"}, "allot: migrate: --store \"mysql://x\": use sqlite:///path/to/file.db or postgres://user@host:5432/db\nRun \"allot migrate --help\" for usage.\n"},
	} {
		r := cli(2, tc.args...)
		if r.stderr != tc.want {
			t.Errorf("allot %s:\nstderr: %q\nwant:   %q", strings.Join(tc.args, " "), r.stderr, tc.want)
		}
	}

	// A group without a command prints its help, then the error once.
	if r := cli(2, "seq"); !strings.HasPrefix(r.stderr, seqUsage) || !strings.HasSuffix(r.stderr, "\nallot: seq needs a command\n") || strings.Contains(r.stderr, "for usage.") {
		t.Errorf("allot seq: stderr %q", r.stderr)
	}

	// Errors of the server: printed once, with one "allot:".
	cli(0, "seq", "create", "lp", "--format", "LP{n:AA9}", "--start", "0")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"seq", "get", "nope"}, "allot: 404 not_found: "},
		{[]string{"seq", "create", "lp"}, "allot: 409 already_exists: "},
		{[]string{"seq", "create", "bad", "--format", "X{q}"}, "allot: 400 invalid_request: "},
	} {
		r := cli(1, tc.args...)
		if !strings.HasPrefix(r.stderr, tc.want) || strings.Count(r.stderr, "allot:") != 1 || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("allot %s: stderr %q, want one line starting %q", strings.Join(tc.args, " "), r.stderr, tc.want)
		}
	}
	for _, args := range [][]string{{"seq", "next"}, {"seq", "get", "nope"}, {"seq", "next", "lp", "--cout", "1"}} {
		r := runCLI(t, map[string]string{"ALLOT_SERVER": url}, args...)
		if strings.Contains(r.stderr, ": usage") || strings.Contains(r.stderr, "allot: allot") || strings.Count(r.stderr, "allot:") != 1 {
			t.Errorf("allot %s: stderr %q", strings.Join(args, " "), r.stderr)
		}
	}

	// A migration that fails says what the store said, once.
	db := filepath.Join(t.TempDir(), "edited.db")
	runCLI(t, nil, "migrate", "--store", "sqlite://"+db).want(t, 0)
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().Exec(`UPDATE allot_schema_migrations SET checksum = 'edited' WHERE version = 1`); err != nil {
		t.Fatal(err)
	}
	st.Close()
	r := runCLI(t, nil, "migrate", "--store", "sqlite://"+db).want(t, 1)
	if !strings.HasPrefix(r.stderr, "allot: sqlite: migration 001_") || strings.Contains(r.stderr, "migrate: sqlite") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("migrate over an edited migration: stderr %q", r.stderr)
	}
}

// TestRefuseZeroAndOutOfRange: explicit values the server would refuse
// are refused (exit 2), not turned into defaults.
func TestRefuseZeroAndOutOfRange(t *testing.T) {
	url := newAPI(t)
	cli := cliFor(t, url)
	cli(0, "seq", "create", "lp", "--start", "1")
	cli(0, "pool", "create", "p", "--capacity", "5")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"seq", "next", "lp", "--count", "0"}, "--count must be between 1 and 100000, got 0"},
		{[]string{"seq", "next", "lp", "--count", "-3"}, "--count must be between 1 and 100000, got -3"},
		{[]string{"seq", "next", "lp", "--count", "100001"}, "--count must be between 1 and 100000, got 100001"},
		{[]string{"seq", "next", "lp", "--date", ""}, "--date is empty"},
		{[]string{"seq", "next", "lp", "--idempotency-key", ""}, "--idempotency-key is empty"},
		{[]string{"seq", "ledger", "lp", "--limit", "0"}, "--limit must be between 1 and 1000, got 0"},
		{[]string{"seq", "ledger", "lp", "--limit", "1001"}, "--limit must be between 1 and 1000, got 1001"},
		{[]string{"seq", "patch", "lp"}, "seq patch needs at least one of --max, --warn-at"},
		{[]string{"claim", "list", "p", "--limit", "0"}, "--limit must be between 1 and 1000, got 0"},
		{[]string{"claim", "create", "p", "--customer", "c", "--quantity", "0"}, "--quantity must be at least 1, got 0"},
		{[]string{"claim", "create", "p", "--customer", "c", "--idempotency-key", ""}, "--idempotency-key is empty"},
		{[]string{"pool", "create", "q", "--capacity", "1", "--state", ""}, "--state is empty"},
		{[]string{"pool", "patch", "p", "--capacity", "6", "--state", ""}, "--state is empty"},
	} {
		r := cli(2, tc.args...)
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("allot %s: stderr %q, want it to say %q", strings.Join(tc.args, " "), r.stderr, tc.want)
		}
	}
	// Nothing was taken or claimed by the refused commands.
	var st allot.SequenceState
	if err := json.Unmarshal([]byte(cli(0, "seq", "get", "lp", "--json").stdout), &st); err != nil || st.Issued != 0 {
		t.Fatalf("after refused next: %+v %v", st, err)
	}
	if out := cli(0, "seq", "next", "lp", "--count", "2").stdout; out != "1\n2\n" {
		t.Fatalf("next --count 2: %q", out)
	}
	cli(0, "seq", "ledger", "lp", "--limit", "1")
	cli(0, "claim", "list", "p", "--limit", "1000")
}

// TestHelpTopic: "allot help CMD" is CMD's help; "allot version --help"
// is the version's usage.
func TestHelpTopic(t *testing.T) {
	for _, args := range [][]string{{"seq"}, {"seq", "next"}, {"pool"}, {"claim", "create"}, {"serve"}, {"bench", "claims"}, {"audit"}, {"backup"}, {"restore"}, {"version"}} {
		help := runCLI(t, nil, append([]string{"help"}, args...)...).want(t, 0, "help")
		direct := runCLI(t, nil, append(slices.Clone(args), "--help")...).want(t, 0, args...)
		if help.stdout != direct.stdout || help.stdout == usage || help.stderr != "" {
			t.Errorf("allot help %s differs from allot %[1]s --help:\n%s\n---\n%s", strings.Join(args, " "), help.stdout, direct.stdout)
		}
	}
	if r := runCLI(t, nil, "seq", "help", "next"); r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: allot seq next NAME") {
		t.Errorf("allot seq help next: %d %s", r.code, r.stdout)
	}
	if r := runCLI(t, nil, "help").want(t, 0); r.stdout != usage {
		t.Errorf("allot help: %s", r.stdout)
	}
	if r := runCLI(t, nil, "help", "frob").want(t, 2); !strings.Contains(r.stderr, `"frob"`) {
		t.Errorf("allot help frob: %s", r.stderr)
	}
	r := runCLI(t, nil, "version", "--help").want(t, 0)
	if !strings.HasPrefix(r.stdout, "Usage: allot version\n") || strings.Contains(r.stdout, "allot "+version+"\n") {
		t.Errorf("allot version --help: %q", r.stdout)
	}
	if r := runCLI(t, nil, "version").want(t, 0); r.stdout != "allot "+version+"\n" {
		t.Errorf("allot version: %q", r.stdout)
	}
	runCLI(t, nil, "version", "extra").want(t, 2)
}

// TestJSONErrors: with --json an error is one JSON object on stderr: the
// server's problem document as received, or {"error", "code"} for a local
// error; the exit codes stay 1 and 2.
func TestJSONErrors(t *testing.T) {
	url := newAPI(t)
	cli := cliFor(t, url)
	cli(0, "seq", "create", "one", "--start", "1", "--max", "1", "--mode", "gapless")
	cli(0, "seq", "next", "one")

	// The problem document as the server sends it, request_id aside.
	resp, err := http.Post(url+"/v1/sequences/one/next", "application/json", strings.NewReader(`{"count":1}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var direct map[string]any
	if err := json.Unmarshal(raw, &direct); err != nil {
		t.Fatal(err)
	}
	r := cli(1, "seq", "next", "one", "--json")
	if r.stdout != "" || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("want one line of JSON on stderr, got\nstdout: %q\nstderr: %q", r.stdout, r.stderr)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stderr), &got); err != nil {
		t.Fatalf("stderr is not JSON: %v\n%s", err, r.stderr)
	}
	if got["request_id"] == nil || got["request_id"] == "" {
		t.Errorf("problem without its request_id: %s", r.stderr)
	}
	delete(got, "request_id")
	delete(direct, "request_id")
	gotJSON, _ := json.Marshal(got)
	directJSON, _ := json.Marshal(direct)
	if string(gotJSON) != string(directJSON) {
		t.Errorf("--json error\n got %s\nwant %s (as the server sends it)", gotJSON, directJSON)
	}
	for _, k := range []string{"type", "title", "status", "detail", "code", "remaining"} {
		if _, ok := got[k]; !ok {
			t.Errorf("problem document lacks %q: %s", k, r.stderr)
		}
	}
	if got["code"] != "sequence_exhausted" || got["remaining"] != float64(0) {
		t.Errorf("problem document: %s", r.stderr)
	}

	// Local errors.
	for _, tc := range []struct {
		code int
		args []string
		want map[string]string
	}{
		{2, []string{"seq", "next", "--json"}, map[string]string{"error": "seq next needs NAME", "code": "usage"}},
		{2, []string{"seq", "next", "one", "--cout", "3", "--json"}, map[string]string{"error": "seq next: unknown flag --cout", "code": "usage"}},
		{2, []string{"seq", "next", "one", "--count", "0", "--json"}, map[string]string{"error": "seq next: --count must be between 1 and 100000, got 0", "code": "usage"}},
		{2, []string{"pool", "create", "p", "--json"}, map[string]string{"error": "pool create needs --capacity: how many units the pool has", "code": "usage"}},
		{2, []string{"audit", "--store", "sqlite://x.db", "--server", url, "--json"}, map[string]string{"error": "audit: give --store or --server, not both", "code": "usage"}},
		{1, []string{"seq", "next", "one", "--json", "--server", "http://" + closedAddr(t)}, nil},
	} {
		r := cli(tc.code, tc.args...)
		var got map[string]string
		if err := json.Unmarshal([]byte(r.stderr), &got); err != nil || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("allot %s: stderr is not one JSON object: %v\n%s", strings.Join(tc.args, " "), err, r.stderr)
			continue
		}
		if tc.want == nil {
			tc.want = map[string]string{"error": got["error"], "code": "error"}
			if !strings.HasPrefix(got["error"], "cannot reach the allot server") {
				t.Errorf("allot %s: %s", strings.Join(tc.args, " "), r.stderr)
			}
		}
		if len(got) != 2 || got["error"] != tc.want["error"] || got["code"] != tc.want["code"] {
			t.Errorf("allot %s: stderr %s, want %v", strings.Join(tc.args, " "), r.stderr, tc.want)
		}
	}
	// Without --json, errors stay text.
	if r := cli(1, "seq", "next", "one"); strings.HasPrefix(r.stderr, "{") {
		t.Errorf("error without --json: %s", r.stderr)
	}
}

// TestServerAddress: --server takes host:port without a scheme, and a
// server that can't be reached is explained.
func TestServerAddress(t *testing.T) {
	url := newAPI(t)
	hostPort := strings.TrimPrefix(url, "http://")
	r := runCLI(t, nil, "seq", "create", "lp", "--server", hostPort).want(t, 0)
	if !strings.Contains(r.stdout, "name:") {
		t.Errorf("seq create via %s: %s", hostPort, r.stdout)
	}
	runCLI(t, map[string]string{"ALLOT_SERVER": hostPort}, "seq", "next", "lp").want(t, 0)

	addr := closedAddr(t)
	want := "allot: cannot reach the allot server at http://" + addr + " (connection refused): is `allot serve` running? Set --server or ALLOT_SERVER\n"
	for _, server := range []string{addr, "http://" + addr} {
		r := runCLI(t, map[string]string{"ALLOT_SERVER": server}, "seq", "list").want(t, 1)
		if r.stderr != want {
			t.Errorf("ALLOT_SERVER=%s:\nstderr: %q\nwant:   %q", server, r.stderr, want)
		}
	}
	r = runCLI(t, nil, "audit", "--server", addr).want(t, 1)
	if !strings.Contains(r.stderr, "cannot reach the allot server at http://"+addr+" (connection refused)") || strings.Contains(r.stderr, "ALLOT_SERVER") {
		t.Errorf("audit --server %s: %q", addr, r.stderr)
	}
}

// TestServeWarnsOnlyOnceTheStoreIsOpen: the "no API keys" warning is for
// a server that is about to listen, not one that exits on a bad store.
func TestServeWarnsOnlyOnceTheStoreIsOpen(t *testing.T) {
	for _, tc := range []struct {
		store string
		code  int
	}{
		{"mysql://nowhere/db", 2},
		{"sqlite://" + filepath.Join(t.TempDir(), "no", "such", "dir", "allot.db"), 1},
		{"postgres://nobody@" + closedAddr(t) + "/db?connect_timeout=2", 1},
	} {
		r := runCLI(t, nil, "serve", "--listen", "127.0.0.1:0", "--store", tc.store, "--log-format", "text").want(t, tc.code, "serve", "--store", tc.store)
		if strings.Contains(r.stderr, "no API keys") {
			t.Errorf("serve --store %s warned about API keys before exiting:\n%s", tc.store, r.stderr)
		}
	}

	// With a store that opens, the warning comes, before listening.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &testkit.Buffer{}, &testkit.Buffer{}
	done := make(chan int, 1)
	store := "sqlite://" + filepath.Join(t.TempDir(), "allot.db")
	go func() {
		done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--store", store, "--log-format", "text"}, os.Getenv, stdout, stderr)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stdout.String(), "allot listening") {
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not listen:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	logs := stderr.String()
	if strings.Count(logs, "no API keys configured") != 1 {
		t.Errorf("want the warning once, got:\n%s", logs)
	}
	if w, s := strings.Index(logs, "no API keys"), strings.Index(logs, "allot serving"); w < 0 || s < 0 || w > s {
		t.Errorf("want the warning before the server listens:\n%s", logs)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exited with %d after cancel:\n%s", code, stderr.String())
	}
}

// TestBenchHelpListsScenarios: "allot bench --help" names every scenario.
func TestBenchHelpListsScenarios(t *testing.T) {
	r := runCLI(t, nil, "bench", "--help").want(t, 0)
	for _, want := range []string{"allot bench claims ", "allot bench flash-sale ", "claims per second", "flash sale"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("bench --help lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := runCLI(t, nil, "bench", "flood"); r.code != 2 || !strings.Contains(r.stderr, `unknown scenario "flood"`) {
		t.Errorf("bench flood: %d %s", r.code, r.stderr)
	}
}
