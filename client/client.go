// Package client is the Go client of allot's HTTP API v1 (package
// httpapi).
//
// # Guarantees
//
//   - Every method makes exactly one HTTP request and never retries, so a
//     number or a unit is never taken twice on the client's behalf. To
//     retry Next, ClaimCreate, ClaimConfirm, ClaimRelease or ClaimExtend
//     safely after a network error, pass an idempotency key and call again
//     with the same key and parameters: the server returns the same
//     outcome and marks it replayed (NextResult.Replayed, the replayed
//     result of ClaimCreate, Claim.Replayed).
//   - Every error the server reports comes back as a *Problem whose Unwrap
//     returns the matching allot sentinel (allot.ErrInvalid,
//     allot.ErrNotFound, allot.ErrExhausted, allot.ErrSoldOut,
//     allot.ErrCustomerLimit, allot.ErrPoolClosed, allot.ErrClaimExpired,
//     allot.ErrInvalidState, ...), so errors.Is works the same across the
//     wire as in process. Transport errors are returned as they are
//     (wrapped with the operation).
//   - Sequence and pool names, IDs and claim ids are path-escaped, so IDs
//     may contain '/', spaces, '?' or '%' and even be "." or "..".
//   - A Client is safe for concurrent use. Deadlines and cancellation come
//     from the context of each call.
package client

import (
	"bytes"
	"context"
	"encoding/json"
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

// maxResponse caps the size of a successful response body that is read.
// 100000 IDs of 256 bytes each, JSON-escaped, stay well below it.
const maxResponse = 256 << 20

// maxProblem caps how much of an error response body is read.
const maxProblem = 64 << 10

// Client calls an allot server. Create it with New.
type Client struct {
	base string // scheme://host[/prefix], without a trailing slash
	key  string
	hc   *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithKey sends token as "Authorization: Bearer <token>" on every request.
func WithKey(token string) Option { return func(c *Client) { c.key = token } }

// WithHTTPClient makes the Client send requests with hc instead of
// http.DefaultClient.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// New returns a Client for the server at baseURL, e.g.
// "http://127.0.0.1:8080" (a path prefix is kept, for servers behind a
// reverse proxy). A baseURL without a scheme, such as "127.0.0.1:7070"
// or "allot.internal", means http://.
func New(baseURL string, opts ...Option) (*Client, error) {
	full := baseURL
	if full != "" && !strings.Contains(full, "://") {
		full = "http://" + full
	}
	u, err := url.Parse(full)
	if err != nil {
		return nil, fmt.Errorf("client: base URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q must be http:// or https:// with a host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("client: base URL %q must not have a query, fragment or user info", baseURL)
	}
	c := &Client{base: strings.TrimSuffix(u.String(), "/"), hc: http.DefaultClient}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = http.DefaultClient
	}
	return c, nil
}

// BaseURL returns the URL of the server the Client calls, with its
// scheme and without a trailing slash, e.g. "http://127.0.0.1:7070".
func (c *Client) BaseURL() string { return c.base }

// Problem is an error response of the server (RFC 9457 problem details).
type Problem struct {
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Code is the stable error code, e.g. "sequence_exhausted".
	Code string `json:"code"`
	// Title is a short human-readable summary of the code.
	Title string `json:"title"`
	// Detail says what went wrong and what to do about it.
	Detail string `json:"detail"`
	// Type is the problem type URI.
	Type string `json:"type"`
	// Field names the offending request field of an invalid_request.
	Field string `json:"field,omitempty"`
	// Remaining is how many numbers were left, for sequence_exhausted.
	Remaining int64 `json:"remaining,omitempty"`
	// Requested is what the request asked for: numbers for
	// sequence_exhausted, units for sold_out and customer_limit, the new
	// capacity for invalid_state of a capacity change.
	Requested int64 `json:"requested,omitempty"`
	// Available is how many units the pool had left, for sold_out.
	Available int64 `json:"available,omitempty"`
	// Limit is the pool's per-customer limit, for customer_limit.
	Limit int64 `json:"limit,omitempty"`
	// Used is how many units the customer already holds or bought, for
	// customer_limit.
	Used int64 `json:"used,omitempty"`
	// Capacity is the pool's current capacity, for invalid_state of a
	// capacity change.
	Capacity int64 `json:"capacity,omitempty"`
	// Held is how many units are in live holds, for invalid_state of a
	// capacity change.
	Held int64 `json:"held,omitempty"`
	// Confirmed is how many units are sold, for invalid_state of a
	// capacity change.
	Confirmed int64 `json:"confirmed,omitempty"`
	// Sequence names the other sequence of a range_overlap.
	Sequence string `json:"sequence,omitempty"`
	// RequestID identifies the request in the server's logs.
	RequestID string `json:"request_id,omitempty"`

	// raw is the problem document as the server sent it.
	raw []byte
}

// Document returns the problem document as the server sent it (JSON), or,
// for a Problem that does not come from one (e.g. a proxy's error page),
// the Problem encoded as JSON.
func (p *Problem) Document() json.RawMessage {
	if len(p.raw) > 0 {
		return append(json.RawMessage(nil), p.raw...)
	}
	b, err := json.Marshal(p)
	if err != nil { // cannot happen: a Problem holds only strings and numbers
		return json.RawMessage(`{}`)
	}
	return b
}

// Error implements error.
func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString("allot: ")
	b.WriteString(strconv.Itoa(p.Status))
	if p.Code != "" {
		b.WriteString(" " + p.Code)
	}
	switch {
	case p.Detail != "":
		b.WriteString(": " + p.Detail)
	case p.Title != "":
		b.WriteString(": " + p.Title)
	}
	return b.String()
}

// Unwrap returns the allot sentinel matching the problem's code (nil for
// codes without one, such as internal), so errors.Is(err,
// allot.ErrExhausted) works across the wire.
func (p *Problem) Unwrap() error {
	if k, ok := wire.ByCode(p.Code); ok {
		switch len(k.Sentinels) {
		case 0:
			return nil
		case 1:
			return k.Sentinels[0]
		}
		return joinedErr(k.Sentinels)
	}
	if p.Code == "" {
		// Not an allot problem (e.g. a proxy's error page): go by status.
		switch p.Status {
		case http.StatusUnauthorized:
			return allot.ErrUnauthorized
		case http.StatusForbidden:
			return allot.ErrForbidden
		case http.StatusNotFound:
			return allot.ErrNotFound
		}
	}
	return nil
}

// seg path-escapes one path segment. "." and ".." are escaped too, so no
// client or server cleans them out of the path.
func seg(s string) string {
	switch e := url.PathEscape(s); e {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	default:
		return e
	}
}

// under makes a request to method the resource named name below
// collection (e.g. "/v1/pools"), then the path segments rest (already
// escaped). An empty name makes a request that fails with an
// invalid_request naming field, before anything is sent.
func under(method, collection, field, name string, rest ...string) request {
	if name == "" {
		return request{err: allot.Invalidf(field, "is required")}
	}
	p := collection + "/" + seg(name)
	for _, r := range rest {
		p += "/" + r
	}
	return request{method: method, path: p}
}

func sequenceReq(method, name string, rest ...string) request {
	return under(method, "/v1/sequences", "sequence", name, rest...)
}

func poolReq(method, name string, rest ...string) request {
	return under(method, "/v1/pools", "pool", name, rest...)
}

// request is one call to the server.
type request struct {
	method string
	path   string // already escaped
	query  url.Values
	body   any // encoded as JSON when not nil
	accept string
	header http.Header
	// err, when set, fails the call before anything is sent.
	err error
}

// with returns r carrying body.
func (r request) with(body any) request { r.body = body; return r }

// keyed returns r carrying the Idempotency-Key key (none when "").
func (r request) keyed(key string) request {
	if key != "" {
		r.header = http.Header{"Idempotency-Key": {key}}
	}
	return r
}

// do sends req and returns the response of a 2xx status; any other status
// is returned as a *Problem. The caller closes the body.
func (c *Client) do(ctx context.Context, req request) (*http.Response, error) {
	if req.err != nil {
		return nil, req.err
	}
	target := c.base + req.path
	if len(req.query) > 0 {
		target += "?" + req.query.Encode()
	}
	var body io.Reader
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return nil, fmt.Errorf("allot: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("allot: %s %s: %w", req.method, req.path, err)
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if req.accept == "" {
		req.accept = "application/json"
	}
	hr.Header.Set("Accept", req.accept)
	hr.Header.Set("User-Agent", "allot-go-client/1")
	if c.key != "" {
		hr.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.hc.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("allot: %s %s: %w", req.method, req.path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, readProblem(resp)
}

// readProblem decodes an error response. Bodies that are not problems
// (e.g. from a proxy) still give a Problem with the status.
func readProblem(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxProblem))
	p := &Problem{}
	if err := json.Unmarshal(raw, p); err != nil || p.Code == "" {
		p = &Problem{Title: http.StatusText(resp.StatusCode)}
		if s := strings.TrimSpace(string(raw)); s != "" {
			if len(s) > 200 {
				s = s[:200] + "..."
			}
			p.Detail = s
		}
	} else {
		p.raw = bytes.TrimSpace(raw)
	}
	p.Status = resp.StatusCode
	if p.RequestID == "" {
		p.RequestID = resp.Header.Get("X-Request-Id")
	}
	return p
}

// send sends r, decodes the answer into a new T and says whether the
// server replayed it (an idempotent retry, or a repeat with the same
// reference).
func send[T any](ctx context.Context, c *Client, r request) (v *T, replayed bool, err error) {
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	v = new(T)
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(v); err != nil {
		return nil, false, fmt.Errorf("allot: %s %s: decode response: %w", r.method, r.path, err)
	}
	return v, resp.Header.Get("Idempotent-Replayed") == "true", nil
}

// callInto sends r and decodes the answer into a new T.
func callInto[T any](ctx context.Context, c *Client, r request) (*T, error) {
	v, _, err := send[T](ctx, c, r)
	return v, err
}

// SequenceCreate creates a sequence (admin).
func (c *Client) SequenceCreate(ctx context.Context, p allot.SequenceCreateParams) (*allot.SequenceState, error) {
	return callInto[allot.SequenceState](ctx, c, request{method: http.MethodPost, path: "/v1/sequences", body: p})
}

// SequenceGet returns a sequence with its figures for the current period.
func (c *Client) SequenceGet(ctx context.Context, name string) (*allot.SequenceState, error) {
	return c.SequenceGetAt(ctx, name, "")
}

// SequenceGetAt returns a sequence with the figures of the period date
// (YYYY-MM-DD) falls in; "" means today.
func (c *Client) SequenceGetAt(ctx context.Context, name, date string) (*allot.SequenceState, error) {
	r := sequenceReq(http.MethodGet, name)
	if date != "" {
		r.query = url.Values{"date": {date}}
	}
	return callInto[allot.SequenceState](ctx, c, r)
}

// SequenceConfirm confirms two-phase numbers p.First..p.Last (returned
// reserved by Next with ConfirmWithin): they become issued. A repeat with
// the same reference is a replay (replayed is true). Past their deadline
// the error unwraps to allot.ErrInvalidState.
func (c *Client) SequenceConfirm(ctx context.Context, p allot.ConfirmParams) (entry *allot.LedgerEntry, replayed bool, err error) {
	return send[allot.LedgerEntry](ctx, c, sequenceReq(http.MethodPost, p.Sequence, "confirm").
		with(wire.ConfirmNumbersRequest{First: &p.First, Last: &p.Last, Period: p.Period, Reference: p.Reference}))
}

// SequencePeriodClose closes period (e.g. "2025") of a resetting
// sequence to new numbers, or reopens it (admin).
func (c *Client) SequencePeriodClose(ctx context.Context, name, period string, reopen bool) (*allot.SequenceState, error) {
	if period == "" {
		return nil, allot.Invalidf("period", "is required")
	}
	action := "close"
	if reopen {
		action = "reopen"
	}
	return callInto[allot.SequenceState](ctx, c, sequenceReq(http.MethodPost, name, "periods", seg(period), action).with(struct{}{}))
}

// SequenceList returns every sequence with its figures, ordered by name.
func (c *Client) SequenceList(ctx context.Context) ([]*allot.SequenceState, error) {
	out, err := callInto[wire.SequenceList](ctx, c, request{method: http.MethodGet, path: "/v1/sequences"})
	if err != nil {
		return nil, err
	}
	return nonNil(out.Sequences), nil
}

// SequencePatch changes max and/or warn_at (admin).
func (c *Client) SequencePatch(ctx context.Context, name string, p allot.SequencePatchParams) (*allot.SequenceState, error) {
	return callInto[allot.SequenceState](ctx, c, sequenceReq(http.MethodPatch, name).with(p))
}

// joinedErr is several sentinels at once, for errors.Is.
type joinedErr []error

func (j joinedErr) Error() string   { return j[0].Error() }
func (j joinedErr) Unwrap() []error { return j }

// nextBody is the body next (and labels) take for p. Zero fields are
// left out: count 0 means 1 and an empty date today, as in
// allot.NextParams.
func nextBody(p allot.NextParams) wire.NextRequest {
	body := wire.NextRequest{Count: unlessZero(p.Count), Date: unlessZero(p.Date), Reference: unlessZero(p.Reference)}
	if p.ConfirmWithin != 0 {
		body.ConfirmWithin = durationText(p.ConfirmWithin)
	}
	return body
}

func nextRequest(p allot.NextParams, accept string) request {
	req := sequenceReq(http.MethodPost, p.Sequence, "next").with(nextBody(p)).keyed(p.IdempotencyKey)
	req.accept = accept
	return req
}

// Next takes p.Count contiguous numbers (1 when 0) of p.Sequence. With
// p.IdempotencyKey set, a retry returns the same numbers and the result's
// Replayed is true.
func (c *Client) Next(ctx context.Context, p allot.NextParams) (*allot.NextResult, error) {
	res, replayed, err := send[allot.NextResult](ctx, c, nextRequest(p, "application/json"))
	if err != nil {
		return nil, err
	}
	res.Replayed = replayed
	return res, nil
}

// NextText is Next asking for text/plain: it returns just the IDs.
func (c *Client) NextText(ctx context.Context, p allot.NextParams) ([]string, error) {
	resp, err := c.do(ctx, nextRequest(p, "text/plain"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("allot: next: read response: %w", err)
	}
	text, ok := strings.CutSuffix(string(raw), "\n")
	if !ok {
		return nil, fmt.Errorf("allot: next: text response does not end with a line feed (truncated?)")
	}
	return strings.Split(text, "\n"), nil
}

// SequenceVoid voids one issued number, named by p.Number (plus p.Date in
// a resetting sequence) or by p.ID, with p.Reason (admin).
func (c *Client) SequenceVoid(ctx context.Context, p allot.VoidParams) (*allot.LedgerEntry, error) {
	body := wire.VoidRequest{Number: p.Number, ID: p.ID, Date: p.Date, Reason: p.Reason, Force: p.Force}
	return callInto[allot.LedgerEntry](ctx, c, sequenceReq(http.MethodPost, p.Sequence, "void").with(body))
}

// SequenceParse decodes id and says what became of its number.
func (c *Client) SequenceParse(ctx context.Context, name, id string) (*allot.ParseResult, error) {
	if id == "" {
		return nil, allot.Invalidf("id", "is required")
	}
	return callInto[allot.ParseResult](ctx, c, sequenceReq(http.MethodGet, name, "ids", seg(id)))
}

// SequenceLedger returns a page of a sequence's ledger (admin). after is
// the Next cursor of the previous page ("" for the first); limit is
// 1..1000, 0 meaning the server's default of 100.
func (c *Client) SequenceLedger(ctx context.Context, name, after string, limit int) (*allot.LedgerPage, error) {
	r := sequenceReq(http.MethodGet, name, "ledger")
	r.query = pageQuery(after, limit)
	page, err := callInto[allot.LedgerPage](ctx, c, r)
	if err != nil {
		return nil, err
	}
	page.Entries = nonNil(page.Entries)
	return page, nil
}

func claimReq(method, id string, rest ...string) request {
	r := under(method, "/v1/claims", "id", id, rest...)
	if id == "" {
		r.err = allot.Invalidf("id", "is required: the claim's id")
	}
	return r
}

// pageQuery is the query of a page after the cursor after ("" for the
// first) of up to limit items (0 for the server's default).
func pageQuery(after string, limit int) url.Values {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q
}

// PoolCreate creates a pool (admin). p.Capacity is required; nil fields
// take the server's defaults.
func (c *Client) PoolCreate(ctx context.Context, p allot.PoolCreateParams) (*allot.PoolState, error) {
	return callInto[allot.PoolState](ctx, c, request{method: http.MethodPost, path: "/v1/pools", body: p})
}

// PoolGet returns a pool with its figures.
func (c *Client) PoolGet(ctx context.Context, name string) (*allot.PoolState, error) {
	return callInto[allot.PoolState](ctx, c, poolReq(http.MethodGet, name))
}

// PoolList returns every pool with its figures, ordered by name.
func (c *Client) PoolList(ctx context.Context) ([]*allot.PoolState, error) {
	out, err := callInto[wire.PoolList](ctx, c, request{method: http.MethodGet, path: "/v1/pools"})
	if err != nil {
		return nil, err
	}
	return nonNil(out.Pools), nil
}

// PoolPatch changes a pool's settings (admin); nil fields stay as they
// are. Lowering the capacity below held + confirmed fails with a *Problem
// that unwraps to allot.ErrInvalidState and carries Capacity, Held and
// Confirmed.
func (c *Client) PoolPatch(ctx context.Context, name string, p allot.PoolPatchParams) (*allot.PoolState, error) {
	return callInto[allot.PoolState](ctx, c, poolReq(http.MethodPatch, name).with(p))
}

// ClaimCreate holds p.Quantity units (1 when 0) of p.Pool for p.Customer,
// for p.TTL (the pool's hold_ttl when nil). With p.IdempotencyKey set, a
// retry returns the same claim and replayed is true. Refusals unwrap to
// allot.ErrSoldOut (Problem.Available), allot.ErrCustomerLimit
// (Problem.Limit, Problem.Used) or allot.ErrPoolClosed.
func (c *Client) ClaimCreate(ctx context.Context, p allot.ClaimCreateParams) (claim *allot.Claim, replayed bool, err error) {
	claim, err = c.claimCall(ctx, poolReq(http.MethodPost, p.Pool, "claims").with(p).keyed(p.IdempotencyKey))
	if err != nil {
		return nil, false, err
	}
	return claim, claim.Replayed, nil
}

// claimCall sends req and decodes the claim it answers, with Replayed
// set from the Idempotent-Replayed header.
func (c *Client) claimCall(ctx context.Context, req request) (*allot.Claim, error) {
	cl, replayed, err := send[allot.Claim](ctx, c, req)
	if err != nil {
		return nil, err
	}
	cl.Replayed = replayed
	return cl, nil
}

// ClaimGet returns a claim; a hold past its expiry reads as expired.
func (c *Client) ClaimGet(ctx context.Context, id string) (*allot.Claim, error) {
	return c.claimCall(ctx, claimReq(http.MethodGet, id))
}

// ClaimList returns a page of p.Pool's claims in creation order, filtered
// by p.Customer and p.Status when set. p.After is the Next cursor of the
// previous page ("" for the first); p.Limit is 1..1000, 0 meaning the
// server's default of 100.
func (c *Client) ClaimList(ctx context.Context, p allot.ClaimListParams) (*allot.ClaimPage, error) {
	r := poolReq(http.MethodGet, p.Pool, "claims")
	r.query = pageQuery(p.After, p.Limit)
	if p.Customer != "" {
		r.query.Set("customer", p.Customer)
	}
	if p.Status != "" {
		r.query.Set("status", string(p.Status))
	}
	page, err := callInto[allot.ClaimPage](ctx, c, r)
	if err != nil {
		return nil, err
	}
	page.Claims = nonNil(page.Claims)
	return page, nil
}

// ClaimConfirm sells a claim's units, recording reference (e.g. a payment
// id; may be ""). A late confirm of an expired hold succeeds if the units
// can be taken again; otherwise the error unwraps to allot.ErrClaimExpired
// and the customer should be refunded. Confirming a released or confirmed
// claim unwraps to allot.ErrInvalidState. With idempotencyKey set, a retry
// returns the same claim with Replayed true.
func (c *Client) ClaimConfirm(ctx context.Context, id, reference, idempotencyKey string) (*allot.Claim, error) {
	return c.claimCall(ctx, claimReq(http.MethodPost, id, "confirm").with(wire.ClaimConfirmRequest{Reference: reference}).keyed(idempotencyKey))
}

// ClaimRelease gives a held claim's units back. With idempotencyKey set,
// a retry returns the same claim with Replayed true.
func (c *Client) ClaimRelease(ctx context.Context, id, idempotencyKey string) (*allot.Claim, error) {
	return c.claimCall(ctx, claimReq(http.MethodPost, id, "release").with(struct{}{}).keyed(idempotencyKey))
}

// ClaimCancel undoes a confirmed claim (a refund): its units come back and
// it becomes cancelled with reason. Cancelling it again with the same
// reason is a replay (Replayed true). With idempotencyKey set, a retry
// returns the same claim.
func (c *Client) ClaimCancel(ctx context.Context, id, reason, idempotencyKey string) (*allot.Claim, error) {
	return c.claimCall(ctx, claimReq(http.MethodPost, id, "cancel").with(wire.CancelRequest{Reason: reason}).keyed(idempotencyKey))
}

// ClaimExtend makes a held claim last ttl from now, but never past the
// pool's max_hold_ttl from its creation. With idempotencyKey set, a retry
// returns the same claim with Replayed true.
func (c *Client) ClaimExtend(ctx context.Context, id string, ttl time.Duration, idempotencyKey string) (*allot.Claim, error) {
	return c.claimCall(ctx, claimReq(http.MethodPost, id, "extend").with(wire.ExtendRequest{TTL: durationText(ttl)}).keyed(idempotencyKey))
}

// Audit runs every invariant check against the server's database (admin).
// ok is true when every check passed; a failed check is reported in checks,
// not as an error.
func (c *Client) Audit(ctx context.Context) (ok bool, checks []allot.AuditCheck, err error) {
	out, err := callInto[wire.AuditReport](ctx, c, request{method: http.MethodGet, path: "/v1/audit"})
	if err != nil {
		return false, nil, err
	}
	return out.OK, nonNil(out.Checks), nil
}

// Ready returns nil when the server is ready to serve (its store answers),
// or the *Problem it reported (code unavailable wraps allot.ErrClosed).
func (c *Client) Ready(ctx context.Context) error {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/readyz"})
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProblem))
	return resp.Body.Close()
}

var _ error = (*Problem)(nil)

// unlessZero returns a pointer to v, nil for the zero value.
func unlessZero[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}

// durationText is d as a request body carries it.
func durationText(d time.Duration) *wire.DurationText {
	t := wire.DurationText(d.String())
	return &t
}

// nonNil returns s, or an empty slice for nil, so callers can tell "none"
// from a failed call by the error alone and encode it as [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
