# Thin wrapper over CMake (in the manner of DuckDB's). Every target installs what is missing first.
BUILD_DIR ?= build/release
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# 1: after a build, `python3 -c "import quiver"` finds this build's Python package (scripts/python-path
# writes a quiver.pth in the user site-packages; `scripts/python-path --remove` undoes it).
PYTHON_LINK ?= 1

.PHONY: all deps configure build demo test bench clean format sanitize tsan python pytest

all: build

deps:
	@scripts/install-deps

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)
	@if [ "$(PYTHON_LINK)" = 1 ]; then scripts/python-path $(BUILD_DIR); fi

demo: build
	@scripts/demo $(BUILD_DIR)

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

# The Python module alone (it is also part of `build`), and its pytest suite through ctest.
python: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target quiver_python quiver
	@if [ "$(PYTHON_LINK)" = 1 ]; then scripts/python-path $(BUILD_DIR); fi

pytest: python
	@cd $(BUILD_DIR) && ctest --output-on-failure -L python

bench: build
	@scripts/install-deps --with-torch
	@scripts/bench $(BUILD_DIR)

sanitize:
	@$(MAKE) test PYTHON_LINK=0 BUILD_DIR=build/asan BUILD_TYPE=RelWithDebInfo CMAKE_FLAGS="-DQUIVER_SANITIZE=address,undefined -DQUIVER_BUILD_BENCH=OFF"

# ThreadSanitizer: the engine and server test binaries (the concurrent code) in build/tsan; any report
# fails the run (halt_on_error). No suppressions are needed: a report is a bug to fix.
TSAN_DIR ?= build/tsan
tsan: deps
	@cmake -S . -B $(TSAN_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQUIVER_SANITIZE=thread -DQUIVER_BUILD_BENCH=OFF > /dev/null
	@cmake --build $(TSAN_DIR) -j $(JOBS) --target quiver quiver_engine_tests quiver_server_tests quiver_server_hardening_tests
	@cd $(TSAN_DIR) && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
		ctest --output-on-failure -j $(JOBS) --timeout 1800 -L '^(engine|server)$$'

format:
	@find include src tests bench -name '*.h' -o -name '*.cpp' | xargs clang-format -i

clean:
	@rm -rf build
