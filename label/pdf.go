package label

import (
	"bytes"
	"fmt"

	"codeberg.org/go-pdf/fpdf"
	"golang.org/x/image/font/gofont/gomono"

	"github.com/allot/allot"
)

// pointsPerMM converts millimetres to PDF points.
const pointsPerMM = 72 / 25.4

// pdf renders ids one label per page at the label's size, or laid out on
// sheets (Setup.SheetMM) in rows from the top left. Bars are drawn as
// filled rectangles, so they print sharp at any resolution.
func (p *Plan) pdf(ids []string) ([]byte, error) {
	lw, lh := p.Setup.WidthMM, p.Setup.HeightMM
	page := fpdf.SizeType{Wd: lw, Ht: lh}
	cols, rows := 1, 1
	sheet := p.Setup.SheetMM != [2]float64{}
	if sheet {
		page = fpdf.SizeType{Wd: p.Setup.SheetMM[0], Ht: p.Setup.SheetMM[1]}
		cols, rows = allot.SheetGrid(p.Setup.SheetMM, lw, lh)
	}
	// fpdf swaps the sides of a landscape page: give the size as it is.
	const orientation = "P"
	f := fpdf.NewCustom(&fpdf.InitType{OrientationStr: orientation, UnitStr: "mm", Size: page})
	f.SetMargins(0, 0, 0)
	f.SetAutoPageBreak(false, 0)
	f.SetCreator("allot", true)
	// fpdf starts a new zlib writer for every page, and that allocation
	// was 98% of the time of a roll: pages stay uncompressed (a roll of
	// 1,000 2x1in labels: about 30 ms and 1.2-1.4 MB instead of 0.5 s and
	// 0.5 MB).
	f.SetCompression(false)
	// fpdf writes into the font bytes it is given: each document gets
	// its own copy, so concurrent renders don't share (and corrupt) them.
	f.AddUTF8FontFromBytes("gomono", "", bytes.Clone(gomono.TTF))
	f.SetFillColor(0, 0, 0)
	// Sheets are centred on the page.
	x0 := (page.Wd - float64(cols)*lw) / 2
	y0 := (page.Ht - float64(rows)*lh) / 2
	for i, id := range ids {
		slot := i % (cols * rows)
		if slot == 0 {
			f.AddPageFormat(orientation, page)
		}
		ox, oy := 0.0, 0.0
		if sheet {
			ox, oy = x0+float64(slot%cols)*lw, y0+float64(slot/cols)*lh
		}
		if err := p.pdfLabel(f, ox, oy, id); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if err := f.Output(&buf); err != nil {
		return nil, fmt.Errorf("label: write pdf: %w", err)
	}
	return buf.Bytes(), nil
}

// pdfLabel draws one label with its top left corner at ox, oy (mm).
func (p *Plan) pdfLabel(f *fpdf.Fpdf, ox, oy float64, id string) error {
	if err := p.bars(id, func(x, y, w, h int) {
		f.Rect(ox+p.mm(x), oy+p.mm(y), p.mm(w), p.mm(h), "F")
	}); err != nil {
		return err
	}
	if p.Setup.Title != "" {
		p.pdfText(f, ox, oy, p.TitleTop, p.TitleH, p.Setup.Title)
	}
	if p.Setup.Text || p.Setup.Barcode == allot.BarcodeNone {
		p.pdfText(f, ox, oy, p.TextTop, p.FontH, humanText(p.Setup.Barcode, id))
	}
	return f.Error()
}

// pdfText draws a centred line of text h dots high whose top is at y
// dots, shrinking it to fit the label's width.
func (p *Plan) pdfText(f *fpdf.Fpdf, ox, oy float64, y, h int, text string) {
	size := p.mm(h) * pointsPerMM
	room := p.Setup.WidthMM - 2*p.mm(p.Margin)
	f.SetFont("gomono", "", size)
	if w := f.GetStringWidth(text); w > room {
		size *= room / w
		f.SetFont("gomono", "", size)
	}
	w := f.GetStringWidth(text)
	// The baseline sits about 0.8 of the font size below the top.
	f.Text(ox+(p.Setup.WidthMM-w)/2, oy+p.mm(y)+0.8*size/pointsPerMM, text)
}
