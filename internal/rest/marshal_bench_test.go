package rest

import (
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
)

// BenchmarkRESTAnswer encodes a GetAuth answer of the documented 2024
// shape as a REST answer, with the gateway's marshaler (protojson).
func BenchmarkRESTAnswer(b *testing.B) {
	resp := &authv1.GetAuthResponse{}
	if err := protojson.Unmarshal([]byte(`{"user":{"uuid":"0116f6d1-1280-44b2-9134-da48509ec575","email":"opentact@callify.io","wss_online":true,"role":"User",
		"created_on":"2024-01-16T14:15:48.540Z","modified_on":"2024-01-16T14:15:48.540Z","token":"eyJhbGciOiJIUzI1NiJ9.eyJ1dWlkIjoidS0xIn0.c2lnbmF0dXJl",
		"phone_number":"+1234567890","dob":"2024-01-16T14:15:48.540Z","avatar":"https://google/image.png","first_name":"First Name","last_name":"Last Name","gender":"Female",
		"account":{"uuid":"f2cb79fb-6bf8-4484-8034-debf95aac73b","email":"info@denovolab.com","name":"DENOVOLAB","level":"Level0","balance":"99.87895",
		"created_on":"2024-01-16T14:15:48.540Z","modified_on":"2024-01-16T14:15:48.540Z"}}}`), resp); err != nil {
		b.Fatal(err)
	}
	m := restMarshaler()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Marshal(resp); err != nil {
			b.Fatal(err)
		}
	}
}
