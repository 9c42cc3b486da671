package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMetricsAuth checks /metrics with keys configured: it needs an admin
// or metrics key, a metrics key may call nothing else, the health routes
// and the OpenAPI document stay public, and MetricsHandler serves the
// same metrics without a key.
func TestMetricsAuth(t *testing.T) {
	e := newEnv(t, map[string]Role{"admin-key": RoleAdmin, "client-key": RoleClient, "metrics-key": RoleMetrics})
	admin := []string{"Authorization", "Bearer admin-key"}
	metrics := []string{"Authorization", "Bearer metrics-key"}
	client := []string{"Authorization", "Bearer client-key"}
	e.ok(e.do("POST", "/v1/pools", `{"name":"secret-sale","capacity":7}`, admin...), 201, nil)

	r := e.do("GET", "/metrics", "")
	e.problem(r, 401, "unauthorized")
	if strings.Contains(string(r.body), "secret-sale") || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("unauthenticated /metrics: %s", r.body)
	}
	e.problem(e.do("GET", "/metrics", "", "Authorization", "Bearer nope"), 401, "unauthorized")
	p := e.problem(e.do("GET", "/metrics", "", client...), 403, "forbidden")
	if p.Detail != "/metrics needs an admin or metrics key" {
		t.Errorf("client key on /metrics: %q", p.Detail)
	}
	for _, key := range [][]string{metrics, admin} {
		r := e.do("GET", "/metrics", "", key...)
		if r.status != 200 || !strings.Contains(string(r.body), `allot_pool_capacity{pool="secret-sale"} 7`) {
			t.Fatalf("/metrics with %s: %d %s", key[1], r.status, r.body)
		}
	}

	// A metrics key may call nothing else that needs a key.
	p = e.problem(e.do("GET", "/v1/pools", "", metrics...), 403, "forbidden")
	if p.Detail != "a metrics key may only read /metrics: this operation needs a client or admin key" {
		t.Errorf("metrics key on a client route: %q", p.Detail)
	}
	p = e.problem(e.do("POST", "/v1/pools", `{"name":"x","capacity":1}`, metrics...), 403, "forbidden")
	if p.Detail != "this operation needs an admin key" {
		t.Errorf("metrics key on an admin route: %q", p.Detail)
	}
	for _, path := range []string{"/healthz", "/readyz", "/openapi.json"} {
		e.ok(e.do("GET", path, ""), 200, nil)
		e.ok(e.do("GET", path, "", metrics...), 200, nil)
	}

	t.Run("MetricsHandler", func(t *testing.T) {
		srv := httptest.NewServer(e.api.MetricsHandler())
		defer srv.Close()
		get := func(method, path string) (int, string, http.Header) {
			req, err := http.NewRequest(method, srv.URL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b), res.Header
		}
		status, body, h := get("GET", "/metrics")
		if status != 200 || !strings.Contains(body, `allot_pool_capacity{pool="secret-sale"} 7`) || h.Get("X-Request-Id") == "" {
			t.Fatalf("MetricsHandler /metrics: %d %s", status, body)
		}
		if status, _, _ := get("HEAD", "/metrics"); status != 200 {
			t.Errorf("HEAD /metrics: %d", status)
		}
		for path, want := range map[string]int{"/v1/pools": 404, "/healthz": 404, "/": 404, "/metrics?x=1": 400} {
			status, body, h := get("GET", path)
			checkProblem(t, status, h, []byte(body), want, map[int]string{404: "not_found", 400: "invalid_request"}[want])
		}
		status, body, h = get("POST", "/metrics")
		checkProblem(t, status, h, []byte(body), 405, "method_not_allowed")
		if h.Get("Allow") != "GET, HEAD" {
			t.Errorf("Allow %q", h.Get("Allow"))
		}
	})
}

func TestMetricsRoleInConfig(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := New(Config{Service: e.svc, Keys: map[string]Role{"k": RoleMetrics}}); err != nil {
		t.Fatalf("a metrics key: %v", err)
	}
	_, err := New(Config{Service: e.svc, Keys: map[string]Role{"k": "root"}})
	if err == nil || !strings.Contains(err.Error(), `"metrics"`) {
		t.Fatalf("bad role: %v", err)
	}
	// Without keys /metrics stays public, as do the others.
	e.ok(e.do("GET", "/metrics", ""), 200, nil)
	srv := httptest.NewServer(e.api.MetricsHandler())
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("MetricsHandler without keys: %d", res.StatusCode)
	}
}

// TestProblemDetailsAreSentences checks that a problem's detail is the
// message itself, without the sentinel's text appended (": unauthorized",
// ": forbidden", …).
func TestProblemDetailsAreSentences(t *testing.T) {
	e := newEnv(t, map[string]Role{"admin-key": RoleAdmin, "client-key": RoleClient, "metrics-key": RoleMetrics})
	for _, c := range []struct {
		name, method, path, auth string
		status                   int
		code, detail             string
	}{
		{"no key", "GET", "/v1/sequences", "", 401, "unauthorized",
			"missing or unknown bearer token: send the header Authorization: Bearer <key>"},
		{"unknown key", "GET", "/v1/sequences", "Bearer nope", 401, "unauthorized",
			"missing or unknown bearer token: send the header Authorization: Bearer <key>"},
		{"client key on an admin route", "GET", "/v1/audit", "Bearer client-key", 403, "forbidden",
			"this operation needs an admin key"},
		{"metrics key on a client route", "GET", "/v1/sequences", "Bearer metrics-key", 403, "forbidden",
			"a metrics key may only read /metrics: this operation needs a client or admin key"},
		{"client key on /metrics", "GET", "/metrics", "Bearer client-key", 403, "forbidden",
			"/metrics needs an admin or metrics key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.auth != "" {
				hdr = []string{"Authorization", c.auth}
			}
			r := e.do(c.method, c.path, "", hdr...)
			p := checkProblem(t, r.status, r.header, r.body, c.status, c.code)
			if p.Detail != c.detail {
				t.Errorf("detail %q, want %q", p.Detail, c.detail)
			}
			for _, suffix := range []string{": unauthorized", ": forbidden", ": " + p.Code} {
				if strings.HasSuffix(p.Detail, suffix) {
					t.Errorf("detail %q ends with %q", p.Detail, suffix)
				}
			}
		})
	}
}
