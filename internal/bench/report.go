package bench

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Markdown renders results as a markdown table with the columns target,
// req/s (median), IDs/s, p50, p99, p999, errors and "× baseline": each
// target's throughput divided by that of the result named baseline ("n/a"
// if there is no such result or its throughput is zero). Error samples, if
// any, follow the table as a list.
func Markdown(results []Result, baseline string) string {
	base, hasBase := baselineThroughput(results, baseline)
	var b strings.Builder
	b.WriteString("| target | req/s (median) | IDs/s | p50 | p99 | p999 | errors | × baseline |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n",
			markdownEscape(r.Target),
			formatRate(r.Throughput),
			formatRate(r.IDsPerSec),
			formatLatency(r.P50),
			formatLatency(r.P99),
			formatLatency(r.P999),
			formatErrors(r),
			formatRatio(r.Throughput, base, hasBase),
		)
	}
	fmt.Fprintf(&b, "\n× baseline: throughput relative to %s", markdownEscape(baseline))
	if !hasBase {
		b.WriteString(" (not measured or zero)")
	}
	b.WriteString(".\n")
	writeErrorSamples(&b, results)
	return b.String()
}

// writeErrorSamples lists, in markdown, a sample error of each target
// whose runs had errors.
func writeErrorSamples(b *strings.Builder, results []Result) {
	samples := errorSamples(results)
	if len(samples) == 0 {
		return
	}
	b.WriteString("\nErrors:\n\n")
	for _, s := range samples {
		fmt.Fprintf(b, "- %s (%d of %d runs had errors): `%s`\n",
			markdownEscape(s.target), s.runs, s.total, strings.ReplaceAll(s.sample, "`", "'"))
	}
}

// Text renders results as an aligned table for a terminal: the columns of
// [Markdown] plus max latency and the spread of throughput across runs
// ((max−min)/median), which tells how far the machine's noise can be
// trusted. Error samples, if any, follow the table.
func Text(results []Result, baseline string) string {
	base, hasBase := baselineThroughput(results, baseline)
	rows := [][]string{{"target", "req/s (median)", "IDs/s", "p50", "p99", "p999", "max", "errors", "× baseline", "spread"}}
	for _, r := range results {
		rows = append(rows, []string{
			oneLine(r.Target),
			formatRate(r.Throughput),
			formatRate(r.IDsPerSec),
			formatLatency(r.P50),
			formatLatency(r.P99),
			formatLatency(r.P999),
			formatLatency(r.Max),
			formatErrors(r),
			formatRatio(r.Throughput, base, hasBase),
			formatSpread(r),
		})
	}
	var b strings.Builder
	writeAligned(&b, rows)
	fmt.Fprintf(&b, "× baseline: throughput relative to %q", baseline)
	if !hasBase {
		b.WriteString(" (not measured or zero)")
	}
	b.WriteString("; spread: (max-min)/median throughput over runs\n")
	for _, s := range errorSamples(results) {
		fmt.Fprintf(&b, "errors: %s (%d of %d runs): %s\n", s.target, s.runs, s.total, s.sample)
	}
	return b.String()
}

// writeAligned writes rows as columns two spaces apart, the first
// left-aligned and the others right-aligned.
func writeAligned(b *strings.Builder, rows [][]string) {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	for _, row := range rows {
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if i == 0 {
				b.WriteString(cell + pad)
			} else {
				b.WriteString("  " + pad + cell)
			}
		}
		b.WriteByte('\n')
	}
}

func baselineThroughput(results []Result, name string) (float64, bool) {
	for _, r := range results {
		if r.Target == name {
			return r.Throughput, r.Throughput > 0
		}
	}
	return 0, false
}

type errorSampleLine struct {
	target      string
	sample      string
	runs, total int
}

func errorSamples(results []Result) []errorSampleLine {
	var out []errorSampleLine
	for _, r := range results {
		if r.ErrorSample == "" {
			continue
		}
		out = append(out, errorSampleLine{
			target: r.Target,
			sample: oneLine(r.ErrorSample),
			runs:   r.ErrorRuns(),
			total:  len(r.Runs),
		})
	}
	return out
}

// formatRate renders a per-second figure with thousands separators.
func formatRate(v float64) string {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return "0"
	}
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return GroupThousands(int64(math.Round(v)))
}

// GroupThousands writes n with a comma between groups of three digits.
func GroupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatLatency renders d with about three significant digits.
func formatLatency(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

func formatErrors(r Result) string {
	if r.Errors == 0 {
		return "0"
	}
	pct := 0.0
	if r.Requests > 0 {
		pct = 100 * float64(r.Errors) / float64(r.Requests)
	}
	switch {
	case pct < 0.01:
		return fmt.Sprintf("%d (<0.01%%)", r.Errors)
	case pct < 1:
		return fmt.Sprintf("%d (%.2f%%)", r.Errors, pct)
	default:
		return fmt.Sprintf("%d (%.0f%%)", r.Errors, pct)
	}
}

func formatRatio(v, base float64, ok bool) string {
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", v/base)
}

func formatSpread(r Result) string {
	if len(r.Runs) < 2 || r.Throughput <= 0 {
		return "-"
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, run := range r.Runs {
		lo = min(lo, run.Throughput)
		hi = max(hi, run.Throughput)
	}
	return fmt.Sprintf("%.1f%%", 100*(hi-lo)/r.Throughput)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func markdownEscape(s string) string {
	return strings.ReplaceAll(oneLine(s), "|", `\|`)
}
