import test from "ava";
import { ARCH, BUILD_CERTIFICATES, BUILD_MIN_VERSION, BUILD_ROOT_POLICY, VERSION } from "../runtime/build_facts.js";
import { buildDefines } from "../toolchain/native.mjs";

test("build facts fall back under Node to what an unconfigured build has", (t) => {
  t.is(VERSION, "development");
  t.is(ARCH, "x86-64");
  t.is(BUILD_ROOT_POLICY, "verity");
  t.is(BUILD_MIN_VERSION, "");
  t.is(BUILD_CERTIFICATES, "");
});

test("buildDefines() gives every fact runtime/build_facts.ts declares", (t) => {
  t.deepEqual(Object.keys(buildDefines("arm64", "signed", "2.1")).sort(), [
    "STORAGE_INIT_ARCH",
    "STORAGE_INIT_CERTIFICATES",
    "STORAGE_INIT_MIN_VERSION",
    "STORAGE_INIT_ROOT_POLICY",
    "STORAGE_INIT_VERSION",
  ]);
  t.is(buildDefines("arm64", "signed", "2.1").STORAGE_INIT_MIN_VERSION, "2.1");
  t.is(buildDefines("arm64", "signed", "2.1", ["ab", "cd"]).STORAGE_INIT_CERTIFICATES, "ab,cd");
});
