/**
 * What the build decides for the init, in one place: its version, the architecture whose
 * partition types a DDI must have, the root policy it requires at least, the lowest image
 * version it boots, and the certificates whose signatures it takes. The bundler (toolchain/native.mjs buildDefines()) replaces the declared
 * names; under Node (tests) the fallbacks hold.
 */
import type { RootPolicy } from "./cmdline.js";

declare const STORAGE_INIT_VERSION: string | undefined;
declare const STORAGE_INIT_ARCH: string | undefined;
declare const STORAGE_INIT_ROOT_POLICY: string | undefined;
declare const STORAGE_INIT_MIN_VERSION: string | undefined;
declare const STORAGE_INIT_CERTIFICATES: string | undefined;

export const VERSION = typeof STORAGE_INIT_VERSION === "undefined" ? "development" : STORAGE_INIT_VERSION;

/** The architecture whose partition types the DDI must have. */
export const ARCH = typeof STORAGE_INIT_ARCH === "undefined" ? "x86-64" : STORAGE_INIT_ARCH;

/** `--root-policy signed`: signed roots are the default and the floor (the command line may raise the policy, never lower it). */
export const BUILD_ROOT_POLICY: RootPolicy =
  typeof STORAGE_INIT_ROOT_POLICY !== "undefined" && STORAGE_INIT_ROOT_POLICY === "signed" ? "signed" : "verity";

/** `--min-version`: no image older than this activates; the command line may raise it, never lower it ("" for none). */
export const BUILD_MIN_VERSION = typeof STORAGE_INIT_MIN_VERSION === "undefined" ? "" : STORAGE_INIT_MIN_VERSION;

/**
 * `--certificate PEM` (repeatable): the SHA-256 fingerprints (lower-case hex, comma-separated) of
 * the only certificates whose signatures of a root hash this init takes; "" when the command
 * line names them (storage_init.certificate_fingerprint=), which it then may not.
 */
export const BUILD_CERTIFICATES = typeof STORAGE_INIT_CERTIFICATES === "undefined" ? "" : STORAGE_INIT_CERTIFICATES;

/** What a build decides of the policy: the floors parseCmdline() starts from. */
export interface PolicyFacts {
  rootPolicy: RootPolicy;
  minVersion: string;
  /** Fingerprints, comma-separated; "" for none built in. */
  certificates: string;
}

/** This build's policy facts. `storage-init check` reads another build's from its initramfs. */
export const BUILD_POLICY: PolicyFacts = {
  rootPolicy: BUILD_ROOT_POLICY,
  minVersion: BUILD_MIN_VERSION,
  certificates: BUILD_CERTIFICATES,
};
