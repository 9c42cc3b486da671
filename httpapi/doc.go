// Package httpapi serves allot's HTTP API v1 over an *allot.Service.
//
// The whole API is the table in routes.go; the embedded OpenAPI 3.1
// document (GET /openapi.json) describes every route in it, and a test
// keeps the two in step.
//
// # Guarantees
//
//   - Every number a response carries was taken by the Service, which gives
//     each number to exactly one caller; likewise every claim of pool
//     units. The HTTP layer adds no buffering or retries of its own: a
//     request either reaches the Service once or not at all. A client that
//     must retry safely sends an Idempotency-Key (on next, claim create,
//     confirm, release, extend and cancel); a retry with the same key and
//     body returns the same outcome and the header "Idempotent-Replayed:
//     true". A replayed claim create answers 200 instead of 201. A claim
//     confirm, release or cancel, and a confirm of sequence numbers, that
//     finds its transition already made (same reference, same reason) is a
//     replay too, without a key.
//   - An answer that can't be delivered gives its numbers back: next hands
//     the Service a Deliver function that writes and flushes the response,
//     and a request whose caller left (its context ended, the connection
//     broke) before that hands the numbers back to the counter or voids
//     them with the reason "request cancelled before the answer" (unless it
//     has an Idempotency-Key, whose retry gets them). Each request has a
//     deadline, Config.RequestTimeout (10 s by default), which also reaches
//     the database; a store that is down, frozen or failing over answers
//     503 unavailable with Retry-After, quickly, never 500 and never a hang.
//   - Input is validated before anything is taken: a malformed, oversized
//     (over 1 MiB), mistyped or unknown-field body, trailing data after the
//     JSON object, a non-empty body whose Content-Type is not
//     application/json, a duration that is not text such as "10m", a time
//     that is not RFC 3339, or a text/plain request for IDs that contain
//     line breaks is refused with a 4xx problem and takes no number and no
//     unit. Every message names the field to fix where there is one.
//   - A body is one flat JSON object whose keys are spelled exactly as the
//     schema's fields: a key that matches a field only case-insensitively
//     (the message names the field it resembles), a null value (leave the
//     field out to get its default) and a key given twice are refused with
//     400 invalid_request naming the key, where encoding/json alone would
//     accept them.
//   - Each route takes only the query parameters it documents (a
//     sequence: date; the ledger: after, limit; the claim list: customer,
//     status, after, limit; every other route none). Another parameter, one given twice,
//     or a query string that does not parse whole (a ';', a bad %-escape)
//     is refused with 400 invalid_request naming the parameter, after
//     authentication and before the handler runs.
//   - Every error response is an RFC 9457 problem (Content-Type
//     application/problem+json) with the members type, title, status,
//     detail and code, plus field, remaining, requested, available, limit,
//     used, capacity, held, confirmed, sequence and request_id where they
//     apply. Codes are stable: invalid_request, not_found, already_exists,
//     sequence_exhausted, sold_out, customer_limit, pool_closed,
//     claim_expired, invalid_state, period_closed, range_overlap,
//     idempotency_mismatch,
//     idempotency_in_flight, unauthorized, forbidden, method_not_allowed,
//     unavailable and internal. An internal error is logged with its request
//     id; its response says only "internal error" and that id.
//   - Bad input never causes a 5xx: a panic is still recovered and answered
//     with 500 as defence in depth, but no input is meant to reach it.
//   - Every response carries X-Request-Id: the caller's, if it is 1 to 128
//     visible ASCII characters, otherwise a generated one.
//   - Authentication is a bearer token looked up in Config.Keys. Admin keys
//     may call every route; client keys may take and confirm numbers, read
//     sequences and IDs, claim, confirm, release, extend and cancel pool
//     units, and read pools and claims. Creating and changing sequences and
//     pools, closing periods, voids, ledgers and the audit are for admin
//     keys. /metrics needs an admin or
//     a metrics key, and a metrics key may call nothing else (403
//     forbidden). /healthz, /readyz and /openapi.json are public. An empty
//     Keys map disables authentication, /metrics included.
//
// # Logs
//
// Config.Logger gets an Error line for every internal error (500), with
// the error and the request id. Every 4xx and 5xx response also gets one
// Info line "request" with request_id, method, path, route, status, code
// (the problem code) and duration. A flash sale can answer tens of
// thousands of 409 sold_out a second, and an outage 503 to everything, so
// these lines are limited per route and status to a token bucket of 5
// lines a second with a burst of 20; the rest are counted, and a line
// "suppressed N similar responses" (with route, status and suppressed)
// reports the count at most every 10 s per route and status. Summaries
// are written from the request path, by the first request after one is
// due, so the Server runs no goroutine of its own; a count still pending
// when requests stop is reported by the next request. A response over
// the limit costs the log a couple of atomic operations and no
// allocation. At Debug level every request, success or not, is logged
// (those over the limit at Debug instead of Info).
//
// Metrics are served at /metrics from Config.Registry, and by
// Server.MetricsHandler, which serves the same /metrics without a key for
// a separate listen address that only the scraper can reach:
// allot_http_request_duration_seconds{route,code},
// allot_batch_size{kind}, allot_commit_duration_seconds{kind},
// allot_batch_errors_total{kind} (kind "claim" for pool claims),
// allot_claims_total{pool,outcome} (outcome "held", or the reason a claim
// was refused), and the gauges allot_sequence_remaining{sequence},
// allot_sequence_warning{sequence}, allot_sequence_numbers{sequence,state}
// (state issued, leased, reserved or voided: from the database, so the same
// on every server), allot_pool_capacity{pool},
// allot_pool_held{pool} and allot_pool_confirmed{pool}, computed when
// scraped.
package httpapi
