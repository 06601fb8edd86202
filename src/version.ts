// The release version of both programs (`--version`); test/unit/broker-ops.test.ts keeps it equal
// to package.json's "version".
export const VERSION = '2026.12.0';
