package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/client"
)

// The help of "allot seq labels" and "allot seq reprint" (listed in
// seqCommands).
var (
	seqLabelsCommand = subcommand{"allot seq labels NAME [--count N] [--format zpl|pdf|png] [--barcode BARCODE] [--size SIZE]\n" +
		"                        [--dpi 203|300] [--layout label|a4|letter] [--no-text] [--title TITLE]\n" +
		"                        [--date YYYY-MM-DD] [--reference REF] [--confirm-within DURATION]\n" +
		"                        [--idempotency-key KEY] [-o FILE]",
		`Takes the next --count numbers of the sequence NAME, exactly as "allot seq
next" does, and writes their labels to stdout (or to FILE with -o): ZPL for
Zebra and compatible label printers, one ^XA...^XZ label per ID; PDF for
office printers, one label per page or --layout a4|letter sheets; or PNG,
one label (--count 1). What was issued (first and last ID, how many) is
printed on stderr, so stdout holds the document alone.

Flags left out take the sequence's saved label settings (seq create
--label), then the defaults: pdf, code128, 2x1in, 203 dpi, the ID as text
under the bar code. The label is checked before anything is taken: a bar
code that can't carry the sequence's IDs, or a label they don't fit on, is
refused and takes nothing. Printed numbers are written to the ledger as
issued, so "allot seq reprint" can print them again; with
--idempotency-key a retry returns the same labels instead of new numbers.
A PDF or PNG is not written to a terminal: give -o FILE or redirect stdout.
With --json the note on stderr is one JSON object, and so is an error.

Sizes: 4x6in, 4x3in, 4x2in, 3x2in, 2x1in, 100x150mm, 100x50mm, 50x25mm, or
WIDTHxHEIGHT in mm or in (e.g. 62x29mm), 15-300 mm a side. Bar codes:
code128, gs1-128 (an 18-digit SSCC), qr, datamatrix, none (text only).

Examples:
  allot seq labels lp --count 1000 --format pdf --size 2x1in > roll.pdf
  allot seq labels lp --count 1 --format zpl | nc printer 9100
  allot seq labels lp --count 24 --layout a4 --barcode qr -o sheet.pdf
  allot seq labels lp --count 50 --format zpl --idempotency-key pallet-7 -o pallet-7.zpl`}
	seqReprintCommand = subcommand{"allot seq reprint NAME (--first ID --last ID | --ids ID,ID | --idempotency-key KEY)\n" +
		"                         [--format zpl|pdf|png] [--barcode BARCODE] [--size SIZE] [--dpi 203|300]\n" +
		"                         [--layout label|a4|letter] [--no-text] [--title TITLE] [-o FILE]",
		`Prints labels again for numbers of the sequence NAME that were already
issued, for a jammed or lost roll: takes nothing. Name the numbers in one
way: --first and --last (IDs of one date; the same ID twice for one label),
--ids (a comma-separated list), or --idempotency-key (the key of the
"allot seq labels" or "allot seq next" that issued them). A number that was
never issued, or was voided, is refused and nothing is printed. The label
flags are those of "allot seq labels", with the same defaults; the
document goes to stdout (or to FILE with -o), a note to stderr.

Examples:
  allot seq reprint lp --first LP0117 --last LP0140 --format zpl | nc printer 9100
  allot seq reprint lp --idempotency-key pallet-7 --format zpl -o pallet-7.zpl
  allot seq reprint lp --ids LP0117,LP0123 --size 4x2in > again.pdf`}
)

// labelFlags are how labels are printed, and where the document goes:
// the flags "seq labels" and "seq reprint" share.
type labelFlags struct {
	format, barcode, size, layout, title string
	dpi                                  intFlag
	noText                               bool
	output                               string
}

func (l *labelFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.format, "format", "", "the document `FORMAT`: zpl, pdf or png (default: the sequence's saved setting, else pdf)")
	fs.StringVar(&l.barcode, "barcode", "", "the `BARCODE`: code128, gs1-128, qr, datamatrix or none (default: as saved, else code128)")
	fs.StringVar(&l.size, "size", "", "the label `SIZE`: a stock such as 4x6in or 2x1in, or WIDTHxHEIGHT in mm or in (default: as saved, else 2x1in)")
	fs.Var(&l.dpi, "dpi", "the printer's resolution in `DPI`, for ZPL and PNG: 203 or 300 (default: as saved, else 203)")
	fs.StringVar(&l.layout, "layout", "", "the PDF `LAYOUT`: label (one label per page), a4 or letter (sheets of labels)")
	fs.BoolVar(&l.noText, "no-text", false, "leave out the ID printed under the bar code")
	fs.StringVar(&l.title, "title", "", "a `TITLE` printed above the bar code (a company or warehouse), up to 60 bytes")
	fs.StringVar(&l.output, "output", "", "write the document to `FILE` instead of stdout")
	fs.StringVar(&l.output, "o", "", "short for --output `FILE`")
}

// labelFlagNames are the flags of labelFlags a value can't be empty for.
var labelFlagNames = []string{"format", "barcode", "size", "layout", "title", "output", "o"}

func (l *labelFlags) spec() allot.LabelSpec {
	s := allot.LabelSpec{Format: allot.LabelFormat(l.format), Barcode: allot.Symbology(l.barcode), Size: l.size, Layout: l.layout, Title: l.title}
	if l.dpi.v != nil {
		s.DPI = *l.dpi.v
	}
	if l.noText {
		no := false
		s.Text = &no
	}
	return s
}

// toStdout reports whether the document goes to stdout.
func (l *labelFlags) toStdout() bool { return l.output == "" || l.output == "-" }

// isTerminal reports whether w is a terminal (a character device other
// than the null device). A variable, so tests can pretend.
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return false
	}
	return true
}

// binaryFormat reports whether documents of format are binary, not for a
// terminal.
func binaryFormat(format allot.LabelFormat) bool {
	return format == allot.LabelPDF || format == allot.LabelPNG
}

// errBinaryTerminal is the refusal to write a binary document to a
// terminal.
func errBinaryTerminal(format allot.LabelFormat) error {
	return usagef("a %s document is binary and stdout is a terminal: write it to a file with -o FILE, or redirect stdout (> labels.%s)", format, format)
}

// checkTerminal refuses, before anything is taken, a binary document
// bound for a terminal. Without --format the sequence's saved setting
// decides, so it is read.
func (l *labelFlags) checkTerminal(ctx context.Context, cl *client.Client, name string, stdout io.Writer) error {
	if !l.toStdout() || !isTerminal(stdout) {
		return nil
	}
	format := allot.LabelFormat(l.format)
	if format == "" {
		st, err := cl.SequenceGet(ctx, name)
		if err != nil {
			return err
		}
		if st.Label != nil {
			format = st.Label.Format
		}
		if format == "" {
			format = allot.LabelFormatDefault
		}
	}
	if binaryFormat(format) {
		return errBinaryTerminal(format)
	}
	return nil
}

// write writes the document where the flags say and returns where, for
// the note on stderr.
func (l *labelFlags) write(doc *client.LabelDocument, stdout io.Writer) (string, error) {
	if !l.toStdout() {
		if err := os.WriteFile(l.output, doc.Body, 0o666); err != nil {
			return "", err
		}
		return l.output, nil
	}
	// The saved settings could have changed since checkTerminal.
	if doc.ContentType != "application/zpl" && isTerminal(stdout) {
		format := allot.LabelFormat(strings.TrimPrefix(strings.TrimPrefix(doc.ContentType, "application/"), "image/"))
		return "", errBinaryTerminal(format)
	}
	if _, err := stdout.Write(doc.Body); err != nil {
		return "", err
	}
	return "stdout", nil
}

// labelNote is what a label command prints on stderr with --json.
type labelNote struct {
	Sequence    string             `json:"sequence"`
	First       int64              `json:"first,omitempty"`
	Last        int64              `json:"last,omitempty"`
	Count       int64              `json:"count,omitempty"`
	Period      string             `json:"period,omitempty"`
	FirstID     string             `json:"first_id,omitempty"`
	LastID      string             `json:"last_id,omitempty"`
	Status      allot.NumberStatus `json:"status,omitempty"`
	ConfirmBy   *time.Time         `json:"confirm_by,omitempty"`
	Remaining   *int64             `json:"remaining,omitempty"` // nil for a reprint
	Warning     bool               `json:"warning,omitempty"`
	Replayed    bool               `json:"replayed,omitempty"`
	ContentType string             `json:"content_type"`
	Bytes       int                `json:"bytes"`
	Output      string             `json:"output"`
}

func noteOf(name string, doc *client.LabelDocument, where string) labelNote {
	n := labelNote{Sequence: name, First: doc.First, Last: doc.Last, Count: doc.Count, Period: doc.Period, FirstID: doc.FirstID,
		LastID: doc.LastID, Status: doc.Status, ConfirmBy: doc.ConfirmBy, Warning: doc.Warning,
		Replayed: doc.Replayed, ContentType: doc.ContentType, Bytes: len(doc.Body), Output: where}
	if doc.Status != "" { // numbers were taken: their figures came along
		n.Remaining = &doc.Remaining
	}
	return n
}

// printNote prints the note to stderr: one JSON object with --json.
func printNote(stderr io.Writer, asJSON bool, n labelNote, text string) {
	if asJSON {
		enc := json.NewEncoder(stderr)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(n)
		return
	}
	fmt.Fprintln(stderr, text)
}

// idRange is "A .. B" of a document's IDs, "A" for one, or its numbers
// when the server could not send the IDs.
func idRange(doc *client.LabelDocument) string {
	switch {
	case doc.FirstID != "" && doc.FirstID == doc.LastID:
		return shown(doc.FirstID)
	case doc.FirstID != "" && doc.LastID != "":
		return shown(doc.FirstID) + " .. " + shown(doc.LastID)
	case doc.First == doc.Last:
		return fmt.Sprintf("number %d", doc.First)
	}
	return fmt.Sprintf("numbers %d..%d", doc.First, doc.Last)
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// shellWord is s as one word of a shell command line.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/:@%+=,-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// seqLabels is "allot seq labels".
func seqLabels(ctx context.Context, fs *flag.FlagSet, cf *clientFlags, args []string, stdout, stderr io.Writer) error {
	var p client.LabelsParams
	var lf labelFlags
	fs.Int64Var(&p.Count, "count", 1, fmt.Sprintf("print `N` labels, of contiguous numbers, 1..%d", allot.LabelCountMax))
	fs.StringVar(&p.Date, "date", "", "the document's date, `YYYY-MM-DD` (default: today in the sequence's time zone)")
	fs.StringVar(&p.Reference, "reference", "", "the document `REF` the numbers are for (an order, a pallet), kept in the ledger")
	var within durationFlag
	fs.Var(&within, "confirm-within", "two-phase: the numbers are voided unless confirmed within `DURATION` (e.g. 30s)")
	fs.StringVar(&p.IdempotencyKey, "idempotency-key", "", "a retry with the same `KEY` returns the same labels")
	lf.register(fs)
	pos, cl, err := cf.setup(fs, args, 1, "NAME")
	if err != nil {
		return err
	}
	if p.Count < 1 || p.Count > allot.LabelCountMax {
		return usagef("--count must be between 1 and %d, got %d", allot.LabelCountMax, p.Count)
	}
	if err := checkNotEmpty(fs, append([]string{"date", "reference", "idempotency-key"}, labelFlagNames...)...); err != nil {
		return err
	}
	if within.v != nil {
		if *within.v <= 0 {
			return usagef("--confirm-within must be between 1s and %s, got %s", allot.ConfirmWithinMax, time.Duration(*within.v))
		}
		p.ConfirmWithin = time.Duration(*within.v)
	}
	p.Sequence, p.LabelSpec = pos[0], lf.spec()
	if err := lf.checkTerminal(ctx, cl, p.Sequence, stdout); err != nil {
		return err
	}
	doc, err := cl.Labels(ctx, p)
	if err != nil {
		return err
	}
	where, err := lf.write(doc, stdout)
	if err != nil {
		// The numbers are issued: say how to print them again.
		var again string
		switch {
		case p.IdempotencyKey != "":
			again = " --idempotency-key " + shellWord(p.IdempotencyKey)
		case doc.FirstID != "" && doc.LastID != "":
			again = " --first " + shellWord(doc.FirstID) + " --last " + shellWord(doc.LastID)
		}
		return fmt.Errorf("%s issued but not written (%s): print them again with `allot seq reprint %s%s` and the same label flags, with -o FILE",
			idRange(doc), message(err), shellWord(p.Sequence), again)
	}
	verb := "issued"
	if doc.Replayed {
		verb = "replayed (issued before with this idempotency key)"
	}
	printNote(stderr, cf.json, noteOf(p.Sequence, doc, where),
		fmt.Sprintf("%s %s: %s in %s, to %s", verb, plural(doc.Count, "label", "labels"), idRange(doc), periodText(doc.Period), where))
	if cf.json {
		return nil
	}
	nextNotes(stderr, p.Sequence, &allot.NextResult{First: doc.First, Last: doc.Last, Period: doc.Period, Status: doc.Status,
		ConfirmBy: doc.ConfirmBy, Remaining: doc.Remaining, Warning: doc.Warning})
	return nil
}

// nextNotes prints on stderr what a caller of next must know besides the
// IDs: that reserved numbers must be confirmed (and how), and that the
// range is nearly used up.
func nextNotes(stderr io.Writer, seq string, r *allot.NextResult) {
	if r.Status == allot.StatusReserved && r.ConfirmBy != nil {
		period := ""
		if r.Period != "" {
			period = " --period " + r.Period
		}
		fmt.Fprintf(stderr, "reserved until %s: confirm with `allot seq confirm %s --first %d --last %d%s`, or they are voided\n",
			r.ConfirmBy.Format(time.RFC3339), shellWord(seq), r.First, r.Last, period)
	}
	if r.Warning {
		fmt.Fprintf(stderr, "warning: sequence %s has %d numbers left in %s\n", seq, r.Remaining, periodText(r.Period))
	}
}

// seqReprint is "allot seq reprint".
func seqReprint(ctx context.Context, fs *flag.FlagSet, cf *clientFlags, args []string, stdout, stderr io.Writer) error {
	var p allot.ReprintParams
	var lf labelFlags
	var ids string
	fs.StringVar(&p.First, "first", "", "the first `ID` of a range to print again")
	fs.StringVar(&p.Last, "last", "", "the last `ID` of the range (the same as --first for one label)")
	fs.StringVar(&ids, "ids", "", "the IDs to print again, a comma-separated list `ID,ID`")
	fs.StringVar(&p.IdempotencyKey, "idempotency-key", "", "print again what the request with this idempotency `KEY` issued")
	lf.register(fs)
	pos, cl, err := cf.setup(fs, args, 1, "NAME")
	if err != nil {
		return err
	}
	if err := checkNotEmpty(fs, append([]string{"first", "last", "ids", "idempotency-key"}, labelFlagNames...)...); err != nil {
		return err
	}
	ways := 0
	for _, given := range []bool{p.First != "" || p.Last != "", ids != "", p.IdempotencyKey != ""} {
		if given {
			ways++
		}
	}
	switch {
	case ways != 1:
		return usagef("seq reprint needs the numbers in one way: --first and --last, --ids, or --idempotency-key")
	case (p.First == "") != (p.Last == ""):
		return usagef("seq reprint needs both --first and --last (the same ID twice for one label)")
	}
	if ids != "" {
		for _, id := range strings.Split(ids, ",") {
			// "A, B" as typed: the spaces are not part of the IDs.
			if id = strings.TrimSpace(id); id == "" {
				return usagef("--ids %q has an empty ID: separate IDs with single commas", ids)
			}
			p.IDs = append(p.IDs, id)
		}
	}
	p.Sequence = pos[0]
	if err := lf.checkTerminal(ctx, cl, p.Sequence, stdout); err != nil {
		return err
	}
	doc, err := cl.Reprint(ctx, p, lf.spec())
	if err != nil {
		return err
	}
	where, err := lf.write(doc, stdout)
	if err != nil {
		return err
	}
	what := ""
	switch {
	case doc.FirstID != "" || doc.Count > 0:
		what = plural(doc.Count, "label", "labels") + ": " + idRange(doc)
	case p.IdempotencyKey != "":
		what = "the labels of idempotency key " + shown(p.IdempotencyKey)
	case len(p.IDs) > 0:
		what = plural(int64(len(p.IDs)), "label", "labels")
		if len(p.IDs) <= 3 {
			what += ": " + shown(strings.Join(p.IDs, ", "))
		}
	case p.First == p.Last:
		what = "1 label: " + shown(p.First)
	default:
		what = "labels " + shown(p.First) + " .. " + shown(p.Last)
	}
	n := noteOf(p.Sequence, doc, where)
	if n.FirstID == "" && p.First != "" {
		n.FirstID, n.LastID = p.First, p.Last
	}
	printNote(stderr, cf.json, n, fmt.Sprintf("reprinted %s, to %s", what, where))
	return nil
}

// labelSpecFlag is --label on seq create and seq patch: label settings
// as a JSON object; nil unless given.
type labelSpecFlag struct{ v *allot.LabelSpec }

func (f *labelSpecFlag) String() string {
	if f.v == nil {
		return ""
	}
	b, _ := json.Marshal(f.v)
	return string(b)
}

func (f *labelSpecFlag) Set(s string) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var l allot.LabelSpec
	if err := dec.Decode(&l); err != nil || dec.More() {
		why := "trailing data"
		if err != nil {
			why = strings.TrimPrefix(err.Error(), "json: ")
		}
		return fmt.Errorf("%q is not a JSON object of label settings (%s): use e.g. {\"format\":\"zpl\",\"size\":\"4x6in\"}, with format, barcode, size, dpi, layout, text, title", s, why)
	}
	f.v = &l
	return nil
}
