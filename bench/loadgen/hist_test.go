package main

import (
	"math"
	"testing"
)

func TestBucketsAreMonotonicAndNarrow(t *testing.T) {
	previous := -1
	for _, us := range []int64{0, 1, 31, 32, 33, 63, 64, 100, 1000, 50_000, 1_000_000, 60_000_000} {
		index := bucketOf(us)
		if index < previous {
			t.Fatalf("bucket of %d µs went down: %d < %d", us, index, previous)
		}
		previous = index
		if mid := bucketMid(index); math.Abs(mid-float64(us)) > 0.04*float64(us)+1 {
			t.Fatalf("%d µs lands in a bucket centred on %.0f", us, mid)
		}
	}
}

func TestQuantiles(t *testing.T) {
	var h histogram
	for us := int64(1); us <= 1000; us++ {
		h.record(us * 1000)
	}
	if p50 := h.quantile(0.5); math.Abs(p50-500_000) > 20_000 {
		t.Fatalf("p50 = %.0f µs, want about 500 ms", p50)
	}
	if p99 := h.quantile(0.99); math.Abs(p99-990_000) > 40_000 {
		t.Fatalf("p99 = %.0f µs, want about 990 ms", p99)
	}
}

func TestStamp(t *testing.T) {
	line := []byte(`data: {"id":"a-1","data":{"message":"pbts1732700000123456789"}}` + "\n")
	if ts, ok := stamp(line); !ok || ts != 1732700000123456789 {
		t.Fatalf("stamp = %d, %v", ts, ok)
	}
	if _, ok := stamp([]byte("data: {\"message\":\"hello\"}\n")); ok {
		t.Fatal("a line without a stamp must not count")
	}
}
