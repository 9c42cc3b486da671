// Package migrate loads a store's embedded, numbered migrations. Files are
// named NNN_name.up.sql; versions must be unique and start at 1 with no
// gaps, so two stores never disagree about what version N means. Applying
// them is the store's job (each database locks differently).
package migrate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
)

// Migration is one versioned schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
	// Checksum is the SHA-256 of SQL, recorded when the migration is
	// applied, so a migration edited after it shipped is caught.
	Checksum string
}

// Verify checks that every applied migration (version -> recorded
// checksum) is the one this binary embeds. An empty recorded checksum is
// not checked.
func Verify(migs []Migration, applied map[int]string) error {
	for v, sum := range applied {
		if v < 1 || v > len(migs) || sum == "" {
			continue
		}
		if m := migs[v-1]; m.Checksum != sum {
			return fmt.Errorf("migration %03d_%s differs from the one applied to this database: "+
				"an applied migration must never be edited (add a new one instead)", m.Version, m.Name)
		}
	}
	return nil
}

var fileRE = regexp.MustCompile(`^(\d{3})_([a-z0-9_]+)\.up\.sql$`)

// Load reads every migration in dir of fsys, ordered by version.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		m := fileRE.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %q: name must be NNN_name.up.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(b)
		out = append(out, Migration{Version: v, Name: m[2], SQL: string(b), Checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %03d_%s: versions must run 1, 2, 3… without gaps or repeats", m.Version, m.Name)
		}
	}
	return out, nil
}
