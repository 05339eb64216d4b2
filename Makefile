# monet-probe — thin wrapper around CMake/ctest. See README.md.
#   make          build (build/monet-probe)
#   make test     install missing Debian packages (as root; the test and eval sets), build, run the whole suite
#   make asan     ASan+UBSan build in build-asan/ and the suite under it
#   make demo     build and run the main job on the embedded default model (data/monet-tiny)
#   make bench    CPU prefill vs PyTorch, tokenizer vs spm_encode, collect vs forward
#   make bench-gpu  CUDA forward vs PyTorch einsum on the GPU (docs/cuda.md)
#   make fuzz     libFuzzer targets, FUZZ_SECONDS each (needs clang)
JOBS ?= 2
FUZZ_SECONDS ?= 30
CMAKE_FLAGS ?=

.PHONY: all build test asan demo bench bench-gpu fuzz clean deps-build deps-demo deps-test deps-eval deps-bench deps-fuzz

all: build

deps-build:
	@scripts/ensure-deps.sh build
deps-demo:
	@scripts/ensure-deps.sh demo
deps-test:
	@scripts/ensure-deps.sh test
deps-eval:
	@scripts/ensure-deps.sh eval
deps-bench:
	@scripts/ensure-deps.sh bench
deps-fuzz:
	@scripts/ensure-deps.sh fuzz

build: deps-build
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build build -j$(JOBS) -- --no-print-directory

# The suite compares against float64 references: model commands run on the CPU
# (MP_DEVICE=cpu replaces the "cuda when present" default); the GPU tests in
# tests/cuda ask for the CUDA backend explicitly.
test: deps-test deps-eval build
	cd build && MP_DEVICE=cpu ctest --output-on-failure -j$(JOBS)

asan: deps-test
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMP_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-asan -j$(JOBS) -- --no-print-directory
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j$(JOBS) -LE slow

demo: deps-demo build
	@scripts/demo.sh build/monet-probe

bench: deps-bench build
	@bench/run.sh build/monet-probe

# on a machine with an NVIDIA GPU (prints "skipped: no GPU" elsewhere)
bench-gpu: build
	@bench/bench_gpu.sh build

fuzz: deps-fuzz
	@fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf build build-asan fuzz/out
