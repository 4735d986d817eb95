package codec

// SplitValue returns the first msgpack value of b and the bytes after it,
// validating the value as Validate does (within the default caps) without
// allocating. It splits a concatenation of values, such as a batch of
// stream items (wire.StreamBatchBody).
func SplitValue(b []byte) (value, rest []byte, err error) {
	d := decoder{c: std, b: b}
	if err := d.skip(0); err != nil {
		return nil, nil, err
	}
	return b[:d.i:d.i], b[d.i:], nil
}

// CountValues returns how many msgpack values the concatenation b holds,
// stopping at the first that does not validate (n counts those before it).
func CountValues(b []byte) (n int, err error) {
	for len(b) > 0 {
		if _, b, err = SplitValue(b); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
