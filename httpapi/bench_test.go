package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkNextHTTP takes one ID per request from a cached sequence
// through the whole stack: HTTP, routing, auth, metrics, the Service.
// Compare with BenchmarkNoopHTTP, the same client against a handler that
// does nothing.
func BenchmarkNextHTTP(b *testing.B) {
	e := newEnv(b, map[string]Role{"bench-key": RoleClient, "admin": RoleAdmin})
	e.ok(e.do("POST", "/v1/sequences", `{"name":"bench","format":"B-{n:9}","block_size":1000000}`,
		"Authorization", "Bearer admin"), http.StatusCreated, nil)
	url := e.srv.URL + "/v1/sequences/bench/next"
	b.Run("empty-body", func(b *testing.B) {
		benchHTTP(b, url, "", "Bearer bench-key")
	})
	b.Run("json-body", func(b *testing.B) {
		benchHTTP(b, url, `{"count":1}`, "Bearer bench-key")
	})
}

// BenchmarkNoopHTTP is the baseline of BenchmarkNextHTTP: the same
// requests to a handler that only drains the body and answers 200.
func BenchmarkNoopHTTP(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	b.Run("empty-body", func(b *testing.B) { benchHTTP(b, srv.URL, "", "Bearer bench-key") })
	b.Run("json-body", func(b *testing.B) { benchHTTP(b, srv.URL, `{"count":1}`, "Bearer bench-key") })
	b.Run("claim-body", func(b *testing.B) {
		benchHTTPWith(b, srv.URL, "Bearer bench-key", http.StatusOK, claimBench)
	})
}

// BenchmarkClaimHTTP holds one unit per request, each for a new customer,
// of a pool too big to sell out, through the whole stack: HTTP, routing,
// auth, metrics, the Service's group commit into SQLite. Compare with
// BenchmarkNoopHTTP/claim-body, the same requests to a handler that does
// nothing.
func BenchmarkClaimHTTP(b *testing.B) {
	e := newEnv(b, map[string]Role{"bench-key": RoleClient, "admin": RoleAdmin})
	e.ok(e.do("POST", "/v1/pools", `{"name":"bench","capacity":1000000000000,"per_customer":0}`,
		"Authorization", "Bearer admin"), http.StatusCreated, nil)
	url := e.srv.URL + "/v1/pools/bench/claims"
	// GOMAXPROCS clients wait for each commit in turn; 32 per CPU is a
	// crowd, whose claims share group commits.
	for _, par := range []int{1, 32} {
		b.Run("clients-"+strconv.Itoa(par)+"x", func(b *testing.B) {
			b.SetParallelism(par)
			benchHTTPWith(b, url, "Bearer bench-key", http.StatusCreated, claimBench)
		})
	}
	// After a sale sells out, most requests are refused from memory
	// (409 sold_out) without a database round trip.
	e.ok(e.do("POST", "/v1/pools", `{"name":"gone","capacity":0}`, "Authorization", "Bearer admin"), http.StatusCreated, nil)
	b.Run("sold-out", func(b *testing.B) {
		benchHTTPWith(b, e.srv.URL+"/v1/pools/gone/claims", "Bearer bench-key", http.StatusConflict, claimBench)
	})
}

// claimBench is the body of the i-th claim of a benchmark: one unit for
// customer i.
func claimBench(i uint64) string {
	return `{"customer":"customer-` + strconv.FormatUint(i, 10) + `","quantity":1}`
}

// authTransport adds an Authorization header to every request.
type authTransport struct {
	rt   http.RoundTripper
	auth []string
}

func (t authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r.Header["Authorization"] = t.auth
	return t.rt.RoundTrip(r)
}

// benchHTTP sends POST requests with body to url from parallel clients
// over keep-alive connections and reports requests per second.
func benchHTTP(b *testing.B, url, body, auth string) {
	b.Helper()
	benchHTTPWith(b, url, auth, http.StatusOK, func(uint64) string { return body })
}

// benchHTTPWith is benchHTTP with the body of the i-th request from body
// and the status every response must have.
func benchHTTPWith(b *testing.B, url, auth string, want int, body func(i uint64) string) {
	b.Helper()
	var n atomic.Uint64
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: authTransport{rt: tr, auth: []string{auth}}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := body(n.Add(1))
			var rd io.Reader
			if body != "" {
				rd = strings.NewReader(body)
			}
			req, err := http.NewRequest(http.MethodPost, url, rd)
			if err != nil {
				b.Error(err)
				return
			}
			if body != "" {
				req.Header["Content-Type"] = []string{"application/json"}
			}
			res, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode != want {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
