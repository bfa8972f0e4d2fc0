package server

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
)

// fuzzAuthResponse builds an answer from fuzz input: each optional string
// field present or not by a bit of mask, its value one of strs in turn;
// each timestamp present by another bit, with one of two instants.
func fuzzAuthResponse(strs [3]string, mask uint64, wss bool, secs [2]int64, nanos [2]int32) *authv1.GetAuthResponse {
	bit := 0
	next := func() bool { bit++; return mask&(1<<(bit-1)) != 0 }
	str := func() *string {
		if !next() {
			return nil
		}
		return proto.String(strs[bit%3])
	}
	ts := func() *timestamppb.Timestamp {
		if !next() {
			return nil
		}
		return &timestamppb.Timestamp{Seconds: secs[bit%2], Nanos: nanos[bit%2]}
	}
	u := &authv1.User{
		Uuid: str(), Email: str(), Role: str(),
		CreatedOn: ts(), ModifiedOn: ts(), DeletedOn: ts(),
		Token: str(), PhoneNumber: str(), Dob: ts(), Avatar: str(),
		FirstName: str(), LastName: str(), Gender: str(),
		GmailUserId: str(), FacebookUserId: str(), AppleUserId: str(), WechatUserId: str(),
	}
	if next() {
		u.WssOnline = proto.Bool(wss)
	}
	if next() {
		u.Account = &authv1.Account{
			Uuid: str(), Email: str(), Name: str(), Level: str(), Balance: str(),
			CreatedOn: ts(), ModifiedOn: ts(), DeletedOn: ts(),
		}
	}
	resp := &authv1.GetAuthResponse{}
	if next() {
		resp.User = u
	}
	return resp
}

// FuzzAuthJSONMatchesProtojson holds the hand encoder to protojson: for
// any answer it encodes, its JSON is protojson's byte for byte once
// whitespace outside strings is taken out (protojson varies that on
// purpose); it leaves an answer to protojson only for a string that is not
// UTF-8 or a timestamp outside years 1 to 9999.
func FuzzAuthJSONMatchesProtojson(f *testing.F) {
	all := ^uint64(0)
	f.Add("0116f6d1-1280-44b2-9134-da48509ec575", "opentact@callify.io", "", all, true, int64(1700000000), int32(0), int64(-1), int32(123456789))
	f.Add("quote \" backslash \\ slash / tab \t nl \n cr \r bs \b ff \f nul \x00 us \x1f del \x7f", "é ü 中文 😀 \u2028 \u2029 <&>", "\ufffd", all, false, int64(0), int32(500000000), int64(1), int32(1000))
	f.Add("a", "b", "c", uint64(0), false, int64(-62135596800), int32(999999999), int64(253402300799), int32(1))
	f.Add("a", "b", "c", uint64(0b1010101010101010101), true, int64(-62135596801), int32(0), int64(5), int32(1000000000))
	f.Add("bad \xff utf-8", "b", "c", all, true, int64(253402300800), int32(-1), int64(5), int32(120000))
	f.Fuzz(func(t *testing.T, s0, s1, s2 string, mask uint64, wss bool, secs0 int64, nanos0 int32, secs1 int64, nanos1 int32) {
		resp := fuzzAuthResponse([3]string{s0, s1, s2}, mask, wss, [2]int64{secs0, secs1}, [2]int32{nanos0, nanos1})
		got, ok := appendAuthJSON(nil, resp)
		want, err := restJSON.Marshal(resp)
		if !ok {
			// Only for what protojson must judge.
			leave := false
			for _, s := range []string{s0, s1, s2} {
				leave = leave || !utf8.ValidString(s)
			}
			for i, secs := range []int64{secs0, secs1} {
				nanos := []int32{nanos0, nanos1}[i]
				leave = leave || secs < minJSONSeconds || secs > maxJSONSeconds || nanos < 0 || nanos >= 1e9
			}
			if !leave {
				t.Fatalf("left to protojson, which gives %s, %v", want, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("hand encoding %s, but protojson fails: %v", got, err)
		}
		var g, w bytes.Buffer
		if err := json.Compact(&g, got); err != nil {
			t.Fatalf("hand encoding is not JSON: %v\n%s", err, got)
		}
		if err := json.Compact(&w, want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(g.Bytes(), w.Bytes()) {
			t.Fatalf("hand encoding differs from protojson:\n got %s\nwant %s", g.Bytes(), w.Bytes())
		}
		// And it reads back as the same message.
		back := &authv1.GetAuthResponse{}
		if err := protojson.Unmarshal(got, back); err != nil || !proto.Equal(back, resp) {
			t.Fatalf("hand encoding reads back as %v, %v; want %v", back, err, resp)
		}
	})
}

// TestAuthJSONMarshalerFallsBack: what the hand encoder leaves, and every
// other message, gets protojson's answer, errors included.
func TestAuthJSONMarshalerFallsBack(t *testing.T) {
	m := restMarshaler()
	bad := &authv1.GetAuthResponse{User: &authv1.User{Email: proto.String("bad \xff")}}
	if _, err := m.Marshal(bad); err == nil {
		t.Error("an answer holding invalid UTF-8 encoded without error; protojson refuses it")
	}
	far := &authv1.GetAuthResponse{User: &authv1.User{Dob: &timestamppb.Timestamp{Seconds: maxJSONSeconds + 1}}}
	if _, err := m.Marshal(far); err == nil {
		t.Error("a timestamp past year 9999 encoded without error; protojson refuses it")
	}
	acct := &authv1.Account{Name: proto.String("a \"name\"")}
	got, err := m.Marshal(acct)
	want, _ := restJSON.Marshal(acct)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("another message: %s, %v; want protojson's %s", got, err, want)
	}
}

// BenchmarkAuthJSON: the documented 2024 answer, by hand and by protojson.
func BenchmarkAuthJSON(b *testing.B) {
	resp := fuzzAuthResponse([3]string{"0116f6d1-1280-44b2-9134-da48509ec575", "opentact@callify.io", "Opentact Callify"},
		^uint64(0), true, [2]int64{1700000000, 1600000000}, [2]int32{0, 123000000})
	resp.User.Token = proto.String("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMTE2ZjZkMSJ9.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl")
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (authJSON{}).Marshal(resp); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("protojson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := restJSON.Marshal(resp); err != nil {
				b.Fatal(err)
			}
		}
	})
}
