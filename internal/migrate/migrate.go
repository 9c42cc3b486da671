// Package migrate loads a store's embedded, numbered migrations and applies
// them. Files are named NNN_name.up.sql; versions must be unique and start
// at 1 with no gaps, so two stores never disagree about what version N
// means. The apply loop (verify what was applied, refuse a newer schema,
// apply the rest in order) is written once here; the store supplies the
// transaction and its lock (each database locks differently) through a
// Runner.
//
// A migration that has shipped is never edited: each store pins the
// checksum of every shipped migration in a test, and Verify refuses a
// database whose recorded checksum differs from the embedded file.
package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
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
// not checked. former lists, per version, checksums an earlier build of
// that migration had that are known to end in the same schema once the
// later migrations have run (a mistake that shipped, kept so databases
// migrated by that build still start).
func Verify(migs []Migration, applied map[int]string, former map[int][]string) error {
	for v, sum := range applied {
		if v < 1 || v > len(migs) || sum == "" || slices.Contains(former[v], sum) {
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

// Runner is what a store does inside its migration transaction, holding
// whatever lock keeps two processes from migrating at once.
type Runner interface {
	// Applied creates the bookkeeping table if it is missing and returns
	// every applied version with its recorded checksum.
	Applied(ctx context.Context) (map[int]string, error)
	// Apply runs m's SQL and records m as applied, in the same
	// transaction.
	Apply(ctx context.Context, m Migration) error
}

// Run brings a database up to date: it verifies the migrations already
// applied (see Verify), refuses a schema newer than migs, and applies the
// rest in order through r.
func Run(ctx context.Context, r Runner, migs []Migration, former map[int][]string) error {
	applied, err := r.Applied(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := Verify(migs, applied, former); err != nil {
		return err
	}
	current := 0
	for v := range applied {
		current = max(current, v)
	}
	if current > len(migs) {
		return fmt.Errorf("database schema is version %d, newer than this allot (%d): upgrade allot", current, len(migs))
	}
	for _, m := range migs[current:] {
		if err := r.Apply(ctx, m); err != nil {
			return fmt.Errorf("migration %03d_%s: %w", m.Version, m.Name, err)
		}
	}
	return nil
}
