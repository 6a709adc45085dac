package templates

import "testing"

// BenchmarkRender measures one render of each default template in
// English: subject, text and HTML body.
func BenchmarkRender(b *testing.B) {
	var set *Set
	for _, name := range Names() {
		b.Run(string(name), func(b *testing.B) {
			data := Sample(name)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := set.Render(name, "en", data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
