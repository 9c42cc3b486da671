// Package bench is the load generator and the baseline servers behind
// `allot bench`.
//
// A throughput figure measured on a small, noisy machine means little on its
// own, so allot is never reported alone: every run measures allot and a set of
// baselines with the same load generator, in the same process, interleaved
// (A, B, C, A, B, C, …), and reports each target's median run together with
// its throughput as a ratio of a named baseline. Ratios survive noise that
// absolute numbers do not.
//
// The pieces are:
//
//   - [Run], a closed-loop (fixed number of clients) or open-loop (constant
//     arrival rate) HTTP load generator. In open-loop mode latency is measured
//     from each request's intended send time, so a slow target cannot hide its
//     queueing delay (no coordinated omission).
//   - Baseline handlers: [NoopHandler] (the HTTP floor), [NextvalHandler]
//     (a PostgreSQL sequence: fast but gappy) and [AdvisoryLockHandler] (the
//     classic gapless pattern: an advisory lock and max(n)+1 per request).
//     [Serve] starts any handler on a loopback port.
//   - [Markdown] and [Text], which render results as tables with a
//     "× baseline" column; [MarkdownRatios] and [TextRatios] with one "×"
//     column per named baseline.
//
// For pools (finite inventory claimed, then confirmed) there are two more
// baselines answering the same routes and shapes as allot's pool API
// (POST /v1/pools/{name}/claims, POST /v1/claims/{id}/confirm):
// [NaiveClaimHandler] (one transaction per claim on a hot quota row) and
// [RedisLuaClaimHandler] (a Lua check-and-decrement in Redis, then an
// INSERT of the order), set up by [SetupClaims] and [ResetClaims]. [Run]
// loads them closed-loop like any target ([Target.BodyFunc] gives every
// request a distinct customer), and [FlashSale] runs a flash sale against
// one of them: many customers claiming a few units at once, then every
// holder confirming, with every outcome counted exactly.
// [FlashSaleMarkdown] and [FlashSaleText] render its results.
package bench
