package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
)

// compactJSON is b without whitespace outside strings.
func compactJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return out.Bytes()
}

func answerFor(email string) *authv1.GetAuthResponse {
	return &authv1.GetAuthResponse{User: &authv1.User{Email: proto.String(email), FirstName: proto.String("Anna")}}
}

// TestMemoMarshalerEncodesAnAnswerOnce: the REST marshaler encodes an
// answer handed to several calls once, gives every call the same JSON as
// protojson would, never one answer's JSON for another, and keeps at
// most jsonMemoSize answers.
func TestMemoMarshalerEncodesAnAnswerOnce(t *testing.T) {
	m := restMarshaler()
	marshal := func(v any) []byte {
		t.Helper()
		b, err := m.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	anna := answerFor("anna@example.com")
	want, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(anna)
	if err != nil {
		t.Fatal(err)
	}
	want = compactJSON(t, want) // protojson varies its whitespace on purpose
	first, again := marshal(anna), marshal(anna)
	if !bytes.Equal(compactJSON(t, first), want) {
		t.Fatalf("JSON %s, want %s", first, want)
	}
	if &first[0] != &again[0] {
		t.Error("the same answer was encoded twice")
	}

	// Another answer, even one equal to the first, is its own.
	twin := answerFor("anna@example.com")
	if b := marshal(twin); !bytes.Equal(compactJSON(t, b), want) || &b[0] == &first[0] {
		t.Errorf("an equal answer: %s (shared: %v), want its own encoding of %s", b, &b[0] == &first[0], want)
	}
	bob := answerFor("bob@example.com")
	if b := marshal(bob); !bytes.Contains(b, []byte("bob@example.com")) || bytes.Contains(b, []byte("anna")) {
		t.Errorf("bob's answer: %s", b)
	}

	// Anything else (an error's status) is encoded as before.
	st := status.New(codes.Unavailable, "busy").Proto()
	if b := marshal(st); !bytes.Contains(b, []byte(`"busy"`)) {
		t.Errorf("a status: %s", b)
	}

	// Bounded: jsonMemoSize later answers push the first out.
	for i := range jsonMemoSize {
		marshal(answerFor(fmt.Sprintf("user%d@example.com", i)))
	}
	if n := m.json.Len(); n > jsonMemoSize {
		t.Errorf("%d answers kept, want at most %d", n, jsonMemoSize)
	}
	if b := marshal(anna); !bytes.Equal(b, want) || &b[0] == &first[0] {
		t.Errorf("after %d other answers, anna's JSON was still kept (or is wrong: %s)", jsonMemoSize, b)
	}
}

// slowCounting is the REST marshaler slowed down, counting its calls.
type slowCounting struct {
	runtime.Marshaler
	calls atomic.Int32
}

func (s *slowCounting) Marshal(v any) ([]byte, error) {
	s.calls.Add(1)
	time.Sleep(20 * time.Millisecond)
	return s.Marshaler.Marshal(v)
}

// TestMemoMarshalerHerd: the callers of a shared request wake together;
// one of them encodes the answer and the others wait for its JSON.
func TestMemoMarshalerHerd(t *testing.T) {
	inner := &slowCounting{Marshaler: restMarshaler().Marshaler}
	m := newMemoMarshaler(inner)
	resp := answerFor("anna@example.com")
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		outs  = make([][]byte, 16)
	)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			b, err := m.Marshal(resp)
			if err != nil {
				t.Error(err)
			}
			outs[i] = b
		}()
	}
	close(start)
	wg.Wait()
	if n := inner.calls.Load(); n != 1 {
		t.Errorf("%d encodings of one answer by 16 callers at once, want 1", n)
	}
	for _, b := range outs {
		if !bytes.Contains(b, []byte("anna@example.com")) {
			t.Errorf("a caller got %s", b)
		}
	}
}
