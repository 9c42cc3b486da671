package client_test

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/allot/allot"
	"github.com/allot/allot/client"
)

// zplBarcodes are the Code 128 payloads of a ZPL document, in order.
var zplBarcodes = regexp.MustCompile(`\^FD>:([^^]*)\^FS`)

func zplIDs(body []byte) []string {
	var ids []string
	for _, m := range zplBarcodes.FindAllSubmatch(body, -1) {
		ids = append(ids, string(m[1]))
	}
	return ids
}

// TestLabelsRoundTrip: labels take numbers and answer the document with
// next's figures; a replay answers the same bytes; a reprint by range,
// ids or idempotency key renders the same IDs again.
func TestLabelsRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	admin, cl := s.client(t, adminKey), s.client(t, clientKey)
	// A cached sequence: printed numbers are recorded as issued all the
	// same, so a reprint finds them at once.
	if _, err := admin.SequenceCreate(ctx, allot.SequenceCreateParams{Name: "lp", Format: "LP{n:6}", Max: ptr(int64(999999))}); err != nil {
		t.Fatal(err)
	}

	p := client.LabelsParams{Sequence: "lp", Count: 3, IdempotencyKey: "roll-1", Reference: "pallet-7",
		LabelSpec: allot.LabelSpec{Format: allot.LabelZPL}}
	doc, err := cl.Labels(ctx, p)
	if err != nil {
		t.Fatalf("Labels: %v", err)
	}
	if doc.ContentType != "application/zpl" || bytes.Count(doc.Body, []byte("^XA")) != 3 || bytes.Count(doc.Body, []byte("^XZ")) != 3 {
		t.Fatalf("Labels: %s with\n%s", doc.ContentType, doc.Body)
	}
	want := []string{"LP000001", "LP000002", "LP000003"}
	if ids := zplIDs(doc.Body); !slices.Equal(ids, want) {
		t.Fatalf("bar codes %q, want %q", ids, want)
	}
	if doc.First != 1 || doc.Last != 3 || doc.Count != 3 || doc.FirstID != "LP000001" || doc.LastID != "LP000003" ||
		doc.Status != allot.StatusIssued || doc.Period != "" || doc.Remaining != 999996 || doc.Replayed || doc.ConfirmBy != nil {
		t.Fatalf("Labels figures: %+v", *doc)
	}

	again, err := cl.Labels(ctx, p)
	if err != nil {
		t.Fatalf("Labels replay: %v", err)
	}
	if !again.Replayed || !bytes.Equal(again.Body, doc.Body) || again.First != 1 || again.Last != 3 || again.FirstID != doc.FirstID {
		t.Fatalf("Labels replay: %+v", *again)
	}
	if _, err := cl.Labels(ctx, client.LabelsParams{Sequence: "lp", Count: 4, IdempotencyKey: "roll-1", LabelSpec: p.LabelSpec}); !errors.Is(err, allot.ErrIdempotencyMismatch) {
		t.Fatalf("Labels with the key of another request: %v", err)
	}

	zpl := allot.LabelSpec{Format: allot.LabelZPL}
	for _, rp := range []allot.ReprintParams{
		{Sequence: "lp", First: "LP000001", Last: "LP000003"},
		{Sequence: "lp", IdempotencyKey: "roll-1"},
		{Sequence: "lp", IDs: want},
	} {
		re, err := cl.Reprint(ctx, rp, zpl)
		if err != nil {
			t.Fatalf("Reprint %+v: %v", rp, err)
		}
		if re.ContentType != "application/zpl" || !bytes.Equal(re.Body, doc.Body) || !slices.Equal(zplIDs(re.Body), want) || re.Replayed {
			t.Fatalf("Reprint %+v: %+v\n%s", rp, *re, re.Body)
		}
	}
	one, err := cl.Reprint(ctx, allot.ReprintParams{Sequence: "lp", IDs: []string{"LP000002"}}, allot.LabelSpec{Format: allot.LabelZPL, Text: ptr(false), Title: "ACME"})
	if err != nil || !slices.Equal(zplIDs(one.Body), []string{"LP000002"}) || bytes.Contains(one.Body, []byte("^FDLP000002")) || !bytes.Contains(one.Body, []byte("^FDACME^FS")) {
		t.Fatalf("Reprint one without text, with a title: %v\n%s", err, one.Body)
	}

	// Other formats; the numbers after the roll.
	pdf, err := cl.Labels(ctx, client.LabelsParams{Sequence: "lp", Count: 2, LabelSpec: allot.LabelSpec{Layout: "a4"}})
	if err != nil || pdf.ContentType != "application/pdf" || !bytes.HasPrefix(pdf.Body, []byte("%PDF-")) || pdf.First != 4 || pdf.Last != 5 || pdf.Count != 2 {
		t.Fatalf("Labels pdf: %v %+v", err, pdf)
	}
	png, err := cl.Labels(ctx, client.LabelsParams{Sequence: "lp", LabelSpec: allot.LabelSpec{Format: allot.LabelPNG, Barcode: allot.BarcodeQR, DPI: 300}})
	if err != nil || png.ContentType != "image/png" || !bytes.HasPrefix(png.Body, []byte("\x89PNG")) || png.First != 6 || png.Count != 1 || png.FirstID != "LP000006" {
		t.Fatalf("Labels png: %v %+v", err, png)
	}
	re, err := cl.Reprint(ctx, allot.ReprintParams{Sequence: "lp", IDs: []string{"LP000006"}}, allot.LabelSpec{Format: allot.LabelPNG, Barcode: allot.BarcodeQR, DPI: 300})
	if err != nil || !bytes.Equal(re.Body, png.Body) {
		t.Fatalf("Reprint png: %v", err)
	}
}

// TestLabelsRefused: a reprint of numbers not issued unwraps to
// allot.ErrNotIssued; a bad label spec unwraps to allot.ErrInvalid and
// takes nothing.
func TestLabelsRefused(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	admin, cl := s.client(t, adminKey), s.client(t, clientKey)
	if _, err := admin.SequenceCreate(ctx, allot.SequenceCreateParams{Name: "lp", Format: "LP{n:6}", Mode: allot.ModeGapless, Max: ptr(int64(999999))}); err != nil {
		t.Fatal(err)
	}
	zpl := allot.LabelSpec{Format: allot.LabelZPL}
	if _, err := cl.Labels(ctx, client.LabelsParams{Sequence: "lp", Count: 3, LabelSpec: zpl}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.SequenceVoid(ctx, allot.VoidParams{Sequence: "lp", ID: "LP000002", Reason: "label jammed"}); err != nil {
		t.Fatal(err)
	}
	before, err := cl.SequenceGet(ctx, "lp")
	if err != nil || before.Next != 4 || before.Issued != 2 || before.Voided != 1 {
		t.Fatalf("before: %+v, %v", before, err)
	}

	for _, rp := range []allot.ReprintParams{
		{Sequence: "lp", IDs: []string{"LP000004"}},             // never issued
		{Sequence: "lp", First: "LP000003", Last: "LP000005"},   // partly issued
		{Sequence: "lp", IDs: []string{"LP000001", "LP000002"}}, // voided
		{Sequence: "lp", First: "LP000001", Last: "LP000003"},   // a voided one inside
	} {
		_, err := cl.Reprint(ctx, rp, zpl)
		if p := wantProblem(t, "reprint "+strings.Join(append(rp.IDs, rp.First, rp.Last), " "), err, allot.ErrNotIssued); p.Status != 409 || p.Code != "not_issued" {
			t.Fatalf("reprint %+v: %+v", rp, p)
		}
	}
	for _, tc := range []struct {
		rp    allot.ReprintParams
		field string
	}{
		{allot.ReprintParams{Sequence: "lp"}, ""},
		{allot.ReprintParams{Sequence: "lp", First: "LP000001", IdempotencyKey: "k"}, ""},
		{allot.ReprintParams{Sequence: "lp", First: "LP000001"}, "last"},
		{allot.ReprintParams{Sequence: "lp", First: "LP000003", Last: "LP000001"}, "last"},
		{allot.ReprintParams{Sequence: "lp", IDs: []string{"XX1"}}, "ids"},
	} {
		_, err := cl.Reprint(ctx, tc.rp, zpl)
		if p := wantProblem(t, "reprint", err, allot.ErrInvalid); p.Field != tc.field {
			t.Errorf("reprint %+v: field %q, want %q (%v)", tc.rp, p.Field, tc.field, p)
		}
	}
	if _, err := cl.Reprint(ctx, allot.ReprintParams{Sequence: "lp", IdempotencyKey: "never-used"}, zpl); !errors.Is(err, allot.ErrNotFound) {
		t.Fatalf("reprint of an unknown key: %v", err)
	}

	for _, tc := range []struct {
		p     client.LabelsParams
		field string
	}{
		{client.LabelsParams{LabelSpec: allot.LabelSpec{Format: "gif"}}, "format"},
		{client.LabelsParams{LabelSpec: allot.LabelSpec{Barcode: "ean13"}}, "barcode"},
		{client.LabelsParams{LabelSpec: allot.LabelSpec{Size: "huge"}}, "size"},
		{client.LabelsParams{LabelSpec: allot.LabelSpec{DPI: 600}}, "dpi"},
		{client.LabelsParams{LabelSpec: allot.LabelSpec{Format: allot.LabelZPL, Layout: "a4"}}, "layout"},
		{client.LabelsParams{LabelSpec: allot.LabelSpec{Title: strings.Repeat("x", allot.LabelTitleMax+1)}}, "title"},
		// A label too narrow for the sequence's IDs as Code 128.
		{client.LabelsParams{LabelSpec: allot.LabelSpec{Size: "15x15mm"}}, "size"},
		{client.LabelsParams{LabelSpec: allot.LabelSpec{Barcode: allot.BarcodeGS1128}}, "barcode"},
		{client.LabelsParams{Count: 2, LabelSpec: allot.LabelSpec{Format: allot.LabelPNG}}, "format"},
		{client.LabelsParams{Count: allot.LabelCountMax + 1}, "count"},
	} {
		tc.p.Sequence = "lp"
		_, err := cl.Labels(ctx, tc.p)
		if p := wantProblem(t, "labels", err, allot.ErrInvalid); p.Field != tc.field {
			t.Errorf("labels %+v: field %q, want %q (%v)", tc.p.LabelSpec, p.Field, tc.field, p)
		}
		// Refused with its key: the key stays unused.
		tc.p.IdempotencyKey = "refused-" + tc.field
		if _, err := cl.Labels(ctx, tc.p); !errors.Is(err, allot.ErrInvalid) {
			t.Errorf("labels %+v with a key: %v", tc.p.LabelSpec, err)
		}
	}
	if _, err := cl.Labels(ctx, client.LabelsParams{Sequence: "nope"}); !errors.Is(err, allot.ErrNotFound) {
		t.Fatalf("labels of an unknown sequence: %v", err)
	}
	if _, err := cl.Labels(ctx, client.LabelsParams{}); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("labels without a sequence: %v", err)
	}
	if _, err := cl.Reprint(ctx, allot.ReprintParams{IDs: []string{"LP000001"}}, zpl); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("reprint without a sequence: %v", err)
	}

	after, err := cl.SequenceGet(ctx, "lp")
	if err != nil || after.Next != before.Next || after.Issued != before.Issued || after.Voided != before.Voided || after.Remaining != before.Remaining {
		t.Fatalf("refused labels took numbers: before %+v, after %+v, %v", before, after, err)
	}
	if _, err := cl.Reprint(ctx, allot.ReprintParams{Sequence: "lp", IdempotencyKey: "refused-format"}, zpl); !errors.Is(err, allot.ErrNotFound) {
		t.Fatalf("the key of a refused label request was kept: %v", err)
	}
}

// TestLabelSettings: label settings saved with a sequence are what a
// label request leaves out; patching {} removes them.
func TestLabelSettings(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	admin, cl := s.client(t, adminKey), s.client(t, clientKey)
	saved := &allot.LabelSpec{Format: allot.LabelZPL, Size: "4x2in", Title: "DOCK 4"}
	st, err := admin.SequenceCreate(ctx, allot.SequenceCreateParams{Name: "lp", Format: "LP{n:6}", Max: ptr(int64(999999)), Label: saved})
	if err != nil || st.Label == nil || *st.Label != *saved {
		t.Fatalf("SequenceCreate with label: %+v, %v", st, err)
	}
	doc, err := cl.Labels(ctx, client.LabelsParams{Sequence: "lp"})
	if err != nil || doc.ContentType != "application/zpl" || !bytes.Contains(doc.Body, []byte("^FDDOCK 4^FS")) || doc.Count != 1 {
		t.Fatalf("Labels with saved settings: %v %+v", err, doc)
	}
	// A field given overrides the saved one.
	doc, err = cl.Labels(ctx, client.LabelsParams{Sequence: "lp", LabelSpec: allot.LabelSpec{Format: allot.LabelPDF}})
	if err != nil || doc.ContentType != "application/pdf" {
		t.Fatalf("Labels over saved settings: %v %+v", err, doc)
	}
	if _, err := admin.SequencePatch(ctx, "lp", allot.SequencePatchParams{Label: &allot.LabelSpec{Format: "gif"}}); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("SequencePatch with a bad label: %v", err)
	}
	st, err = admin.SequencePatch(ctx, "lp", allot.SequencePatchParams{Label: &allot.LabelSpec{}})
	if err != nil || st.Label != nil {
		t.Fatalf("SequencePatch label {}: %+v, %v", st, err)
	}
	doc, err = cl.Labels(ctx, client.LabelsParams{Sequence: "lp"})
	if err != nil || doc.ContentType != "application/pdf" {
		t.Fatalf("Labels after the settings were removed: %v %+v", err, doc)
	}
}

// TestReprintCommaID: an ID with a comma can't travel in ids (commas
// separate them there), so it is refused before anything is sent; as
// first and last it reprints.
func TestReprintCommaID(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	cl := s.client(t, adminKey)
	if _, err := cl.SequenceCreate(ctx, allot.SequenceCreateParams{Name: "c", Format: "A,{n:3}", Max: ptr(int64(999))}); err != nil {
		t.Fatal(err)
	}
	zpl := allot.LabelSpec{Format: allot.LabelZPL}
	doc, err := cl.Labels(ctx, client.LabelsParams{Sequence: "c", LabelSpec: zpl})
	if err != nil || doc.FirstID != "A,001" {
		t.Fatalf("Labels: %v %+v", err, doc)
	}
	_, err = cl.Reprint(ctx, allot.ReprintParams{Sequence: "c", IDs: []string{"A,001"}}, zpl)
	var p *client.Problem
	if !errors.Is(err, allot.ErrInvalid) || errors.As(err, &p) || !strings.Contains(err.Error(), "First and Last") {
		t.Fatalf("Reprint ids with a comma: %v", err)
	}
	re, err := cl.Reprint(ctx, allot.ReprintParams{Sequence: "c", First: "A,001", Last: "A,001"}, zpl)
	if err != nil || !bytes.Equal(re.Body, doc.Body) {
		t.Fatalf("Reprint first=last with a comma: %v", err)
	}
}
