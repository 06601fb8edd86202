# Broker (Node): compiled by `make ts` (tsc) plus the Node addon; tc(8) from iproute2 applies
# bandwidth limits at run time. `make broker` builds what bin/tunneldigger-broker needs.
APT_PACKAGES += iproute2

.PHONY: broker broker-unit
broker: ts build/node/tdnative.node

broker-unit: ts
	@for t in build/js/test/unit/broker*.test.js; do echo "== $$t"; $(NODE) $$t || exit 1; done
