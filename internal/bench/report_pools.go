package bench

import (
	"fmt"
	"slices"
	"strings"
)

// MarkdownRatios renders results as a markdown table like [Markdown]
// without the IDs/s column (one request is one claim) and with one
// "× name" column per baseline: each target's throughput divided by that
// baseline's ("n/a" if it was not measured or its throughput is zero).
// The "baseline " prefix of a name is left out of its column header.
// Error samples, if any, follow the table as a list.
func MarkdownRatios(results []Result, baselines ...string) string {
	var b strings.Builder
	b.WriteString("| target | req/s (median) | p50 | p99 | p999 | errors |")
	for _, name := range baselines {
		fmt.Fprintf(&b, " %s |", markdownEscape(ratioHeader(name)))
	}
	b.WriteString("\n|---|--:|--:|--:|--:|--:|" + strings.Repeat("--:|", len(baselines)) + "\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |",
			markdownEscape(r.Target), formatRate(r.Throughput),
			formatLatency(r.P50), formatLatency(r.P99), formatLatency(r.P999), formatErrors(r))
		for _, name := range baselines {
			base, ok := baselineThroughput(results, name)
			fmt.Fprintf(&b, " %s |", formatRatio(r.Throughput, base, ok))
		}
		b.WriteByte('\n')
	}
	writeErrorSamples(&b, results)
	return b.String()
}

// TextRatios renders results as an aligned table for a terminal: the
// columns of [MarkdownRatios] plus max latency and the spread of
// throughput across runs ((max−min)/median). Error samples, if any,
// follow the table.
func TextRatios(results []Result, baselines ...string) string {
	header := []string{"target", "req/s (median)", "p50", "p99", "p999", "max", "errors"}
	for _, name := range baselines {
		header = append(header, ratioHeader(name))
	}
	rows := [][]string{append(header, "spread")}
	for _, r := range results {
		row := []string{
			oneLine(r.Target), formatRate(r.Throughput),
			formatLatency(r.P50), formatLatency(r.P99), formatLatency(r.P999), formatLatency(r.Max),
			formatErrors(r),
		}
		for _, name := range baselines {
			base, ok := baselineThroughput(results, name)
			row = append(row, formatRatio(r.Throughput, base, ok))
		}
		rows = append(rows, append(row, formatSpread(r)))
	}
	var b strings.Builder
	writeAligned(&b, rows)
	b.WriteString("× name: throughput relative to that baseline; spread: (max-min)/median throughput over runs\n")
	for _, s := range errorSamples(results) {
		fmt.Fprintf(&b, "errors: %s (%d of %d runs): %s\n", s.target, s.runs, s.total, s.sample)
	}
	return b.String()
}

func ratioHeader(name string) string {
	return "× " + strings.TrimPrefix(oneLine(name), "baseline ")
}

// FlashSaleSummary is every run of one target's flash sale.
type FlashSaleSummary struct {
	// Target is the target's name.
	Target string
	// Median is the run with the median SellOut (with an even number of
	// runs, the lower middle one).
	Median FlashSaleResult
	// Runs holds every run in order.
	Runs []FlashSaleResult
}

// ExactRuns returns how many runs were exact ([FlashSaleResult.Exact]).
func (s FlashSaleSummary) ExactRuns() int {
	n := 0
	for _, r := range s.Runs {
		if r.Exact() {
			n++
		}
	}
	return n
}

// AllExact reports whether every run was exact.
func (s FlashSaleSummary) AllExact() bool { return len(s.Runs) > 0 && s.ExactRuns() == len(s.Runs) }

// SummarizeFlashSales groups results by Target, in the order each target
// first appears, and picks each one's median run.
func SummarizeFlashSales(results []FlashSaleResult) []FlashSaleSummary {
	var out []FlashSaleSummary
	index := map[string]int{}
	for _, r := range results {
		i, ok := index[r.Target]
		if !ok {
			i = len(out)
			index[r.Target] = i
			out = append(out, FlashSaleSummary{Target: r.Target})
		}
		out[i].Runs = append(out[i].Runs, r)
	}
	for i := range out {
		runs := slices.Clone(out[i].Runs)
		slices.SortStableFunc(runs, func(a, b FlashSaleResult) int {
			switch {
			case a.SellOut < b.SellOut:
				return -1
			case a.SellOut > b.SellOut:
				return 1
			}
			return 0
		})
		out[i].Median = runs[(len(runs)-1)/2]
	}
	return out
}

// FlashSaleMarkdown renders flash-sale results (any number of runs per
// target) as a markdown table, one row per target: whether every run was
// exact, the exact counts (a range if they differed between runs), and the
// timings of the median run by sell-out time. Every run that was not
// exact, and error samples, follow the table.
func FlashSaleMarkdown(results []FlashSaleResult) string {
	sums := SummarizeFlashSales(results)
	var b strings.Builder
	b.WriteString("| design | exact runs | confirmed | sold out | errors | sell-out | claim p50 | claim p99 | held p99 | confirm p99 | total |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, s := range sums {
		row := flashSaleRow(s)
		for i := range row {
			row[i] = markdownEscape(row[i])
		}
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	b.WriteString("\n" + flashSaleLegend(sums) + "\n")
	if notes := flashSaleNotes(sums); len(notes) > 0 {
		b.WriteByte('\n')
		for _, n := range notes {
			b.WriteString("- " + strings.ReplaceAll(markdownEscape(n), "`", "'") + "\n")
		}
	}
	return b.String()
}

// FlashSaleText renders flash-sale results as an aligned table for a
// terminal: the columns of [FlashSaleMarkdown] plus the claim phase (until
// every customer had an answer). Every run that was not exact, and error
// samples, follow the table.
func FlashSaleText(results []FlashSaleResult) string {
	sums := SummarizeFlashSales(results)
	rows := [][]string{{"design", "exact runs", "confirmed", "sold out", "errors", "sell-out", "claim p50", "claim p99", "held p99", "confirm p99", "total", "claim phase"}}
	for _, s := range sums {
		rows = append(rows, append(flashSaleRow(s), formatLatency(s.Median.ClaimPhase)))
	}
	var b strings.Builder
	writeAligned(&b, rows)
	b.WriteString(flashSaleLegend(sums) + "\n")
	for _, n := range flashSaleNotes(sums) {
		b.WriteString(oneLine(n) + "\n")
	}
	return b.String()
}

func flashSaleRow(s FlashSaleSummary) []string {
	m := s.Median
	exact := fmt.Sprintf("%d/%d", s.ExactRuns(), len(s.Runs))
	if s.AllExact() {
		exact = "yes " + exact
	} else {
		exact = "NO " + exact
	}
	confirmed := "-"
	if m.Confirming {
		confirmed = countRange(s.Runs, func(r FlashSaleResult) int64 { return r.Confirmed })
	}
	return []string{
		oneLine(s.Target),
		exact,
		confirmed,
		countRange(s.Runs, func(r FlashSaleResult) int64 { return r.SoldOut }),
		countRange(s.Runs, func(r FlashSaleResult) int64 { return r.Errors + r.ConfirmErrors }),
		formatLatency(m.SellOut),
		formatLatency(m.P50),
		formatLatency(m.P99),
		formatLatency(m.HeldP99),
		formatLatency(m.ConfirmP99),
		formatLatency(m.Total),
	}
}

// countRange renders a count that may differ between runs: "5,000", or
// "4,998–5,000".
func countRange(runs []FlashSaleResult, f func(FlashSaleResult) int64) string {
	lo, hi := f(runs[0]), f(runs[0])
	for _, r := range runs[1:] {
		lo, hi = min(lo, f(r)), max(hi, f(r))
	}
	if lo == hi {
		return GroupThousands(lo)
	}
	return GroupThousands(lo) + "–" + GroupThousands(hi)
}

func flashSaleLegend(sums []FlashSaleSummary) string {
	expect := ""
	if len(sums) > 0 {
		m := sums[0].Median
		expect = fmt.Sprintf(" (here %s confirmed, %s sold out, 0 errors)",
			GroupThousands(int64(m.Capacity)), GroupThousands(int64(m.Customers-m.Capacity)))
	}
	return "exact: capacity confirmed, customers−capacity sold out, no error" + expect +
		"; errors: failed claims + failed confirms; sell-out: first claim sent → last unit claimed; " +
		"claim p50/p99: every answered claim (held or sold out); held p99: claims that got a unit; timings of the median run by sell-out"
}

// flashSaleNotes describes every run that was not exact, and error
// samples.
func flashSaleNotes(sums []FlashSaleSummary) []string {
	var notes []string
	for _, s := range sums {
		for i, r := range s.Runs {
			if r.Exact() {
				continue
			}
			n := fmt.Sprintf("%s run %d not exact: %s held, %s confirmed, %s sold out, %s claim errors, %s confirm errors (of %s customers, %s units)",
				s.Target, i+1, GroupThousands(r.Claimed), GroupThousands(r.Confirmed), GroupThousands(r.SoldOut),
				GroupThousands(r.Errors), GroupThousands(r.ConfirmErrors), GroupThousands(int64(r.Customers)), GroupThousands(int64(r.Capacity)))
			if r.ErrorSample != "" {
				n += "; e.g. " + r.ErrorSample
			}
			notes = append(notes, n)
		}
	}
	return notes
}
