package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/allot/allot"
	"github.com/allot/allot/label"
	"github.com/allot/allot/wire"
)

// labelsQuery is what GET /v1/sequences/{name}/labels accepts: the
// numbers to reprint, in one way, and the label fields.
var labelsQuery = []string{"first", "last", "ids", "idempotency_key", "format", "barcode", "size", "dpi", "layout", "text", "title"}

// labels serves POST /v1/sequences/{name}/labels: it issues numbers
// exactly as next does and answers with their labels (Content-Type
// follows the format), with next's figures in Allot-* headers. A label
// that is refused issues nothing; one that can't be delivered gives its
// numbers back, as next does.
func (s *Server) labels(w http.ResponseWriter, r *http.Request) outcome {
	req := label.Request{NextParams: allot.NextParams{Sequence: r.PathValue("name")}}
	var body wire.LabelsRequest
	err := withBody(r, func(b []byte) error {
		if err := decodeJSON(b, &body); err != nil {
			return err
		}
		return applyNext(&body.NextRequest, &req.NextParams)
	})
	if err != nil {
		return s.problem(w, r, err)
	}
	req.Spec = body.LabelSpec
	if req.IdempotencyKey, err = idempotencyKey(r); err != nil {
		return s.problem(w, r, err)
	}
	var out outcome
	var undelivered error
	req.Deliver = func(res *allot.NextResult, doc label.Document) error {
		if err := r.Context().Err(); err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				undelivered = err
			}
			return err
		}
		if res.Replayed {
			w.Header()["Idempotent-Replayed"] = hdrTrue
		}
		setNextHeaders(w.Header(), res)
		setLabelHeaders(w.Header(), res.IDs)
		var err error
		out, err = deliverBytes(w, http.StatusOK, []string{doc.ContentType}, doc.Body)
		undelivered = err
		return err
	}
	if _, err := label.Next(r.Context(), s.svc, req); err != nil {
		if undelivered != nil {
			if out.status == 0 {
				out = outcome{status: statusClientClosed}
			}
			out.code = codeUndelivered
			return out
		}
		return s.problem(w, r, err)
	}
	return out
}

// setLabelHeaders says which IDs a label document holds.
func setLabelHeaders(h http.Header, ids []string) {
	h["Allot-Count"] = []string{strconv.Itoa(len(ids))}
	if len(ids) > 0 && headerSafe(ids[0]) && headerSafe(ids[len(ids)-1]) {
		h["Allot-First-Id"] = []string{ids[0]}
		h["Allot-Last-Id"] = []string{ids[len(ids)-1]}
	}
}

// headerSafe reports whether v can be sent as a header value as it is.
func headerSafe(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// reprint serves GET /v1/sequences/{name}/labels: labels for numbers
// already issued (first and last, ids, or idempotency_key), refusing any
// that were not issued or were voided, so nothing is printed twice that
// the ledger does not show as handed out.
func (s *Server) reprint(w http.ResponseWriter, r *http.Request) outcome {
	q := r.URL.Query()
	p := allot.ReprintParams{Sequence: r.PathValue("name"), First: q.Get("first"), Last: q.Get("last"), IdempotencyKey: q.Get("idempotency_key")}
	for name := range q {
		if q.Get(name) == "" {
			return s.problem(w, r, allot.Invalidf(name, "is empty: give a value, or leave %s out", name))
		}
	}
	if v := q.Get("ids"); v != "" {
		for _, id := range strings.Split(v, ",") {
			if id == "" {
				return s.problem(w, r, allot.Invalidf("ids", "has an empty ID: separate IDs with single commas"))
			}
			p.IDs = append(p.IDs, id)
		}
	}
	spec := allot.LabelSpec{Format: allot.LabelFormat(q.Get("format")), Barcode: allot.Symbology(q.Get("barcode")),
		Size: q.Get("size"), Layout: q.Get("layout"), Title: q.Get("title")}
	if v := q.Get("dpi"); v != "" {
		dpi, err := strconv.Atoi(v)
		if err != nil {
			return s.problem(w, r, allot.Invalidf("dpi", "%q is not a number: use 203 or 300", v))
		}
		spec.DPI = dpi
	}
	if v := q.Get("text"); v != "" {
		t, err := strconv.ParseBool(v)
		if err != nil {
			return s.problem(w, r, allot.Invalidf("text", "%q is not true or false", v))
		}
		spec.Text = &t
	}
	doc, ids, err := label.Reprint(r.Context(), s.svc, p, spec)
	if err != nil {
		return s.problem(w, r, err)
	}
	setLabelHeaders(w.Header(), ids)
	out, _ := deliverBytes(w, http.StatusOK, []string{doc.ContentType}, doc.Body)
	return out
}
