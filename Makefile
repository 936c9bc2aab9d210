# A thin wrapper: every target first makes sure the Debian packages are there and the build
# is configured. `make demo` and `make test` are the README's two commands.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build demo test test-c test-lua lint bench asan fuzz clean

all: build

deps:
	@bash scripts/deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	./$(BUILD)/hostcall demo

test: build
	cd $(BUILD) && ctest --output-on-failure
	HOSTCALL_BUILD=$(abspath $(BUILD)) busted --lua=lua5.4 spec

lint: deps
	luacheck --std lua54 lua handlers policies spec bench

asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHC_SANITIZE=ON >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure

bench: build
	bash bench/run.sh $(BUILD)

# libFuzzer over the capability resolver (clang): FUZZ_SECONDS of random paths.
FUZZ_SECONDS ?= 60
fuzz: deps
	clang -std=c11 -g -O1 -D_GNU_SOURCE -DHC_LIBFUZZER -fsanitize=fuzzer,address,undefined \
	  -Icore spec/fuzz/fuzz_capdir.c core/capdir.c -o build/fuzz_capdir_libfuzzer
	./build/fuzz_capdir_libfuzzer -max_total_time=$(FUZZ_SECONDS) -max_len=24

clean:
	rm -rf $(BUILD) build-asan
