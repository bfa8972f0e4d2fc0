package codec_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/opentact-facade/opentact-facade/bench/legacy"
	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/codec"
)

// BenchmarkMapping measures the payload of GET /rest/auth's answer from
// Opentact's bytes to GetAuth's message, on two profiles: "documented",
// Opentact's documented 2024 answer (testdata/opentact/auth-2024.json),
// which has nothing unmodelled, and "full" (auth-full.json), with every
// documented field and members carried in other_fields. "before" is the
// typed structs and their mapping that the codec replaced (bench/legacy),
// "after" the codec. Both start from the payload, the envelope read once
// beforehand. make bench reports after / before.
func BenchmarkMapping(b *testing.B) {
	for _, profile := range []struct{ name, file string }{
		{"documented", "auth-2024.json"},
		{"full", "auth-full.json"},
	} {
		answer, err := os.ReadFile(filepath.Join("..", "..", "testdata", "opentact", profile.file))
		if err != nil {
			b.Fatal(err)
		}
		payload, err := legacy.Envelope(answer)
		if err != nil {
			b.Fatal(err)
		}
		user := (&authv1.GetAuthResponse{}).ProtoReflect().Descriptor().Fields().ByName("user")
		before, err := legacy.DecodeAuthPayload(payload)
		if err != nil {
			b.Fatal(err)
		}
		after := &authv1.GetAuthResponse{}
		if err := codec.DecodeField(payload, after.ProtoReflect(), user); err != nil {
			b.Fatal(err)
		}
		if before.GetUser().GetEmail() == "" || after.GetUser().GetEmail() != before.GetUser().GetEmail() {
			b.Fatal("the answer maps to no e-mail")
		}
		b.Run(profile.name+"/before/decode+map", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := legacy.DecodeAuthPayload(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(profile.name+"/after/decode+map", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp := &authv1.GetAuthResponse{}
				if err := codec.DecodeField(payload, resp.ProtoReflect(), user); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
