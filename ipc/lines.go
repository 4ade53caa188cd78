package ipc

import (
	"bufio"
	"errors"
	"io"
)

// lineReader reads newline-terminated lines of bounded length from a
// bufio.Reader and charges every byte, kept or discarded, to a budget, so a
// client cannot make the daemon hold more than one line or read more than
// one request's worth of bytes.
type lineReader struct {
	r      *bufio.Reader
	max    int   // longest accepted line, newline included
	budget int64 // bytes this request may still use
	n      int   // number of the line last returned, 1-based
	long   []byte
	cr     bool // the last line ended in "\r\n"
}

func newLineReader(r *bufio.Reader, maxLine int, budget int64) *lineReader {
	return &lineReader{r: r, max: maxLine, budget: budget}
}

// next returns the next line without its "\n" and without one trailing
// "\r" (bufio.Scanner, which wireguard-go reads with, drops it too). The
// slice is valid until the following call. A line over the bound is read to
// its end and discarded, so the stream stays in step: ErrLineTooLong. A
// spent budget gives ErrRequestTooLarge, end of stream ErrTruncated; after
// those the stream position is lost.
func (lr *lineReader) next() ([]byte, error) {
	lr.n++
	lr.cr = false
	lr.long = lr.long[:0]
	tooLong := false
	for {
		chunk, err := lr.r.ReadSlice('\n')
		lr.budget -= int64(len(chunk))
		if lr.budget < 0 {
			return nil, ErrRequestTooLarge
		}
		if !tooLong && len(lr.long)+len(chunk) > lr.max {
			tooLong = true
			lr.long = lr.long[:0]
		}
		switch {
		case err == nil:
			if tooLong {
				return nil, ErrLineTooLong
			}
			line := chunk
			if len(lr.long) > 0 {
				lr.long = append(lr.long, chunk...)
				line = lr.long
			}
			lr.cr = len(line) >= 2 && line[len(line)-2] == '\r'
			return trimEOL(line), nil
		case errors.Is(err, bufio.ErrBufferFull):
			if !tooLong {
				lr.long = append(lr.long, chunk...)
			}
		case errors.Is(err, io.EOF):
			return nil, ErrTruncated
		default:
			return nil, err
		}
	}
}

func trimEOL(line []byte) []byte {
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line
}
