package fakewa

import (
	"bytes"
	"errors"
	"fmt"

	"go.mau.fi/whatsmeow/socket"
)

// Frame errors: a connection that produces one is closed.
var (
	ErrBadHeader     = errors.New("fakewa: connection does not start with the WA header")
	ErrFrameTooLarge = errors.New("fakewa: frame larger than the limit")
)

// frameLengthSize is the size of the big-endian length prefix of every frame.
const frameLengthSize = 3

// frameDecoder splits the client's byte stream (the WebSocket messages, concatenated) into
// frames: the 4-byte connection header once, then 3-byte length + data. It tolerates frames split
// across or packed into messages and never buffers more than maxFrame + 3 bytes.
type frameDecoder struct {
	maxFrame   int
	headerSeen bool
	buf        []byte
}

func newFrameDecoder(maxFrame int) *frameDecoder {
	return &frameDecoder{maxFrame: maxFrame}
}

// feed consumes one WebSocket message and returns the frames it completed. The returned frames
// are owned by the caller.
func (d *frameDecoder) feed(msg []byte) ([][]byte, error) {
	d.buf = append(d.buf, msg...)
	if !d.headerSeen {
		header := socket.WAConnHeader
		n := min(len(d.buf), len(header))
		if !bytes.Equal(d.buf[:n], header[:n]) {
			return nil, ErrBadHeader
		}
		if n < len(header) {
			return nil, nil
		}
		d.headerSeen = true
		d.buf = d.buf[len(header):]
	}
	var frames [][]byte
	for len(d.buf) >= frameLengthSize {
		length := int(d.buf[0])<<16 | int(d.buf[1])<<8 | int(d.buf[2])
		if length > d.maxFrame {
			return frames, fmt.Errorf("%w: %d > %d bytes", ErrFrameTooLarge, length, d.maxFrame)
		}
		if len(d.buf) < frameLengthSize+length {
			break
		}
		frames = append(frames, bytes.Clone(d.buf[frameLengthSize:frameLengthSize+length]))
		d.buf = d.buf[frameLengthSize+length:]
	}
	if len(d.buf) == 0 {
		d.buf = nil // let a large message's backing array go
	} else {
		d.buf = bytes.Clone(d.buf)
	}
	return frames, nil
}

// encodeFrame prefixes data with its 3-byte length: one whole frame, to be sent as one WebSocket
// message (whatsmeow's frame reader corrupts a frame split across messages).
func encodeFrame(data []byte) ([]byte, error) {
	if len(data) >= socket.FrameMaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, len(data))
	}
	out := make([]byte, frameLengthSize+len(data))
	out[0], out[1], out[2] = byte(len(data)>>16), byte(len(data)>>8), byte(len(data))
	copy(out[frameLengthSize:], data)
	return out, nil
}
