package allot

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/allot/allot/format"
)

// Mode says how a sequence trades gaps for speed.
type Mode string

const (
	// ModeCached leases blocks of numbers and serves them from memory. A
	// crash may leave part of a leased block unissued; the ledger records
	// every lease, so every gap is explained.
	ModeCached Mode = "cached"
	// ModeGapless commits every number before it is returned. Every number
	// from start to the last one issued went to exactly one caller or was
	// voided with a reason, even across crashes.
	ModeGapless Mode = "gapless"
)

// Reset says when a sequence's counter starts again at start.
type Reset string

const (
	// ResetNever keeps one counter for the life of the sequence.
	ResetNever Reset = "never"
	// ResetYearly keeps one counter per calendar year.
	ResetYearly Reset = "yearly"
	// ResetMonthly keeps one counter per calendar month.
	ResetMonthly Reset = "monthly"
	// ResetDaily keeps one counter per calendar day.
	ResetDaily Reset = "daily"
)

// Defaults for new sequences.
const (
	// FormatDefault renders the plain number.
	FormatDefault = "{n}"
	// StartDefault is the first number of a sequence.
	StartDefault int64 = 1
	// BlockSizeDefault is how many numbers a cached sequence leases at once.
	BlockSizeDefault int64 = 1000
	// BlockSizeMax caps block_size.
	BlockSizeMax int64 = 1_000_000
	// WarnAtDefault is the fraction of the range used past which a sequence warns.
	WarnAtDefault = 0.9
	// TimezoneDefault is the zone "today" is taken in.
	TimezoneDefault = "UTC"
	// CountMax is the most numbers one request may take.
	CountMax = 100_000
	// MaxDefault is the max of a sequence whose format has no mask.
	MaxDefault int64 = math.MaxInt64
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)

// ValidateName checks a sequence or pool name.
func ValidateName(field, name string) error {
	if name == "" {
		return Invalidf(field, "is required")
	}
	if !nameRE.MatchString(name) {
		return Invalidf(field, "%q must match [a-z0-9][a-z0-9._-]{0,127}: lower-case letters, digits, '.', '_' and '-', starting with a letter or digit", name)
	}
	return nil
}

// Sequence is the configuration of a sequence of numbers.
type Sequence struct {
	// Name identifies the sequence; it matches [a-z0-9][a-z0-9._-]{0,127}.
	Name string `json:"name"`
	// Format is the ID template. Defaults to "{n}".
	Format string `json:"format"`
	// Start is the first number of every period. Defaults to 1.
	Start int64 `json:"start"`
	// Max is the last number that may be issued. Defaults to the mask's
	// capacity minus one, or 2^63-1.
	Max int64 `json:"max"`
	// Mode is cached or gapless. Defaults to cached.
	Mode Mode `json:"mode"`
	// BlockSize is how many numbers a cached sequence leases at once.
	// Defaults to 1000.
	BlockSize int64 `json:"block_size"`
	// Reset is never, yearly, monthly or daily. Defaults to never.
	Reset Reset `json:"reset"`
	// Timezone is the IANA zone "today" is taken in. Defaults to UTC.
	Timezone string `json:"timezone"`
	// WarnAt is the fraction of the range used past which the sequence
	// reports a warning. Defaults to 0.9.
	WarnAt float64 `json:"warn_at"`
	// CreatedAt is when the sequence was created.
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is when the sequence was last changed.
	UpdatedAt time.Time `json:"updated_at"`
}

// SequenceCreateParams are the inputs for creating a sequence. Zero or nil
// fields take their defaults.
type SequenceCreateParams struct {
	Name      string   `json:"name"`
	Format    string   `json:"format,omitempty"`
	Start     *int64   `json:"start,omitempty"`
	Max       *int64   `json:"max,omitempty"`
	Mode      Mode     `json:"mode,omitempty"`
	BlockSize *int64   `json:"block_size,omitempty"`
	Reset     Reset    `json:"reset,omitempty"`
	Timezone  string   `json:"timezone,omitempty"`
	WarnAt    *float64 `json:"warn_at,omitempty"`
}

// SequencePatchParams change a sequence. Nil fields stay as they are.
type SequencePatchParams struct {
	// Max raises (or lowers, down to the highest number taken) the max.
	Max *int64 `json:"max,omitempty"`
	// WarnAt changes the warning threshold.
	WarnAt *float64 `json:"warn_at,omitempty"`
}

// NewSequence fills defaults into params and validates the result. Every
// message names the field to fix.
func NewSequence(p SequenceCreateParams) (*Sequence, error) {
	s := &Sequence{
		Name:      p.Name,
		Format:    p.Format,
		Start:     StartDefault,
		Mode:      p.Mode,
		BlockSize: BlockSizeDefault,
		Reset:     p.Reset,
		Timezone:  p.Timezone,
		WarnAt:    WarnAtDefault,
	}
	if err := ValidateName("name", s.Name); err != nil {
		return nil, err
	}
	if s.Format == "" {
		s.Format = FormatDefault
	}
	if s.Mode == "" {
		s.Mode = ModeCached
	}
	if s.Reset == "" {
		s.Reset = ResetNever
	}
	if s.Timezone == "" {
		s.Timezone = TimezoneDefault
	}
	if p.Start != nil {
		s.Start = *p.Start
	}
	if p.BlockSize != nil {
		s.BlockSize = *p.BlockSize
	}
	if p.WarnAt != nil {
		s.WarnAt = *p.WarnAt
	}
	if err := ValidateText("format", s.Format, format.MaxTemplateLen); err != nil {
		return nil, err
	}
	tmpl, err := format.Parse(s.Format)
	if err != nil {
		var se *format.SyntaxError
		if errors.As(err, &se) {
			return nil, Invalidf("format", "position %d: %s", se.Pos, se.Msg)
		}
		return nil, &InvalidError{Field: "format", Reason: err.Error()}
	}
	capacity, bounded := tmpl.Capacity()
	s.Max = MaxDefault
	if bounded {
		s.Max = capacity - 1
	}
	if p.Max != nil {
		s.Max = *p.Max
	}
	if err := s.validate(tmpl); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Sequence) validate(tmpl *format.Template) error {
	switch s.Mode {
	case ModeCached, ModeGapless:
	default:
		return Invalidf("mode", "%q is not a mode: use \"cached\" or \"gapless\"", s.Mode)
	}
	switch s.Reset {
	case ResetNever, ResetYearly, ResetMonthly, ResetDaily:
	default:
		return Invalidf("reset", "%q is not a reset: use \"never\", \"yearly\", \"monthly\" or \"daily\"", s.Reset)
	}
	if _, err := time.LoadLocation(s.Timezone); err != nil || s.Timezone == "Local" {
		return Invalidf("timezone", "%q is not an IANA time zone (for example \"Europe/Berlin\" or \"UTC\")", s.Timezone)
	}
	if s.Start < 0 {
		return Invalidf("start", "must be 0 or more, got %d", s.Start)
	}
	if s.Max < 0 {
		return Invalidf("max", "must be 0 or more, got %d", s.Max)
	}
	if s.Max < s.Start {
		return Invalidf("max", "must be at least start (%d), got %d", s.Start, s.Max)
	}
	if capacity, bounded := tmpl.Capacity(); bounded && s.Max > capacity-1 {
		return Invalidf("max", "%d does not fit the format's mask, whose largest number is %d", s.Max, capacity-1)
	}
	if s.BlockSize < 1 || s.BlockSize > BlockSizeMax {
		return Invalidf("block_size", "must be between 1 and %d, got %d", BlockSizeMax, s.BlockSize)
	}
	if math.IsNaN(s.WarnAt) || s.WarnAt <= 0 || s.WarnAt > 1 {
		return Invalidf("warn_at", "must be a fraction in (0, 1], got %v", s.WarnAt)
	}
	parts := tmpl.Parts()
	switch s.Reset {
	case ResetYearly:
		if !parts.Year {
			return Invalidf("format", "reset %q needs {yyyy} or {yy} in the format, or two years would produce the same IDs", s.Reset)
		}
	case ResetMonthly:
		if !parts.Year || !parts.Month {
			return Invalidf("format", "reset %q needs a year ({yyyy} or {yy}) and {mm} in the format, or two months would produce the same IDs", s.Reset)
		}
	case ResetDaily:
		if !parts.Year || !parts.Month || !parts.Day {
			return Invalidf("format", "reset %q needs a year ({yyyy} or {yy}), {mm} and {dd} in the format, or two days would produce the same IDs", s.Reset)
		}
	}
	return nil
}

// Template parses the sequence's format. Stored sequences always parse.
func (s *Sequence) Template() (*format.Template, error) { return format.Parse(s.Format) }

// Location returns the sequence's time zone.
func (s *Sequence) Location() (*time.Location, error) { return time.LoadLocation(s.Timezone) }

// Period returns the reset period a date falls in: "" for never,
// "2026" yearly, "2026-11" monthly, "2026-11-22" daily.
func (s *Sequence) Period(d format.Date) string {
	switch s.Reset {
	case ResetYearly:
		return fmt.Sprintf("%04d", d.Year)
	case ResetMonthly:
		return fmt.Sprintf("%04d-%02d", d.Year, d.Month)
	case ResetDaily:
		return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day)
	}
	return ""
}

// Size is how many numbers one period holds: max - start + 1, saturating.
func (s *Sequence) Size() int64 {
	n := s.Max - s.Start
	if n == math.MaxInt64 {
		return n
	}
	return n + 1
}

// ParseDate parses a YYYY-MM-DD document date.
func ParseDate(field, v string) (format.Date, error) {
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return format.Date{}, Invalidf(field, "%q is not a date: use YYYY-MM-DD, for example 2026-01-31", v)
	}
	return format.Date{Year: t.Year(), Month: int(t.Month()), Day: t.Day()}, nil
}

// DateString renders a date as YYYY-MM-DD.
func DateString(d format.Date) string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// Today returns the current date in loc.
func Today(now time.Time, loc *time.Location) format.Date {
	y, m, d := now.In(loc).Date()
	return format.Date{Year: y, Month: int(m), Day: d}
}

// SequenceState is a sequence with its current figures, as GET returns it.
type SequenceState struct {
	Sequence
	// Period is the current reset period the figures are for.
	Period string `json:"period"`
	// Next is the next number this server would hand out.
	Next int64 `json:"next"`
	// Issued is how many numbers of the period were handed out (in cached
	// mode, leased to a server and not known to be unused) and not voided.
	Issued int64 `json:"issued"`
	// Remaining is how many numbers are left before max.
	Remaining int64 `json:"remaining"`
	// Voided is how many numbers of the period were voided.
	Voided int64 `json:"voided"`
	// Warning is true once the used fraction of the range passes WarnAt.
	Warning bool `json:"warning"`
}

// NextParams ask for numbers.
type NextParams struct {
	// Sequence names the sequence.
	Sequence string
	// Count is how many contiguous numbers to take, 1..100000. Defaults to 1.
	Count int64
	// Date is the document date (YYYY-MM-DD) used for date parts and the
	// reset period. Defaults to today in the sequence's time zone.
	Date string
	// IdempotencyKey, when set, makes a retry return the same numbers.
	IdempotencyKey string
}

// NextResult is the outcome of taking numbers.
type NextResult struct {
	Sequence string   `json:"sequence"`
	First    int64    `json:"first"`
	Last     int64    `json:"last"`
	Count    int64    `json:"count"`
	Period   string   `json:"period"`
	IDs      []string `json:"ids"`
	// Replayed is true when an Idempotency-Key returned a stored outcome.
	Replayed bool `json:"-"`

	one [1]string // backs IDs for a single ID, saving an allocation
}

// NumberStatus says what became of a number.
type NumberStatus string

const (
	// StatusIssued means the number was handed out (in cached mode: leased).
	StatusIssued NumberStatus = "issued"
	// StatusVoided means the number was voided with a reason.
	StatusVoided NumberStatus = "voided"
	// StatusUnissued means the number was never handed out.
	StatusUnissued NumberStatus = "unissued"
)

// ParseResult is what an ID decodes to.
type ParseResult struct {
	ID     string       `json:"id"`
	Number int64        `json:"number"`
	Period string       `json:"period"`
	Valid  bool         `json:"valid"`
	Status NumberStatus `json:"status"`
}

// VoidParams void one issued number, named by number (plus period or date)
// or by its rendered ID.
type VoidParams struct {
	Sequence string
	Number   *int64
	ID       string
	// Date picks the period of Number in a resetting sequence (YYYY-MM-DD).
	Date   string
	Reason string
	// Force voids a cached number even when it lies in a block leased to
	// another server that has not stopped (use it for a server that
	// crashed; the unused rest of its blocks was never handed out).
	Force bool
}

// LedgerKind is the kind of a ledger entry.
type LedgerKind string

const (
	// LedgerIssued records numbers handed straight to a caller.
	LedgerIssued LedgerKind = "issued"
	// LedgerLeased records a block leased to a server's memory.
	LedgerLeased LedgerKind = "leased"
	// LedgerVoided records voided numbers and why.
	LedgerVoided LedgerKind = "voided"
)

// LedgerEntry is one line of a sequence's ledger.
type LedgerEntry struct {
	// ID orders entries and is the cursor.
	ID        int64      `json:"id"`
	Sequence  string     `json:"sequence"`
	Kind      LedgerKind `json:"kind"`
	Period    string     `json:"period"`
	First     int64      `json:"first"`
	Last      int64      `json:"last"`
	Count     int64      `json:"count"`
	Reason    string     `json:"reason,omitempty"`
	Owner     string     `json:"owner,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// LedgerPage is a page of a ledger. Next is the cursor for the next page,
// empty on the last one.
type LedgerPage struct {
	Entries []LedgerEntry `json:"entries"`
	Next    string        `json:"next"`
}

// StatusOf says what became of number n in a period whose highest taken
// number is last, given whether a void covers it. Stores share it.
func StatusOf(n, start, last int64, voided bool) NumberStatus {
	switch {
	case voided:
		return StatusVoided
	case n >= start && n <= last:
		return StatusIssued
	}
	return StatusUnissued
}
