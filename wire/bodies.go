package wire

import "github.com/allot/allot"

// The request bodies and list envelopes that have no domain type of their
// own, as the server decodes them (strictly: exact keys, no nulls) and the
// client encodes them. Pointers tell an absent field from an explicit
// zero; omitempty leaves absent fields out of what the client sends. A
// body whose shape is a domain type (allot.SequenceCreateParams,
// allot.PoolCreateParams, …) is sent as that type.

// DurationText is a duration in a request body, Go duration text such as
// "10m". The server parses it itself, so an error names the field.
type DurationText string

// NextRequest is the body of POST /v1/sequences/{name}/next.
type NextRequest struct {
	Count         *int64        `json:"count,omitempty"`
	Date          *string       `json:"date,omitempty"`
	Reference     *string       `json:"reference,omitempty"`
	ConfirmWithin *DurationText `json:"confirm_within,omitempty"`
}

// VoidRequest is the body of POST /v1/sequences/{name}/void: a number or
// an ID, and why.
type VoidRequest struct {
	Number *int64 `json:"number,omitempty"`
	ID     string `json:"id,omitempty"`
	Date   string `json:"date,omitempty"`
	Reason string `json:"reason"`
	Force  bool   `json:"force,omitempty"`
}

// ConfirmNumbersRequest is the body of POST /v1/sequences/{name}/confirm.
type ConfirmNumbersRequest struct {
	First     *int64 `json:"first"`
	Last      *int64 `json:"last"`
	Period    string `json:"period,omitempty"`
	Reference string `json:"reference,omitempty"`
}

// ClaimConfirmRequest is the body of POST /v1/claims/{id}/confirm
// (optional).
type ClaimConfirmRequest struct {
	Reference string `json:"reference,omitempty"`
}

// ExtendRequest is the body of POST /v1/claims/{id}/extend.
type ExtendRequest struct {
	TTL *DurationText `json:"ttl"`
}

// CancelRequest is the body of POST /v1/claims/{id}/cancel.
type CancelRequest struct {
	Reason string `json:"reason"`
}

// PoolList is the response of GET /v1/pools.
type PoolList struct {
	Pools []*allot.PoolState `json:"pools"`
}

// SequenceList is the response of GET /v1/sequences.
type SequenceList struct {
	Sequences []*allot.SequenceState `json:"sequences"`
}

// AuditReport is the response of GET /v1/audit: OK when every check
// passed.
type AuditReport struct {
	OK     bool               `json:"ok"`
	Checks []allot.AuditCheck `json:"checks"`
}

// LabelsRequest is the body of POST /v1/sequences/{name}/labels: what
// next takes, and how to print the labels (what it leaves out comes from
// the sequence's saved label settings, then the defaults).
type LabelsRequest struct {
	NextRequest
	allot.LabelSpec
}
