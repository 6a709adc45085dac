// Package invoicepdf renders an invoice as a PDF: the vendor and the
// invoice number, the account billed and its billing contact, the dates
// and period, a table of the line items and the total. It uses
// github.com/signintech/gopdf with the Go fonts (golang.org/x/image), a
// TrueType family covering Latin, Greek and Cyrillic, embedded as subsets
// with a ToUnicode map, so names like "Müller GmbH" print, and a PDF
// reader gets the text back. A character the font lacks prints as '?'.
package invoicepdf

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/signintech/gopdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/casedesk/casedesk"
)

// Page geometry of A4 in points.
const (
	pageW, pageH = 595.28, 841.89
	margin       = 50.0
	contentW     = pageW - 2*margin
	bottom       = pageH - 60 // rows stop here; the footer goes below

	// Columns of the line table: description, quantity, unit price, amount.
	colQty, colUnit, colAmount = 70.0, 95.0, 105.0
	colDesc                    = contentW - colQty - colUnit - colAmount

	bodySize    = 10.0
	lineHeight  = 13.0
	maxDescRows = 8 // a longer description is cut, ending in "…"
)

// Render writes inv, with its Account and BillingContact (either may be
// nil), as a PDF from vendor, the tenant that issues it. It never panics on
// odd text: invalid UTF-8, control characters, characters the font lacks
// and over-long descriptions are cleaned, replaced or cut; many lines
// continue on further pages.
func Render(vendor string, inv *casedesk.Invoice) ([]byte, error) {
	d, err := newDoc()
	if err != nil {
		return nil, err
	}
	d.inv, d.vendor = inv, cleanText(vendor)
	if err := d.render(); err != nil {
		return nil, fmt.Errorf("invoice %s: %w", inv.Number, err)
	}
	var buf bytes.Buffer
	if err := d.pdf.Write(&buf); err != nil {
		return nil, fmt.Errorf("invoice %s: write pdf: %w", inv.Number, err)
	}
	return buf.Bytes(), nil
}

// doc is one PDF being written.
type doc struct {
	pdf    *gopdf.GoPdf
	inv    *casedesk.Invoice
	vendor string
	y      float64
	page   int
	glyphs map[rune]bool    // whether the font has the rune
	widths map[rune]float64 // in the regular body font
}

func newDoc() (*doc, error) {
	d := &doc{pdf: &gopdf.GoPdf{}, glyphs: map[rune]bool{}, widths: map[rune]float64{}}
	d.pdf.Start(gopdf.Config{PageSize: gopdf.Rect{W: pageW, H: pageH}, Unit: gopdf.UnitPT})
	opt := gopdf.TtfOption{OnGlyphNotFoundSubstitute: func(rune) rune { return '?' }}
	if err := d.pdf.AddTTFFontDataWithOption("regular", goregular.TTF, opt); err != nil {
		return nil, fmt.Errorf("load font: %w", err)
	}
	if err := d.pdf.AddTTFFontDataWithOption("bold", gobold.TTF, opt); err != nil {
		return nil, fmt.Errorf("load font: %w", err)
	}
	return d, nil
}

func (d *doc) render() error {
	inv := d.inv
	d.pdf.SetInfo(gopdf.PdfInfo{Title: "Invoice " + cleanText(inv.Number), Author: d.vendor, Creator: "casedesk"})
	if err := d.newPage(); err != nil {
		return err
	}
	if err := d.parties(); err != nil {
		return err
	}
	if err := d.tableHeader(); err != nil {
		return err
	}
	for i, l := range inv.Lines {
		if err := d.line(l); err != nil {
			return fmt.Errorf("line %d: %w", i, err)
		}
	}
	return d.total()
}

// newPage starts a page with the header: the vendor on the left, the
// word Invoice and the number on the right, and a page number below.
func (d *doc) newPage() error {
	d.pdf.AddPage()
	d.page++
	if err := d.text("bold", 16, margin, margin, contentW/2, d.vendor, gopdf.Left); err != nil {
		return err
	}
	title := "Invoice"
	if d.page > 1 {
		title = "Invoice (continued)"
	}
	if err := d.text("bold", 20, margin+contentW/2, margin-2, contentW/2, title, gopdf.Right); err != nil {
		return err
	}
	if err := d.text("regular", 12, margin+contentW/2, margin+22, contentW/2, "No. "+cleanText(d.inv.Number), gopdf.Right); err != nil {
		return err
	}
	footer := fmt.Sprintf("Invoice %s, page %d", cleanText(d.inv.Number), d.page)
	if err := d.text("regular", 8, margin, pageH-40, contentW, footer, gopdf.Center); err != nil {
		return err
	}
	d.pdf.SetLineWidth(0.5)
	d.pdf.Line(margin, margin+42, pageW-margin, margin+42)
	d.y = margin + 56
	return nil
}

// parties writes who is billed and the invoice's dates, side by side.
func (d *doc) parties() error {
	inv := d.inv
	left := []string{"Bill to"}
	if inv.Account != nil {
		left = append(left, inv.Account.Name)
	}
	if c := inv.BillingContact; c != nil {
		if c.Name != "" {
			left = append(left, "Attn. "+c.Name)
		}
		left = append(left, c.Email)
	}
	right := [][2]string{
		{"Invoice number", inv.Number},
		{"Issue date", isoDate(inv.IssueDate)},
		{"Due date", isoDate(inv.DueDate)},
		{"Period", isoDate(inv.PeriodStart) + " to " + isoDate(inv.PeriodEnd)},
		{"Currency", inv.Currency},
	}
	top := d.y
	for i, s := range left {
		font := "regular"
		if i == 0 {
			font = "bold"
		}
		s = d.fit(s, contentW/2-10)
		if err := d.text(font, bodySize, margin, top+float64(i)*lineHeight, contentW/2-10, s, gopdf.Left); err != nil {
			return err
		}
	}
	for i, kv := range right {
		y := top + float64(i)*lineHeight
		if err := d.text("bold", bodySize, margin+contentW/2, y, 90, kv[0], gopdf.Left); err != nil {
			return err
		}
		if err := d.text("regular", bodySize, margin+contentW/2+90, y, contentW/2-90, d.fit(kv[1], contentW/2-90), gopdf.Right); err != nil {
			return err
		}
	}
	d.y = top + float64(max(len(left), len(right)))*lineHeight + 24
	return nil
}

func (d *doc) tableHeader() error {
	x := margin
	for _, c := range []struct {
		w     float64
		title string
		align int
	}{{colDesc, "Description", gopdf.Left}, {colQty, "Quantity", gopdf.Right}, {colUnit, "Unit price", gopdf.Right},
		{colAmount, "Amount", gopdf.Right}} {
		if err := d.text("bold", bodySize, x, d.y, c.w, c.title, c.align); err != nil {
			return err
		}
		x += c.w
	}
	d.y += lineHeight + 2
	d.pdf.Line(margin, d.y, pageW-margin, d.y)
	d.y += 4
	return nil
}

// line writes one line item; its description wraps within its column.
func (d *doc) line(l casedesk.InvoiceLine) error {
	total, err := l.TotalMinor()
	if err != nil {
		return err
	}
	d.setFont("regular", bodySize)
	rows := d.wrap(cleanText(l.Description), colDesc-8, maxDescRows)
	h := float64(len(rows)) * lineHeight
	if d.y+h > bottom {
		if err := d.newPage(); err != nil {
			return err
		}
		if err := d.tableHeader(); err != nil {
			return err
		}
	}
	for i, r := range rows {
		if err := d.text("regular", bodySize, margin, d.y+float64(i)*lineHeight, colDesc-8, r, gopdf.Left); err != nil {
			return err
		}
	}
	x := margin + colDesc
	for _, c := range []struct {
		w float64
		s string
	}{{colQty, groupDigits(l.Quantity)}, {colUnit, casedesk.FormatMinor(l.UnitPriceMinor, d.inv.Currency)},
		{colAmount, casedesk.FormatMinor(total, d.inv.Currency)}} {
		if err := d.text("regular", bodySize, x, d.y, c.w, c.s, gopdf.Right); err != nil {
			return err
		}
		x += c.w
	}
	d.y += h + 3
	return nil
}

// total writes the sum under the table, on a new page if need be.
func (d *doc) total() error {
	if d.y+2*lineHeight+8 > bottom {
		if err := d.newPage(); err != nil {
			return err
		}
	}
	d.pdf.Line(margin, d.y, pageW-margin, d.y)
	d.y += 6
	if err := d.text("bold", 12, margin, d.y, contentW-colAmount-10, "Total", gopdf.Right); err != nil {
		return err
	}
	amount := casedesk.FormatMinor(d.inv.AmountMinor, d.inv.Currency)
	if err := d.text("bold", 12, margin+contentW-colAmount-10, d.y, colAmount+10, amount, gopdf.Right); err != nil {
		return err
	}
	d.y += 2 * lineHeight
	return d.text("regular", bodySize, margin, d.y, contentW, "Please pay by "+isoDate(d.inv.DueDate)+
		", quoting invoice number "+cleanText(d.inv.Number)+".", gopdf.Left)
}

// text writes s in a cell at x, y (top left) of width w.
func (d *doc) text(font string, size, x, y, w float64, s string, align int) error {
	d.setFont(font, size)
	d.pdf.SetXY(x, y)
	if s == "" {
		return nil
	}
	return d.pdf.CellWithOption(&gopdf.Rect{W: w, H: size * 1.3}, d.printable(s), gopdf.CellOption{Align: align | gopdf.Top})
}

func (d *doc) setFont(font string, size float64) {
	// Both families are loaded in newDoc, so SetFont cannot fail.
	d.pdf.SetFont(font, "", size)
}

// printable replaces the runes the font lacks by '?', as the font's
// substitute would, so that widths are measured on what prints.
func (d *doc) printable(s string) string {
	return strings.Map(func(r rune) rune {
		has, ok := d.glyphs[r]
		if !ok {
			has, _ = d.pdf.IsCurrFontContainGlyph(r)
			d.glyphs[r] = has
		}
		if !has {
			return '?'
		}
		return r
	}, s)
}

// width measures s in the regular body font, which must be current.
func (d *doc) width(s string) float64 {
	var w float64
	for _, r := range d.printable(s) {
		rw, ok := d.widths[r]
		if !ok {
			rw, _ = d.pdf.MeasureTextWidth(string(r))
			d.widths[r] = rw
		}
		w += rw
	}
	return w
}

// wrap breaks s into rows no wider than w, between words where it can
// and inside a word too long for a row, and cuts it to maxRows rows, the
// last ending in "…". It measures in the regular body font.
func (d *doc) wrap(s string, w float64, maxRows int) []string {
	d.setFont("regular", bodySize)
	var rows []string
	var row strings.Builder
	rowW := 0.0
	space := d.width(" ")
	flush := func() {
		rows = append(rows, row.String())
		row.Reset()
		rowW = 0
	}
	for _, word := range strings.Fields(s) {
		ww := d.width(word)
		if row.Len() > 0 && rowW+space+ww <= w {
			row.WriteByte(' ')
			row.WriteString(word)
			rowW += space + ww
			continue
		}
		if row.Len() > 0 {
			flush()
		}
		for _, r := range word { // a word wider than the row breaks anywhere
			rw := d.width(string(r))
			if row.Len() > 0 && rowW+rw > w {
				flush()
			}
			row.WriteRune(r)
			rowW += rw
		}
		if len(rows) > maxRows {
			break
		}
	}
	if row.Len() > 0 || len(rows) == 0 {
		flush()
	}
	if len(rows) > maxRows {
		rows = rows[:maxRows]
		rows[maxRows-1] = d.fit(rows[maxRows-1]+" …", w)
	}
	return rows
}

// fit cuts s, ending in "…", so that it is no wider than w in the body
// font.
func (d *doc) fit(s string, w float64) string {
	d.setFont("regular", bodySize)
	if d.width(s) <= w {
		return s
	}
	rs := []rune(s)
	for len(rs) > 0 && d.width(string(rs)+"…") > w {
		rs = rs[:len(rs)-1]
	}
	return string(rs) + "…"
}

// cleanText makes s printable on one line: valid UTF-8, with control
// characters (line breaks and tabs among them) as spaces.
func cleanText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}

// isoDate writes a calendar day as 2026-11-30; the zero time as "-".
func isoDate(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("2006-01-02")
}

// groupDigits writes n with thousands separators: 1,500.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(s[i])
	}
	return sign + b.String()
}
