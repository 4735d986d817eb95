package chunk

import (
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"os"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

type cw struct{ n int }

func (c *cw) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

func BenchmarkGzCompare(b *testing.B) {
	dict, _ := os.ReadFile("/tmp/gz/dict.mp")
	mixed := payload(8<<20, 1)
	for _, d := range []struct{ name string; in []byte }{{"dict", dict}, {"mixed8M", mixed}} {
		for lvl := 1; lvl <= 6; lvl++ {
			for _, lib := range []string{"std", "klauspost"} {
				b.Run(fmt.Sprintf("%s/%s/%d", d.name, lib, lvl), func(b *testing.B) {
					b.SetBytes(int64(len(d.in)))
					var n int
					for b.Loop() {
						w := &cw{}
						var zw io.WriteCloser
						if lib == "std" { zw, _ = stdgzip.NewWriterLevel(w, lvl) } else { zw, _ = kgzip.NewWriterLevel(w, lvl) }
						zw.Write(d.in); zw.Close(); n = w.n
					}
					b.ReportMetric(float64(n), "outB")
				})
			}
		}
	}
}
