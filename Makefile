# The README's two commands are `go run ./cmd/allot serve` and `make test`.

GO ?= go

.PHONY: test build bench fuzz
test:
	bash scripts/services.sh
	bash scripts/label-tools.sh
	CI=$${CI:-true} $(GO) test -race -count=1 -timeout 25m ./...

build:
	$(GO) build -o bin/allot ./cmd/allot

bench: build
	./bin/allot bench --markdown

fuzz:
	$(GO) test ./format -run='^$$' -fuzz=FuzzParse -fuzztime=60s
	$(GO) test ./format -run='^$$' -fuzz=FuzzDecode -fuzztime=60s
