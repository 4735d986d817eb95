package telemetry

import (
	"maps"
	"slices"

	"go.opentelemetry.io/otel/propagation"
)

// metadataCarrier adapts Request.Metadata (and Dispatch.Metadata) to a
// propagation.TextMapCarrier. W3C keys are lower case, as the propagators
// write them; Get is an exact lookup.
type metadataCarrier map[string]string

var _ propagation.TextMapCarrier = metadataCarrier(nil)

// Get returns the value of key, or "".
func (c metadataCarrier) Get(key string) string { return c[key] }

// Set stores value under key. It must not be called on a nil carrier.
func (c metadataCarrier) Set(key, value string) { c[key] = value }

// Keys lists the keys in sorted order.
func (c metadataCarrier) Keys() []string { return slices.Sorted(maps.Keys(c)) }
