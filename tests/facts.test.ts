import test from "ava";
import { DEFAULT_DDI_PATH, PartitionType, stubLoadsFrom } from "../lib/facts.js";
import { guidToBytes, guidToString } from "../lib/hex.js";

test("PartitionType holds lower-case GUIDs, each once, that survive the on-disk round trip", (t) => {
  const all = Object.values(PartitionType);
  t.is(new Set(all).size, all.length);
  for (const g of all) {
    t.regex(g, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    t.is(guidToString(guidToBytes(g) as Uint8Array, 0), g);
  }
  t.is(PartitionType.ESP, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "the UEFI specification's ESP type");
});

test("DEFAULT_DDI_PATH is an absolute path on the ESP outside systemd-stub's extension directories", (t) => {
  t.regex(DEFAULT_DDI_PATH, /^\/EFI\/[^.]+\.raw$/);
  t.notRegex(DEFAULT_DDI_PATH, /\.extra\.d\/|\/loader\/extensions\//);
});

test("stubLoadsFrom() names the places systemd-stub reads *.raw from, in any case", (t) => {
  t.is(stubLoadsFrom("/EFI/Linux/os.efi.extra.d/root.raw"), "beside a UKI in <uki>.efi.extra.d/");
  t.is(stubLoadsFrom("/EFI/Linux/OS.EFI.EXTRA.D/Root.RAW"), "beside a UKI in <uki>.efi.extra.d/");
  t.is(stubLoadsFrom("/loader/extensions/root.raw"), "in /loader/extensions/");
  t.is(stubLoadsFrom("/loader/extensions/sub/root.raw"), undefined);
  t.is(stubLoadsFrom("/EFI/Linux/os.efi.extra.d/root.img"), undefined);
  t.is(stubLoadsFrom(DEFAULT_DDI_PATH), undefined);
});
