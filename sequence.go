package allot

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"
	"unicode"

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
	// PeriodsBack and PeriodsAhead bound the document dates a resetting
	// sequence accepts: from PeriodsBack periods before the current one
	// to PeriodsAhead after it. Default to 1 and 0 (this period and the
	// previous one). A sequence that never resets accepts any date.
	PeriodsBack  int `json:"periods_back"`
	PeriodsAhead int `json:"periods_ahead"`
	// ConfirmWithin, when set, makes every number two-phase: next returns
	// it reserved, and it is voided unless confirmed within this time.
	// Defaults to 0 (numbers are issued at once).
	ConfirmWithin Duration `json:"confirm_within"`
	// AllowOverlap lets this sequence render IDs another sequence can
	// render too. Defaults to false: such a create is refused.
	AllowOverlap bool `json:"allow_overlap"`
	// Label is the saved label settings: what a label request leaves out
	// is taken from here, so a scanner station only sends a count. Nil
	// when none are saved.
	Label *LabelSpec `json:"label,omitempty"`
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
	// PeriodsBack and PeriodsAhead default to 1 and 0.
	PeriodsBack  *int `json:"periods_back,omitempty"`
	PeriodsAhead *int `json:"periods_ahead,omitempty"`
	// ConfirmWithin makes the sequence's numbers two-phase (1s..24h).
	ConfirmWithin *Duration `json:"confirm_within,omitempty"`
	// AllowOverlap creates the sequence even if another sequence can
	// render the same IDs.
	AllowOverlap bool `json:"allow_overlap,omitempty"`
	// Label saves label settings with the sequence.
	Label *LabelSpec `json:"label,omitempty"`
}

// SequencePatchParams change a sequence. Nil fields stay as they are.
type SequencePatchParams struct {
	// Max raises (or lowers, down to the highest number taken) the max.
	Max *int64 `json:"max,omitempty"`
	// WarnAt changes the warning threshold.
	WarnAt *float64 `json:"warn_at,omitempty"`
	// PeriodsBack and PeriodsAhead change the window of accepted dates.
	PeriodsBack  *int `json:"periods_back,omitempty"`
	PeriodsAhead *int `json:"periods_ahead,omitempty"`
	// ConfirmWithin changes the two-phase setting ("0s" turns it off).
	ConfirmWithin *Duration `json:"confirm_within,omitempty"`
	// Label replaces the saved label settings ({} removes them).
	Label *LabelSpec `json:"label,omitempty"`
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

		PeriodsBack:  PeriodsBackDefault,
		AllowOverlap: p.AllowOverlap,
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
	if p.PeriodsBack != nil {
		s.PeriodsBack = *p.PeriodsBack
	}
	if p.PeriodsAhead != nil {
		s.PeriodsAhead = *p.PeriodsAhead
	}
	if p.ConfirmWithin != nil {
		s.ConfirmWithin = *p.ConfirmWithin
	}
	if err := ValidateText("format", s.Format, format.MaxTemplateLen); err != nil {
		return nil, err
	}
	if err := validatePrintableTemplate(s.Format); err != nil {
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
	if s.Label, err = savedLabel(p.Label); err != nil {
		return nil, err
	}
	return s, nil
}

// savedLabel validates label settings to save with a sequence: nil or {}
// saves none. A message names the field as label.FIELD.
func savedLabel(l *LabelSpec) (*LabelSpec, error) {
	if l == nil || *l == (LabelSpec{}) {
		return nil, nil
	}
	if _, err := l.Setup(); err != nil {
		var ie *InvalidError
		if errors.As(err, &ie) {
			return nil, &InvalidError{Field: "label." + ie.Field, Reason: ie.Reason}
		}
		return nil, err
	}
	c := *l
	return &c, nil
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
	if err := validateWindow(s.PeriodsBack, s.PeriodsAhead); err != nil {
		return err
	}
	if err := validateConfirmWithin("confirm_within", time.Duration(s.ConfirmWithin), true); err != nil {
		return err
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

// PeriodsBackDefault is how many past periods accept document dates.
const PeriodsBackDefault = 1

// PeriodsMax caps periods_back and periods_ahead.
const PeriodsMax = 1000

// ConfirmWithinMax caps how long a two-phase number may stay reserved.
const ConfirmWithinMax = 24 * time.Hour

func validateWindow(back, ahead int) error {
	if back < 0 || back > PeriodsMax {
		return Invalidf("periods_back", "must be between 0 and %d, got %d", PeriodsMax, back)
	}
	if ahead < 0 || ahead > PeriodsMax {
		return Invalidf("periods_ahead", "must be between 0 and %d, got %d", PeriodsMax, ahead)
	}
	return nil
}

// validateConfirmWithin checks a two-phase deadline; zero means off where
// off is allowed.
func validateConfirmWithin(field string, d time.Duration, zeroOK bool) error {
	if d == 0 && zeroOK {
		return nil
	}
	if d < time.Second || d > ConfirmWithinMax {
		if zeroOK {
			return Invalidf(field, "must be between 1s and %s (or 0s for none), got %s", ConfirmWithinMax, d)
		}
		return Invalidf(field, "must be between 1s and %s, got %s", ConfirmWithinMax, d)
	}
	return nil
}

// validatePrintableTemplate refuses control characters (line breaks, tabs,
// escapes, C1 controls) and line or paragraph separators in a template: an
// ID must print on one line of a label.
func validatePrintableTemplate(tmpl string) error {
	for i, r := range tmpl {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return Invalidf("format", "position %d: control character %U can't be printed on a label: remove it", i, r)
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

// SequenceState is a sequence with the figures of one period, as GET
// returns it. The figures come from the database alone, so every server
// reports the same.
type SequenceState struct {
	Sequence
	// Period is the reset period the figures are for.
	Period string `json:"period"`
	// Next is the next number the database will hand out (a cached
	// server may still hand out numbers below it from a lease).
	Next int64 `json:"next"`
	// Issued is how many numbers of the period are known to be handed
	// out: issued to callers, confirmed, or in leases whose server said
	// what it handed out. Voided numbers are not counted.
	Issued int64 `json:"issued"`
	// Leased is how many numbers sit in leases of servers that have not
	// said what they handed out: servers still running, or servers that
	// stopped without saying (a crash). They are not known to be issued.
	Leased int64 `json:"leased"`
	// Reserved is how many two-phase numbers await confirmation.
	Reserved int64 `json:"reserved"`
	// Voided is how many numbers of the period were voided.
	Voided int64 `json:"voided"`
	// Remaining is how many numbers are left before max (not taken by
	// anyone yet).
	Remaining int64 `json:"remaining"`
	// Warning is true once the used fraction of the range passes WarnAt.
	Warning bool `json:"warning"`
	// Closed is when the period was closed to new numbers, nil if open.
	Closed *time.Time `json:"closed_at,omitempty"`
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
	// Reference is the caller's document id (an invoice number, an order),
	// stored in the ledger with the numbers. Up to 200 printable
	// characters. A request with a reference is always written to the
	// database, never served from a cached lease.
	Reference string
	// ConfirmWithin, when set, makes the numbers two-phase: they are
	// returned reserved and voided unless confirmed (SequenceConfirm)
	// within this time (1s..24h). Defaults to the sequence's
	// confirm_within.
	ConfirmWithin time.Duration
	// Record, when set, writes the numbers to the ledger as issued, never
	// serving them from a cached lease (labels set it, so a reprint finds
	// printed numbers issued at once).
	Record bool
	// Deliver, when set, is called with the result before Next returns,
	// to hand it to the caller (an HTTP server writes the response). If it
	// returns an error, the numbers were not delivered: unless the request
	// has an IdempotencyKey (whose retry gets them back) they are handed
	// back to the counter, or voided with the reason when later numbers
	// were taken meanwhile. Next then returns that error.
	Deliver func(*NextResult) error
}

// NextResult is the outcome of taking numbers.
type NextResult struct {
	Sequence string   `json:"sequence"`
	First    int64    `json:"first"`
	Last     int64    `json:"last"`
	Count    int64    `json:"count"`
	Period   string   `json:"period"`
	IDs      []string `json:"ids"`
	// Status is issued, or reserved for two-phase numbers.
	Status NumberStatus `json:"status"`
	// ConfirmBy is when reserved numbers are voided unless confirmed.
	ConfirmBy *time.Time `json:"confirm_by,omitempty"`
	// Reference is the request's reference, if it had one.
	Reference string `json:"reference,omitempty"`
	// Remaining is how many numbers were left before max after this
	// request (for a number served from a cached lease: as of the
	// server's latest lease).
	Remaining int64 `json:"remaining"`
	// Warning is true once the used fraction of the range passed warn_at.
	Warning bool `json:"warning"`
	// Replayed is true when an Idempotency-Key returned a stored outcome.
	Replayed bool `json:"-"`

	one [1]string // backs IDs for a single ID, saving an allocation
}

// NumberStatus says what became of a number.
type NumberStatus string

const (
	// StatusIssued means the number is known to be handed out: issued to
	// a caller, confirmed, or in a lease whose server said so.
	StatusIssued NumberStatus = "issued"
	// StatusLeased means the number is in a lease of a server that has not
	// said what it handed out (it is running, or stopped without saying):
	// it may or may not have been handed out.
	StatusLeased NumberStatus = "leased"
	// StatusReserved means a two-phase number awaits its confirmation.
	StatusReserved NumberStatus = "reserved"
	// StatusVoided means the number was voided with a reason.
	StatusVoided NumberStatus = "voided"
	// StatusUnissued means the number was never handed out (or was handed
	// back and not yet handed out again).
	StatusUnissued NumberStatus = "unissued"
)

// ParseResult is what an ID decodes to and what the ledger says of it.
type ParseResult struct {
	ID     string `json:"id"`
	Number int64  `json:"number"`
	Period string `json:"period"`
	// Valid is false when a check character is wrong; Number and Period
	// are then what the rest of the ID shows, and Status is unissued.
	Valid  bool         `json:"valid"`
	Status NumberStatus `json:"status"`
	// Detail explains the status in a sentence.
	Detail string `json:"detail,omitempty"`
	// Reference is the document the number was issued or confirmed for.
	Reference string `json:"reference,omitempty"`
	// ConfirmBy is the deadline of a reserved number.
	ConfirmBy *time.Time `json:"confirm_by,omitempty"`
	// IssuedAs is the ID the number was really issued as, when this ID
	// shows the number with another date.
	IssuedAs string `json:"issued_as,omitempty"`
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

// ConfirmParams confirm two-phase numbers First..Last of a period (and,
// for an operator, issued numbers whose answer was never confirmed).
type ConfirmParams struct {
	Sequence string
	// Period is required for a sequence that resets.
	Period      string
	First, Last int64
	// Reference is the document the numbers went to.
	Reference string
}

// LedgerKind is the kind of a ledger entry.
type LedgerKind string

const (
	// LedgerIssued records numbers handed straight to callers.
	LedgerIssued LedgerKind = "issued"
	// LedgerLeased records a block leased to a server's memory.
	LedgerLeased LedgerKind = "leased"
	// LedgerReserved records two-phase numbers awaiting confirmation.
	LedgerReserved LedgerKind = "reserved"
	// LedgerVoided records voided numbers and why.
	LedgerVoided LedgerKind = "voided"
	// LedgerReturned records numbers handed back to the counter: they are
	// no longer taken and will be handed out again.
	LedgerReturned LedgerKind = "returned"
	// LedgerConfirmed records reserved numbers a caller confirmed.
	LedgerConfirmed LedgerKind = "confirmed"
)

// Taken reports whether entries of kind k hold numbers (issued, leased
// or reserved); the other kinds are notes about taken numbers.
func (k LedgerKind) Taken() bool {
	return k == LedgerIssued || k == LedgerLeased || k == LedgerReserved
}

// LedgerEntry is one line of a sequence's ledger.
type LedgerEntry struct {
	// ID orders entries and is the cursor.
	ID       int64      `json:"id"`
	Sequence string     `json:"sequence"`
	Kind     LedgerKind `json:"kind"`
	Period   string     `json:"period"`
	First    int64      `json:"first"`
	Last     int64      `json:"last"`
	Count    int64      `json:"count"`
	Reason   string     `json:"reason,omitempty"`
	Owner    string     `json:"owner,omitempty"`
	// Date is the document date the numbers render, where the format
	// shows more of the date than the period fixes.
	Date string `json:"date,omitempty"`
	// Reference is the caller's document id.
	Reference string `json:"reference,omitempty"`
	// ConfirmBy is the deadline of reserved numbers.
	ConfirmBy *time.Time `json:"confirm_by,omitempty"`
	// Pending is true while it is not known what became of the numbers:
	// a lease whose server has not said what it handed out, reserved
	// numbers not yet confirmed or voided, issued numbers whose answer
	// the server has not confirmed sent.
	Pending   bool      `json:"pending"`
	CreatedAt time.Time `json:"created_at"`
	// Batch identifies the group commit that wrote the entry.
	Batch int64 `json:"-"`
}

// LedgerPage is a page of a ledger. Next is the cursor for the next page,
// empty on the last one.
type LedgerPage struct {
	Entries []LedgerEntry `json:"entries"`
	Next    string        `json:"next"`
}

// NumberInfo is what a store's ledger says about one number, for
// NumberStatusOf.
type NumberInfo struct {
	// Taken is the issued, leased or reserved entry holding the number,
	// nil when none does.
	Taken *LedgerEntry
	// Voided and Confirmed are the notes covering the number, if any.
	Voided, Confirmed *LedgerEntry
	// OwnerStopped is true when Taken is a lease whose server is no
	// longer running: it stopped, or has not been seen for
	// ServerSilentAfter.
	OwnerStopped bool
}

// NumberStatusOf decides what became of a number from what the ledger
// says of it; dateKey is the date the ID shows (see format's DateKey), ""
// when the sequence does not track dates. Stores and the Service share it.
func NumberStatusOf(info NumberInfo, dateKey string) (st NumberStatus, detail string) {
	t := info.Taken
	switch {
	case info.Voided != nil:
		return StatusVoided, "voided: " + info.Voided.Reason
	case t == nil:
		return StatusUnissued, "never handed out"
	case t.Date != "" && dateKey != "" && t.Date != dateKey:
		return StatusUnissued, "this number was handed out with the date " + t.Date + ", not " + dateKey
	case t.Kind == LedgerReserved && info.Confirmed != nil:
		return StatusIssued, "reserved and confirmed"
	case t.Kind == LedgerReserved:
		return StatusReserved, "reserved: voided unless confirmed by " + t.ConfirmBy.UTC().Format(time.RFC3339)
	case t.Kind == LedgerLeased && t.Pending && info.OwnerStopped:
		return StatusLeased, "leased to server " + t.Owner + ", which stopped without saying what it handed out"
	case t.Kind == LedgerLeased && t.Pending:
		return StatusLeased, "leased to server " + t.Owner + ", which is running and has not yet said whether it handed this number out"
	case t.Kind == LedgerLeased:
		return StatusIssued, "handed out by server " + t.Owner
	}
	return StatusIssued, "issued"
}

// ServerSilentAfter is how long a server may go without saying it is
// alive (every ServerHeartbeat) before it counts as stopped: its leases
// then read as held by a server that stopped without saying what it handed
// out, and voids of its leased numbers need no force.
const ServerSilentAfter = time.Minute

// ServerHeartbeat is how often a server says it is alive.
const ServerHeartbeat = 10 * time.Second

// CheckNewSequence refuses to store seq next to others (every stored
// sequence): ErrAlreadyExists if one has its name, an *OverlapError as
// FindOverlap says. Stores call it inside the transaction that stores
// seq, with the sequences locked.
func CheckNewSequence(seq *Sequence, others []*Sequence) error {
	for _, o := range others {
		if o.Name == seq.Name {
			return Errorf(ErrAlreadyExists, "sequence %q already exists", seq.Name)
		}
	}
	return FindOverlap(seq, others)
}

// FindOverlap returns an *OverlapError if seq could render an ID that one
// of others (the other sequences) renders too, unless seq allows
// overlaps. Stores call it inside the transaction that stores seq, so two
// creates can't race past each other.
func FindOverlap(seq *Sequence, others []*Sequence) error {
	if seq.AllowOverlap {
		return nil
	}
	a, err := seq.Template()
	if err != nil {
		return nil // stored formats always parse; a new one was validated
	}
	for _, o := range others {
		if o.Name == seq.Name {
			continue
		}
		b, err := o.Template()
		if err != nil {
			continue
		}
		if ok, n := format.MayOverlap(a, seq.Start, seq.Max, b, o.Start, o.Max); ok {
			return &OverlapError{Sequence: seq.Name, Other: o.Name, Number: n}
		}
	}
	return nil
}
