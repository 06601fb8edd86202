# Native C core: the Node-API addon build/node/tdnative.node (td_core.c + td_nl_worker.c +
# td_napi.c; the netlink worker thread only in the broker's addon), built with
# plain gcc against Node's own headers (/usr/include/node); no node-gyp, no header download.
# td_quickjs.c is compiled into the client binary by mk/quickjs.mk.
NATIVE_CC ?= gcc
NATIVE_CFLAGS ?= -std=gnu11 -O2 -g -Wall -Wextra -fPIC -fvisibility=hidden
NODE_INCLUDE ?= /usr/include/node
NATIVE_CORE_SRC := qjs-native/td_core.c qjs-native/td_core.h
NATIVE_NLW_SRC := qjs-native/td_nl_worker.c qjs-native/td_nl_worker.h

# Node headers ship with the nodejs package itself (NodeSource build) at /usr/include/node.
APT_PACKAGES += gcc
BUILD_TARGETS += build/node/tdnative.node

.PHONY: native
native: build/node/tdnative.node

# Undefined napi_*/uv_* symbols resolve against the node binary at dlopen time.
build/node/tdnative.node: qjs-native/td_napi.c $(NATIVE_CORE_SRC) $(NATIVE_NLW_SRC)
	@mkdir -p $(@D)
	$(NATIVE_CC) $(NATIVE_CFLAGS) -I$(NODE_INCLUDE) -shared -o $@ qjs-native/td_napi.c qjs-native/td_core.c qjs-native/td_nl_worker.c -lpthread

# C-level tests of td_core (test/native/td_core_test.c), run by test/run.sh as suite native-c.
BUILD_TARGETS += build/test/td_core_test
build/test/td_core_test: test/native/td_core_test.c $(NATIVE_CORE_SRC)
	@mkdir -p $(@D)
	$(NATIVE_CC) -std=gnu11 -O2 -g -Wall -Wextra -o $@ test/native/td_core_test.c qjs-native/td_core.c

# The addon with the former fork()+execv() spawn as spawnFork, for bench/spawn.ts only.
build/bench/tdnative-fork.node: qjs-native/td_napi.c $(NATIVE_CORE_SRC) $(NATIVE_NLW_SRC)
	@mkdir -p $(@D)
	$(NATIVE_CC) $(NATIVE_CFLAGS) -DTD_LEGACY_FORK_SPAWN -I$(NODE_INCLUDE) -shared -o $@ qjs-native/td_napi.c qjs-native/td_core.c qjs-native/td_nl_worker.c -lpthread

# The same C tests for the router: big-endian 32-bit MIPS, musl (posix_spawn without
# addclosefrom_np, 32-bit size_t), run under qemu-user by test/native/run-mips.sh.
build/mips_24kc/td_core_test: test/native/td_core_test.c $(NATIVE_CORE_SRC)
	@mkdir -p $(@D)
	$(CACHE)/mips/bin/mips-musl-gcc -march=mips32r2 -mtune=24kc -msoft-float -Os -static -Wall -Wextra \
	  -o $@ test/native/td_core_test.c qjs-native/td_core.c
