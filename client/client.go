// Package client is the Go client of allot's HTTP API v1 (package
// httpapi).
//
// # Guarantees
//
//   - Every method makes exactly one HTTP request and never retries, so a
//     number is never taken twice on the client's behalf. To retry Next
//     safely after a network error, set NextParams.IdempotencyKey and call
//     again with the same key and parameters: the server returns the same
//     numbers and NextResult.Replayed is true.
//   - Every error the server reports comes back as a *Problem whose Unwrap
//     returns the matching allot sentinel (allot.ErrInvalid,
//     allot.ErrNotFound, allot.ErrExhausted, ...), so errors.Is works the
//     same across the wire as in process. Transport errors are returned
//     as they are (wrapped with the operation).
//   - Sequence names and IDs are path-escaped, so IDs may contain '/',
//     spaces, '?' or '%' and even be "." or "..".
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

	"github.com/allot/allot"
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
// reverse proxy).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
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
	// Requested is how many numbers were asked for, for sequence_exhausted.
	Requested int64 `json:"requested,omitempty"`
	// RequestID identifies the request in the server's logs.
	RequestID string `json:"request_id,omitempty"`
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
	switch p.Code {
	case "invalid_request":
		return allot.ErrInvalid
	case "not_found":
		return allot.ErrNotFound
	case "already_exists":
		return allot.ErrAlreadyExists
	case "sequence_exhausted":
		return allot.ErrExhausted
	case "idempotency_mismatch":
		return allot.ErrIdempotencyMismatch
	case "idempotency_in_flight":
		return allot.ErrIdempotencyInFlight
	case "unauthorized":
		return allot.ErrUnauthorized
	case "forbidden":
		return allot.ErrForbidden
	case "unavailable":
		return allot.ErrClosed
	case "":
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

func sequencePath(name string, rest ...string) (string, error) {
	if name == "" {
		return "", allot.Invalidf("sequence", "is required")
	}
	p := "/v1/sequences/" + seg(name)
	for _, r := range rest {
		p += "/" + r
	}
	return p, nil
}

// request is one call to the server.
type request struct {
	method string
	path   string // already escaped
	query  url.Values
	body   any // encoded as JSON when not nil
	accept string
	header http.Header
}

// do sends req and returns the response of a 2xx status; any other status
// is returned as a *Problem. The caller closes the body.
func (c *Client) do(ctx context.Context, req request) (*http.Response, error) {
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
	}
	p.Status = resp.StatusCode
	if p.RequestID == "" {
		p.RequestID = resp.Header.Get("X-Request-Id")
	}
	return p
}

// call sends req and decodes a JSON response into out.
func (c *Client) call(ctx context.Context, req request, out any) error {
	resp, err := c.do(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(out); err != nil {
		return fmt.Errorf("allot: %s %s: decode response: %w", req.method, req.path, err)
	}
	return nil
}

// SequenceCreate creates a sequence (admin).
func (c *Client) SequenceCreate(ctx context.Context, p allot.SequenceCreateParams) (*allot.SequenceState, error) {
	var st allot.SequenceState
	if err := c.call(ctx, request{method: http.MethodPost, path: "/v1/sequences", body: p}, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// SequenceGet returns a sequence with its figures for the current period.
func (c *Client) SequenceGet(ctx context.Context, name string) (*allot.SequenceState, error) {
	path, err := sequencePath(name)
	if err != nil {
		return nil, err
	}
	var st allot.SequenceState
	if err := c.call(ctx, request{method: http.MethodGet, path: path}, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// SequenceList returns every sequence with its figures, ordered by name.
func (c *Client) SequenceList(ctx context.Context) ([]*allot.SequenceState, error) {
	var out struct {
		Sequences []*allot.SequenceState `json:"sequences"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/sequences"}, &out); err != nil {
		return nil, err
	}
	if out.Sequences == nil {
		out.Sequences = []*allot.SequenceState{}
	}
	return out.Sequences, nil
}

// SequencePatch changes max and/or warn_at (admin).
func (c *Client) SequencePatch(ctx context.Context, name string, p allot.SequencePatchParams) (*allot.SequenceState, error) {
	path, err := sequencePath(name)
	if err != nil {
		return nil, err
	}
	var st allot.SequenceState
	if err := c.call(ctx, request{method: http.MethodPatch, path: path, body: p}, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// nextBody is the body of a next request; zero fields are left out, so
// count 0 means 1 and an empty date means today, as in allot.NextParams.
type nextBody struct {
	Count int64  `json:"count,omitempty"`
	Date  string `json:"date,omitempty"`
}

func nextRequest(p allot.NextParams, accept string) (request, error) {
	path, err := sequencePath(p.Sequence, "next")
	if err != nil {
		return request{}, err
	}
	req := request{method: http.MethodPost, path: path, body: nextBody{Count: p.Count, Date: p.Date}, accept: accept}
	if p.IdempotencyKey != "" {
		req.header = http.Header{"Idempotency-Key": {p.IdempotencyKey}}
	}
	return req, nil
}

// Next takes p.Count contiguous numbers (1 when 0) of p.Sequence. With
// p.IdempotencyKey set, a retry returns the same numbers and the result's
// Replayed is true.
func (c *Client) Next(ctx context.Context, p allot.NextParams) (*allot.NextResult, error) {
	req, err := nextRequest(p, "application/json")
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var res allot.NextResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(&res); err != nil {
		return nil, fmt.Errorf("allot: next: decode response: %w", err)
	}
	res.Replayed = resp.Header.Get("Idempotent-Replayed") == "true"
	return &res, nil
}

// NextText is Next asking for text/plain: it returns just the IDs.
func (c *Client) NextText(ctx context.Context, p allot.NextParams) ([]string, error) {
	req, err := nextRequest(p, "text/plain")
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, req)
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

// voidBody is the body of a void request.
type voidBody struct {
	Number *int64 `json:"number,omitempty"`
	ID     string `json:"id,omitempty"`
	Date   string `json:"date,omitempty"`
	Reason string `json:"reason"`
}

// SequenceVoid voids one issued number, named by p.Number (plus p.Date in
// a resetting sequence) or by p.ID, with p.Reason (admin).
func (c *Client) SequenceVoid(ctx context.Context, p allot.VoidParams) (*allot.LedgerEntry, error) {
	path, err := sequencePath(p.Sequence, "void")
	if err != nil {
		return nil, err
	}
	var e allot.LedgerEntry
	body := voidBody{Number: p.Number, ID: p.ID, Date: p.Date, Reason: p.Reason}
	if err := c.call(ctx, request{method: http.MethodPost, path: path, body: body}, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// SequenceParse decodes id and says what became of its number.
func (c *Client) SequenceParse(ctx context.Context, name, id string) (*allot.ParseResult, error) {
	if id == "" {
		return nil, allot.Invalidf("id", "is required")
	}
	path, err := sequencePath(name, "ids", seg(id))
	if err != nil {
		return nil, err
	}
	var res allot.ParseResult
	if err := c.call(ctx, request{method: http.MethodGet, path: path}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// SequenceLedger returns a page of a sequence's ledger (admin). after is
// the Next cursor of the previous page ("" for the first); limit is
// 1..1000, 0 meaning the server's default of 100.
func (c *Client) SequenceLedger(ctx context.Context, name, after string, limit int) (*allot.LedgerPage, error) {
	path, err := sequencePath(name, "ledger")
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var page allot.LedgerPage
	if err := c.call(ctx, request{method: http.MethodGet, path: path, query: q}, &page); err != nil {
		return nil, err
	}
	if page.Entries == nil {
		page.Entries = []allot.LedgerEntry{}
	}
	return &page, nil
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
