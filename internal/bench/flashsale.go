package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults applied by [FlashSale] to zero-valued [FlashSaleOptions] fields.
const (
	// DefaultFlashSaleCustomers is how many distinct customers claim.
	DefaultFlashSaleCustomers = 50000
	// DefaultFlashSaleCapacity is how many units the sale has.
	DefaultFlashSaleCapacity = 5000
	// DefaultFlashSaleConcurrency caps the requests in flight at once.
	DefaultFlashSaleConcurrency = 512
	// DefaultFlashSaleTimeout is the time one request may take before it
	// is cancelled and counted as an error.
	DefaultFlashSaleTimeout = 30 * time.Second
)

// flashSaleBodyLimit caps how much of a response body is read.
const flashSaleBodyLimit = 64 << 10

// FlashSaleTarget is one design under a flash sale: the claim endpoint of
// a pool (allot's POST /v1/pools/{name}/claims, or a baseline answering
// the same shapes) holding exactly [FlashSaleOptions.Capacity] units, set
// up by the caller.
type FlashSaleTarget struct {
	// Name identifies the target in results and reports.
	Name string
	// ClaimURL is the absolute http(s) URL every claim is POSTed to, with
	// the body {"customer":"customer-<n>","quantity":1}. A claim is
	// counted as held when it is answered 2xx with a JSON body whose "id"
	// is set and whose "status" is "held", and as sold out when it is
	// answered 409 with a JSON body whose "code" is "sold_out"; anything
	// else is an error.
	ClaimURL string
	// ConfirmURL returns the URL a held claim is confirmed at, POSTed with
	// the body {"reference":"…"}; any 2xx answer counts as confirmed. Nil
	// skips the confirm phase, as [FlashSaleOptions.SkipConfirm] does.
	ConfirmURL func(claimID string) string
	// Header holds extra request headers, e.g. Authorization.
	Header http.Header
}

// FlashSaleOptions controls a [FlashSale]. Zero values select the
// defaults.
type FlashSaleOptions struct {
	// Customers is how many distinct customers each claim one unit.
	// Default [DefaultFlashSaleCustomers].
	Customers int
	// Capacity is how many units the target's pool holds. FlashSale does
	// not create the pool; it uses Capacity to judge whether the outcome
	// was exact ([FlashSaleResult.Exact]). Default
	// [DefaultFlashSaleCapacity].
	Capacity int
	// Concurrency caps the requests in flight at once. Default
	// [DefaultFlashSaleConcurrency].
	Concurrency int
	// SkipConfirm leaves the holds unconfirmed. By default (false) every
	// holder confirms once the claim phase is over.
	SkipConfirm bool
	// Timeout is how long one request may take before it is cancelled and
	// counted as an error. Default [DefaultFlashSaleTimeout].
	Timeout time.Duration
}

// FlashSaleResult is the outcome of one [FlashSale]: exact counts of every
// answer and the timings.
type FlashSaleResult struct {
	// Target is the target's Name.
	Target string
	// Customers and Capacity are the options the sale ran with.
	Customers, Capacity int
	// Claimed is how many claims were answered with a held claim (each id
	// counted once). SoldOut is how many were answered 409 sold_out.
	// Errors is every other claim outcome: transport errors, timeouts,
	// other statuses or codes, malformed answers, and a claim id answered
	// twice. Claimed + SoldOut + Errors = Customers unless the sale was
	// interrupted.
	Claimed, SoldOut, Errors int64
	// Confirmed is how many held claims were confirmed (2xx);
	// ConfirmErrors is how many confirms failed.
	Confirmed, ConfirmErrors int64
	// SellOut is the time from the first claim sent until the last claim
	// that got units was answered: how long the units took to go. If
	// fewer than Capacity units were claimed it is the time until the
	// last successful claim all the same.
	SellOut time.Duration
	// ClaimPhase is the time from the first claim sent until every
	// customer had an answer.
	ClaimPhase time.Duration
	// Total is the time from the first claim sent until the last confirm
	// was answered (ClaimPhase if there was no confirm phase).
	Total time.Duration
	// P50, P99 and P999 are the latencies of the claims answered held or
	// sold out, from the moment each request was sent (a customer waiting
	// for one of the Concurrency slots is not yet counted).
	P50, P99, P999 time.Duration
	// HeldP50 and HeldP99 are the latencies of the claims answered held.
	HeldP50, HeldP99 time.Duration
	// ConfirmP50 and ConfirmP99 are the latencies of successful confirms.
	ConfirmP50, ConfirmP99 time.Duration
	// ErrorSample describes one claim error or, failing that, one confirm
	// error ("confirm: …"); empty if there was none.
	ErrorSample string
	// Confirming reports whether the sale had a confirm phase.
	Confirming bool
}

// Exact reports whether the sale came out exactly right: exactly Capacity
// units claimed, every other customer told sold out, no error, and, with a
// confirm phase, every hold confirmed.
func (r FlashSaleResult) Exact() bool {
	ok := r.Claimed == int64(r.Capacity) &&
		r.SoldOut == int64(r.Customers-r.Capacity) &&
		r.Errors == 0
	if r.Confirming {
		ok = ok && r.Confirmed == int64(r.Capacity) && r.ConfirmErrors == 0
	}
	return ok
}

func (o FlashSaleOptions) normalize() (FlashSaleOptions, error) {
	if o.Customers <= 0 {
		o.Customers = DefaultFlashSaleCustomers
	}
	if o.Capacity <= 0 {
		o.Capacity = DefaultFlashSaleCapacity
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultFlashSaleConcurrency
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultFlashSaleTimeout
	}
	if o.Capacity > o.Customers {
		return o, fmt.Errorf("bench: flash sale of %d units to %d customers: capacity must not exceed customers", o.Capacity, o.Customers)
	}
	return o, nil
}

// fsWorker is what one flash-sale goroutine records; only that goroutine
// touches it until the phase's WaitGroup is done.
type fsWorker struct {
	lat, heldLat []time.Duration
	ids          []string
	ok, soldOut  int64
	errors       int64
	sample       string
	lastOK       time.Time
}

func (w *fsWorker) fail(err error) {
	w.errors++
	if w.sample == "" {
		w.sample = err.Error()
	}
}

// FlashSale runs a flash sale against one target: opts.Customers distinct
// customers each claim one unit at once, opts.Capacity units being on
// sale, and then every holder confirms.
//
// "At once": opts.Concurrency goroutines are started and held at a gate;
// when all are ready the gate opens and they take customers in turn, so
// that from the first instant exactly opts.Concurrency claims are in
// flight until every customer has been answered. The confirm phase then
// confirms every held claim with the same concurrency. Every outcome is
// counted exactly (see [FlashSaleResult]). Requests go to the target only:
// no proxy, no redirects followed.
//
// If ctx is cancelled FlashSale stops promptly and returns the counts so
// far together with ctx's error.
func FlashSale(ctx context.Context, t FlashSaleTarget, opts FlashSaleOptions) (FlashSaleResult, error) {
	opts, err := opts.normalize()
	if err != nil {
		return FlashSaleResult{}, err
	}
	if t.Name == "" {
		return FlashSaleResult{}, errors.New("bench: flash sale target has no name")
	}
	if u, err := url.Parse(t.ClaimURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return FlashSaleResult{}, fmt.Errorf("bench: flash sale target %q: claim URL %q is not an absolute http(s) URL", t.Name, t.ClaimURL)
	}
	confirming := !opts.SkipConfirm && t.ConfirmURL != nil
	res := FlashSaleResult{Target: t.Name, Customers: opts.Customers, Capacity: opts.Capacity, Confirming: confirming}

	tr := newTransport(opts.Concurrency)
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		Timeout:   opts.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	header := t.Header.Clone()
	if header == nil {
		header = make(http.Header)
	}
	if header.Get("Content-Type") == "" {
		header.Set("Content-Type", "application/json")
	}

	// Claim phase.
	workers := make([]fsWorker, opts.Concurrency)
	var next atomic.Int64
	gate := make(chan struct{})
	var ready, wg sync.WaitGroup
	ready.Add(len(workers))
	for i := range workers {
		w := &workers[i]
		w.lat = make([]time.Duration, 0, opts.Customers/opts.Concurrency+1)
		wg.Go(func() {
			ready.Done()
			<-gate
			for ctx.Err() == nil {
				n := next.Add(1) - 1
				if n >= int64(opts.Customers) {
					return
				}
				// A fresh body each time: the transport may still hold
				// the last one.
				body := append(strconv.AppendInt([]byte(`{"customer":"customer-`), n, 10), `","quantity":1}`...)
				sent := time.Now()
				id, soldOut, err := claimOne(ctx, client, t.ClaimURL, header, body)
				done := time.Now()
				switch {
				case err != nil:
					if ctx.Err() != nil {
						return
					}
					w.fail(err)
				case soldOut:
					w.soldOut++
					w.lat = append(w.lat, done.Sub(sent))
				default:
					w.ok++
					w.ids = append(w.ids, id)
					w.lat = append(w.lat, done.Sub(sent))
					w.heldLat = append(w.heldLat, done.Sub(sent))
					w.lastOK = done
				}
			}
		})
	}
	ready.Wait()
	start := time.Now()
	close(gate)
	wg.Wait()
	claimEnd := time.Now()
	res.ClaimPhase = claimEnd.Sub(start)
	res.Total = res.ClaimPhase

	var lat, heldLat []time.Duration
	var ids []string
	seen := make(map[string]bool, opts.Capacity)
	for i := range workers {
		w := &workers[i]
		res.SoldOut += w.soldOut
		res.Errors += w.errors
		if res.ErrorSample == "" {
			res.ErrorSample = w.sample
		}
		if w.lastOK.After(start) && w.lastOK.Sub(start) > res.SellOut {
			res.SellOut = w.lastOK.Sub(start)
		}
		lat = append(lat, w.lat...)
		heldLat = append(heldLat, w.heldLat...)
		for _, id := range w.ids {
			if seen[id] {
				res.Errors++
				if res.ErrorSample == "" {
					res.ErrorSample = fmt.Sprintf("claim id %q was answered to two customers", id)
				}
				continue
			}
			seen[id] = true
			ids = append(ids, id)
		}
	}
	res.Claimed = int64(len(ids))
	slices.Sort(lat)
	slices.Sort(heldLat)
	res.P50, res.P99, res.P999 = percentile(lat, 0.50), percentile(lat, 0.99), percentile(lat, 0.999)
	res.HeldP50, res.HeldP99 = percentile(heldLat, 0.50), percentile(heldLat, 0.99)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if !confirming {
		return res, nil
	}

	// Confirm phase.
	var confirmed, failed atomic.Int64
	var sampleMu sync.Mutex
	sample := ""
	confirmLat := make([][]time.Duration, opts.Concurrency)
	next.Store(0)
	for i := range opts.Concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := next.Add(1) - 1
				if n >= int64(len(ids)) {
					return
				}
				body := append(strconv.AppendInt([]byte(`{"reference":"bench-`), n, 10), `"}`...)
				sent := time.Now()
				err := postOK(ctx, client, t.ConfirmURL(ids[n]), header, body)
				done := time.Now()
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					failed.Add(1)
					sampleMu.Lock()
					if sample == "" {
						sample = "confirm: " + err.Error()
					}
					sampleMu.Unlock()
					continue
				}
				confirmed.Add(1)
				confirmLat[i] = append(confirmLat[i], done.Sub(sent))
			}
		})
	}
	wg.Wait()
	res.Total = time.Since(start)
	res.Confirmed, res.ConfirmErrors = confirmed.Load(), failed.Load()
	if res.ErrorSample == "" {
		res.ErrorSample = sample
	}
	cl := slices.Concat(confirmLat...)
	slices.Sort(cl)
	res.ConfirmP50, res.ConfirmP99 = percentile(cl, 0.50), percentile(cl, 0.99)
	return res, ctx.Err()
}

// claimAnswer is the part of a claim response FlashSale reads. Status is
// a string in a claim and a number in a problem.
type claimAnswer struct {
	ID     string          `json:"id"`
	Status json.RawMessage `json:"status"`
	Code   string          `json:"code"`
}

func (a *claimAnswer) held() bool { return a.ID != "" && string(a.Status) == `"held"` }

// claimOne sends one claim and classifies its answer: a held claim's id,
// sold out, or an error.
func claimOne(ctx context.Context, c *http.Client, u string, h http.Header, body []byte) (id string, soldOut bool, err error) {
	code, b, err := post(ctx, c, u, h, body)
	if err != nil {
		return "", false, err
	}
	var a claimAnswer
	jerr := json.Unmarshal(b, &a)
	switch {
	case code >= 200 && code <= 299 && jerr == nil && a.held():
		return a.ID, false, nil
	case code == http.StatusConflict && jerr == nil && a.Code == "sold_out":
		return "", true, nil
	}
	return "", false, &statusError{code: code, body: sampleOf(b)}
}

// postOK sends one request and succeeds on any 2xx answer.
func postOK(ctx context.Context, c *http.Client, u string, h http.Header, body []byte) error {
	code, b, err := post(ctx, c, u, h, body)
	if err != nil {
		return err
	}
	if code < 200 || code > 299 {
		return &statusError{code: code, body: sampleOf(b)}
	}
	return nil
}

// post sends one POST and returns the status and (the start of) the body,
// draining the rest so the connection is reused.
func post(ctx context.Context, c *http.Client, u string, h http.Header, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header = h
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, flashSaleBodyLimit))
	if err != nil {
		return 0, nil, fmt.Errorf("reading response body: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, b, nil
}

func sampleOf(b []byte) string {
	if len(b) > errorSampleLimit {
		b = b[:errorSampleLimit]
	}
	return strings.TrimSpace(string(b))
}
