package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// Names of the objects the claim baselines use. The tables live in the
// pool's search_path; the Redis keys are RedisKeyPrefix + the quota name.
const (
	// QuotaTable holds one row per quota: (name, quota, reserved). It is
	// the hot row of [NaiveClaimHandler].
	QuotaTable = "allot_bench_quota"
	// OrdersTable holds one row per successful claim of either claim
	// baseline: (id, customer, quantity, status).
	OrdersTable = "allot_bench_orders"
	// RedisKeyPrefix starts the Redis key holding a quota's remaining
	// units for [RedisLuaClaimHandler]: RedisKeyPrefix + name.
	RedisKeyPrefix = "allot_bench:quota:"
)

// RedisQuotaKey returns the Redis key holding the remaining units of the
// quota called name.
func RedisQuotaKey(name string) string { return RedisKeyPrefix + name }

// The claim baselines answer the routes of allot's pool API:
//
//	POST /v1/pools/{name}/claims   {"customer":"…","quantity":1}
//	POST /v1/claims/{id}/confirm   {"reference":"…"}
//
// where {name} is the quota's name.
const (
	claimRoute   = "POST /v1/pools/{name}/claims"
	confirmRoute = "POST /v1/claims/{id}/confirm"
)

// maxClaimBody caps a claim or confirm request body.
const maxClaimBody = 64 << 10

// SetupClaims creates the tables of the claim baselines if they are
// missing:
//
//	allot_bench_quota  (name text PRIMARY KEY, quota bigint, reserved bigint)
//	allot_bench_orders (id text PRIMARY KEY, customer text, quantity bigint, status text DEFAULT 'held')
func SetupClaims(ctx context.Context, pool *pgxpool.Pool) error {
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS " + QuotaTable + " (name text PRIMARY KEY, quota bigint NOT NULL, reserved bigint NOT NULL DEFAULT 0)",
		"CREATE TABLE IF NOT EXISTS " + OrdersTable + " (id text PRIMARY KEY, customer text NOT NULL, quantity bigint NOT NULL, status text NOT NULL DEFAULT 'held')",
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("bench: create claim baseline tables: %w", err)
		}
	}
	return nil
}

// ResetClaims makes the claim baselines start clean on the quota called
// name: it creates their tables if missing, empties allot_bench_orders
// (every quota's orders), sets the quota's row to quota units with none
// reserved and, if rdb is not nil, sets its Redis key
// ([RedisQuotaKey]) to quota remaining units.
func ResetClaims(ctx context.Context, pool *pgxpool.Pool, rdb *redis.Client, name string, quota int64) error {
	if quota < 0 {
		return fmt.Errorf("bench: negative quota %d", quota)
	}
	if err := SetupClaims(ctx, pool); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, "TRUNCATE "+OrdersTable); err != nil {
		return fmt.Errorf("bench: truncate %s: %w", OrdersTable, err)
	}
	if _, err := pool.Exec(ctx, "INSERT INTO "+QuotaTable+" (name, quota, reserved) VALUES ($1, $2, 0) "+
		"ON CONFLICT (name) DO UPDATE SET quota = excluded.quota, reserved = 0", name, quota); err != nil {
		return fmt.Errorf("bench: set quota %q: %w", name, err)
	}
	if rdb != nil {
		if err := rdb.Set(ctx, RedisQuotaKey(name), quota, 0).Err(); err != nil {
			return fmt.Errorf("bench: set Redis key %s: %w", RedisQuotaKey(name), err)
		}
	}
	return nil
}

// NaiveClaimHandler is the "one hot row per request" design. It answers
// the routes of allot's pool API. A claim runs, in one transaction:
//
//	UPDATE allot_bench_quota SET reserved = reserved + $qty
//	  WHERE name = $name AND reserved + $qty <= quota
//	INSERT INTO allot_bench_orders (id, customer, quantity) VALUES (…)
//	COMMIT
//
// and answers 201 {"id":"ord_…","status":"held",…}, or 409
// {"code":"sold_out"} when the UPDATE changed no row (which is also what a
// missing quota row answers). Every claim queues on the quota row's lock
// until the one before it commits. A confirm runs UPDATE allot_bench_orders
// SET status = 'confirmed' and answers 200, or 404 {"code":"not_found"}.
// Call [ResetClaims] first.
func NaiveClaimHandler(pool *pgxpool.Pool) http.Handler {
	return claimMux(
		func(ctx context.Context, quota, id string, c claimRequest) error {
			return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, "UPDATE "+QuotaTable+" SET reserved = reserved + $2 WHERE name = $1 AND reserved + $2 <= quota", quota, c.Quantity)
				if err != nil {
					return err
				}
				if tag.RowsAffected() == 0 {
					return errSoldOut
				}
				_, err = tx.Exec(ctx, "INSERT INTO "+OrdersTable+" (id, customer, quantity) VALUES ($1, $2, $3)", id, c.Customer, c.Quantity)
				return err
			})
		},
		confirmFunc(pool))
}

// claimScript checks and decrements a quota's remaining units atomically.
// It returns 1 if it took ARGV[1] units, 0 if fewer remain, and -1 if the
// key does not exist.
var claimScript = redis.NewScript(`
local v = tonumber(redis.call('GET', KEYS[1]))
if v == nil then
  return -1
end
if v >= tonumber(ARGV[1]) then
  redis.call('DECRBY', KEYS[1], ARGV[1])
  return 1
end
return 0
`)

// RedisLuaClaimHandler is the "counter in Redis" design. It answers the
// routes of allot's pool API. A claim runs an atomic Lua script on the
// quota's Redis key ([RedisQuotaKey]):
//
//	if tonumber(redis.call('GET', KEYS[1])) >= qty then DECRBY … return 1 else return 0
//
// and, if it took the units, INSERTs the order into allot_bench_orders
// (autocommit) and answers 201 {"id":"ord_…","status":"held",…}; otherwise
// 409 {"code":"sold_out"}, or 404 {"code":"not_found"} if the key is
// missing. If the INSERT fails the units are given back with INCRBY (best
// effort: a crash between the two loses them, which is exactly the
// weakness of keeping the counter outside the database). Confirm is as in
// [NaiveClaimHandler]. Call [ResetClaims] with rdb first.
func RedisLuaClaimHandler(rdb *redis.Client, pool *pgxpool.Pool) http.Handler {
	return claimMux(
		func(ctx context.Context, quota, id string, c claimRequest) error {
			key := RedisQuotaKey(quota)
			took, err := claimScript.Run(ctx, rdb, []string{key}, c.Quantity).Int64()
			if err != nil {
				return fmt.Errorf("redis: %w", err)
			}
			switch took {
			case 0:
				return errSoldOut
			case -1:
				return errNotFound
			}
			if _, err := pool.Exec(ctx, "INSERT INTO "+OrdersTable+" (id, customer, quantity) VALUES ($1, $2, $3)", id, c.Customer, c.Quantity); err != nil {
				// Give the units back, even if the request was cancelled.
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				if rerr := rdb.IncrBy(ctx, key, c.Quantity).Err(); rerr != nil {
					return fmt.Errorf("%w; giving the units back to Redis failed too: %v", err, rerr)
				}
				return err
			}
			return nil
		},
		confirmFunc(pool))
}

var (
	errSoldOut  = errors.New("sold out")
	errNotFound = errors.New("not found")
)

// claimRequest is the body of a claim.
type claimRequest struct {
	Customer string `json:"customer"`
	Quantity int64  `json:"quantity"`
}

// claimResponse is the body of a successful claim or confirm, shaped like
// allot's claim.
type claimResponse struct {
	ID       string `json:"id"`
	Pool     string `json:"pool,omitempty"`
	Customer string `json:"customer,omitempty"`
	Quantity int64  `json:"quantity,omitempty"`
	Status   string `json:"status"`
}

// claimFunc takes c.Quantity units of quota for the new order id; it
// returns errSoldOut, errNotFound or another error.
type claimFunc func(ctx context.Context, quota, id string, c claimRequest) error

// confirmFunc returns the confirm of both claim baselines: it reports
// whether the order exists.
func confirmFunc(pool *pgxpool.Pool) func(ctx context.Context, id string) (bool, error) {
	return func(ctx context.Context, id string) (bool, error) {
		tag, err := pool.Exec(ctx, "UPDATE "+OrdersTable+" SET status = 'confirmed' WHERE id = $1", id)
		return tag.RowsAffected() > 0, err
	}
}

// claimMux serves the claim and confirm routes over claim and confirm.
// Other paths answer 404, other methods 405.
func claimMux(claim claimFunc, confirm func(ctx context.Context, id string) (bool, error)) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(claimRoute, func(w http.ResponseWriter, r *http.Request) {
		var c claimRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxClaimBody))
		if err := dec.Decode(&c); err != nil {
			writeCode(w, http.StatusBadRequest, "invalid_request", "body: "+err.Error())
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		if c.Quantity == 0 {
			c.Quantity = 1
		}
		switch {
		case c.Customer == "":
			writeCode(w, http.StatusBadRequest, "invalid_request", "customer is required")
			return
		case c.Quantity < 1:
			writeCode(w, http.StatusBadRequest, "invalid_request", "quantity must be at least 1")
			return
		}
		quota := r.PathValue("name")
		id := newOrderID()
		switch err := claim(r.Context(), quota, id, c); {
		case err == nil:
			writeJSON(w, http.StatusCreated, claimResponse{ID: id, Pool: quota, Customer: c.Customer, Quantity: c.Quantity, Status: "held"})
		case errors.Is(err, errSoldOut):
			writeCode(w, http.StatusConflict, "sold_out", "quota "+quota+" is sold out")
		case errors.Is(err, errNotFound):
			writeCode(w, http.StatusNotFound, "not_found", "no quota "+quota)
		default:
			writeCode(w, http.StatusInternalServerError, "internal", err.Error())
		}
	})
	mux.HandleFunc(confirmRoute, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxClaimBody))
		id := r.PathValue("id")
		switch found, err := confirm(r.Context(), id); {
		case err != nil:
			writeCode(w, http.StatusInternalServerError, "internal", err.Error())
		case !found:
			writeCode(w, http.StatusNotFound, "not_found", "no order "+id)
		default:
			writeJSON(w, http.StatusOK, claimResponse{ID: id, Status: "confirmed"})
		}
	})
	return mux
}

// newOrderID returns a random order id such as "ord_3f9a…" (80 random
// bits, like allot's claim ids).
func newOrderID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "ord_" + hex.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeCode answers a problem+json body with a machine-readable code, as
// allot does.
func writeCode(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}{status, code, detail})
}
