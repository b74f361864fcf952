#!/usr/bin/env node
// The `storage-init` command from a source tree (cli/command.ts; `storage-init --help`). The
// Debian package installs the same command bundled into one file (`npm run deb`).
import { register } from "tsx/esm/api";

register();
const { main } = await import("../cli/command.ts");
process.exitCode = await main(process.argv.slice(2));
