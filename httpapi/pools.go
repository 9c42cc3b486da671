package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/wire"
)

// durationText is wire.DurationText (the wire contract).
type durationText = wire.DurationText

// timeText is an RFC 3339 time in a request body, parsed by the handlers
// for the same reason.
type timeText string

// parseDuration parses the duration of field, nil when absent.
func parseDuration(field string, v *durationText) (*allot.Duration, error) {
	if v == nil {
		return nil, nil
	}
	d, err := time.ParseDuration(string(*v))
	if err != nil {
		return nil, allot.Invalidf(field, "%q is not a duration: use a string such as \"10m\" or \"90s\"", string(*v))
	}
	ad := allot.Duration(d)
	return &ad, nil
}

// parseTime parses the RFC 3339 time of field, nil when absent.
func parseTime(field string, v *timeText) (*time.Time, error) {
	if v == nil {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, string(*v))
	if err != nil {
		return nil, allot.Invalidf(field, "%q is not an RFC 3339 time: use a string such as \"2026-11-27T09:00:00Z\"", string(*v))
	}
	return &t, nil
}

// poolSettingsBody is the settings part of the pool create and patch
// bodies; it mirrors allot.PoolPatchParams field for field (a test keeps
// them in step) with durations and times as text.
type poolSettingsBody struct {
	Capacity    *int64        `json:"capacity"`
	PerCustomer *int64        `json:"per_customer"`
	HoldTTL     *durationText `json:"hold_ttl"`
	MaxHoldTTL  *durationText `json:"max_hold_ttl"`
	MaxQuantity *int64        `json:"max_quantity"`
	State       *string       `json:"state"`
	OpensAt     *timeText     `json:"opens_at"`
	ClosesAt    *timeText     `json:"closes_at"`
}

// poolCreateBody is the body of POST /v1/pools; it mirrors
// allot.PoolCreateParams. (It spells the settings out rather than embed
// poolSettingsBody: encoding/json would name a mistyped field
// "poolSettingsBody.capacity".)
type poolCreateBody struct {
	Name        string        `json:"name"`
	Capacity    *int64        `json:"capacity"`
	PerCustomer *int64        `json:"per_customer"`
	HoldTTL     *durationText `json:"hold_ttl"`
	MaxHoldTTL  *durationText `json:"max_hold_ttl"`
	MaxQuantity *int64        `json:"max_quantity"`
	State       *string       `json:"state"`
	OpensAt     *timeText     `json:"opens_at"`
	ClosesAt    *timeText     `json:"closes_at"`
}

// settings returns the settings part of the body.
func (b *poolCreateBody) settings() *poolSettingsBody {
	return &poolSettingsBody{Capacity: b.Capacity, PerCustomer: b.PerCustomer, HoldTTL: b.HoldTTL, MaxHoldTTL: b.MaxHoldTTL,
		MaxQuantity: b.MaxQuantity, State: b.State, OpensAt: b.OpensAt, ClosesAt: b.ClosesAt}
}

// params converts the body, naming the field of any bad value.
func (b *poolSettingsBody) params() (allot.PoolPatchParams, error) {
	p := allot.PoolPatchParams{Capacity: b.Capacity, PerCustomer: b.PerCustomer, MaxQuantity: b.MaxQuantity}
	var err error
	if p.HoldTTL, err = parseDuration("hold_ttl", b.HoldTTL); err != nil {
		return p, err
	}
	if p.MaxHoldTTL, err = parseDuration("max_hold_ttl", b.MaxHoldTTL); err != nil {
		return p, err
	}
	if b.State != nil {
		if *b.State == "" {
			return p, allot.Invalidf("state", "is empty: use \"open\", \"paused\" or \"closed\", or leave state out")
		}
		p.State = allot.PoolStatus(*b.State)
	}
	if p.OpensAt, err = parseTime("opens_at", b.OpensAt); err != nil {
		return p, err
	}
	if p.ClosesAt, err = parseTime("closes_at", b.ClosesAt); err != nil {
		return p, err
	}
	return p, nil
}

// poolCreate serves POST /v1/pools.
func (s *Server) poolCreate(w http.ResponseWriter, r *http.Request) outcome {
	var b poolCreateBody
	if err := decodeBody(r, &b); err != nil {
		return s.problem(w, r, err)
	}
	pp, err := b.settings().params()
	if err != nil {
		return s.problem(w, r, err)
	}
	st, err := s.svc.PoolCreate(r.Context(), allot.PoolCreateParams{
		Name: b.Name, Capacity: pp.Capacity, PerCustomer: pp.PerCustomer, HoldTTL: pp.HoldTTL, MaxHoldTTL: pp.MaxHoldTTL,
		MaxQuantity: pp.MaxQuantity, State: pp.State, OpensAt: pp.OpensAt, ClosesAt: pp.ClosesAt,
	})
	if err != nil {
		return s.problem(w, r, err)
	}
	w.Header().Set("Location", "/v1/pools/"+url.PathEscape(st.Name))
	return s.writeJSON(w, r, http.StatusCreated, st)
}

// poolList serves GET /v1/pools.
func (s *Server) poolList(w http.ResponseWriter, r *http.Request) outcome {
	list, err := s.svc.PoolList(r.Context())
	if err != nil {
		return s.problem(w, r, err)
	}
	if list == nil {
		list = []*allot.PoolState{}
	}
	return s.writeJSON(w, r, http.StatusOK, poolListBody{Pools: list})
}

// poolListBody is wire.PoolList (the wire contract).
type poolListBody = wire.PoolList

// poolGet serves GET /v1/pools/{name}.
func (s *Server) poolGet(w http.ResponseWriter, r *http.Request) outcome {
	st, err := s.svc.PoolGet(r.Context(), r.PathValue("name"))
	return s.answer(w, r, http.StatusOK, st, err)
}

// poolPatch serves PATCH /v1/pools/{name}.
func (s *Server) poolPatch(w http.ResponseWriter, r *http.Request) outcome {
	var b poolSettingsBody
	if err := decodeBody(r, &b); err != nil {
		return s.problem(w, r, err)
	}
	p, err := b.params()
	if err != nil {
		return s.problem(w, r, err)
	}
	st, err := s.svc.PoolPatch(r.Context(), r.PathValue("name"), p)
	return s.answer(w, r, http.StatusOK, st, err)
}

// claimBody is the body of POST /v1/pools/{name}/claims. A pointer tells
// an absent quantity (1) from an explicit 0 (refused).
type claimBody struct {
	Customer string        `json:"customer"`
	Quantity *int64        `json:"quantity"`
	TTL      *durationText `json:"ttl"`
}

// decodeClaim reads the body of a claim request into p. Common bodies are
// parsed without reflection; anything else goes through decodeJSON,
// which has the final word. An empty body is an empty object, so the
// missing customer is what gets reported.
func decodeClaim(r *http.Request, p *allot.ClaimCreateParams) error {
	return withBody(r, func(b []byte) error { return claimParams(b, p) })
}

// claimParams reads a claim body b into p.
func claimParams(b []byte, p *allot.ClaimCreateParams) error {
	fields := [3]flatField{{key: "customer"}, {key: "quantity", kind: flatInt}, {key: "ttl"}}
	var ttl *durationText
	if parseFlat(b, fields[:]) {
		p.Customer = fields[0].s
		if fields[1].set {
			if err := checkQuantity(fields[1].n); err != nil {
				return err
			}
			p.Quantity = fields[1].n
		}
		if fields[2].set {
			t := durationText(fields[2].s)
			ttl = &t
		}
	} else {
		var body claimBody
		if err := decodeJSON(b, &body); err != nil {
			return err
		}
		p.Customer = body.Customer
		if body.Quantity != nil {
			if err := checkQuantity(*body.Quantity); err != nil {
				return err
			}
			p.Quantity = *body.Quantity
		}
		ttl = body.TTL
	}
	var err error
	p.TTL, err = parseDuration("ttl", ttl)
	return err
}

// checkQuantity refuses an explicit quantity below 1, which the Service
// would otherwise read as "the default". The upper bound is the pool's
// max_quantity, which the Service checks.
func checkQuantity(q int64) error {
	if q < 1 {
		return allot.Invalidf("quantity", "must be at least 1 (leave quantity out for 1), got %d", q)
	}
	return nil
}

// idempotencyKey returns the request's Idempotency-Key, "" when it has none.
func idempotencyKey(r *http.Request) (string, error) {
	h := r.Header["Idempotency-Key"]
	if len(h) == 0 {
		return "", nil
	}
	if len(h) > 1 || h[0] == "" {
		return "", allot.Invalidf("Idempotency-Key", "send exactly one non-empty Idempotency-Key header, or none")
	}
	return h[0], nil
}

// claimCreate serves POST /v1/pools/{name}/claims, the hot path of a sale.
// A new claim answers 201 with its Location; a replay of an
// Idempotency-Key answers 200 with Idempotent-Replayed: true.
func (s *Server) claimCreate(w http.ResponseWriter, r *http.Request) outcome {
	p := allot.ClaimCreateParams{Pool: r.PathValue("name")}
	if err := decodeClaim(r, &p); err != nil {
		return s.problem(w, r, err)
	}
	key, err := idempotencyKey(r)
	if err != nil {
		return s.problem(w, r, err)
	}
	p.IdempotencyKey = key
	c, replayed, err := s.svc.ClaimCreate(r.Context(), p)
	if err != nil {
		return s.problem(w, r, err)
	}
	status := http.StatusCreated
	if replayed {
		w.Header()["Idempotent-Replayed"] = hdrTrue
		status = http.StatusOK
	} else {
		w.Header()["Location"] = []string{"/v1/claims/" + url.PathEscape(c.ID)}
	}
	return s.writeClaim(w, r, status, c)
}

// writeClaim writes one claim as JSON without reflection.
func (s *Server) writeClaim(w http.ResponseWriter, r *http.Request, status int, c *allot.Claim) outcome {
	bp := getBuf()
	defer putBuf(bp)
	b, ok := appendClaimJSON((*bp)[:0], c)
	*bp = b
	if !ok {
		return s.writeJSON(w, r, status, c)
	}
	return writeBytes(w, status, hdrJSON, b)
}

// claimGet serves GET /v1/claims/{id}.
func (s *Server) claimGet(w http.ResponseWriter, r *http.Request) outcome {
	c, err := s.svc.ClaimGet(r.Context(), r.PathValue("id"))
	if err != nil {
		return s.problem(w, r, err)
	}
	return s.writeClaim(w, r, http.StatusOK, c)
}

// claimList serves GET /v1/pools/{name}/claims?customer=&status=&after=&limit=.
func (s *Server) claimList(w http.ResponseWriter, r *http.Request) outcome {
	q := r.URL.Query()
	limit, err := queryLimit(q)
	if err != nil {
		return s.problem(w, r, err)
	}
	page, err := s.svc.ClaimList(r.Context(), allot.ClaimListParams{
		Pool: r.PathValue("name"), Customer: q.Get("customer"), Status: allot.ClaimStatus(q.Get("status")),
		After: q.Get("after"), Limit: limit,
	})
	if err != nil {
		return s.problem(w, r, err)
	}
	return s.writeJSON(w, r, http.StatusOK, page)
}

// queryLimit reads the limit query parameter: 0 when absent (the
// service's default), an error when not a whole number or 0.
func queryLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, allot.Invalidf("limit", "%q is not a whole number: use 1 to 1000", v)
	}
	if n == 0 {
		return 0, allot.Invalidf("limit", "must be between 1 and 1000, got 0")
	}
	return n, nil
}

// confirmBody is wire.ClaimConfirmRequest (the wire contract).
type confirmBody = wire.ClaimConfirmRequest

// extendBody is wire.ExtendRequest (the wire contract).
type extendBody = wire.ExtendRequest

// releaseBody is the body of POST /v1/claims/{id}/release: empty or {}.
type releaseBody struct{}

// cancelBody is wire.CancelRequest (the wire contract).
type cancelBody = wire.CancelRequest

// claimCancel serves POST /v1/claims/{id}/cancel: a refund of a confirmed
// claim.
func (s *Server) claimCancel(w http.ResponseWriter, r *http.Request) outcome {
	var b cancelBody
	if err := decodeOptional(r, &b); err != nil {
		return s.problem(w, r, err)
	}
	return s.transition(w, r, allot.ClaimTransitionParams{Action: allot.ActionCancel, Reason: b.Reason})
}

// claimConfirm serves POST /v1/claims/{id}/confirm.
func (s *Server) claimConfirm(w http.ResponseWriter, r *http.Request) outcome {
	var b confirmBody
	if err := decodeOptional(r, &b); err != nil {
		return s.problem(w, r, err)
	}
	return s.transition(w, r, allot.ClaimTransitionParams{Action: allot.ActionConfirm, Reference: b.Reference})
}

// claimRelease serves POST /v1/claims/{id}/release.
func (s *Server) claimRelease(w http.ResponseWriter, r *http.Request) outcome {
	var b releaseBody
	if err := decodeOptional(r, &b); err != nil {
		return s.problem(w, r, err)
	}
	return s.transition(w, r, allot.ClaimTransitionParams{Action: allot.ActionRelease})
}

// claimExtend serves POST /v1/claims/{id}/extend.
func (s *Server) claimExtend(w http.ResponseWriter, r *http.Request) outcome {
	var b extendBody
	if err := decodeOptional(r, &b); err != nil {
		return s.problem(w, r, err)
	}
	ttl, err := parseDuration("ttl", b.TTL)
	if err != nil {
		return s.problem(w, r, err)
	}
	return s.transition(w, r, allot.ClaimTransitionParams{Action: allot.ActionExtend, TTL: ttl})
}

// transition runs a claim transition with the request's claim id and
// Idempotency-Key, and writes the claim.
func (s *Server) transition(w http.ResponseWriter, r *http.Request, p allot.ClaimTransitionParams) outcome {
	key, err := idempotencyKey(r)
	if err != nil {
		return s.problem(w, r, err)
	}
	p.ID, p.IdempotencyKey = r.PathValue("id"), key
	c, replayed, err := s.svc.ClaimTransition(r.Context(), p)
	if err != nil {
		return s.problem(w, r, err)
	}
	if replayed {
		w.Header()["Idempotent-Replayed"] = hdrTrue
	}
	return s.writeClaim(w, r, http.StatusOK, c)
}

// auditReport is wire.AuditReport (the wire contract).
type auditReport = wire.AuditReport

// audit serves GET /v1/audit: 200 whatever the outcome; the body says.
func (s *Server) audit(w http.ResponseWriter, r *http.Request) outcome {
	checks, err := s.svc.Audit(r.Context())
	if err != nil {
		return s.problem(w, r, err)
	}
	rep := auditReport{OK: true, Checks: checks}
	if rep.Checks == nil {
		rep.Checks = []allot.AuditCheck{}
	}
	for _, c := range checks {
		rep.OK = rep.OK && c.OK
	}
	return s.writeJSON(w, r, http.StatusOK, rep)
}
