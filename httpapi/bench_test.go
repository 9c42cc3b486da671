package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: authTransport{rt: tr, auth: []string{auth}}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
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
			if res.StatusCode != http.StatusOK {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
