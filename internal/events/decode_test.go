package events

import (
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
)

// The docs' examples, shortened as OPENTACT-API.md §3.3 gives them.
func TestDecodeDocumentedEvents(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		check    func(t *testing.T, got string)
		want     string
	}{
		{name: "call_state, call under call", in: `{"uuid":"1ccf0000-0000-4000-8000-000000000001","created_on":"2024-02-19T16:24:46Z","type":"call_state","message":"CallSCA in +18389990000 > 18382040000 - init","payload":{"state":"init","duration":1},"call":{"uuid":"3b20","direction":"in","from":"+18389990000","to":"18382040000","state":"init","type":"CallSCA","tn":{"tn":18382040000},"account":{"uuid":"5869","balance":815.05}},"ref_id":null}`,
			want: `{"uuid":"1ccf0000-0000-4000-8000-000000000001","type":"call_state","createdOn":"2024-02-19T16:24:46Z","message":"CallSCA in +18389990000 > 18382040000 - init","callState":{"state":"init","duration":"1","call":{"uuid":"3b20","direction":"in","from":"+18389990000","to":"18382040000","state":"init","type":"CallSCA","tn":{"tn":"18382040000"},"otherFields":{"account":"{\"uuid\":\"5869\",\"balance\":815.05}"}}},"otherFields":{"ref_id":"null"}}`},
		{name: "call_state, call as payload", in: `{"timestamp":"2022-07-04T16:47:39Z","type":"call_state","message":"m","payload":{"uuid":"c1","direction":"out","state":"ringing","duration":3}}`,
			want: `{"type":"call_state","createdOn":"2022-07-04T16:47:39Z","message":"m","callState":{"state":"ringing","duration":"3","call":{"uuid":"c1","direction":"out","state":"ringing","duration":"3"}}}`},
		{name: "balance keeps every digit", in: `{"timestamp":"2022-07-04T16:47:39Z","message":"New balance is 873.06","type":"balance","source_action":"voice_charge_in","payload":873.0600000000000000001}`,
			want: `{"type":"balance","createdOn":"2022-07-04T16:47:39Z","message":"New balance is 873.06","balance":{"balance":"873.0600000000000000001","sourceAction":"voice_charge_in"}}`},
		{name: "sms", in: `{"timestamp":"2022-07-04T17:11:45Z","message":"SMS: type: smso, state: success","type":"sms","payload":{"type":"smso","uuid":"11ad","from":"18382050008","to":"14155550100","message":"Hello","state":"success","delivered":true}}`,
			want: `{"type":"sms","createdOn":"2022-07-04T17:11:45Z","message":"SMS: type: smso, state: success","sms":{"uuid":"11ad","type":"smso","state":"success","from":"18382050008","to":"14155550100","message":"Hello","delivered":true}}`},
		{name: "unknown type keeps everything", in: `{"uuid":"u","type":"call_record","payload":{"url":"x"},"created_on":"2024-02-19T16:24:46Z"}`,
			want: `{"uuid":"u","type":"call_record","createdOn":"2024-02-19T16:24:46Z","otherFields":{"payload":"{\"url\":\"x\"}"}}`},
		{name: "a body that is not its type stays in other_fields", in: `{"type":"sms","payload":"oops"}`,
			want: `{"type":"sms","otherFields":{"payload":"\"oops\""}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Decode([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := protojson.MarshalOptions{}.Marshal(ev)
			if !jsonEqual(t, string(got), tc.want) {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	for _, bad := range []string{``, `[]`, `{"type":`, `{} {}`, `"x"`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) = nil error", bad)
		}
	}
}
