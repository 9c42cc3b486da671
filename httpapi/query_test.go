package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/allot/allot"
)

// TestUnknownQueryParameters walks the routes table: every route refuses
// a query parameter it does not take, and one given twice, with 400
// invalid_request naming the parameter, before the handler runs and
// after authentication; the parameters it takes still work.
func TestUnknownQueryParameters(t *testing.T) {
	e := newEnv(t, map[string]Role{"admin-key": RoleAdmin, "metrics-key": RoleMetrics})
	admin := []string{"Authorization", "Bearer admin-key"}
	e.ok(e.do("POST", "/v1/sequences", `{"name":"s","mode":"gapless"}`, admin...), 201, nil)
	e.ok(e.do("POST", "/v1/pools", `{"name":"p","capacity":1000,"per_customer":0}`, admin...), 201, nil)
	var c allot.Claim
	e.ok(e.do("POST", "/v1/pools/p/claims", `{"customer":"a"}`, admin...), 201, &c)
	before := func() string {
		r := e.do("GET", "/v1/sequences/s", "", admin...)
		e.ok(r, 200, nil)
		p := e.do("GET", "/v1/pools/p/claims?limit=1000", "", admin...)
		e.ok(p, 200, nil)
		return string(r.body) + string(p.body)
	}
	state := before()

	for _, rt := range routes {
		pattern := rt.method + " " + rt.path
		path := strings.NewReplacer("{name}", "s", "{id}", "1").Replace(rt.path)
		if strings.HasPrefix(rt.path, "/v1/pools/{name}") {
			path = strings.NewReplacer("{name}", "p").Replace(rt.path)
		}
		if strings.HasPrefix(rt.path, "/v1/claims/") {
			path = strings.NewReplacer("{id}", c.ID).Replace(rt.path)
		}
		body := ""
		if rt.method != http.MethodGet {
			body = "{}"
		}
		t.Run(pattern, func(t *testing.T) {
			e := *e
			e.t = t
			p := e.problem(e.do(rt.method, path+"?custmer=x", body, admin...), 400, "invalid_request")
			if p.Field != "custmer" {
				t.Errorf("field %q, want custmer", p.Detail)
			}
			want := fmt.Sprintf("unknown query parameter \"custmer\": %s takes no query parameters", pattern)
			if len(rt.query) > 0 {
				want = fmt.Sprintf("unknown query parameter \"custmer\": %s takes only the query parameters %s", pattern, strings.Join(rt.query, ", "))
			}
			if p.Detail != want {
				t.Errorf("detail %q, want %q", p.Detail, want)
			}
			// The name is checked unescaped, and the first offender is named.
			p = e.problem(e.do(rt.method, path+"?%6Cimits=1&zz=2", body, admin...), 400, "invalid_request")
			if p.Field != "limits" {
				t.Errorf("escaped name: field %q (%s)", p.Field, p.Detail)
			}
			// Authentication comes first.
			if rt.access != public {
				e.problem(e.do(rt.method, path+"?custmer=x", body), 401, "unauthorized")
			}
			for _, q := range rt.query {
				p := e.problem(e.do(rt.method, path+"?"+q+"=1&"+q+"=2", body, admin...), 400, "invalid_request")
				if p.Field != q || p.Detail != fmt.Sprintf("query parameter %q is given more than once: give it once", q) {
					t.Errorf("%s twice: field %q, detail %q", q, p.Field, p.Detail)
				}
				// Empty, with or without "=": not the same as absent.
				for _, empty := range []string{q + "=", q} {
					if q == "after" {
						continue // an empty cursor is the first page
					}
					p := e.problem(e.do(rt.method, path+"?"+empty, body, admin...), 400, "invalid_request")
					if p.Field != q || p.Detail != fmt.Sprintf("query parameter %q is empty: give a value, or leave it out", q) {
						t.Errorf("?%s: field %q, detail %q", empty, p.Field, p.Detail)
					}
				}
			}
			if after := before(); after != state {
				t.Fatalf("a refused request changed state:\n%s\n%s", state, after)
			}
		})
	}

	t.Run("the parameters a route takes still work", func(t *testing.T) {
		var page allot.ClaimPage
		e.ok(e.do("GET", "/v1/pools/p/claims?customer=a&status=held&limit=10&after=", "", admin...), 200, &page)
		if len(page.Claims) != 1 || page.Claims[0].ID != c.ID {
			t.Fatalf("claims %+v", page)
		}
		e.ok(e.do("GET", "/v1/pools/p/claims?customer=nobody", "", admin...), 200, &page)
		if len(page.Claims) != 0 {
			t.Fatalf("customer filter ignored: %+v", page)
		}
		e.ok(e.do("GET", "/v1/sequences/s/ledger?limit=5&&after=", "", admin...), 200, nil)
		e.ok(e.do("GET", "/v1/sequences/s?", "", admin...), 200, nil)
		e.ok(e.do("GET", "/healthz?&", ""), 200, nil)
	})
	t.Run("the request in the report", func(t *testing.T) {
		p := e.problem(e.do("GET", "/v1/pools/p/claims?custmer=x", "", admin...), 400, "invalid_request")
		if p.Field != "custmer" || !strings.Contains(p.Detail, "customer, status, after, limit") {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("malformed query strings", func(t *testing.T) {
		for q, field := range map[string]string{
			"limit=1;after=x": "",         // url.ParseQuery would drop the pair
			"limit=%zz":       "limit",    // likewise
			"lim%zzit=1":      "lim%zzit", // a name that does not unescape
		} {
			p := e.problem(e.do("GET", "/v1/pools/p/claims?"+q, "", admin...), 400, "invalid_request")
			if p.Field != field {
				t.Errorf("%q: field %q, want %q (%s)", q, p.Field, field, p.Detail)
			}
		}
	})
	t.Run("a metrics key is refused before its query is looked at", func(t *testing.T) {
		e.problem(e.do("GET", "/v1/sequences?x=1", "", "Authorization", "Bearer metrics-key"), 403, "forbidden")
		e.problem(e.do("GET", "/metrics?x=1", "", "Authorization", "Bearer metrics-key"), 400, "invalid_request")
	})
	t.Run("no route: 404 and 405 whatever the query", func(t *testing.T) {
		e.problem(e.do("GET", "/no/such/route?x=1", ""), 404, "not_found")
		e.problem(e.do("DELETE", "/v1/sequences/s?x=1", "", admin...), 405, "method_not_allowed")
	})
}

// TestOpenAPIQueryParametersAndErrors checks that every operation in
// openapi.json lists exactly the query parameters its route takes,
// documents the 400 that refuses the others, documents 401 and 403 when
// it needs a key, and that /metrics needs one.
func TestOpenAPIQueryParametersAndErrors(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatal(err)
	}
	components := doc["components"].(map[string]any)
	resolve := func(v any) map[string]any {
		m := v.(map[string]any)
		if ref, ok := m["$ref"].(string); ok {
			parts := strings.Split(strings.TrimPrefix(ref, "#/components/"), "/")
			return components[parts[0]].(map[string]any)[parts[1]].(map[string]any)
		}
		return m
	}
	for _, rt := range routes {
		item := doc["paths"].(map[string]any)[rt.path].(map[string]any)
		op := item[strings.ToLower(rt.method)].(map[string]any)
		var params []any
		if p, ok := item["parameters"].([]any); ok {
			params = append(params, p...)
		}
		if p, ok := op["parameters"].([]any); ok {
			params = append(params, p...)
		}
		var query []string
		for _, p := range params {
			if p := resolve(p); p["in"] == "query" {
				query = append(query, p["name"].(string))
			}
		}
		if !slices.Equal(query, rt.query) {
			t.Errorf("%s %s documents query parameters %v, the route takes %v", rt.method, rt.path, query, rt.query)
		}
		responses := op["responses"].(map[string]any)
		if r, ok := responses["400"]; !ok || !strings.Contains(resolve(r)["description"].(string), "query parameter") {
			t.Errorf("%s %s does not document the 400 for query parameters", rt.method, rt.path)
		}
		security, hasSecurity := op["security"].([]any)
		documentedPublic := hasSecurity && len(security) == 0
		if documentedPublic != (rt.access == public) {
			t.Errorf("%s %s: security %v, access %v", rt.method, rt.path, op["security"], rt.access)
		}
		if rt.access != public {
			for _, code := range []string{"401", "403"} {
				if _, ok := responses[code]; !ok {
					t.Errorf("%s %s does not document %s", rt.method, rt.path, code)
				}
			}
		}
	}
	if s := doc["paths"].(map[string]any)["/metrics"].(map[string]any)["get"].(map[string]any)["security"]; fmt.Sprint(s) != "[map[bearerAuth:[]]]" {
		t.Errorf("/metrics security %v", s)
	}
}
