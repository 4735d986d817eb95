package gatetest

import (
	"context"
	"io"
	"net/http"
	"time"
)

// HTTPClient keeps no idle connections, so no transport goroutines outlive
// a request (goleak).
var HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// HTTPGet fetches u with HTTPClient and returns the status and body.
func HTTPGet(ctx context.Context, u string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := HTTPClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}
