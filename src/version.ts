// The release version of both programs (`--version`); test/unit/version.test.ts keeps it equal
// to package.json's "version".
export const VERSION = '0.5.0';
