package ingest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jhillyerd/enmime/v2"
)

// BenchmarkParseClassify measures parse + classify throughput on the shared
// corpus and on a generated mix, with enmime's defaults and with the
// options that trade fidelity for speed, and with the chosen options on
// every core at once.
func BenchmarkParseClassify(b *testing.B) {
	corpus := loadCorpus(b)
	mix := generatedMix(500)
	options := []struct {
		name string
		opts []enmime.Option
	}{
		// casedesk's choice: no charset detection, text derived from HTML.
		{"chosen", nil},
		{"enmime-default", []enmime.Option{enmime.DisableCharacterDetection(false)}},
		{"enmime-default-no-text-conversion", []enmime.Option{enmime.DisableCharacterDetection(false), enmime.DisableTextConversion(true)}},
		{"no-text-conversion", []enmime.Option{enmime.DisableTextConversion(true)}},
	}
	sets := []struct {
		name string
		msgs [][]byte
	}{{"corpus", corpus}, {"mix", mix}}
	for _, set := range sets {
		if len(set.msgs) == 0 {
			continue
		}
		for _, o := range options {
			b.Run(set.name+"/"+o.name, func(b *testing.B) {
				benchSerial(b, NewParser(0, o.opts...), set.msgs)
			})
		}
		// Parsing shares no state, so the processor can parse on every
		// core; this is the chosen options with one goroutine per core.
		b.Run(set.name+"/chosen-parallel", func(b *testing.B) {
			benchParallel(b, NewParser(0), set.msgs)
		})
	}
}

// benchSerial parses and classifies msgs in turn on one goroutine, one
// message per op.
func benchSerial(b *testing.B, p *Parser, msgs [][]byte) {
	var size int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		raw := msgs[i%len(msgs)]
		size += int64(len(raw))
		parseClassify(p, raw)
	}
	reportThroughput(b, size)
}

// benchParallel is benchSerial on GOMAXPROCS goroutines that share one
// Parser and one Classifier, as concurrent ingest workers would.
func benchParallel(b *testing.B, p *Parser, msgs [][]byte) {
	var next, size atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var local int64
		for pb.Next() {
			raw := msgs[(next.Add(1)-1)%int64(len(msgs))]
			local += int64(len(raw))
			parseClassify(p, raw)
		}
		size.Add(local)
	})
	reportThroughput(b, size.Load())
}

func parseClassify(p *Parser, raw []byte) {
	if m, err := p.Parse(raw); err == nil {
		testClassifier.Classify(m)
	}
}

// reportThroughput reports messages per second of wall time, over all
// goroutines, and the mean message size.
func reportThroughput(b *testing.B, size int64) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.SetBytes(size / int64(b.N))
}

func loadCorpus(b *testing.B) [][]byte {
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*", "*.eml"))
	var out [][]byte
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

// generatedMix makes n messages of 2-30 KB: 40% with an HTML alternative,
// 20% with a small attachment, the rest plain text.
func generatedMix(n int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("the printer on floor three is on fire again and the invoice for november shows the wrong amount please advise when a technician can visit our office")
	out := make([][]byte, n)
	for i := range out {
		size := 2<<10 + rng.IntN(28<<10)
		var body strings.Builder
		for body.Len() < size*7/10 {
			body.WriteString(words[rng.IntN(len(words))])
			if rng.IntN(12) == 0 {
				body.WriteString(".\r\n")
			} else {
				body.WriteByte(' ')
			}
		}
		var msg bytes.Buffer
		fmt.Fprintf(&msg, "Message-ID: <gen%d@customer.example>\r\nFrom: Cara <cara@customer.example>\r\nTo: support@acme.example\r\nSubject: Generated %d\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n", i, i)
		roll := rng.IntN(10)
		switch {
		case roll < 4:
			fmt.Fprintf(&msg, "Content-Type: multipart/alternative; boundary=\"a\"\r\n\r\n--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n--a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>%s</p></body></html>\r\n--a--\r\n",
				body.String()[:body.Len()/2], body.String()[:body.Len()/2])
		case roll < 6:
			att := make([]byte, 1<<10+rng.IntN(3<<10))
			for j := range att {
				att[j] = byte(rng.IntN(256))
			}
			fmt.Fprintf(&msg, "Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n--m\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"log.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n--m--\r\n",
				body.String(), base64.StdEncoding.EncodeToString(att))
		default:
			fmt.Fprintf(&msg, "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", body.String())
		}
		out[i] = msg.Bytes()
	}
	return out
}
