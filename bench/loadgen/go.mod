module example.com/beetrace/bench/loadgen

go 1.21
