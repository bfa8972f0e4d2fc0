package netguard_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/opentact-facade/opentact-facade/internal/netguard"
)

// serverFrames returns an outbound byte stream of several frames and the
// offset where each frame ends: 21, 34, 63, 372, 381, 430, 447.
func serverFrames(t *testing.T) ([]byte, []int) {
	t.Helper()
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	var ends []int
	mark := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, buf.Len())
	}
	mark(fr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}))
	mark(fr.WriteWindowUpdate(0, 1<<20))
	mark(fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: 1, BlockFragment: bytes.Repeat([]byte{0x88}, 20), EndHeaders: true}))
	mark(fr.WriteData(1, false, bytes.Repeat([]byte("d"), 300)))
	mark(fr.WriteSettingsAck())
	mark(fr.WriteData(1, true, bytes.Repeat([]byte("e"), 40)))
	mark(fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}))
	return buf.Bytes(), ends
}

// floodBytes opens stream 1 and resets it at once: with MinStreams 1, a cut.
func floodBytes() []byte {
	var buf bytes.Buffer
	buf.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&buf, nil)
	_ = fr.WriteSettings()
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0x82}, EndHeaders: true})
	_ = fr.WriteRSTStream(1, http2.ErrCodeCancel)
	return buf.Bytes()
}

// guardedPair returns both ends of a TCP connection, the server's guarded.
func guardedPair(t *testing.T, p netguard.ResetPolicy) (client, server net.Conn) {
	t.Helper()
	ln := netguard.GuardHTTP2(listen(t), p)
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	deadline := time.Now().Add(waitLimit)
	_ = client.SetDeadline(deadline)
	_ = server.SetDeadline(deadline)
	return client, server
}

func TestGuardInjectsGoAwayOnlyAtFrameBoundary(t *testing.T) {
	stream, ends := serverFrames(t)
	cases := []struct {
		name string
		// Offsets in stream where the server's Writes end, before and after
		// the cut.
		before, after []int
		goAwayAt      int  // where the GOAWAY must land, -1 for nowhere
		noClose       bool // leave the close to the guard, after Linger
	}{
		{name: "at a boundary", before: []int{1, 5, 21, 50, 63}, after: []int{100, 447}, goAwayAt: 63},
		{name: "inside a header", before: []int{1, 24, 67}, after: []int{70, 374, 447}, goAwayAt: 372},
		{name: "inside a payload", before: []int{163}, after: []int{263, 372, 447}, goAwayAt: 372},
		{name: "inside an empty frame's header", before: []int{376}, after: []int{447}, goAwayAt: 381},
		{name: "no write after the cut", before: []int{163}, goAwayAt: -1},
		{name: "server never closes", before: []int{34}, goAwayAt: 34, noClose: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A long Linger: the client must see the half-close long before.
			linger := 2 * waitLimit
			if tc.noClose {
				linger = 100 * time.Millisecond
			}
			client, server := guardedPair(t, netguard.ResetPolicy{MinStreams: 1, Linger: linger})
			pos := 0
			for _, end := range tc.before {
				if n, err := server.Write(stream[pos:end]); n != end-pos || err != nil {
					t.Fatalf("write before the cut: %d, %v", n, err)
				}
				pos = end
			}
			flood := floodBytes()
			if _, err := client.Write(flood); err != nil {
				t.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, server); err != nil || n >= int64(len(flood)) {
				t.Fatalf("server read %d bytes, %v; want io.EOF in place of the flood's last frame", n, err)
			}
			writeAfterCut(t, server, stream, pos, tc.after, tc.goAwayAt)
			// Bytes the server never reads: closing over them would reset
			// the connection rather than end it.
			if _, err := client.Write(floodBytes()[len(http2.ClientPreface):]); err != nil {
				t.Fatal(err)
			}
			if !tc.noClose {
				server.Close()
			}
			got, err := io.ReadAll(client)
			if err != nil {
				t.Fatalf("client read: %v, want EOF after a half-close", err)
			}
			if tc.goAwayAt < 0 {
				if !bytes.Equal(got, stream[:pos]) {
					t.Fatalf("got %d bytes, want the %d written before the cut and nothing else", len(got), pos)
				}
			} else {
				checkFramesThenGoAway(t, got, stream[:tc.goAwayAt], ends)
			}
			if tc.noClose {
				return
			}
			// The guard still drains what the client sends.
			if _, err := client.Write(make([]byte, 4<<20)); err != nil {
				t.Fatalf("client write after the half-close: %v, want it drained", err)
			}
		})
	}
}

// writeAfterCut writes stream from pos up to each offset in after and checks
// that Write passes bytes up to goAwayAt and refuses the rest.
func writeAfterCut(t *testing.T, server net.Conn, stream []byte, pos int, after []int, goAwayAt int) {
	t.Helper()
	sent := pos == goAwayAt
	for _, end := range after {
		wantN, wantErr := end-pos, error(nil)
		switch {
		case sent:
			wantN, wantErr = 0, net.ErrClosed
		case goAwayAt >= 0 && end >= goAwayAt:
			wantN, wantErr, sent = goAwayAt-pos, net.ErrClosed, true
		}
		n, err := server.Write(stream[pos:end])
		if n != wantN || !errors.Is(err, wantErr) || (wantErr == nil && err != nil) {
			t.Fatalf("write [%d:%d] after the cut: %d, %v; want %d, %v", pos, end, n, err, wantN, wantErr)
		}
		pos = end
	}
}

// checkFramesThenGoAway checks that got is want, frame for frame, then one
// GOAWAY, then nothing.
func checkFramesThenGoAway(t *testing.T, got, want []byte, ends []int) {
	t.Helper()
	if !bytes.HasPrefix(got, want) {
		t.Fatalf("the server's frames did not reach the client intact")
	}
	fr := http2.NewFramer(nil, bytes.NewReader(got))
	frames := 0
	for _, end := range ends {
		if end <= len(want) {
			frames++
		}
	}
	for i := range frames {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if _, ok := f.(*http2.GoAwayFrame); ok {
			t.Fatalf("GOAWAY in place of frame %d", i)
		}
	}
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatalf("after the server's %d frames: %v, want a GOAWAY", frames, err)
	}
	ga, ok := f.(*http2.GoAwayFrame)
	if !ok {
		t.Fatalf("after the server's %d frames: %v, want a GOAWAY", frames, f.Header())
	}
	if ga.ErrCode != http2.ErrCodeEnhanceYourCalm || ga.LastStreamID != 1 ||
		string(ga.DebugData()) != "too many streams reset by the client" {
		t.Fatalf("GOAWAY %v last stream %d %q", ga.ErrCode, ga.LastStreamID, ga.DebugData())
	}
	if f, err := fr.ReadFrame(); err != io.EOF {
		t.Fatalf("after the GOAWAY: %v, %v; want nothing", f, err)
	}
}
