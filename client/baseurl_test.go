package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/allot/allot"
	"github.com/allot/allot/client"
)

// TestNewWithoutScheme: a base URL without a scheme, host:port or a bare
// host, means http://.
func TestNewWithoutScheme(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:7070":          "http://127.0.0.1:7070",
		"localhost:8080":          "http://localhost:8080",
		"allot.internal":          "http://allot.internal",
		"[::1]:7070":              "http://[::1]:7070",
		"allot.internal/prefix/":  "http://allot.internal/prefix",
		"https://allot.example/":  "https://allot.example",
		"http://127.0.0.1:7070/a": "http://127.0.0.1:7070/a",
	} {
		c, err := client.New(in)
		if err != nil {
			t.Errorf("New(%q): %v", in, err)
			continue
		}
		if got := c.BaseURL(); got != want {
			t.Errorf("New(%q).BaseURL() = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "ftp://x", "/just/a/path", "host:port", "u:p@host:7070", "[::1"} {
		if _, err := client.New(bad); err == nil {
			t.Errorf("New(%q) succeeded", bad)
		}
	}

	// And it talks to the server.
	s := newServer(t, nil)
	c, err := client.New(strings.TrimPrefix(s.srv.URL, "http://"), client.WithKey(adminKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SequenceCreate(context.Background(), allot.SequenceCreateParams{Name: "lp"}); err != nil {
		t.Fatalf("via host:port: %v", err)
	}
}

// TestProblemDocument: a Problem gives back the problem document as the
// server sent it, fields the Problem struct leaves out included.
func TestProblemDocument(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	c := s.client(t, adminKey)
	if _, err := c.SequenceCreate(ctx, allot.SequenceCreateParams{Name: "one", Start: ptr[int64](1), Max: ptr[int64](1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(ctx, allot.NextParams{Sequence: "one"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Next(ctx, allot.NextParams{Sequence: "one"})
	var p *client.Problem
	if !errors.As(err, &p) {
		t.Fatalf("exhausted: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(p.Document(), &doc); err != nil {
		t.Fatalf("Document is not JSON: %v: %s", err, p.Document())
	}
	// remaining is 0: the Problem struct omits it, the document keeps it.
	if doc["code"] != "sequence_exhausted" || doc["remaining"] != float64(0) || doc["status"] != float64(409) ||
		doc["request_id"] != p.RequestID || doc["type"] != p.Type || doc["detail"] != p.Detail {
		t.Fatalf("Document: %s (Problem %+v)", p.Document(), p)
	}

	// A response that is not a problem document: the Problem as JSON.
	foreign := &client.Problem{Status: http.StatusBadGateway, Title: "Bad Gateway", Detail: "<html>"}
	doc = nil
	if err := json.Unmarshal(foreign.Document(), &doc); err != nil || doc["status"] != float64(502) || doc["detail"] != "<html>" {
		t.Fatalf("Document of a Problem not from a problem document: %s %v", foreign.Document(), err)
	}
}
