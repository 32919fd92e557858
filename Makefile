# The two commands of the README: `make demo` and `make test`. Both install
# what is missing (scripts/bootstrap.sh), build with CMake, and go.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 20
DEMO_DIR   ?= demo
DEMO_PORT  ?= 8080

.PHONY: all bootstrap build test test-unit test-asan test-fuzz demo demo-stop bench format clean

all: build

bootstrap:
	@bash scripts/bootstrap.sh

build: bootstrap
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# Every test: unit + integration on the release build, the same again under
# AddressSanitizer + UndefinedBehaviorSanitizer, then the fuzz targets for a
# bounded time.
test: build
	cd $(BUILD) && ctest --output-on-failure -j2
	$(MAKE) --no-print-directory test-asan test-fuzz

test-asan: bootstrap
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHR_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j2

test-fuzz: bootstrap
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHR_FUZZ=ON -DHR_SANITIZE=ON \
	  -DHR_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz_json fuzz_yaml fuzz_batch fuzz_msgscan fuzz_rules fuzz_template
	cd $(FUZZ_BUILD) && ctest --output-on-failure -R '^fuzz/'

# Starts headroomd on the embedded SQLite store with the demo catalog and a
# generated data set; prints the URL, the keys and commands to try.
demo: build
	@bash scripts/demo.sh $(BUILD) $(DEMO_DIR) $(DEMO_PORT)

demo-stop:
	@[ -f $(DEMO_DIR)/headroomd.pid ] && kill $$(cat $(DEMO_DIR)/headroomd.pid) && rm -f $(DEMO_DIR)/headroomd.pid || true

bench: build
	@bash scripts/bootstrap.sh --bench
	@bash bench/run-all.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
