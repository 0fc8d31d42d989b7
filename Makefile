# fanout: the two commands a new user needs are `make demo` and `make test`.
# Each installs whatever Debian packages are missing (scripts/install-deps.sh),
# configures and builds with CMake, then does its job. Everything else is
# plain CMake; this file only names the common runs.

BUILD_DIR   ?= build
BENCH_DIR   ?= build-bench
JOBS        ?= 2
BUILD_TYPE  ?= RelWithDebInfo
CMAKE_FLAGS ?=

.PHONY: all deps configure build test demo demo-pacing bench install clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD_DIR) -j$(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)

demo: build
	scripts/demo.sh $(BUILD_DIR)

demo-pacing: build
	$(BUILD_DIR)/examples/pacing_demo

bench: deps
	cmake -S . -B $(BENCH_DIR) -DCMAKE_BUILD_TYPE=Release -DFANOUT_BUILD_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build $(BENCH_DIR) -j$(JOBS)
	bench/run.sh $(BENCH_DIR)

install: build
	cmake --install $(BUILD_DIR) $(if $(PREFIX),--prefix $(PREFIX))

clean:
	rm -rf $(BUILD_DIR) $(BENCH_DIR)
