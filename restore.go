package allot

import (
	"math"
	"time"
)

// Restoring a backup.
//
// A backup holds every number issued up to the moment it was taken, but
// not those issued after. Restoring it as it is would hand those out a
// second time. So a restore moves every counter past what may have been
// issued since (a margin), and voids the numbers it skips with the reason
// "restored from backup": a gap, explained, instead of a duplicate.

// RestoreReason is the reason of the numbers a restore skips.
const RestoreReason = "restored from backup"

// RestoreOwner is the owner of the ledger entries a restore writes.
// LastActivity and SequenceActivity leave them out, so a restore run again
// after one that stopped part-way still dates the backup by what was in it,
// not by its own skips.
const RestoreOwner = "allot restore"

// RestoreActivity is how many numbers a sequence took (all periods) in
// the hour, the day and the week before a backup.
type RestoreActivity struct {
	Hour, Day, Week int64
}

// RestoreMargin is how many numbers of one period a restore skips when
// the operator gives no margin. remaining is how many the period had left,
// servers how many servers were running at the backup. The rate is the
// highest of the last hour's, the last day's and the last week's (so a
// quiet hour before a nightly backup does not hide the day's traffic); the
// margin is the larger of an hour at that rate (and at least the last
// hour's count) and twice that rate over the backup's age, plus room for
// what each server may have taken at once right after the backup: two
// leases of a cached sequence (each a block at first, and never more than
// LeaseCap of what remained), ten numbers of a gapless one.
//
// ok is false when the sequence took nothing in the week before the
// backup: nothing tells how fast it may have taken numbers since, so the
// operator must give the margin. A restore may skip more than needed (the
// numbers are voided with a reason, a gap explained); it must not skip
// fewer, so give --margin when you know better.
func RestoreMargin(seq *Sequence, act RestoreActivity, age time.Duration, remaining int64, servers int) (margin int64, ok bool) {
	if act.Week <= 0 {
		return 0, false
	}
	perServer := int64(10)
	if seq.Mode == ModeCached {
		perServer = 2 * min(seq.BlockSize, max(LeaseCap(remaining), 1))
	}
	perSecond := max(float64(act.Hour)/3600, float64(act.Day)/86400, float64(act.Week)/(7*86400))
	m := max(float64(act.Hour), math.Ceil(perSecond*3600), math.Ceil(2*perSecond*max(age, 0).Seconds()))
	if m > float64(math.MaxInt64/2) {
		return math.MaxInt64 / 2, true
	}
	return int64(m) + perServer*int64(max(servers, 1)), true
}

// restorePeriodsMax bounds the periods RestorePeriods lists.
const restorePeriodsMax = 10_000

// RestorePeriods lists the periods of a sequence that may have taken
// numbers after a backup taken at at, until now: every period a document
// date could fall in meanwhile, from periods_back before the period of at
// to periods_ahead after the period of now, in the sequence's time zone
// (for a sequence that never resets: the one period "").
func RestorePeriods(seq *Sequence, at, now time.Time) []string {
	if seq.Reset == ResetNever {
		return []string{""}
	}
	loc, err := seq.Location()
	if err != nil {
		loc = time.UTC
	}
	if now.Before(at) {
		now = at
	}
	d := stepPeriods(seq.Reset, Today(at, loc), -seq.PeriodsBack)
	last := seq.Period(stepPeriods(seq.Reset, Today(now, loc), seq.PeriodsAhead))
	var out []string
	for len(out) < restorePeriodsMax {
		p := seq.Period(d)
		out = append(out, p)
		if p >= last {
			break
		}
		d = stepPeriods(seq.Reset, d, 1)
	}
	return out
}
