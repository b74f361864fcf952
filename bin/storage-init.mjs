#!/usr/bin/env node
// The `storage-init` command from a source tree (cli/command.ts; `storage-init --help`). The
// Debian package installs the same command bundled into one file (`npm run deb`).
import { register } from "tsx/esm/api";

register();
await import("../cli/run.ts");
