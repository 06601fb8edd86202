# Installing the broker without a build tree: `make install [PREFIX=/usr/local] [DESTDIR=]` and the
# Debian package `make deb` (dist/tunneldigger-broker_<version>_<arch>.deb, dpkg-deb + fakeroot,
# no debhelper). `make deb-check` runs lintian on the .deb and systemd-analyze verify on the
# installed units (test/deb/run.sh, part of `make test`).
#
# Layout (PREFIX=/usr, as in the .deb):
#   /usr/bin/tunneldigger-broker                   bin/tunneldigger-broker (finds ../lib/tunneldigger-broker)
#   /usr/lib/tunneldigger-broker/js/src/...        the broker's compiled JavaScript (build/js/src)
#   /usr/lib/tunneldigger-broker/node/tdnative.node  the Node addon
#   /usr/lib/tunneldigger-broker/node_modules/     runtime dependencies (prom-client and its own)
#   /etc/tunneldigger/broker.cfg                   examples/l2tp_broker.cfg (conffile)
#   /lib/systemd/system/tunneldigger-broker{,@}.service, /usr/lib/modules-load.d/tunneldigger-broker.conf
APT_PACKAGES += fakeroot lintian systemd file gcc-aarch64-linux-gnu libc6-dev-arm64-cross

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib/tunneldigger-broker
DOCDIR ?= $(PREFIX)/share/doc/tunneldigger-broker
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
MODLOADDIR ?= $(PREFIX)/lib/modules-load.d
TD_VERSION := $(shell $(NODE) -p "require('./package.json').version" 2>/dev/null)
DEB_ARCH ?= $(shell dpkg --print-architecture)
DEB := dist/tunneldigger-broker_$(TD_VERSION)_$(DEB_ARCH).deb
# the addon that goes into the tree: the host build, or a cross build (make deb-arm64)
ADDON ?= build/node/tdnative.node
DEB_STRIP ?= strip
# broker code only: the client (src/client, src/runtime/quickjs, src/main/client) runs on QuickJS, not from here
BROKER_JS_EXCLUDE := src/client src/runtime/quickjs src/main/client

.PHONY: install deb deb-check deb-arm64
install: broker $(ADDON)
	@test -n "$(TD_VERSION)" || { echo "cannot read the version from package.json" >&2; exit 1; }
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/js $(DESTDIR)$(LIBDIR)/node $(DESTDIR)$(LIBDIR)/node_modules \
	  $(DESTDIR)$(SYSCONFDIR)/tunneldigger $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MODLOADDIR) $(DESTDIR)$(DOCDIR)
	sed '1s|^#!/usr/bin/env node$$|#!$(if $(filter /usr,$(PREFIX)),/usr/bin/node,/usr/bin/env node)|' bin/tunneldigger-broker \
	  > $(DESTDIR)$(BINDIR)/tunneldigger-broker
	chmod 0755 $(DESTDIR)$(BINDIR)/tunneldigger-broker
	cd build/js && find src -name '*.js' $(foreach d,$(BROKER_JS_EXCLUDE),-not -path '$(d)/*') \
	  -exec install -D -m 0644 {} $(abspath $(DESTDIR)$(LIBDIR))/js/{} \;
	printf '{"name":"tunneldigger-broker","version":"%s","private":true,"type":"module"}\n' '$(TD_VERSION)' \
	  > $(DESTDIR)$(LIBDIR)/package.json
	install -m 0644 $(ADDON) $(DESTDIR)$(LIBDIR)/node/tdnative.node
	for m in $$(npm ls --omit=dev --all --parseable 2>/dev/null | grep '/node_modules/' | sed 's|.*/node_modules/|node_modules/|'); do \
	  install -d $(DESTDIR)$(LIBDIR)/$$m && cp -R $$m/. $(DESTDIR)$(LIBDIR)/$$m/ || exit 1; \
	done
	test -e $(DESTDIR)$(SYSCONFDIR)/tunneldigger/broker.cfg || \
	  install -m 0644 examples/l2tp_broker.cfg $(DESTDIR)$(SYSCONFDIR)/tunneldigger/broker.cfg
	for u in tunneldigger-broker.service tunneldigger-broker@.service; do \
	  sed -e 's|/usr/bin/tunneldigger-broker|$(BINDIR)/tunneldigger-broker|g' -e 's|/etc/tunneldigger/|$(SYSCONFDIR)/tunneldigger/|g' \
	    -e 's|/usr/share/doc/tunneldigger-broker|$(DOCDIR)|g' packaging/systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$u; \
	done
	install -m 0644 packaging/modules-load.d/tunneldigger-broker.conf $(DESTDIR)$(MODLOADDIR)/
	install -m 0644 docs/operations.md docs/metrics.md $(DESTDIR)$(DOCDIR)/

deb: $(DEB)
$(DEB): build/js/.tsc-stamp $(ADDON) $(wildcard packaging/deb/* packaging/systemd/* packaging/modules-load.d/*) docs/operations.md docs/metrics.md examples/l2tp_broker.cfg
	@grep -q '^tunneldigger-broker ($(TD_VERSION))' packaging/deb/changelog || \
	  { echo "packaging/deb/changelog has no entry for version $(TD_VERSION) (package.json)" >&2; exit 1; }
	rm -rf build/deb && mkdir -p build/deb/root/DEBIAN dist
	$(MAKE) --no-print-directory install PREFIX=/usr DESTDIR=$(CURDIR)/build/deb/root ADDON=$(ADDON)
	$(DEB_STRIP) --strip-unneeded --remove-section=.comment --remove-section=.note build/deb/root/usr/lib/tunneldigger-broker/node/tdnative.node
	find build/deb/root/usr/lib/tunneldigger-broker/node_modules -type f -exec chmod 0644 {} +
	find build/deb/root/usr/lib/tunneldigger-broker/node_modules \( -name '*.md' -a -not -name 'LICENSE*' -o -name '*.map' -o -name '*.d.ts' -o -name .npmignore \) -delete
	find build/deb/root/usr/lib/tunneldigger-broker/node_modules -depth -type d \( -name test -o -name tests -o -name example -o -name examples \) -exec rm -rf {} +
	find build/deb/root/usr/lib/tunneldigger-broker/node_modules -depth -type d -empty -delete
	install -m 0644 packaging/deb/copyright build/deb/root/usr/share/doc/tunneldigger-broker/copyright
	gzip -9n < packaging/deb/changelog > build/deb/root/usr/share/doc/tunneldigger-broker/changelog.gz
	chmod 0644 build/deb/root/usr/share/doc/tunneldigger-broker/changelog.gz
	install -m 0644 packaging/deb/conffiles build/deb/root/DEBIAN/conffiles
	install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm build/deb/root/DEBIAN/
	sed -e 's/@VERSION@/$(TD_VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' \
	  -e "s/@SIZE@/$$(du -sk --exclude=DEBIAN build/deb/root | cut -f1)/" packaging/deb/control.in > build/deb/root/DEBIAN/control
	cd build/deb/root && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' md5sum > DEBIAN/md5sums
	fakeroot dpkg-deb --root-owner-group -Zxz --build build/deb/root $@

deb-check: $(DEB)
	bash test/deb/run.sh

# arm64: the same JavaScript with the addon cross-compiled by Debian's gcc-aarch64-linux-gnu
# (Node-API headers are architecture-independent; the undefined napi_* symbols resolve against
# the arm64 node binary at load time). Built and lintian-checked here, not run (no arm64 node).
build/node-arm64/tdnative.node: qjs-native/td_napi.c $(NATIVE_CORE_SRC) $(NATIVE_NLW_SRC)
	@mkdir -p $(@D)
	aarch64-linux-gnu-gcc $(NATIVE_CFLAGS) -I$(NODE_INCLUDE) -shared -o $@ qjs-native/td_napi.c qjs-native/td_core.c qjs-native/td_nl_worker.c -lpthread

deb-arm64: build/node-arm64/tdnative.node
	$(MAKE) --no-print-directory deb DEB_ARCH=arm64 ADDON=build/node-arm64/tdnative.node DEB_STRIP=aarch64-linux-gnu-strip
