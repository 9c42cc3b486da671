package label_test

// Scan-back tests: every bar code allot prints is rendered (PNG, and PDF
// pages rasterised with pdftoppm) and read with a real decoder, zbarimg
// for Code 128, GS1-128 and QR and dmtxread for Data Matrix, which must
// give back exactly the ID. The tools come from scripts/label-tools.sh.

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/allot/allot"
	"github.com/allot/allot/label"
)

// needTool skips the test when the command name is not installed, or
// fails it on CI (CI set), where scripts/label-tools.sh installs it.
func needTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err == nil {
		return
	}
	msg := fmt.Sprintf("%s is not installed: run scripts/label-tools.sh", name)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// decoderSlots bounds the decoder processes running at once.
var decoderSlots = make(chan struct{}, max(runtime.NumCPU(), 2))

// run runs a command in a decoder slot and returns its standard output;
// a failure is returned with its standard error, for the caller to
// report if the output is not what it wants (the decoders exit non-zero
// when they find no symbol).
func run(name string, args ...string) (string, error) {
	decoderSlots <- struct{}{}
	defer func() { <-decoderSlots }()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func lines(out string) []string {
	out = strings.TrimSuffix(out, "\n")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// scan decodes every symbol of bar code b in the image file, one string
// per symbol; n is how many dmtxread should stop after.
//
// binary reads the one QR code of the image as its bytes: allot's QR
// codes carry a non-ASCII ID as its UTF-8 bytes without an ECI (neither
// boombuler/barcode nor ZPL's ^BQ writes one), and zbarimg converts
// such bytes to text by guessing the character set, Shift JIS for
// "Süd-Ä_42". -Sbinary prints them as they are, without a line break
// after them.
func scan(b allot.Symbology, file string, n int, binary bool) ([]string, error) {
	switch b {
	case allot.BarcodeDataMatrix:
		out, err := run("dmtxread", "-n", "-N", fmt.Sprint(n), file)
		return lines(out), err
	case allot.BarcodeQR:
		if binary {
			out, err := run("zbarimg", "--nodbus", "-q", "--raw", "-Sdisable", "-Sqrcode.enable", "-Sbinary", file)
			if out == "" {
				return nil, err
			}
			return []string{out}, err
		}
		out, err := run("zbarimg", "--nodbus", "-q", "--raw", "-Sdisable", "-Sqrcode.enable", file)
		return lines(out), err
	default:
		out, err := run("zbarimg", "--nodbus", "-q", "--raw", "-Sdisable", "-Scode128.enable", file)
		return lines(out), err
	}
}

// scanned is what a decoder gives back for id: zbarimg reports GS1-128
// as the application identifier's digits and the SSCC, FNC1 left out.
func scanned(b allot.Symbology, id string) string {
	if b == allot.BarcodeGS1128 {
		return "00" + id
	}
	return id
}

type scanCase struct {
	barcode allot.Symbology
	format  allot.LabelFormat
	size    string
	dpi     int
	layout  string
	title   string
	noText  bool
	what    string   // names the IDs
	samples []string // the sequence's first and last IDs
	ids     []string
}

func (c scanCase) name() string {
	n := fmt.Sprintf("%s/%s/%s/%s@%d", c.format, c.barcode, c.what, c.size, c.dpi)
	if c.layout != "" {
		n += "/" + c.layout
	}
	return n
}

func (c scanCase) spec() allot.LabelSpec {
	s := allot.LabelSpec{Format: c.format, Barcode: c.barcode, Size: c.size, DPI: c.dpi, Layout: c.layout, Title: c.title}
	if c.noText {
		s.Text = new(bool)
	}
	return s
}

func TestScanBack(t *testing.T) {
	needTool(t, "zbarimg")
	needTool(t, "dmtxread")
	needTool(t, "pdftoppm")

	var cases []scanCase
	seed := uint64(0)
	add := func(b allot.Symbology, f allot.LabelFormat, r idRange, size string, dpi, count int, opt ...func(*scanCase)) {
		seed++
		c := scanCase{barcode: b, format: f, size: size, dpi: dpi, what: r.name, samples: r.samples(t), ids: r.spread(t, count, seed)}
		for _, o := range opt {
			o(&c)
		}
		cases = append(cases, c)
	}
	title := func(s string) func(*scanCase) { return func(c *scanCase) { c.title = s } }
	noText := func(c *scanCase) { c.noText = true }
	sheet := func(l string) func(*scanCase) { return func(c *scanCase) { c.layout = l } }
	const (
		asPNG, asPDF          = allot.LabelPNG, allot.LabelPDF
		c128, gs1, qr, dm     = allot.BarcodeCode128, allot.BarcodeGS1128, allot.BarcodeQR, allot.BarcodeDataMatrix
		in2x1, in4x6, mm50x25 = "2x1in", "4x6in", "50x25mm"
		dpi203, dpi300        = 203, 300
	)

	// PNG, one label each.
	add(c128, asPNG, lpIDs, in2x1, dpi203, 10)
	add(c128, asPNG, policyIDs, mm50x25, dpi300, 6)
	add(c128, asPNG, lpIDs, in4x6, dpi300, 4, title("Warehouse 7"))
	add(gs1, asPNG, ssccIDs, in4x6, dpi203, 4)
	add(gs1, asPNG, ssccIDs, in2x1, dpi300, 6)
	add(qr, asPNG, lpIDs, in2x1, dpi203, 6)
	add(qr, asPNG, policyIDs, in4x6, dpi300, 4)
	add(qr, asPNG, ssccIDs, mm50x25, dpi203, 4, noText)
	add(dm, asPNG, lpIDs, mm50x25, dpi300, 6)
	add(dm, asPNG, policyIDs, in2x1, dpi203, 6)
	add(dm, asPNG, ssccIDs, in4x6, dpi300, 3, title("Warehouse 7"))

	// PDF, one label a page.
	add(c128, asPDF, lpIDs, in2x1, dpi203, 30)
	add(c128, asPDF, policyIDs, in4x6, dpi300, 8)
	add(gs1, asPDF, ssccIDs, mm50x25, dpi203, 20)
	add(gs1, asPDF, ssccIDs, in4x6, dpi300, 6, noText)
	add(qr, asPDF, lpIDs, mm50x25, dpi300, 16)
	add(qr, asPDF, policyIDs, in2x1, dpi203, 16, title("Warehouse 7"))
	add(qr, asPDF, ssccIDs, in4x6, dpi203, 4)
	add(dm, asPDF, lpIDs, in2x1, dpi203, 12)
	add(dm, asPDF, policyIDs, mm50x25, dpi300, 10)
	add(dm, asPDF, ssccIDs, in4x6, dpi203, 4)

	// PDF sheets: zbarimg reads every label of a page at once; dmtxread
	// reads one label at a time, cut out of the page.
	add(c128, asPDF, lpIDs, in2x1, dpi203, 40, sheet("a4")) // 33 a page
	add(qr, asPDF, policyIDs, mm50x25, dpi300, 44, sheet("a4"))
	add(gs1, asPDF, ssccIDs, mm50x25, dpi203, 20, sheet("letter"))
	add(dm, asPDF, lpIDs, mm50x25, dpi203, 44, sheet("a4"))

	// IDs with the characters ZPL, ^FH and the decoders treat specially.
	special := []string{"A^B~C_D>E", ">>^^~~__", "_5E_7E", "\\x41 {n} %s"}
	for _, b := range []allot.Symbology{c128, qr, dm} {
		ids := special
		if b != c128 {
			ids = append(slices.Clone(special), "Süd-Ä_42", "倉庫-7")
		}
		for _, f := range []allot.LabelFormat{asPNG, asPDF} {
			cases = append(cases, scanCase{barcode: b, format: f, size: in4x6, dpi: dpi203, what: "special", samples: ids, ids: ids})
		}
	}

	total := 0
	for _, c := range cases {
		total += len(c.ids)
	}
	if total < 200 {
		t.Fatalf("only %d IDs", total)
	}
	t.Logf("%d IDs in %d cases", total, len(cases))

	for _, c := range cases {
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			p := mustPlan(t, c.spec(), c.samples)
			if c.format == allot.LabelPNG {
				scanPNG(t, p, c)
			} else {
				scanPDF(t, p, c)
			}
		})
	}
}

// each runs fn(0..n-1) concurrently and waits; the decoders bound
// themselves to decoderSlots.
func each(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { fn(i) })
	}
	wg.Wait()
}

// labelDots is a label side in dots, as a printer has it.
func labelDots(mm float64, dpi int) int { return int(math.Round(mm * float64(dpi) / 25.4)) }

func scanPNG(t *testing.T, p *label.Plan, c scanCase) {
	wmm, hmm, err := allot.ParseLabelSize(c.size)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := make([]string, len(c.ids))
	for i, id := range c.ids {
		doc, err := p.Render([]string{id})
		if err != nil {
			t.Fatalf("render %q: %v", id, err)
		}
		if doc.ContentType != label.ContentPNG {
			t.Fatalf("render %q: content type %q", id, doc.ContentType)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(doc.Body))
		if err != nil {
			t.Fatalf("render %q: %v", id, err)
		}
		if w, h := labelDots(wmm, c.dpi), labelDots(hmm, c.dpi); cfg.Width != w || cfg.Height != h {
			t.Errorf("%q: PNG of %dx%d pixels, want %dx%d (%s at %d dpi)", id, cfg.Width, cfg.Height, w, h, c.size, c.dpi)
		}
		files[i] = filepath.Join(dir, fmt.Sprintf("%03d.png", i))
		if err := os.WriteFile(files[i], doc.Body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	each(len(files), func(i int) {
		want := []string{scanned(c.barcode, c.ids[i])}
		got, err := scan(c.barcode, files[i], 1, !ascii(want[0]))
		if !slices.Equal(got, want) {
			t.Errorf("PNG of %q scans as %q, want %q (%v)", c.ids[i], got, want, err)
		}
	})
}

// pdfRes is the resolution the PDF pages are rasterised at.
const pdfRes = 300

// dmRetryRes are the resolutions a page is rasterised at again when
// dmtxread reads nothing from a Data Matrix at pdfRes. dmtxread misses
// some crisp symbols whose module edges fall at some pixel phases (at
// 300 dpi, three labels of a sheet whose PNGs and one-label pages it
// reads), and reads them at another resolution. A symbol that reads as
// anything but its ID fails at once, and one that reads at none of them
// fails.
var dmRetryRes = []int{250, 400}

func scanPDF(t *testing.T, p *label.Plan, c scanCase) {
	doc, err := p.Render(c.ids)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	if doc.ContentType != label.ContentPDF {
		t.Fatalf("content type %q", doc.ContentType)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "labels.pdf")
	if err := os.WriteFile(file, doc.Body, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run("pdftoppm", "-r", fmt.Sprint(pdfRes), "-gray", "-png", file, filepath.Join(dir, "page")); err != nil {
		t.Fatal(err)
	}
	pages, err := filepath.Glob(filepath.Join(dir, "page-*.png"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(pages) // pdftoppm pads the page numbers to one width

	lw, lh := p.Setup.WidthMM, p.Setup.HeightMM
	sh := sheet{w: lw, h: lh, cols: 1, rows: 1}
	if c.layout != "" {
		sh.w, sh.h = allot.LabelLayouts[c.layout][0], allot.LabelLayouts[c.layout][1]
		sh.cols, sh.rows = allot.SheetGrid(allot.LabelLayouts[c.layout], lw, lh)
	}
	perPage := sh.cols * sh.rows
	if want := (len(c.ids) + perPage - 1) / perPage; len(pages) != want {
		t.Fatalf("%d IDs, %d a page: %d pages, want %d", len(c.ids), perPage, len(pages), want)
	}
	each(len(pages), func(pg int) {
		onPage := c.ids[pg*perPage : min((pg+1)*perPage, len(c.ids))]
		r := &raster{pdf: file, page: pg + 1, files: map[int]string{pdfRes: pages[pg]}}
		cfg, err := decodeConfig(pages[pg])
		if err != nil {
			t.Errorf("page %d: %v", pg+1, err)
			return
		}
		// pdftoppm rounds the page size up or down by a pixel.
		if w, h := labelDots(sh.w, pdfRes), labelDots(sh.h, pdfRes); abs(cfg.Width-w) > 1 || abs(cfg.Height-h) > 1 {
			t.Errorf("page %d: %dx%d pixels, want %dx%d (%gx%gmm)", pg+1, cfg.Width, cfg.Height, w, h, sh.w, sh.h)
		}
		if c.barcode == allot.BarcodeDataMatrix {
			// dmtxread finds a few of many symbols on a page, slowly: cut
			// each label out of a sheet (which also checks its slot)
			// and read it alone.
			each(len(onPage), func(i int) {
				scanDataMatrix(t, r, sh, c, i, onPage[i])
			})
			return
		}
		want := make([]string, len(onPage))
		for i, id := range onPage {
			want[i] = scanned(c.barcode, id)
		}
		got, err := scan(c.barcode, pages[pg], len(onPage), len(onPage) == 1 && !ascii(want[0]))
		// zbarimg reports the symbols of a sheet in no set order.
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("page %d scans as %q, want %q (%v)", pg+1, got, want, err)
		}
	})
}

// sheet is a page of cols×rows labels, w×h mm, centred on the page and
// filled in rows from the top left; a page of its own for one label.
type sheet struct {
	w, h       float64
	cols, rows int
}

// raster is one page of a PDF as grayscale PNG files, at pdfRes and at
// the retry resolutions as asked for.
type raster struct {
	pdf    string
	page   int
	mu     sync.Mutex
	files  map[int]string      // by resolution
	images map[int]image.Image // decoded, by resolution
}

func (r *raster) file(res int) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.files[res]; ok {
		return f, nil
	}
	out := strings.TrimSuffix(r.pdf, ".pdf") + fmt.Sprintf("-p%d-r%d", r.page, res)
	pg := fmt.Sprint(r.page)
	if _, err := run("pdftoppm", "-r", fmt.Sprint(res), "-f", pg, "-l", pg, "-singlefile", "-gray", "-png", r.pdf, out); err != nil {
		return "", err
	}
	r.files[res] = out + ".png"
	return out + ".png", nil
}

// image is the page at res, decoded.
func (r *raster) image(res int) (image.Image, error) {
	file, err := r.file(res)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if img, ok := r.images[res]; ok {
		return img, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if r.images == nil {
		r.images = map[int]image.Image{}
	}
	r.images[res] = img
	return img, nil
}

// scanDataMatrix reads the i-th Data Matrix of page r, at pdfRes and, if
// dmtxread reads nothing there, at dmRetryRes.
func scanDataMatrix(t *testing.T, r *raster, sh sheet, c scanCase, i int, id string) {
	want := []string{scanned(c.barcode, id)}
	var tried []string
	for _, res := range append([]int{pdfRes}, dmRetryRes...) {
		var file string
		var err error
		if sh.cols*sh.rows > 1 {
			file, err = cutSlot(r, res, sh, c, i)
		} else {
			file, err = r.file(res)
		}
		if err != nil {
			t.Error(err)
			return
		}
		got, err := scan(c.barcode, file, 1, false)
		if slices.Equal(got, want) {
			if len(tried) > 0 {
				t.Logf("page %d, label %d (%q): read at %d dpi, nothing at %s", r.page, i+1, id, res, strings.Join(tried, "; "))
			}
			return
		}
		if len(got) > 0 {
			t.Errorf("page %d, label %d at %d dpi: scans as %q, want %q", r.page, i+1, res, got, want)
			return
		}
		tried = append(tried, fmt.Sprintf("%d dpi (%v)", res, err))
	}
	t.Errorf("page %d, label %d (%q): dmtxread reads nothing (%s)", r.page, i+1, id, strings.Join(tried, "; "))
}

// cutSlot cuts label i out of sheet page r rasterised at res, into a
// PNG file of its own.
func cutSlot(r *raster, res int, sh sheet, c scanCase, i int) (string, error) {
	img, err := r.image(res)
	if err != nil {
		return "", err
	}
	sub, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if !ok {
		return "", fmt.Errorf("page %d: a %T has no SubImage", r.page, img)
	}
	lw, lh, err := allot.ParseLabelSize(c.size)
	if err != nil {
		return "", err
	}
	x := (sh.w-float64(sh.cols)*lw)/2 + float64(i%sh.cols)*lw
	y := (sh.h-float64(sh.rows)*lh)/2 + float64(i/sh.cols)*lh
	px := func(mm float64) int { return int(math.Round(mm * float64(res) / 25.4)) }
	var buf bytes.Buffer
	if err := png.Encode(&buf, sub.SubImage(image.Rect(px(x), px(y), px(x+lw), px(y+lh)))); err != nil {
		return "", err
	}
	out := strings.TrimSuffix(r.pdf, ".pdf") + fmt.Sprintf("-p%d-r%d-slot%02d.png", r.page, res, i)
	return out, os.WriteFile(out, buf.Bytes(), 0o644)
}

func decodeConfig(file string) (image.Config, error) {
	f, err := os.Open(file)
	if err != nil {
		return image.Config{}, err
	}
	defer f.Close()
	return png.DecodeConfig(f)
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func abs(v int) int { return max(v, -v) }
