package callflow

import (
	"bytes"
	"encoding/xml"
	"io"
	"testing"
)

// The docs' IVR (testdata/golden/ivr), the flow a caller most often
// saves. BenchmarkTokens is the floor: encoding/xml reading the same
// bytes and doing nothing with them; Check, Parse and Render are read as
// ratios to it (docs/performance.md).
func ivrForBench(b *testing.B) []byte {
	b.Helper()
	for name, f := range goldens(b) {
		if bytes.HasSuffix([]byte(name), []byte("/ivr")) {
			x, err := Render(f)
			if err != nil {
				b.Fatal(err)
			}
			return x
		}
	}
	b.Fatal("no ivr golden flow")
	return nil
}

func BenchmarkTokens(b *testing.B) {
	x := ivrForBench(b)
	b.SetBytes(int64(len(x)))
	b.ReportAllocs()
	for b.Loop() {
		d := xml.NewDecoder(bytes.NewReader(x))
		for {
			if _, err := d.Token(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	x := ivrForBench(b)
	b.SetBytes(int64(len(x)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Check(x); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	x := ivrForBench(b)
	b.SetBytes(int64(len(x)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(x); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRender(b *testing.B) {
	x := ivrForBench(b)
	f, err := Parse(x)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(x)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(f); err != nil {
			b.Fatal(err)
		}
	}
}
