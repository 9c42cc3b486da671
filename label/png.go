package label

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/allot/allot"
)

// png renders one label as a grayscale PNG at the plan's dpi.
func (p *Plan) png(id string) ([]byte, error) {
	img := image.NewGray(image.Rect(0, 0, p.W, p.H))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	if err := p.bars(id, func(x, y, w, h int) {
		draw.Draw(img, image.Rect(x, y, x+w, y+h), image.Black, image.Point{}, draw.Src)
	}); err != nil {
		return nil, err
	}
	if p.Setup.Title != "" {
		if err := p.drawText(img, p.TitleTop, p.TitleH, p.Setup.Title); err != nil {
			return nil, err
		}
	}
	if p.Setup.Text || p.Setup.Barcode == allot.BarcodeNone {
		if err := p.drawText(img, p.TextTop, p.FontH, humanText(p.Setup.Barcode, id)); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("label: encode png: %w", err)
	}
	return buf.Bytes(), nil
}

// humanText is the text printed under a bar code: the ID, with its
// application identifier for GS1-128.
func humanText(b allot.Symbology, id string) string {
	if b == allot.BarcodeGS1128 {
		return "(00)" + id
	}
	return id
}

var monoFont = sync.OnceValues(func() (*opentype.Font, error) { return opentype.Parse(gomono.TTF) })

// drawText draws a centred line of text h dots high whose top is at y,
// shrinking it to fit the label's width.
func (p *Plan) drawText(img *image.Gray, y, h int, text string) error {
	f, err := monoFont()
	if err != nil {
		return fmt.Errorf("label: font: %w", err)
	}
	size := float64(h)
	for {
		face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
		if err != nil {
			return fmt.Errorf("label: font: %w", err)
		}
		w := font.MeasureString(face, text).Ceil()
		if w > p.W-2*p.Margin && size > 6 {
			face.Close()
			size *= 0.9
			continue
		}
		d := font.Drawer{Dst: img, Src: image.NewUniform(color.Black), Face: face,
			Dot: fixed.P((p.W-w)/2, y+face.Metrics().Ascent.Ceil())}
		d.DrawString(text)
		return face.Close()
	}
}
