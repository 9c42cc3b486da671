package allot_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/allot/allot"
)

func TestNewSequenceValidation(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name  string
		p     allot.SequenceCreateParams
		field string // "" = valid
		msg   string
	}{
		{"defaults", allot.SequenceCreateParams{Name: "a"}, "", ""},
		{"missing name", allot.SequenceCreateParams{}, "name", "required"},
		{"bad name", allot.SequenceCreateParams{Name: "Bad Name"}, "name", "must match"},
		{"long name", allot.SequenceCreateParams{Name: strings.Repeat("a", 129)}, "name", "must match"},
		{"unknown token", allot.SequenceCreateParams{Name: "a", Format: "X{q}"}, "format", "position 1"},
		{"negative max", allot.SequenceCreateParams{Name: "a", Max: i(-1)}, "max", "0 or more"},
		{"negative start", allot.SequenceCreateParams{Name: "a", Start: i(-5)}, "start", "0 or more"},
		{"max below start", allot.SequenceCreateParams{Name: "a", Start: i(10), Max: i(5)}, "max", "at least start"},
		{"max beyond mask", allot.SequenceCreateParams{Name: "a", Format: "{n:A9}", Max: i(260)}, "max", "mask"},
		{"bad mode", allot.SequenceCreateParams{Name: "a", Mode: "fast"}, "mode", "cached"},
		{"bad reset", allot.SequenceCreateParams{Name: "a", Reset: "weekly"}, "reset", "yearly"},
		{"bad tz", allot.SequenceCreateParams{Name: "a", Timezone: "Mars/Base"}, "timezone", "IANA"},
		{"block 0", allot.SequenceCreateParams{Name: "a", BlockSize: i(0)}, "block_size", "between"},
		{"warn 0", allot.SequenceCreateParams{Name: "a", WarnAt: f(0)}, "warn_at", "fraction"},
		{"warn NaN", allot.SequenceCreateParams{Name: "a", WarnAt: f(math.NaN())}, "warn_at", "fraction"},
		{"monthly needs month", allot.SequenceCreateParams{Name: "a", Format: "{yyyy}-{n}", Reset: allot.ResetMonthly}, "format", "{mm}"},
		{"yearly needs year", allot.SequenceCreateParams{Name: "a", Format: "{mm}-{n}", Reset: allot.ResetYearly}, "format", "{yyyy}"},
		{"daily ok", allot.SequenceCreateParams{Name: "a", Format: "{yy}{mm}{dd}-{n}", Reset: allot.ResetDaily}, "", ""},
		{"luhn after letters", allot.SequenceCreateParams{Name: "a", Format: "{n:A9}{check:luhn}"}, "format", "luhn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := allot.NewSequence(tc.p)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ie *allot.InvalidError
			if !errors.As(err, &ie) || !errors.Is(err, allot.ErrInvalid) {
				t.Fatalf("got %v (%+v), want an InvalidError", err, s)
			}
			if ie.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %q on field %q, want field %q mentioning %q", err, ie.Field, tc.field, tc.msg)
			}
		})
	}
	s, _ := allot.NewSequence(allot.SequenceCreateParams{Name: "lp", Format: "LP{n:AA9}"})
	if s.Max != 6759 || s.Start != 1 || s.Mode != allot.ModeCached || s.BlockSize != 1000 || s.Reset != allot.ResetNever || s.WarnAt != 0.9 || s.Timezone != "UTC" {
		t.Fatalf("defaults: %+v", s)
	}
	s, _ = allot.NewSequence(allot.SequenceCreateParams{Name: "n"})
	if s.Max != math.MaxInt64 || s.Format != "{n}" {
		t.Fatalf("defaults without a mask: %+v", s)
	}
}

func TestPlanAdvanceRemainingSaturates(t *testing.T) {
	if r := allot.Remaining(-1, math.MaxInt64); r != math.MaxInt64 {
		t.Fatalf("got %d", r)
	}
	if r := allot.Remaining(10, 10); r != 0 {
		t.Fatalf("got %d", r)
	}
	if r := allot.Remaining(4, 10); r != 6 {
		t.Fatalf("got %d", r)
	}
}

func TestSubtract(t *testing.T) {
	for _, tc := range []struct {
		first, last int64
		voided      []allot.Span
		want        string
	}{
		{1, 10, nil, "[{1 10}]"},
		{1, 10, []allot.Span{{5, 5}}, "[{1 4} {6 10}]"},
		{1, 10, []allot.Span{{1, 3}, {8, 12}}, "[{4 7}]"},
		{3, 10, []allot.Span{{1, 20}}, "[]"},
		{1, 10, []allot.Span{{2, 2}, {4, 4}, {10, 10}}, "[{1 1} {3 3} {5 9}]"},
	} {
		got := allot.Subtract(allot.Span{First: tc.first, Last: tc.last}, tc.voided)
		if s := fmt.Sprintf("%v", spansText(got)); s != tc.want && !(tc.want == "[]" && len(got) == 0) {
			t.Errorf("Subtract(%d..%d, %v) = %v, want %s", tc.first, tc.last, tc.voided, s, tc.want)
		}
	}
}

func spansText(spans []allot.Span) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = fmt.Sprintf("{%d %d}", s.First, s.Last)
	}
	return out
}

func TestRestoreMargin(t *testing.T) {
	gapless := &allot.Sequence{Mode: allot.ModeGapless, BlockSize: 1000}
	cached := &allot.Sequence{Mode: allot.ModeCached, BlockSize: 1000}
	type act = allot.RestoreActivity
	for _, tc := range []struct {
		seq       *allot.Sequence
		act       act
		age       time.Duration
		remaining int64
		servers   int
		want      int64
	}{
		{gapless, act{30, 30, 30}, time.Second, 1e9, 1, 40},                    // a fresh backup: at least the last hour again
		{gapless, act{3600, 3600, 3600}, 24 * time.Hour, 1e9, 1, 2*86400 + 10}, // old: twice the rate over its age
		{gapless, act{0, 2400, 2400}, time.Minute, 1e9, 1, 100 + 10},           // a quiet hour: the day's rate
		{gapless, act{0, 0, 7 * 2400}, 2 * time.Hour, 1e9, 1, 400 + 10},        // a quiet day: the week's
		{cached, act{3600, 3600, 3600}, time.Minute, 1e9, 1, 3600 + 2000},      // two leases of a block
		{cached, act{3600, 3600, 3600}, time.Minute, 1e9, 3, 3600 + 6000},      // per server
		{cached, act{1014, 1014, 1014}, 0, 5746, 1, 1014 + 2*180},              // a small range: leases capped at 1/32 of it
		{cached, act{1, 1, 1}, 0, 5746, 0, 1 + 2*180},                          // no server seen: still one
		{gapless, act{100, 100, 100}, -time.Hour, 1e9, 1, 110},                 // a clock behind: no negative age
	} {
		got, ok := allot.RestoreMargin(tc.seq, tc.act, tc.age, tc.remaining, tc.servers)
		if !ok || got != tc.want {
			t.Errorf("RestoreMargin(%s, %+v, %s, %d, %d) = %d %v, want %d", tc.seq.Mode, tc.act, tc.age, tc.remaining, tc.servers, got, ok, tc.want)
		}
	}
	// Nothing in the week before the backup: no rate to go by.
	if _, ok := allot.RestoreMargin(gapless, act{}, time.Hour, 1e9, 1); ok {
		t.Error("a margin for a sequence with no history")
	}
}

func TestRestorePeriods(t *testing.T) {
	at := time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		seq  *allot.Sequence
		now  time.Time
		want string
	}{
		// From periods_back before the backup's period to periods_ahead
		// after today's: a date in any of them may have taken numbers.
		{&allot.Sequence{Reset: allot.ResetDaily, Timezone: "UTC", PeriodsBack: 1}, at.Add(50 * time.Hour),
			"[2026-11-28 2026-11-29 2026-11-30 2026-12-01 2026-12-02]"},
		{&allot.Sequence{Reset: allot.ResetYearly, Timezone: "UTC", PeriodsBack: 1, PeriodsAhead: 1}, at.Add(time.Hour),
			"[2025 2026 2027]"},
		{&allot.Sequence{Reset: allot.ResetMonthly, Timezone: "UTC"}, at.AddDate(0, 2, 0), "[2026-11 2026-12 2027-01]"},
		// In the sequence's zone: 22:00 UTC is already the 30th in Tokyo.
		{&allot.Sequence{Reset: allot.ResetDaily, Timezone: "Asia/Tokyo"}, at, "[2026-11-30]"},
		{&allot.Sequence{Reset: allot.ResetNever}, at.Add(time.Hour), "[]"},
	} {
		if got := fmt.Sprint(allot.RestorePeriods(tc.seq, at, tc.now)); got != tc.want {
			t.Errorf("%s, %s back %d ahead %d: %s, want %s", tc.seq.Reset, tc.seq.Timezone, tc.seq.PeriodsBack, tc.seq.PeriodsAhead, got, tc.want)
		}
	}
}
