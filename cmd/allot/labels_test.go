package main

// Tests of "allot seq labels" and "allot seq reprint", driving run() in
// process against an in-process server.

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/allot/allot"
)

// labelSeq starts a server with the sequence lp (IDs LP000001...) and
// returns a CLI runner for it.
func labelSeq(t *testing.T) func(code int, args ...string) result {
	t.Helper()
	cli := cliFor(t, newAPI(t))
	cli(0, "seq", "create", "lp", "--format", "LP{n:6}", "--max", "999999")
	return cli
}

// zplCodes are the Code 128 payloads of a ZPL document, in order.
var zplCodes = regexp.MustCompile(`\^FD>:([^^]*)\^FS`)

func barcodes(zpl string) []string {
	var ids []string
	for _, m := range zplCodes.FindAllStringSubmatch(zpl, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// seqState reads the sequence's figures with seq get --json.
func seqState(t *testing.T, cli func(int, ...string) result, name string) allot.SequenceState {
	t.Helper()
	var st allot.SequenceState
	if err := json.Unmarshal([]byte(cli(0, "seq", "get", name, "--json").stdout), &st); err != nil {
		t.Fatalf("seq get %s --json: %v", name, err)
	}
	return st
}

// pretendTerminal makes stdout look like a terminal for the test.
func pretendTerminal(t *testing.T) {
	t.Helper()
	was := isTerminal
	isTerminal = func(io.Writer) bool { return true }
	t.Cleanup(func() { isTerminal = was })
}

// TestLabelsToFile: -o writes the document to the file, nothing to
// stdout, and the note on stderr says what was issued.
func TestLabelsToFile(t *testing.T) {
	cli := labelSeq(t)
	dir := t.TempDir()
	roll := filepath.Join(dir, "roll.pdf")
	r := cli(0, "seq", "labels", "lp", "--count", "3", "--format", "pdf", "--size", "2x1in", "-o", roll)
	if r.stdout != "" || r.stderr != "issued 3 labels: LP000001 .. LP000003 in the only period, to "+roll+"\n" {
		t.Fatalf("labels -o:\nstdout: %q\nstderr: %q", r.stdout, r.stderr)
	}
	if b, err := os.ReadFile(roll); err != nil || !bytes.HasPrefix(b, []byte("%PDF-")) {
		t.Fatalf("roll.pdf: %v %.20q", err, b)
	}
	one := filepath.Join(dir, "one.png")
	r = cli(0, "seq", "labels", "lp", "--format", "png", "--barcode", "qr", "--dpi", "300", "--no-text", "--title", "DOCK 4", "--output", one)
	if r.stdout != "" || r.stderr != "issued 1 label: LP000004 in the only period, to "+one+"\n" {
		t.Fatalf("labels --output png:\nstdout: %q\nstderr: %q", r.stdout, r.stderr)
	}
	if b, err := os.ReadFile(one); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("one.png: %v %.20q", err, b)
	}
	// A file that can't be written: the numbers are issued, and the
	// error says how to print them again.
	bad := filepath.Join(dir, "no", "such", "dir.zpl")
	r = cli(1, "seq", "labels", "lp", "--count", "2", "--format", "zpl", "-o", bad)
	want := "allot: LP000005 .. LP000006 issued but not written (open " + bad + ": no such file or directory): print them again with `allot seq reprint lp --first LP000005 --last LP000006` and the same label flags, with -o FILE\n"
	if r.stdout != "" || r.stderr != want {
		t.Fatalf("labels -o into a missing directory:\nstdout: %q\nstderr: %q\nwant:   %q", r.stdout, r.stderr, want)
	}
	r = cli(0, "seq", "reprint", "lp", "--first", "LP000005", "--last", "LP000006", "--format", "zpl")
	if got := barcodes(r.stdout); !slices.Equal(got, []string{"LP000005", "LP000006"}) {
		t.Fatalf("reprint of the unwritten labels: %q", got)
	}
	if st := seqState(t, cli, "lp"); st.Next != 7 || st.Issued != 6 {
		t.Fatalf("after the labels: %+v", st)
	}
}

// TestLabelsZPLToStdout: ZPL goes to stdout, alone; a retry with the
// idempotency key prints the same labels; --json makes the note JSON.
func TestLabelsZPLToStdout(t *testing.T) {
	cli := labelSeq(t)
	args := []string{"seq", "labels", "lp", "--count", "3", "--format", "zpl", "--idempotency-key", "pallet-7", "--reference", "pallet 7"}
	r := cli(0, args...)
	if strings.Count(r.stdout, "^XA") != 3 || strings.Count(r.stdout, "^XZ") != 3 || !strings.HasPrefix(r.stdout, "^XA") {
		t.Fatalf("labels zpl: stdout %q", r.stdout)
	}
	if got := barcodes(r.stdout); !slices.Equal(got, []string{"LP000001", "LP000002", "LP000003"}) {
		t.Fatalf("bar codes %q", got)
	}
	if r.stderr != "issued 3 labels: LP000001 .. LP000003 in the only period, to stdout\n" {
		t.Fatalf("labels zpl: stderr %q", r.stderr)
	}
	again := cli(0, args...)
	if again.stdout != r.stdout || !strings.HasPrefix(again.stderr, "replayed (issued before with this idempotency key) 3 labels: LP000001 .. LP000003") {
		t.Fatalf("labels replay:\nstdout same: %v\nstderr: %q", again.stdout == r.stdout, again.stderr)
	}

	j := cli(0, "seq", "labels", "lp", "--format", "zpl", "--json")
	var note map[string]any
	if err := json.Unmarshal([]byte(j.stderr), &note); err != nil || strings.Count(j.stderr, "\n") != 1 {
		t.Fatalf("labels --json: stderr is not one JSON object: %v\n%s", err, j.stderr)
	}
	if note["first_id"] != "LP000004" || note["last_id"] != "LP000004" || note["first"] != float64(4) || note["count"] != float64(1) ||
		note["status"] != "issued" || note["content_type"] != "application/zpl" || note["output"] != "stdout" || note["bytes"] != float64(len(j.stdout)) || note["remaining"] != float64(999995) {
		t.Fatalf("labels --json note: %s", j.stderr)
	}
	if !slices.Equal(barcodes(j.stdout), []string{"LP000004"}) {
		t.Fatalf("labels --json: stdout %q", j.stdout)
	}
}

// TestReprint: a reprint by range, ids or idempotency key prints the same
// labels and takes nothing; one of numbers not issued is refused with the
// server's problem on stderr.
func TestReprint(t *testing.T) {
	cli := labelSeq(t)
	orig := cli(0, "seq", "labels", "lp", "--count", "3", "--format", "zpl", "--idempotency-key", "roll-1").stdout
	before := seqState(t, cli, "lp")
	for _, way := range [][]string{
		{"--first", "LP000001", "--last", "LP000003"},
		{"--idempotency-key", "roll-1"},
		{"--ids", "LP000001,LP000002,LP000003"},
		{"--ids", "LP000001, LP000002 ,LP000003"},
	} {
		r := cli(0, append([]string{"seq", "reprint", "lp", "--format", "zpl"}, way...)...)
		if r.stdout != orig {
			t.Fatalf("reprint %s: stdout %q, want the labels as printed: %q", way, r.stdout, orig)
		}
		if !strings.HasPrefix(r.stderr, "reprinted ") || !strings.HasSuffix(r.stderr, ", to stdout\n") || strings.Count(r.stderr, "\n") != 1 {
			t.Fatalf("reprint %s: stderr %q", way, r.stderr)
		}
	}
	file := filepath.Join(t.TempDir(), "again.pdf")
	r := cli(0, "seq", "reprint", "lp", "--ids", "LP000002", "--size", "4x2in", "-o", file)
	if r.stdout != "" || r.stderr != "reprinted 1 label: LP000002, to "+file+"\n" {
		t.Fatalf("reprint -o: %+v", r)
	}
	if b, err := os.ReadFile(file); err != nil || !bytes.HasPrefix(b, []byte("%PDF-")) {
		t.Fatalf("again.pdf: %v", err)
	}
	if after := seqState(t, cli, "lp"); after.Next != before.Next || after.Issued != before.Issued {
		t.Fatalf("reprint took numbers: before %+v, after %+v", before, after)
	}

	// Refused by the server: exit 1, the problem on stderr, nothing on
	// stdout.
	cli(0, "seq", "void", "lp", "--id", "LP000002", "--reason", "torn label")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ids", "LP000004"}, "allot: 409 not_issued: LP000004 was never issued: only issued numbers can be reprinted\n"},
		{[]string{"--first", "LP000003", "--last", "LP000005"}, "allot: 409 not_issued: LP000005 was never issued: only issued numbers can be reprinted\n"},
		{[]string{"--first", "LP000001", "--last", "LP000003"}, "allot: 409 not_issued: LP000002 was voided (torn label): a voided number can't be reprinted\n"},
		{[]string{"--idempotency-key", "never-used"}, "allot: 404 not_found: "},
		{[]string{"--ids", "XX1"}, "allot: 400 invalid_request: ids: "},
	} {
		r := cli(1, append([]string{"seq", "reprint", "lp", "--format", "zpl"}, tc.args...)...)
		if r.stdout != "" || !strings.HasPrefix(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("reprint %s:\nstdout: %q\nstderr: %q\nwant:   %q", tc.args, r.stdout, r.stderr, tc.want)
		}
	}
	j := cli(1, "seq", "reprint", "lp", "--ids", "LP000004", "--json")
	var prob map[string]any
	if err := json.Unmarshal([]byte(j.stderr), &prob); err != nil || prob["code"] != "not_issued" || prob["status"] != float64(409) || j.stdout != "" {
		t.Fatalf("reprint --json refused: %v\nstdout: %q\nstderr: %s", err, j.stdout, j.stderr)
	}

	// Refused here: exit 2, before anything is sent.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "allot: seq reprint needs the numbers in one way: --first and --last, --ids, or --idempotency-key\n"},
		{[]string{"--ids", "LP000001", "--idempotency-key", "roll-1"}, "allot: seq reprint needs the numbers in one way"},
		{[]string{"--first", "LP000001"}, "allot: seq reprint needs both --first and --last (the same ID twice for one label)\n"},
		{[]string{"--ids", "LP000001,,LP000003"}, "allot: seq reprint: --ids \"LP000001,,LP000003\" has an empty ID: separate IDs with single commas\n"},
		{[]string{"--ids", ""}, "allot: seq reprint: --ids is empty: give a value, or leave --ids out\n"},
		{[]string{"--ids", "LP000001", "--format", ""}, "allot: seq reprint: --format is empty"},
	} {
		r := cli(2, append([]string{"seq", "reprint", "lp"}, tc.args...)...)
		if r.stdout != "" || !strings.HasPrefix(r.stderr, tc.want) || !strings.HasSuffix(r.stderr, "Run \"allot seq reprint --help\" for usage.\n") {
			t.Errorf("reprint %s:\nstderr: %q\nwant:   %q", tc.args, r.stderr, tc.want)
		}
	}
}

// TestLabelsRefused: labels the CLI or the server refuses take nothing.
func TestLabelsRefused(t *testing.T) {
	cli := labelSeq(t)
	for _, tc := range []struct {
		code int
		args []string
		want string
	}{
		{2, []string{"--count", "0"}, "allot: seq labels: --count must be between 1 and 10000, got 0\n"},
		{2, []string{"--count", "10001"}, "allot: seq labels: --count must be between 1 and 10000, got 10001\n"},
		{2, []string{"--size", ""}, "allot: seq labels: --size is empty"},
		{2, []string{"--dpi", "high"}, "allot: seq labels: --dpi: \"high\" is not a whole number\n"},
		{2, []string{"--confirm-within", "0s"}, "allot: seq labels: --confirm-within must be between 1s and 24h0m0s, got 0s\n"},
		{1, []string{"--format", "gif"}, "allot: 400 invalid_request: format: \"gif\" is not a label format"},
		{1, []string{"--size", "15x15mm"}, "allot: 400 invalid_request: "},
		{1, []string{"--barcode", "gs1-128"}, "allot: 400 invalid_request: "},
		{1, []string{"--format", "png", "--count", "2"}, "allot: 400 invalid_request: format: png renders one label"},
	} {
		r := cli(tc.code, append([]string{"seq", "labels", "lp"}, tc.args...)...)
		if r.stdout != "" || !strings.HasPrefix(r.stderr, tc.want) {
			t.Errorf("labels %s:\nstderr: %q\nwant:   %q", tc.args, r.stderr, tc.want)
		}
	}
	if r := cli(1, "seq", "labels", "nope"); !strings.HasPrefix(r.stderr, "allot: 404 not_found: ") {
		t.Errorf("labels of an unknown sequence: %q", r.stderr)
	}
	if st := seqState(t, cli, "lp"); st.Next != 1 || st.Issued != 0 {
		t.Fatalf("refused labels took numbers: %+v", st)
	}
}

// TestLabelsRefuseBinaryTerminal: a PDF or PNG is not written to a
// terminal, and nothing is taken; ZPL is, and -o goes around it.
func TestLabelsRefuseBinaryTerminal(t *testing.T) {
	cli := labelSeq(t)
	pretendTerminal(t)
	want := "allot: seq labels: a pdf document is binary and stdout is a terminal: write it to a file with -o FILE, or redirect stdout (> labels.pdf)\n"
	for _, args := range [][]string{{"--format", "pdf"}, nil, {"--format", "png", "-o", "-"}} {
		r := cli(2, append([]string{"seq", "labels", "lp"}, args...)...)
		w := want
		if len(args) > 1 && args[1] == "png" {
			w = strings.ReplaceAll(want, "pdf", "png")
		}
		if r.stdout != "" || !strings.HasPrefix(r.stderr, w) {
			t.Errorf("labels %s to a terminal:\nstderr: %q\nwant:   %q", args, r.stderr, w)
		}
	}
	if st := seqState(t, cli, "lp"); st.Next != 1 || st.Issued != 0 {
		t.Fatalf("a refused binary document took numbers: %+v", st)
	}
	if r := cli(0, "seq", "labels", "lp", "--format", "zpl"); !strings.HasPrefix(r.stdout, "^XA") {
		t.Fatalf("zpl to a terminal: %q", r.stdout)
	}
	file := filepath.Join(t.TempDir(), "l.pdf")
	cli(0, "seq", "labels", "lp", "-o", file)
	r := cli(2, "seq", "reprint", "lp", "--ids", "LP000001")
	if r.stdout != "" || !strings.HasPrefix(r.stderr, "allot: seq reprint: a pdf document is binary and stdout is a terminal") {
		t.Fatalf("reprint pdf to a terminal: %+v", r)
	}
	// Saved settings decide when --format is left out.
	cli(0, "seq", "patch", "lp", "--label", `{"format":"zpl"}`)
	if r := cli(0, "seq", "reprint", "lp", "--ids", "LP000001"); !slices.Equal(barcodes(r.stdout), []string{"LP000001"}) {
		t.Fatalf("reprint with saved zpl to a terminal: %q", r.stdout)
	}
	if r := cli(2, "seq", "labels", "lp", "--format", "pdf"); !strings.Contains(r.stderr, "-o FILE") {
		t.Fatalf("labels pdf over saved zpl to a terminal: %q", r.stderr)
	}
}

// TestSeqLabelSettings: seq create and seq patch take --label, seq get
// shows it, and seq labels uses it.
func TestSeqLabelSettings(t *testing.T) {
	cli := cliFor(t, newAPI(t))
	r := cli(0, "seq", "create", "lp", "--format", "LP{n:6}", "--max", "999999", "--label", `{"format":"zpl","size":"4x2in","title":"ACME"}`)
	if !strings.Contains(r.stdout, "\nlabel:") || !strings.Contains(r.stdout, `{"format":"zpl","size":"4x2in","title":"ACME"}`) {
		t.Fatalf("seq create --label: %s", r.stdout)
	}
	if st := seqState(t, cli, "lp"); st.Label == nil || st.Label.Format != allot.LabelZPL || st.Label.Title != "ACME" {
		t.Fatalf("saved label: %+v", st.Label)
	}
	r = cli(0, "seq", "labels", "lp")
	if !strings.Contains(r.stdout, "^FDACME^FS") || !slices.Equal(barcodes(r.stdout), []string{"LP000001"}) {
		t.Fatalf("labels with saved settings: %q", r.stdout)
	}
	for _, tc := range []struct {
		code int
		args []string
		want string
	}{
		{2, []string{"seq", "create", "x", "--label", "zpl"}, "allot: seq create: --label: \"zpl\" is not a JSON object of label settings"},
		{2, []string{"seq", "patch", "lp", "--label", `{"fromat":"zpl"}`}, "allot: seq patch: --label: "},
		{1, []string{"seq", "patch", "lp", "--label", `{"format":"gif"}`}, "allot: 400 invalid_request: label.format: "},
	} {
		if r := cli(tc.code, tc.args...); !strings.HasPrefix(r.stderr, tc.want) {
			t.Errorf("allot %s:\nstderr: %q\nwant:   %q", tc.args, r.stderr, tc.want)
		}
	}
	r = cli(0, "seq", "patch", "lp", "--label", "{}")
	if strings.Contains(r.stdout, "label:") {
		t.Fatalf("seq patch --label {}: %s", r.stdout)
	}
	if st := seqState(t, cli, "lp"); st.Label != nil {
		t.Fatalf("label after --label {}: %+v", st.Label)
	}
}

// TestLabelsHelp: the help of labels and reprint explains them, with
// examples and their flags; the group's help lists them.
func TestLabelsHelp(t *testing.T) {
	for _, tc := range []struct {
		cmd   string
		flags []string
		texts []string
	}{
		{"labels", []string{"--count N", "--format FORMAT", "--barcode BARCODE", "--size SIZE", "--dpi DPI", "--layout LAYOUT", "--no-text",
			"--title TITLE", "--date YYYY-MM-DD", "--reference REF", "--confirm-within DURATION", "--idempotency-key KEY", "--output FILE", "--o FILE"},
			[]string{"allot seq labels lp --count 1000 --format pdf --size 2x1in > roll.pdf", "allot seq labels lp --count 1 --format zpl | nc printer 9100",
				"stderr", "-o FILE", "takes nothing", "reprint"}},
		{"reprint", []string{"--first ID", "--last ID", "--ids ID,ID", "--idempotency-key KEY", "--format FORMAT", "--barcode BARCODE", "--size SIZE",
			"--dpi DPI", "--layout LAYOUT", "--no-text", "--title TITLE", "--output FILE", "--o FILE"},
			[]string{"allot seq reprint lp --first LP0117 --last LP0140", "--idempotency-key pallet-7", "voided", "takes nothing"}},
	} {
		r := runCLI(t, nil, "seq", tc.cmd, "--help").want(t, 0, "seq", tc.cmd, "--help")
		if !strings.HasPrefix(r.stdout, "Usage: allot seq "+tc.cmd+" NAME ") || r.stderr != "" || strings.Contains(r.stdout, "…") {
			t.Errorf("seq %s --help:\n%s\nstderr: %s", tc.cmd, r.stdout, r.stderr)
		}
		for _, f := range append(tc.flags, "--server URL", "--key TOKEN", "--json") {
			if !strings.Contains(r.stdout, "\n  "+f) {
				t.Errorf("seq %s --help lacks the flag %q", tc.cmd, f)
			}
		}
		for _, s := range tc.texts {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("seq %s --help lacks %q", tc.cmd, s)
			}
		}
		for _, other := range []string{"--count N", "--first ID", "--reference REF", "--start N", "--format TEMPLATE"} {
			if !slices.Contains(tc.flags, other) && strings.Contains(r.stdout, "\n  "+other) {
				t.Errorf("seq %s --help shows %s, a flag of another command", tc.cmd, other)
			}
		}
		if h := runCLI(t, nil, "seq", "help", tc.cmd).want(t, 0); h.stdout != r.stdout {
			t.Errorf("allot seq help %s differs from --help", tc.cmd)
		}
		if h := runCLI(t, nil, "help", "seq", tc.cmd).want(t, 0); h.stdout != r.stdout {
			t.Errorf("allot help seq %s differs from --help", tc.cmd)
		}
	}
	r := runCLI(t, nil, "seq", "--help").want(t, 0)
	for _, s := range []string{"\n  labels NAME", "\n  reprint NAME (--first ID --last ID | --ids ID,ID | --idempotency-key KEY)", "[--label JSON]"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("seq --help lacks %q:\n%s", s, r.stdout)
		}
	}
	for _, cmd := range []string{"create", "patch"} {
		if r := runCLI(t, nil, "seq", cmd, "--help").want(t, 0); !strings.Contains(r.stdout, "\n  --label JSON") {
			t.Errorf("seq %s --help lacks --label JSON", cmd)
		}
	}
}
