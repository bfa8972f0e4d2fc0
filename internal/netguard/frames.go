package netguard

import (
	"golang.org/x/net/http2"
)

// frameHeaderLen is the size of an HTTP/2 frame header.
const frameHeaderLen = 9

// frameHeader holds the fields of an HTTP/2 frame header that the guard uses.
type frameHeader struct {
	typ      http2.FrameType
	flags    http2.Flags
	streamID uint32
}

// frameScanner follows frame boundaries in one direction of an HTTP/2 byte
// stream. It keeps only the header being assembled and a count of payload
// bytes still to pass, so payloads are never copied.
type frameScanner struct {
	hdr  [frameHeaderLen]byte
	hdrN int    // bytes of hdr filled so far
	skip uint32 // payload bytes of the current frame still to pass
}

// atBoundary reports whether the next byte starts a frame.
func (s *frameScanner) atBoundary() bool { return s.hdrN == 0 && s.skip == 0 }

// feed consumes bytes of p up to the end of the current payload run or frame
// header, whichever comes first. It returns how many bytes it consumed and
// whether a frame header completed with them.
func (s *frameScanner) feed(p []byte) (int, bool) {
	if s.skip > 0 {
		n := len(p)
		if uint64(n) > uint64(s.skip) {
			n = int(s.skip)
		}
		s.skip -= uint32(n)
		return n, false
	}
	n := copy(s.hdr[s.hdrN:], p)
	s.hdrN += n
	if s.hdrN < frameHeaderLen {
		return n, false
	}
	s.hdrN = 0
	s.skip = uint32(s.hdr[0])<<16 | uint32(s.hdr[1])<<8 | uint32(s.hdr[2])
	return n, true
}

// header returns the header that feed last completed.
func (s *frameScanner) header() frameHeader {
	h := s.hdr
	return frameHeader{
		typ:      http2.FrameType(h[3]),
		flags:    http2.Flags(h[4]),
		streamID: (uint32(h[5])<<24 | uint32(h[6])<<16 | uint32(h[7])<<8 | uint32(h[8])) & (1<<31 - 1),
	}
}

// toBoundary consumes p up to the first frame boundary after its start and
// returns the bytes consumed, or len(p) and false when p holds none.
func (s *frameScanner) toBoundary(p []byte) (int, bool) {
	done := 0
	for done < len(p) {
		n, _ := s.feed(p[done:])
		done += n
		if s.atBoundary() {
			return done, true
		}
	}
	return done, false
}

// endsStream reports whether an outbound frame ends its stream.
func (h frameHeader) endsStream() bool {
	switch h.typ {
	case http2.FrameHeaders, http2.FrameData:
		// END_STREAM is the same bit for both.
		return h.flags&http2.FlagDataEndStream != 0
	case http2.FrameRSTStream:
		return true
	}
	return false
}
