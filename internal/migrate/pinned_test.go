package migrate

import (
	"os"
	"testing"
)

// shipped pins the checksum of every migration that has landed on main, per
// store. A shipped migration is never edited: a change to the schema is a
// new numbered migration, and its checksum is added here once it ships.
// If this test fails because you edited a shipped migration, undo the edit
// and write a new migration instead.
//
// History: postgres 002 was edited after checksums were recorded
// (6785a39), but both commits landed on main in one stop, so the edited
// file is the shipped one and is pinned; the earlier checksum, which only
// development builds recorded, is accepted as a former one (postgres
// formerChecksums). 005 was edited twice after it was
// written (3508030, 9d829cc), but all three commits landed on main in one
// stop, so no database was migrated with an earlier 005: its checksums
// are pinned from the version that landed.
var shipped = map[string][]string{
	"../../postgres/migrations": {
		"b85d3a6f9d95b44e600663dcc5d477f6f8ee627feec149346f7cb8f6688ec979", // 001_sequences
		"163ac3a21faa07d3832f370631c8de8e7f50c0aedc59ca46add77e2175e05b53", // 002_pools
		"02ca4533a7b7a374f0287bdea8f57d15bd89230e1d5ed36267c95decf479d500", // 003_sweeps
		"a32ee250d3ed4ac8995660812b4bdafd25efbfb40b361c1c5451826277f9b419", // 004_servers
		"9e1c766c83d499dc777f06f7cfad9b71f54961a48e2a8de91fadc10b8272ecbf", // 005_accounting
		"7f7de6a13303f998d2265d263c3f1399a0b2fc7a9ff1a6b83419c4ffbbed2742", // 006_claim_columns
		"ad0dc08d7e60f5efee00b98cac6663a9b003673a3dc871124702f5b3945e2825", // 007_held_by_pool
		"5320a4bc9a7cbd65786f943e84f435184949022c229ad6030942ba0fddbc10f9", // 008_sequence_label
	},
	"../../sqlite/migrations": {
		"97d68f3b78dea03c471e7a27b4267214ce75dd9f75dd35819ddb8cea365ff970", // 001_sequences
		"7ea349cf180af6b5295fdaa6093507be64178366eb576a41200550d4db2d7d5d", // 002_pools
		"c7c51c5a5f94a057724ab3de8c2041896f32577db144b1141d93b3db38c8101c", // 003_sweeps
		"d79028759cfb49f5c8008a3b347560534e94dde6075e9aecff36a396d0fbf817", // 004_servers
		"9bd5e8577827a0d50a68c87a8e6fc48c6fea2d6ee05d21866c1de6027389c7f3", // 005_accounting
		"1ac5fb0cde5e902d47c497559d98b13afc22ee578e8ee897713002cd5334241c", // 006_claim_columns
		"95abde1911a7cd15686c951258cc06125b1a137c550c32802b480b4688d2274c", // 007_held_by_pool
		"10a299a1c3cdf092ab1524d7c566a2c5db9d964b86cbb16fbed402ed8be3a875", // 008_sequence_label
	},
}

func TestShippedMigrationsUnchanged(t *testing.T) {
	for dir, sums := range shipped {
		migs, err := Load(os.DirFS(dir), ".")
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if len(migs) < len(sums) {
			t.Fatalf("%s: %d migrations, but %d have shipped: a shipped migration must never be removed", dir, len(migs), len(sums))
		}
		for i, sum := range sums {
			if migs[i].Checksum != sum {
				t.Errorf("%s: migration %03d_%s was edited after it shipped (checksum %s, shipped %s): undo the edit and add a new migration",
					dir, migs[i].Version, migs[i].Name, migs[i].Checksum, sum)
			}
		}
	}
}
