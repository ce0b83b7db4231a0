module pulseboard/bench/loadgen

go 1.19
