package testdb

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files (such as a store's schema.sql) from what the tests produce")

// Golden compares got with the file at path, or rewrites the file when the
// test runs with -update. A test fails when the file is out of date, so a
// generated file checked into the repository stays true.
func Golden(t testing.TB, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if string(want) != got {
		t.Fatalf("%s is out of date: run `go test -run %s -update` in its package and commit the result", path, t.Name())
	}
}
