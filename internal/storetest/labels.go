package storetest

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/allot/allot"
	"github.com/allot/allot/label"
)

var labelTests = []struct {
	name string
	fn   func(t *testing.T, open func() allot.Store)
}{
	{"LabelSettingsSaved", testLabelSettingsSaved},
	{"LabelsRefusedIssueNothing", testLabelsRefusedIssueNothing},
	{"Reprint", testReprint},
}

// testLabelSettingsSaved: a sequence's label settings survive the store,
// a patch replaces them and {} removes them.
func testLabelSettingsSaved(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc := service(t, s)
	no := false
	saved := &allot.LabelSpec{Format: allot.LabelZPL, Size: "4x6in", DPI: 300, Text: &no, Title: "Dock 4 – Zürich"}
	if _, err := svc.SequenceCreate(ctx(t), allot.SequenceCreateParams{Name: "lp", Format: "LP{n:AA9}", Label: saved}); err != nil {
		t.Fatal(err)
	}
	got, err := s.SequenceGet(ctx(t), "lp")
	if err != nil || got.Label == nil || got.Label.Format != allot.LabelZPL || got.Label.DPI != 300 || got.Label.Text == nil || *got.Label.Text || got.Label.Title != saved.Title {
		t.Fatalf("saved label = %+v, %v; want %+v", got.Label, err, saved)
	}
	if _, err := svc.SequencePatch(ctx(t), "lp", allot.SequencePatchParams{Label: &allot.LabelSpec{Size: "bogus"}}); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("patch with a bad size: %v, want ErrInvalid", err)
	}
	if _, err := svc.SequencePatch(ctx(t), "lp", allot.SequencePatchParams{Label: &allot.LabelSpec{Barcode: allot.BarcodeQR}}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.SequenceGet(ctx(t), "lp")
	if got.Label == nil || got.Label.Barcode != allot.BarcodeQR || got.Label.Format != "" {
		t.Fatalf("patched label = %+v, want only barcode qr", got.Label)
	}
	if _, err := svc.SequencePatch(ctx(t), "lp", allot.SequencePatchParams{Label: &allot.LabelSpec{}}); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.SequenceGet(ctx(t), "lp"); got.Label != nil {
		t.Fatalf("label after {} = %+v, want none", got.Label)
	}
}

// testLabelsRefusedIssueNothing: a label request refused for its spec,
// its bar code or its size takes no number, in either mode; the counter
// is read from the store.
func testLabelsRefusedIssueNothing(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc := service(t, s)
	for _, mode := range []allot.Mode{allot.ModeGapless, allot.ModeCached} {
		name := "r-" + string(mode)
		if _, err := svc.SequenceCreate(ctx(t), allot.SequenceCreateParams{Name: name, Format: "LP{n:AA9}", Mode: mode, AllowOverlap: true}); err != nil {
			t.Fatal(err)
		}
		long := name + "-long"
		if _, err := svc.SequenceCreate(ctx(t), allot.SequenceCreateParams{Name: long, Format: "PALLET-WAREHOUSE-NORTH-{n:12}", Mode: mode, AllowOverlap: true}); err != nil {
			t.Fatal(err)
		}
		delivered := 0
		deliver := func(*allot.NextResult, label.Document) error { delivered++; return nil }
		for _, tc := range []struct {
			seq   string
			count int64
			spec  allot.LabelSpec
			field string
		}{
			{name, 1, allot.LabelSpec{Format: "bmp"}, "format"},
			{name, 1, allot.LabelSpec{Barcode: "code39"}, "barcode"},
			{name, 1, allot.LabelSpec{Size: "9x9mm"}, "size"},
			{name, 1, allot.LabelSpec{DPI: 600}, "dpi"},
			{name, 1, allot.LabelSpec{Format: allot.LabelZPL, Layout: "a4"}, "layout"},
			{name, 2, allot.LabelSpec{Format: allot.LabelPNG}, "format"},
			{name, 1, allot.LabelSpec{Barcode: allot.BarcodeGS1128}, "barcode"},
			{name, allot.LabelCountMax + 1, allot.LabelSpec{}, "count"},
			{long, 1, allot.LabelSpec{Size: "50x25mm"}, "size"},
			{name, 1, allot.LabelSpec{Title: strings.Repeat("W", 60)}, "title"},
			{name, label.QRDocumentMax + 1, allot.LabelSpec{Barcode: allot.BarcodeQR}, "count"},
			{name, 1, allot.LabelSpec{Title: "Lager 🚚"}, "title"}, // beyond U+FFFF: fpdf would panic
		} {
			_, err := label.Next(ctx(t), svc, label.Request{NextParams: allot.NextParams{Sequence: tc.seq, Count: tc.count}, Spec: tc.spec, Deliver: deliver})
			var ie *allot.InvalidError
			if !errors.As(err, &ie) || ie.Field != tc.field {
				t.Fatalf("%s: labels %+v count %d: %v, want an invalid %s", mode, tc.spec, tc.count, err, tc.field)
			}
		}
		for _, seq := range []string{name, long} {
			st, err := svc.SequenceGet(ctx(t), seq)
			if err != nil || st.Issued != 0 || st.Leased != 0 || st.Next != st.Start {
				t.Fatalf("%s: %s after refused labels: %+v, %v; want nothing taken", mode, seq, st, err)
			}
		}
		if delivered != 0 {
			t.Fatalf("%s: %d refused requests delivered a document", mode, delivered)
		}
		// A sequence left at the defaults ({n}, max 2^63-1) prints on the
		// default label: laid out for the numbers at hand, not 19 digits.
		plain := name + "-plain"
		if _, err := svc.SequenceCreate(ctx(t), allot.SequenceCreateParams{Name: plain, Mode: mode, AllowOverlap: true}); err != nil {
			t.Fatal(err)
		}
		if res, err := label.Next(ctx(t), svc, label.Request{NextParams: allot.NextParams{Sequence: plain, Count: 3}, Deliver: deliver}); err != nil || res.First != 1 || delivered != 1 {
			t.Fatalf("%s: labels of a default sequence: %+v, %v", mode, res, err)
		}
		// An exhausted range is refused as next refuses it, taking nothing.
		small := name + "-small"
		if _, err := svc.SequenceCreate(ctx(t), allot.SequenceCreateParams{Name: small, Max: ptr[int64](2), Mode: mode, AllowOverlap: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := label.Next(ctx(t), svc, label.Request{NextParams: allot.NextParams{Sequence: small, Count: 3}, Deliver: deliver}); !errors.Is(err, allot.ErrExhausted) {
			t.Fatalf("%s: labels past max: %v, want ErrExhausted", mode, err)
		}
		if st, err := svc.SequenceGet(ctx(t), small); err != nil || st.Issued != 0 || st.Next != 1 {
			t.Fatalf("%s: after exhausted labels: %+v, %v", mode, st, err)
		}
		delivered = 0
		// A keyed retry is laid out for its own numbers: LP9998900000
		// fits a 2x1in Code 128, the counter's LP10000100000 onwards do
		// not, and the retry still replays.
		lp := name + "-lp"
		if _, err := svc.SequenceCreate(ctx(t), allot.SequenceCreateParams{Name: lp, Format: "LP{n}", Start: ptr[int64](9_998_900_000), Mode: mode, AllowOverlap: true}); err != nil {
			t.Fatal(err)
		}
		keyed := label.Request{NextParams: allot.NextParams{Sequence: lp, IdempotencyKey: "k1"}, Spec: allot.LabelSpec{Format: allot.LabelZPL}, Deliver: deliver}
		first, err := label.Next(ctx(t), svc, keyed)
		if err != nil || first.IDs[0] != "LP9998900000" {
			t.Fatalf("%s: keyed label: %+v, %v", mode, first, err)
		}
		for range 12 {
			if _, err := svc.Next(ctx(t), allot.NextParams{Sequence: lp, Count: 100_000, Reference: "bulk"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := label.Next(ctx(t), svc, label.Request{NextParams: allot.NextParams{Sequence: lp}, Spec: allot.LabelSpec{Format: allot.LabelZPL}, Deliver: deliver}); err == nil {
			t.Fatalf("%s: a 14-character ID fit a 2x1in Code 128 at 2 dots a module", mode)
		}
		if again, err := label.Next(ctx(t), svc, keyed); err != nil || !again.Replayed || again.IDs[0] != first.IDs[0] {
			t.Fatalf("%s: keyed retry after the counter moved on: %+v, %v", mode, again, err)
		}
		delivered = 0
		// The same long IDs fit a QR code on that label.
		if _, err := label.Next(ctx(t), svc, label.Request{NextParams: allot.NextParams{Sequence: long}, Spec: allot.LabelSpec{Size: "50x25mm", Barcode: allot.BarcodeQR}, Deliver: deliver}); err != nil || delivered != 1 {
			t.Fatalf("%s: qr label of a long ID: %v", mode, err)
		}
	}
}

// testReprint: numbers printed as labels are issued at once in both
// modes and reprint to the same IDs by range, list and key; unissued,
// voided and not-yet-known numbers are refused with ErrNotIssued.
func testReprint(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc := service(t, s)
	for _, mode := range []allot.Mode{allot.ModeGapless, allot.ModeCached} {
		name := "rp-" + string(mode)
		if _, err := svc.SequenceCreate(ctx(t), allot.SequenceCreateParams{Name: name, Format: "LP{n:AA9}", Start: ptr[int64](0), Mode: mode, BlockSize: ptr[int64](50), AllowOverlap: true}); err != nil {
			t.Fatal(err)
		}
		var first label.Document
		var firstRes *allot.NextResult
		res, err := label.Next(ctx(t), svc, label.Request{
			NextParams: allot.NextParams{Sequence: name, Count: 5, IdempotencyKey: "roll-1"},
			Spec:       allot.LabelSpec{Format: allot.LabelZPL},
			Deliver:    func(r *allot.NextResult, d label.Document) error { first, firstRes = d, r; return nil },
		})
		if err != nil || res.First != 0 || res.Last != 4 || firstRes != res {
			t.Fatalf("%s: labels: %+v, %v", mode, res, err)
		}
		if n := bytes.Count(first.Body, []byte("^XA")); n != 5 {
			t.Fatalf("%s: %d labels in the roll, want 5", mode, n)
		}
		reprint := func(p allot.ReprintParams) (label.Document, error) {
			p.Sequence = name
			doc, _, err := label.Reprint(ctx(t), svc, p, allot.LabelSpec{Format: allot.LabelZPL})
			return doc, err
		}
		for _, p := range []allot.ReprintParams{{First: "LPAA0", Last: "LPAA4"}, {IdempotencyKey: "roll-1"}} {
			doc, err := reprint(p)
			if err != nil || !bytes.Equal(doc.Body, first.Body) {
				t.Fatalf("%s: reprint %+v: %v\n%s\nwant\n%s", mode, p, err, doc.Body, first.Body)
			}
		}
		if ids, err := svc.Reprint(ctx(t), allot.ReprintParams{Sequence: name, IDs: []string{"LPAA3", "LPAA1"}}); err != nil || len(ids) != 2 || ids[0] != "LPAA3" {
			t.Fatalf("%s: reprint ids: %v, %v", mode, ids, err)
		}
		// A roll without a key is written to the ledger as issued too (a
		// cached sequence does not serve it from its lease).
		if res, err := label.Next(ctx(t), svc, label.Request{NextParams: allot.NextParams{Sequence: name, Count: 3},
			Deliver: func(*allot.NextResult, label.Document) error { return nil }}); err != nil || res.First != 5 {
			t.Fatalf("%s: second roll: %+v, %v", mode, res, err)
		}
		if ids, err := svc.Reprint(ctx(t), allot.ReprintParams{Sequence: name, First: "LPAA5", Last: "LPAA7"}); err != nil || len(ids) != 3 {
			t.Fatalf("%s: reprint of the second roll: %v, %v", mode, ids, err)
		}
		// Not issued: past the roll, and a number in this server's cached
		// lease that next handed out from memory (not known to be issued
		// until the server says so).
		for _, p := range []allot.ReprintParams{{First: "LPAA0", Last: "LPAA8"}, {IDs: []string{"LPAB9"}}} {
			if _, err := reprint(p); !errors.Is(err, allot.ErrNotIssued) {
				t.Fatalf("%s: reprint %+v: %v, want ErrNotIssued", mode, p, err)
			}
		}
		if mode == allot.ModeCached {
			r, err := svc.Next(ctx(t), allot.NextParams{Sequence: name})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reprint(allot.ReprintParams{IDs: r.IDs}); !errors.Is(err, allot.ErrNotIssued) {
				t.Fatalf("reprint of %s served from a lease: %v, want ErrNotIssued", r.IDs[0], err)
			}
		}
		if _, err := svc.SequenceVoid(ctx(t), allot.VoidParams{Sequence: name, ID: "LPAA2", Reason: "label jammed"}); err != nil {
			t.Fatal(err)
		}
		for _, p := range []allot.ReprintParams{{First: "LPAA0", Last: "LPAA4"}, {IDs: []string{"LPAA2"}}, {IdempotencyKey: "roll-1"}} {
			if _, err := reprint(p); !errors.Is(err, allot.ErrNotIssued) {
				t.Fatalf("%s: reprint %+v after a void: %v, want ErrNotIssued", mode, p, err)
			}
		}
		// A keyed retry of the roll is a reprint too: the voided number is
		// not printed again.
		if _, err := label.Next(ctx(t), svc, label.Request{
			NextParams: allot.NextParams{Sequence: name, Count: 5, IdempotencyKey: "roll-1"},
			Spec:       allot.LabelSpec{Format: allot.LabelZPL},
			Deliver: func(*allot.NextResult, label.Document) error {
				t.Error("a replay with a voided number was delivered")
				return nil
			},
		}); !errors.Is(err, allot.ErrNotIssued) {
			t.Fatalf("%s: replay of a roll with a voided number: %v, want ErrNotIssued", mode, err)
		}
		if doc, err := reprint(allot.ReprintParams{First: "LPAA3", Last: "LPAA4"}); err != nil || bytes.Count(doc.Body, []byte("^XA")) != 2 {
			t.Fatalf("%s: reprint around the void: %v", mode, err)
		}
		for _, p := range []allot.ReprintParams{{}, {First: "LPAA0"}, {First: "LPAA4", Last: "LPAA0"}, {First: "XX", Last: "LPAA1"}, {IDs: []string{"LPAA0"}, IdempotencyKey: "roll-1"}} {
			if _, err := reprint(p); !errors.Is(err, allot.ErrInvalid) {
				t.Fatalf("%s: reprint %+v: %v, want ErrInvalid", mode, p, err)
			}
		}
		if _, err := reprint(allot.ReprintParams{IdempotencyKey: "never-used"}); !errors.Is(err, allot.ErrNotFound) {
			t.Fatalf("%s: reprint by an unknown key: %v, want ErrNotFound", mode, err)
		}
	}
}
