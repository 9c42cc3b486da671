package migrate

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadAndVerify(t *testing.T) {
	fsys := fstest.MapFS{
		"m/001_a.up.sql": {Data: []byte("CREATE TABLE a (x int);")},
		"m/002_b.up.sql": {Data: []byte("CREATE TABLE b (x int);")},
	}
	migs, err := Load(fsys, "m")
	if err != nil || len(migs) != 2 || migs[1].Name != "b" || migs[0].Checksum == "" {
		t.Fatalf("load: %+v %v", migs, err)
	}
	if err := Verify(migs, map[int]string{1: migs[0].Checksum, 2: ""}, nil); err != nil {
		t.Fatalf("matching checksums: %v", err)
	}
	err = Verify(migs, map[int]string{1: migs[0].Checksum, 2: "edited"}, nil)
	if err == nil || !strings.Contains(err.Error(), "002_b") {
		t.Fatalf("an edited migration must be refused: %v", err)
	}
	fsys["m/004_d.up.sql"] = &fstest.MapFile{Data: []byte("x")}
	if _, err := Load(fsys, "m"); err == nil {
		t.Fatal("a gap in versions must be refused")
	}
	fsys["m/004_d.up.sql"] = nil
	delete(fsys, "m/004_d.up.sql")
	fsys["m/bad.sql"] = &fstest.MapFile{Data: []byte("x")}
	if _, err := Load(fsys, "m"); err == nil {
		t.Fatal("a badly named file must be refused")
	}
}

func TestVerifyAcceptsAFormerChecksum(t *testing.T) {
	migs := []Migration{{Version: 1, Name: "a", Checksum: "now"}}
	if err := Verify(migs, map[int]string{1: "before"}, map[int][]string{1: {"before"}}); err != nil {
		t.Fatalf("a listed former checksum: %v", err)
	}
	if err := Verify(migs, map[int]string{1: "other"}, map[int][]string{1: {"before"}}); err == nil {
		t.Fatal("a checksum neither current nor former must be refused")
	}
}
