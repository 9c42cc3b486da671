package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/wire"
)

// labelAccept is the Accept header of label requests: the documents the
// server answers with, and its problem documents.
const labelAccept = "application/pdf, application/zpl, image/png, application/problem+json"

// LabelsParams are the inputs of Labels: the numbers to take, as for
// Next, and how to print them. What the embedded LabelSpec leaves out
// comes from the sequence's saved label settings, then the defaults.
type LabelsParams struct {
	// Sequence names the sequence to take numbers from.
	Sequence string
	// Count is how many labels (contiguous numbers) to take,
	// 1..allot.LabelCountMax. 0 means 1.
	Count int64
	// Date is the document date, YYYY-MM-DD; "" means today in the
	// sequence's time zone.
	Date string
	// Reference is the caller's document id, kept in the ledger with the
	// numbers ("" for none).
	Reference string
	// ConfirmWithin, when set, makes the numbers two-phase: they are
	// reserved and voided unless confirmed within this time.
	ConfirmWithin time.Duration
	// IdempotencyKey, when set, makes a retry return the same labels
	// (LabelDocument.Replayed is then true).
	IdempotencyKey string
	// LabelSpec says how the labels are printed.
	allot.LabelSpec
}

// LabelDocument is a label document the server rendered, with what it
// holds. A reprint's document carries only what the server says of it
// (at least ContentType and Body): its numbers' figures stay zero.
type LabelDocument struct {
	// ContentType is the document's media type: application/zpl,
	// application/pdf or image/png.
	ContentType string
	// Body is the document.
	Body []byte
	// First and Last are the numbers taken (0 for a reprint).
	First, Last int64
	// FirstID and LastID are the IDs of the first and last labels; ""
	// when the server did not send them (IDs outside printable ASCII
	// can't travel in a header).
	FirstID, LastID string
	// Count is how many labels the document holds; 0 when the server did
	// not say.
	Count int64
	// Period is the numbers' reset period ("" for a sequence that never
	// resets).
	Period string
	// Status is issued, or reserved for two-phase numbers ("" for a
	// reprint).
	Status allot.NumberStatus
	// ConfirmBy is when reserved numbers are voided unless confirmed.
	ConfirmBy *time.Time
	// Remaining is how many numbers were left before max after these.
	Remaining int64
	// Warning is true once the used fraction of the range passed warn_at.
	Warning bool
	// Replayed is true when the server answered a retry with the same
	// Idempotency-Key with the labels it had rendered before.
	Replayed bool
}

// Labels takes p.Count numbers (1 when 0) of p.Sequence exactly as Next
// does and returns their labels as one document in p.Format. The label
// is checked before anything is taken: a bad spec, or a label the
// sequence's IDs don't fit on, fails with an error that unwraps to
// allot.ErrInvalid and takes nothing. With p.IdempotencyKey set, a retry
// returns the same document with Replayed true.
func (c *Client) Labels(ctx context.Context, p LabelsParams) (*LabelDocument, error) {
	body := wire.LabelsRequest{NextRequest: nextBody(allot.NextParams{Count: p.Count, Date: p.Date, Reference: p.Reference,
		ConfirmWithin: p.ConfirmWithin}), LabelSpec: p.LabelSpec}
	r := sequenceReq(http.MethodPost, p.Sequence, "labels").with(body).keyed(p.IdempotencyKey)
	r.accept = labelAccept
	return c.labelCall(ctx, r)
}

// Reprint renders labels again for numbers of p.Sequence already issued,
// named in exactly one way: p.First and p.Last (IDs of one date), p.IDs,
// or p.IdempotencyKey (the key of the request that issued them). Nothing
// is taken. A number never issued or voided fails with an error that
// unwraps to allot.ErrNotIssued, and nothing is printed. What spec leaves
// out comes from the sequence's saved label settings, then the defaults.
// An ID with a comma can't be named in p.IDs (the API separates them
// with commas): give it as both First and Last.
func (c *Client) Reprint(ctx context.Context, p allot.ReprintParams, spec allot.LabelSpec) (*LabelDocument, error) {
	r := sequenceReq(http.MethodGet, p.Sequence, "labels")
	q := url.Values{}
	set := func(name, v string) {
		if v != "" {
			q.Set(name, v)
		}
	}
	set("first", p.First)
	set("last", p.Last)
	if len(p.IDs) > 0 {
		for _, id := range p.IDs {
			if strings.Contains(id, ",") {
				// The query separates IDs with commas.
				return nil, allot.Invalidf("ids", "%q has a comma, which the API takes as a separator: reprint it as a range with First and Last set to it", id)
			}
		}
		q.Set("ids", strings.Join(p.IDs, ","))
	}
	set("idempotency_key", p.IdempotencyKey)
	set("format", string(spec.Format))
	set("barcode", string(spec.Barcode))
	set("size", spec.Size)
	if spec.DPI != 0 {
		q.Set("dpi", strconv.Itoa(spec.DPI))
	}
	set("layout", spec.Layout)
	if spec.Text != nil {
		q.Set("text", strconv.FormatBool(*spec.Text))
	}
	set("title", spec.Title)
	r.query = q
	r.accept = labelAccept
	return c.labelCall(ctx, r)
}

// labelCall sends a label request and reads the document and the
// Allot-* headers that describe it.
func (c *Client) labelCall(ctx context.Context, r request) (*LabelDocument, error) {
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("allot: %s %s: read response: %w", r.method, r.path, err)
	}
	if len(raw) > maxResponse {
		return nil, fmt.Errorf("allot: %s %s: the document is larger than %d bytes", r.method, r.path, maxResponse)
	}
	h := resp.Header
	doc := &LabelDocument{ContentType: h.Get("Content-Type"), Body: raw, Period: h.Get("Allot-Period"),
		Status: allot.NumberStatus(h.Get("Allot-Status")), FirstID: h.Get("Allot-First-Id"), LastID: h.Get("Allot-Last-Id"),
		Warning: h.Get("Allot-Warning") == "true", Replayed: h.Get("Idempotent-Replayed") == "true"}
	for _, f := range []struct {
		name string
		v    *int64
	}{{"Allot-First", &doc.First}, {"Allot-Last", &doc.Last}, {"Allot-Count", &doc.Count}, {"Allot-Remaining", &doc.Remaining}} {
		v := h.Get(f.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("allot: %s %s: header %s: %q is not a number", r.method, r.path, f.name, v)
		}
		*f.v = n
	}
	if v := h.Get("Allot-Confirm-By"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, fmt.Errorf("allot: %s %s: header Allot-Confirm-By: %q is not a time", r.method, r.path, v)
		}
		doc.ConfirmBy = &t
	}
	return doc, nil
}
