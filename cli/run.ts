/** The `storage-init` command's entry: bin/storage-init.mjs imports it, and the Debian package bundles it. */
import { main } from "./command.js";

process.exitCode = await main(process.argv.slice(2));
