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

// RestoreMargin is how many numbers of one period a restore skips when
// the operator gives no margin. lastHour is how many numbers the sequence
// took in the hour before the backup, remaining how many the period had
// left, servers how many servers were running at the backup. The margin is
// the larger of that hour's count (a burst right after the backup can't
// outrun it unless it beats the busiest recent hour) and twice that rate
// over the backup's age, plus room for what each server may have taken at
// once right after the backup: two leases of a cached sequence (each a
// block at first, and never more than LeaseCap of what remained), ten
// numbers of a gapless one. A restore may skip more than needed (the
// numbers are voided with a reason, a gap explained); it must not skip
// fewer, so give --margin when you know better.
func RestoreMargin(seq *Sequence, lastHour int64, age time.Duration, remaining int64, servers int) int64 {
	perServer := int64(10)
	if seq.Mode == ModeCached {
		perServer = 2 * min(seq.BlockSize, max(LeaseCap(remaining), 1))
	}
	m := max(float64(lastHour), math.Ceil(2*float64(lastHour)/3600*max(age, 0).Seconds()))
	if m > float64(math.MaxInt64/2) {
		return math.MaxInt64 / 2
	}
	return int64(m) + perServer*int64(max(servers, 1))
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
