package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Names of the database objects the baselines use. They live in the
// pool's search_path.
const (
	// NextvalSequence is the sequence behind [NextvalHandler].
	NextvalSequence = "allot_bench_seq"
	// GaplessTable is the table behind [AdvisoryLockHandler].
	GaplessTable = "allot_bench_gapless"
	// AdvisoryLockKey is the pg_advisory_xact_lock key that serializes
	// [AdvisoryLockHandler] requests ("allot" in ASCII).
	AdvisoryLockKey int64 = 0x616c6c6f74
)

// noopBody is what NoopHandler answers: the shape of a real one-ID response.
var noopBody = []byte(`{"ids":["1"]}` + "\n")

// NoopHandler returns the HTTP floor: it reads and discards the request
// body and answers 200 with a small fixed JSON body like the real API's,
// {"ids":["1"]}. It touches no database.
func NoopHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, "reading body", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(noopBody)))
		_, _ = w.Write(noopBody)
	})
}

// SetupNextval creates the sequence [NextvalHandler] uses if it is missing.
func SetupNextval(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, "CREATE SEQUENCE IF NOT EXISTS "+NextvalSequence); err != nil {
		return fmt.Errorf("bench: create sequence %s: %w", NextvalSequence, err)
	}
	return nil
}

// NextvalHandler is the fast-but-gappy baseline: each request runs
// SELECT nextval('allot_bench_seq') and answers {"ids":["<n>"]}. A database
// error is answered with 500. Call [SetupNextval] first.
func NextvalHandler(pool *pgxpool.Pool) http.Handler {
	const q = "SELECT nextval('" + NextvalSequence + "')"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		var n int64
		if err := pool.QueryRow(r.Context(), q).Scan(&n); err != nil {
			writeError(w, err)
			return
		}
		writeID(w, n)
	})
}

// SetupAdvisory creates the table [AdvisoryLockHandler] uses if it is
// missing: allot_bench_gapless (n bigint PRIMARY KEY).
func SetupAdvisory(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+GaplessTable+" (n bigint PRIMARY KEY)"); err != nil {
		return fmt.Errorf("bench: create table %s: %w", GaplessTable, err)
	}
	return nil
}

// AdvisoryLockHandler is the classic gapless baseline. Each request runs,
// in one transaction:
//
//	SELECT pg_advisory_xact_lock(AdvisoryLockKey)
//	SELECT coalesce(max(n),0)+1 FROM allot_bench_gapless
//	INSERT INTO allot_bench_gapless (n) VALUES ($1)
//	COMMIT
//
// and answers {"ids":["<n>"]}. A database error is answered with 500. Call
// [SetupAdvisory] first.
func AdvisoryLockHandler(pool *pgxpool.Pool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n, err := takeGapless(r.Context(), pool)
		if err != nil {
			writeError(w, err)
			return
		}
		writeID(w, n)
	})
}

func takeGapless(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", AdvisoryLockKey); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(n),0)+1 FROM "+GaplessTable).Scan(&n); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO "+GaplessTable+" (n) VALUES ($1)", n)
		return err
	})
	return n, err
}

// Reset makes the baselines start clean: it creates their sequence and
// table if missing, restarts the sequence at 1 and empties the table.
func Reset(ctx context.Context, pool *pgxpool.Pool) error {
	if err := SetupNextval(ctx, pool); err != nil {
		return err
	}
	if err := SetupAdvisory(ctx, pool); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, "ALTER SEQUENCE "+NextvalSequence+" RESTART WITH 1"); err != nil {
		return fmt.Errorf("bench: restart sequence %s: %w", NextvalSequence, err)
	}
	if _, err := pool.Exec(ctx, "TRUNCATE "+GaplessTable); err != nil {
		return fmt.Errorf("bench: truncate %s: %w", GaplessTable, err)
	}
	return nil
}

// idResponse is the baselines' response body, shaped like the real API's.
type idResponse struct {
	IDs []string `json:"ids"`
}

func writeID(w http.ResponseWriter, n int64) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(idResponse{IDs: []string{strconv.FormatInt(n, 10)}})
}

func writeError(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{err.Error()})
}

// Serve starts an HTTP server for h on 127.0.0.1 at a free port and
// returns its base URL ("http://127.0.0.1:<port>"; every path reaches h)
// and a stop function that shuts the server down, waiting up to five
// seconds for requests in flight before closing connections. stop may be
// called more than once.
func Serve(h http.Handler) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("bench: listen: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Serve only returns ErrServerClosed after stop, or a listener
		// error, which surfaces as failed (counted) requests.
		_ = srv.Serve(ln)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
			<-done
		})
	}
	return "http://" + ln.Addr().String(), stop, nil
}
