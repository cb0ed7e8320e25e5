module beetrace.bench/handlertime

go 1.22
