# monet-probe — thin wrapper around CMake/ctest. See README.md.
#   make          build (build/monet-probe)
#   make test     install missing Debian packages (as root), build, run the whole suite
#   make asan     ASan+UBSan build in build-asan/ and the suite under it
#   make demo     build and run the main job on the embedded default model (data/monet-tiny)
#   make bench    CPU prefill vs PyTorch, tokenizer vs spm_encode
#   make fuzz     libFuzzer targets, FUZZ_SECONDS each (needs clang)
JOBS ?= 2
FUZZ_SECONDS ?= 30
CMAKE_FLAGS ?=

.PHONY: all build test asan demo bench fuzz clean deps-build deps-test deps-bench deps-fuzz

all: build

deps-build:
	@scripts/ensure-deps.sh build
deps-test:
	@scripts/ensure-deps.sh test
deps-bench:
	@scripts/ensure-deps.sh bench
deps-fuzz:
	@scripts/ensure-deps.sh fuzz

build: deps-build
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build build -j$(JOBS)

test: deps-test build
	cd build && ctest --output-on-failure -j$(JOBS)

asan: deps-test
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMP_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j$(JOBS) -LE slow

demo: deps-test build
	@scripts/demo.sh build/monet-probe

bench: deps-bench build
	@bench/run.sh build/monet-probe

fuzz: deps-fuzz
	@fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf build build-asan fuzz/out
