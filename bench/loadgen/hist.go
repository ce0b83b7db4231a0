package main

import (
	"math/bits"
	"sync/atomic"
)

// histogram counts latencies in microseconds in log-linear buckets:
// exact below 32 µs, then 32 buckets per power of two (about 3 % wide).
type histogram struct {
	counts [1024]atomic.Int64
}

const subBuckets = 32

func bucketOf(us int64) int {
	if us < subBuckets {
		if us < 0 {
			return 0
		}
		return int(us)
	}
	shift := bits.Len64(uint64(us)) - 6
	index := shift*subBuckets + int(us>>shift)
	if index >= len(histogram{}.counts) {
		return len(histogram{}.counts) - 1
	}
	return index
}

// bucketMid is the middle of a bucket's range, in microseconds.
func bucketMid(index int) float64 {
	if index < subBuckets {
		return float64(index)
	}
	shift := (index - subBuckets) / subBuckets
	low := int64(index-shift*subBuckets) << shift
	return float64(low) + float64(int64(1)<<shift)/2
}

func (h *histogram) record(us int64) {
	h.counts[bucketOf(us)].Add(1)
}

// quantile returns the latency (µs) at quantile q in [0, 1], 0 when empty.
func (h *histogram) quantile(q float64) float64 {
	var total int64
	for i := range h.counts {
		total += h.counts[i].Load()
	}
	if total == 0 {
		return 0
	}
	rank := int64(q*float64(total-1)) + 1
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return bucketMid(i)
		}
	}
	return bucketMid(len(h.counts) - 1)
}

// buckets lists the non-empty buckets as [middle in ms, count] pairs.
func (h *histogram) buckets() [][2]float64 {
	var out [][2]float64
	for i := range h.counts {
		if n := h.counts[i].Load(); n > 0 {
			out = append(out, [2]float64{bucketMid(i) / 1000, float64(n)})
		}
	}
	return out
}
