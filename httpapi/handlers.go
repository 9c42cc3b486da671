package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/wire"
)

// readyTimeout bounds the store ping of /readyz.
const readyTimeout = 2 * time.Second

var bodyHealthy = []byte(`{"status":"ok"}` + "\n")

// sequenceCreateBody is the body of POST /v1/sequences: the parameters,
// with the duration read as text so a bad one names its field.
type sequenceCreateBody struct {
	ConfirmWithin *durationText `json:"confirm_within"`
	allot.SequenceCreateParams
}

// sequencePatchBody is the body of PATCH /v1/sequences/{name}.
type sequencePatchBody struct {
	ConfirmWithin *durationText `json:"confirm_within"`
	allot.SequencePatchParams
}

// sequenceCreate serves POST /v1/sequences.
func (s *Server) sequenceCreate(w http.ResponseWriter, r *http.Request) outcome {
	var b sequenceCreateBody
	if err := decodeBody(r, &b); err != nil {
		return s.problem(w, r, err)
	}
	p := b.SequenceCreateParams
	var err error
	if p.ConfirmWithin, err = parseDuration("confirm_within", b.ConfirmWithin); err != nil {
		return s.problem(w, r, err)
	}
	st, err := s.svc.SequenceCreate(r.Context(), p)
	if err != nil {
		return s.problem(w, r, err)
	}
	w.Header().Set("Location", "/v1/sequences/"+url.PathEscape(st.Name))
	return s.writeJSON(w, r, http.StatusCreated, st)
}

// sequenceList serves GET /v1/sequences.
func (s *Server) sequenceList(w http.ResponseWriter, r *http.Request) outcome {
	list, err := s.svc.SequenceList(r.Context())
	if err != nil {
		return s.problem(w, r, err)
	}
	if list == nil {
		list = []*allot.SequenceState{}
	}
	return s.writeJSON(w, r, http.StatusOK, wire.SequenceList{Sequences: list})
}

// sequenceGet serves GET /v1/sequences/{name}?date=: the figures of the
// period date falls in (default today).
func (s *Server) sequenceGet(w http.ResponseWriter, r *http.Request) outcome {
	date := r.URL.Query().Get("date")
	if _, given := r.URL.Query()["date"]; given && date == "" {
		return s.problem(w, r, allot.Invalidf("date", "is empty: give a date as YYYY-MM-DD, or leave date out for today"))
	}
	st, err := s.svc.SequenceGetAt(r.Context(), r.PathValue("name"), date)
	return s.answer(w, r, http.StatusOK, st, err)
}

// sequencePatch serves PATCH /v1/sequences/{name}.
func (s *Server) sequencePatch(w http.ResponseWriter, r *http.Request) outcome {
	var b sequencePatchBody
	if err := decodeBody(r, &b); err != nil {
		return s.problem(w, r, err)
	}
	p := b.SequencePatchParams
	var err error
	if p.ConfirmWithin, err = parseDuration("confirm_within", b.ConfirmWithin); err != nil {
		return s.problem(w, r, err)
	}
	st, err := s.svc.SequencePatch(r.Context(), r.PathValue("name"), p)
	return s.answer(w, r, http.StatusOK, st, err)
}

// next serves POST /v1/sequences/{name}/next, the hot path.
func (s *Server) next(w http.ResponseWriter, r *http.Request) outcome {
	p := allot.NextParams{Sequence: r.PathValue("name")}
	if err := decodeNext(r, &p); err != nil {
		return s.problem(w, r, err)
	}
	key, err := idempotencyKey(r)
	if err != nil {
		return s.problem(w, r, err)
	}
	p.IdempotencyKey = key
	text := wantsText(r.Header["Accept"])
	if text {
		if err := s.checkTextSafe(r.Context(), p.Sequence); err != nil {
			return s.problem(w, r, err)
		}
	}
	// The Service hands the numbers to deliver before it counts them as
	// answered; numbers that could not be delivered (the caller left, the
	// connection broke) are given back, unless a key lets a retry have
	// them.
	var out outcome
	var undelivered error
	p.Deliver = func(res *allot.NextResult) error {
		if err := r.Context().Err(); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				// The server's own deadline, not a caller that left: the
				// numbers go back and the caller gets a 503 below.
				return err
			}
			undelivered = err
			return err
		}
		if res.Replayed {
			w.Header()["Idempotent-Replayed"] = hdrTrue
		}
		bp := getBuf()
		defer putBuf(bp)
		ct := hdrJSON
		if text {
			setNextHeaders(w.Header(), res)
			*bp, ct = appendNextText((*bp)[:0], res), hdrText
		} else {
			*bp = appendNextJSON((*bp)[:0], res)
		}
		var err error
		out, err = deliverBytes(w, http.StatusOK, ct, *bp)
		undelivered = err
		return err
	}
	if _, err := s.svc.Next(r.Context(), p); err != nil {
		if undelivered != nil {
			if out.status == 0 {
				out = outcome{status: statusClientClosed, code: codeUndelivered}
			}
			out.code = codeUndelivered
			return out
		}
		return s.problem(w, r, err)
	}
	return out
}

// setNextHeaders gives a text/plain answer of next what the JSON one says
// besides the IDs: a label printer must see that numbers are reserved
// (and until when), and that the range is nearly used up.
func setNextHeaders(h http.Header, res *allot.NextResult) {
	h["Allot-First"] = []string{strconv.FormatInt(res.First, 10)}
	h["Allot-Last"] = []string{strconv.FormatInt(res.Last, 10)}
	if res.Period != "" {
		h["Allot-Period"] = []string{res.Period}
	}
	h["Allot-Status"] = []string{string(res.Status)}
	if res.ConfirmBy != nil {
		h["Allot-Confirm-By"] = []string{res.ConfirmBy.UTC().Format(time.RFC3339Nano)}
	}
	h["Allot-Remaining"] = []string{strconv.FormatInt(res.Remaining, 10)}
	if res.Warning {
		h["Allot-Warning"] = hdrTrue
	}
}

// sequenceConfirm serves POST /v1/sequences/{name}/confirm.
func (s *Server) sequenceConfirm(w http.ResponseWriter, r *http.Request) outcome {
	var b confirmNumbersBody
	if err := decodeBody(r, &b); err != nil {
		return s.problem(w, r, err)
	}
	if b.First == nil || b.Last == nil {
		return s.problem(w, r, allot.Invalidf("first", "first and last are required: the numbers next returned"))
	}
	e, replayed, err := s.svc.SequenceConfirm(r.Context(), allot.ConfirmParams{Sequence: r.PathValue("name"), Period: b.Period,
		First: *b.First, Last: *b.Last, Reference: b.Reference})
	if err != nil {
		return s.problem(w, r, err)
	}
	if replayed {
		w.Header()["Idempotent-Replayed"] = hdrTrue
	}
	return s.writeJSON(w, r, http.StatusOK, e)
}

// confirmNumbersBody is wire.ConfirmNumbersRequest (the wire contract).
type confirmNumbersBody = wire.ConfirmNumbersRequest

// periodBody is the body of the period close and reopen routes (optional).
type periodBody struct{}

// sequencePeriodClose serves POST /v1/sequences/{name}/periods/{period}/close.
func (s *Server) sequencePeriodClose(w http.ResponseWriter, r *http.Request) outcome {
	return s.periodState(w, r, false)
}

// sequencePeriodReopen serves POST /v1/sequences/{name}/periods/{period}/reopen.
func (s *Server) sequencePeriodReopen(w http.ResponseWriter, r *http.Request) outcome {
	return s.periodState(w, r, true)
}

func (s *Server) periodState(w http.ResponseWriter, r *http.Request, reopen bool) outcome {
	var b periodBody
	if err := decodeOptional(r, &b); err != nil {
		return s.problem(w, r, err)
	}
	st, err := s.svc.SequencePeriodClose(r.Context(), r.PathValue("name"), r.PathValue("period"), reopen)
	return s.answer(w, r, http.StatusOK, st, err)
}

// checkTextSafe refuses text/plain for a sequence whose format has a line
// break in its literal text, before any number is taken: one ID per line
// could not carry such IDs. Formats never change, so the answer is cached.
func (s *Server) checkTextSafe(ctx context.Context, name string) error {
	s.textMu.RLock()
	safe, ok := s.textSafe[name]
	s.textMu.RUnlock()
	if !ok {
		st, err := s.svc.SequenceGet(ctx, name)
		if err != nil {
			return err
		}
		safe = !strings.ContainsAny(st.Format, "\r\n")
		s.textMu.Lock()
		s.textSafe[name] = safe
		s.textMu.Unlock()
	}
	if !safe {
		return &apiError{
			status: http.StatusNotAcceptable, code: wire.CodeInvalid, field: "Accept",
			detail: fmt.Sprintf("IDs of sequence %q contain line breaks, which text/plain (one ID per line) cannot carry: ask for application/json", name),
		}
	}
	return nil
}

// wantsText reports whether an Accept header prefers text/plain to
// application/json. Without a preference the answer is JSON.
func wantsText(accept []string) bool {
	if len(accept) == 0 {
		return false
	}
	if len(accept) == 1 {
		switch accept[0] {
		case "text/plain":
			return true
		case "", "*/*", contentTypeJSON:
			return false
		}
	}
	textQ, textSpec := -1.0, -1
	jsonQ, jsonSpec := -1.0, -1
	for _, h := range accept {
		for part := range strings.SplitSeq(h, ",") {
			mt, params, _ := strings.Cut(part, ";")
			mt = strings.ToLower(strings.TrimSpace(mt))
			q := 1.0
			for param := range strings.SplitSeq(params, ";") {
				k, v, _ := strings.Cut(param, "=")
				if strings.EqualFold(strings.TrimSpace(k), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
						q = f
					}
				}
			}
			match := func(full, group string, bestQ *float64, bestSpec *int) {
				spec := -1
				switch mt {
				case full:
					spec = 2
				case group:
					spec = 1
				case "*/*":
					spec = 0
				}
				if spec > *bestSpec {
					*bestQ, *bestSpec = q, spec
				}
			}
			match("text/plain", "text/*", &textQ, &textSpec)
			match(contentTypeJSON, "application/*", &jsonQ, &jsonSpec)
		}
	}
	if textQ <= 0 {
		return false
	}
	return textQ > jsonQ || (textQ == jsonQ && textSpec > jsonSpec)
}

// voidBody is wire.VoidRequest (the wire contract).
type voidBody = wire.VoidRequest

// sequenceVoid serves POST /v1/sequences/{name}/void.
func (s *Server) sequenceVoid(w http.ResponseWriter, r *http.Request) outcome {
	var b voidBody
	if err := decodeBody(r, &b); err != nil {
		return s.problem(w, r, err)
	}
	e, err := s.svc.SequenceVoid(r.Context(), allot.VoidParams{
		Sequence: r.PathValue("name"), Number: b.Number, ID: b.ID, Date: b.Date, Reason: b.Reason, Force: b.Force,
	})
	if err != nil {
		return s.problem(w, r, err)
	}
	return s.writeJSON(w, r, http.StatusOK, e)
}

// sequenceParse serves GET /v1/sequences/{name}/ids/{id}.
func (s *Server) sequenceParse(w http.ResponseWriter, r *http.Request) outcome {
	res, err := s.svc.SequenceParse(r.Context(), r.PathValue("name"), r.PathValue("id"))
	return s.answer(w, r, http.StatusOK, res, err)
}

// sequenceLedger serves GET /v1/sequences/{name}/ledger?after=&limit=.
func (s *Server) sequenceLedger(w http.ResponseWriter, r *http.Request) outcome {
	q := r.URL.Query()
	limit, err := queryLimit(q)
	if err != nil {
		return s.problem(w, r, err)
	}
	page, err := s.svc.SequenceLedger(r.Context(), r.PathValue("name"), q.Get("after"), limit)
	return s.answer(w, r, http.StatusOK, page, err)
}

// healthz serves GET /healthz: the process is up.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) outcome {
	return writeBytes(w, http.StatusOK, hdrJSON, bodyHealthy)
}

// readyz serves GET /readyz: the service is open and its store answers.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) outcome {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.svc.Ready(ctx); err != nil {
		if !errors.Is(err, allot.ErrClosed) {
			// The Service's store health report logs the outage once; a
			// probe every second must not add a line each.
			// /readyz needs no key: say why without the driver's
			// details (user, database, host), which go to the log.
			why := err.Error()
			if i := strings.LastIndex(why, ": "); i >= 0 {
				why = "the store is unavailable: " + why[i+2:] + " (the server log has the details)"
			}
			if errors.Is(err, context.DeadlineExceeded) {
				why = fmt.Sprintf("the store did not answer within %s", readyTimeout)
			}
			err = &apiError{status: http.StatusServiceUnavailable, code: wire.CodeUnavailable, detail: "not ready: " + why}
		}
		return s.problem(w, r, err)
	}
	return s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ready"})
}

// metrics serves GET /metrics from the registry.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) outcome {
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	s.prom.ServeHTTP(sw, r)
	return outcome{status: sw.status}
}

// openapi serves GET /openapi.json.
func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) outcome {
	w.Header().Set("Cache-Control", "public, max-age=300")
	return writeBytes(w, http.StatusOK, hdrJSON, openapiJSON)
}

// statusWriter remembers the status a foreign handler writes.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader implements http.ResponseWriter.
func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
