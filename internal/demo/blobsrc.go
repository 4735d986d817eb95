package demo

import "encoding/binary"

// BlobSource is the byte stream blob returns: the little-endian outputs of
// a SplitMix64 generator seeded with 0. Any split of Reads yields the same
// stream. It is not cryptographic. It is cheap to produce (an order of
// magnitude cheaper than math/rand/v2's ChaCha8) and zstd and gzip cannot
// compress it, so the HugeData figures measure the data path rather than
// the generator.
type BlobSource struct {
	state uint64
	rest  [8]byte // unread bytes of the last output
	nrest int
}

// NewBlobSource returns the stream from its start.
func NewBlobSource() *BlobSource { return &BlobSource{} }

func (s *BlobSource) next() uint64 {
	s.state += 0x9e3779b97f4a7c15
	z := s.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Read fills p and never fails.
func (s *BlobSource) Read(p []byte) (int, error) {
	n := len(p)
	for s.nrest > 0 && len(p) > 0 {
		p[0] = s.rest[8-s.nrest]
		p = p[1:]
		s.nrest--
	}
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, s.next())
		p = p[8:]
	}
	if len(p) > 0 {
		binary.LittleEndian.PutUint64(s.rest[:], s.next())
		k := copy(p, s.rest[:])
		s.nrest = 8 - k
	}
	return n, nil
}
