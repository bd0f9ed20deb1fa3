# Thin wrapper over CMake (in the manner of DuckDB's). Every target installs what is missing first.
BUILD_DIR ?= build/release
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build demo test bench clean format sanitize

all: build

deps:
	@scripts/install-deps

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	@scripts/demo $(BUILD_DIR)

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

bench: build
	@scripts/install-deps --with-torch
	@scripts/bench $(BUILD_DIR)

sanitize:
	@$(MAKE) test BUILD_DIR=build/asan BUILD_TYPE=RelWithDebInfo CMAKE_FLAGS="-DQUIVER_SANITIZE=address,undefined -DQUIVER_BUILD_BENCH=OFF"

format:
	@find include src tests bench -name '*.h' -o -name '*.cpp' | xargs clang-format -i

clean:
	@rm -rf build
