package api

import (
	"fmt"
	"math"
	"strings"
)

// The catalog page draws a resolved image as what a node stores: a stack of
// layers, the stack's base at the bottom and each following layer on top,
// one drawing per platform. A bar's height is proportional to the layer's
// compressed size (the bytes a node downloads), on one scale for every
// platform of a result, so that the drawings compare; a layer too small to
// see or to label is raised to minBarHeight, and the legend says so.
//
// The geometry is computed here and written as SVG attributes by
// drawing.html: no style attribute and no script, so the page keeps its
// strict Content-Security-Policy and draws the same without the stylesheet.
// With "from", the layers a node must download are filled in one colour and
// say "download" on the bar, the others are grey and say "on the node": the
// words carry the meaning, the colour only repeats it.
const (
	stackHeight  = 360 // px for the largest image's layers drawn to scale
	minBarHeight = 20  // px: a 13 px label fits
	barGap       = 2   // px between two bars
	barX         = 12
	barWidth     = 150
	labelX       = barX + barWidth + 12
	drawWidth    = 460 // the longest label of the fixtures fits with room to spare
	padTop       = 24  // the "top" caption
	padBottom    = 24  // the "bottom" caption
)

// Fills: without from, two blues alternate so that neighbours are told
// apart; with from, orange is downloaded and grey is already on the node.
const (
	fillEven     = "#3b6ea5"
	fillOdd      = "#6f9bd1"
	fillDownload = "#e8590c"
	fillPresent  = "#ced4da"
)

// drawing is one platform's image as a stack of layer bars.
type drawing struct {
	ID       string // element id prefix, "stack-linux-amd64"
	Platform string
	Manifest string
	Size     int64
	Layers   int
	// Compared: the result has "from"; Download is then set.
	Compared bool
	Download *Download
	Width    int
	Height   int
	TopY     int   // baseline of the "top" caption
	BottomY  int   // baseline of the "bottom" caption
	Bars     []bar // bottom (the first layer) first
	Title    string
	Desc     string
}

// bar is one layer of a drawing.
type bar struct {
	N int // 1 is the first layer, at the bottom
	LayerResult
	X, Y, W, H int
	LabelY     int
	Fill       string
	Label      string // "php 8.2.36 · 1.0 MiB", right of the bar
	// Mark is written on the bar with from: "download" or "on the node".
	Mark, MarkFill string
	// Raised: drawn at minBarHeight, taller than the scale gives.
	Raised bool
	// Compared: the result has "from"; Fetch is then the layer's
	// Download: a node that has the from image must fetch it.
	Compared, Fetch bool
}

// scale is the drawings' common scale, as the legend states it.
type scale struct {
	BytesPerPixel float64
	PerPixel      int64 // BytesPerPixel, rounded, for people
	// Floor: layers under this size are raised to MinHeight.
	Floor     int64
	MinHeight int
	Compared  bool // the result has "from": the legend explains the fills
}

// drawings lays out every reported platform of res on one scale: the
// largest image's layers, drawn to scale, take stackHeight pixels.
func drawings(res *ResolveResponse) ([]drawing, scale) {
	var largest int64
	for _, p := range res.Platforms {
		largest = max(largest, p.Size)
	}
	sc := scale{MinHeight: minBarHeight, Compared: res.From != nil}
	if largest > 0 {
		sc.BytesPerPixel = float64(largest) / stackHeight
		sc.PerPixel = int64(math.Round(sc.BytesPerPixel))
		sc.Floor = int64(math.Ceil(sc.BytesPerPixel * minBarHeight))
	}
	out := make([]drawing, len(res.Platforms))
	tallest := 0
	for i, p := range res.Platforms {
		out[i] = layout(p, res.From != nil, sc)
		tallest = max(tallest, out[i].Height)
	}
	for i := range out {
		out[i].lower(tallest - out[i].Height) // the bases side by side line up
	}
	return out, sc
}

// lower moves the stack and its bottom caption down by px, making the
// drawing as much taller.
func (d *drawing) lower(px int) {
	for i := range d.Bars {
		d.Bars[i].Y += px
		d.Bars[i].LabelY += px
	}
	d.Height += px
	d.BottomY += px
}

// layout places p's bars from the bottom up.
func layout(p PlatformResult, compared bool, sc scale) drawing {
	d := drawing{ID: "stack-" + strings.NewReplacer("/", "-", ".", "-").Replace(p.Platform), Platform: p.Platform,
		Manifest: p.Digest, Size: p.Size, Layers: len(p.Layers), Compared: compared, Download: p.Download,
		Width: drawWidth, Bars: make([]bar, len(p.Layers))}
	stacked := 0
	for i, l := range p.Layers {
		b := bar{N: i + 1, LayerResult: l, X: barX, W: barWidth, H: minBarHeight, Compared: l.Download != nil}
		b.Fetch = b.Compared && *l.Download
		if sc.BytesPerPixel > 0 {
			b.H = int(math.Round(float64(l.Size) / sc.BytesPerPixel))
		}
		if b.H < minBarHeight {
			b.H, b.Raised = minBarHeight, true
		}
		b.Label = fmt.Sprintf("%s %s · %s", b.Package, b.Version, humanSize(b.Size))
		b.Fill, b.Mark, b.MarkFill = barLook(b, i)
		d.Bars[i] = b
		stacked += b.H
	}
	stacked += barGap * max(len(p.Layers)-1, 0)
	d.TopY = padTop - 8
	d.Height = padTop + stacked + padBottom
	d.BottomY = d.Height - 6
	y := padTop + stacked // the bottom edge of the next bar
	for i := range d.Bars {
		b := &d.Bars[i]
		b.Y = y - b.H
		b.LabelY = b.Y + b.H/2 + 5
		y = b.Y - barGap
	}
	d.Title, d.Desc = describe(d)
	return d
}

// barLook is a bar's fill and, with from, what is written on it.
func barLook(b bar, i int) (fill, mark, markFill string) {
	switch {
	case !b.Compared && i%2 == 0:
		return fillEven, "", ""
	case !b.Compared:
		return fillOdd, "", ""
	case b.Fetch:
		return fillDownload, "download", "#ffffff"
	default:
		return fillPresent, "on the node", "#343a40"
	}
}

// describe is the drawing's text equivalent: what a screen reader says
// instead of the picture.
func describe(d drawing) (title, desc string) {
	title = fmt.Sprintf("Layers of the image for %s: %d, %s", d.Platform, d.Layers, humanSize(d.Size))
	var sb strings.Builder
	fmt.Fprintf(&sb, "From the bottom (first layer) to the top: ")
	for i, b := range d.Bars {
		if i > 0 {
			sb.WriteString("; ")
		}
		fmt.Fprintf(&sb, "%d. %s %s, %s", b.N, b.Package, b.Version, humanSize(b.Size))
		if b.Compared && b.Fetch {
			sb.WriteString(", downloaded")
		} else if b.Compared {
			sb.WriteString(", already on the node")
		}
	}
	sb.WriteString(".")
	if d.Download != nil {
		fmt.Fprintf(&sb, " A node that runs the from image downloads %s.", downloadText(d.Download))
	}
	return title, sb.String()
}

// downloadText says how much a node downloads: "2 layers, 1.4 MiB".
func downloadText(d *Download) string {
	if d.Layers == 0 {
		return "nothing"
	}
	noun := "layers"
	if d.Layers == 1 {
		noun = "layer"
	}
	return fmt.Sprintf("%d %s, %s", d.Layers, noun, humanSize(d.Size))
}
