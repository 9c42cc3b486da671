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
// took in the hour before the backup. The margin is the larger of that
// hour's count (a burst right after the backup can't outrun it unless it
// beats the busiest recent hour) and twice that rate over the backup's
// age, plus room for what servers may have leased (two blocks of a cached
// sequence) or a few more requests (ten numbers of a gapless one). A
// restore may skip more than needed (the numbers are voided with a reason,
// a gap explained); it must not skip fewer, so give --margin when you know
// better.
func RestoreMargin(seq *Sequence, lastHour int64, age time.Duration) int64 {
	extra := int64(10)
	if seq.Mode == ModeCached {
		extra = 2 * seq.BlockSize
	}
	m := max(float64(lastHour), math.Ceil(2*float64(lastHour)/3600*max(age, 0).Seconds()))
	if m > float64(math.MaxInt64/2) {
		return math.MaxInt64 / 2
	}
	return int64(m) + extra
}

// PeriodsBetween lists the periods of a resetting sequence from the one
// from falls in to the one to falls in, in the sequence's time zone (for
// a sequence that never resets: the one period "").
func PeriodsBetween(seq *Sequence, from, to time.Time) []string {
	if seq.Reset == ResetNever {
		return []string{""}
	}
	loc, err := seq.Location()
	if err != nil {
		loc = time.UTC
	}
	var out []string
	seen := map[string]bool{}
	for t := from.In(loc); !t.After(to.In(loc).Add(time.Hour)); t = t.Add(time.Hour) {
		p := seq.Period(Today(t, loc))
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
		if len(out) > 10000 {
			break
		}
	}
	return out
}
