// The root search over FakeKernel's whole boot (fake_world.ts): a DDI is taken only once its
// root is verified, mounted, has an init and the version the policy asks for; one that fails
// is released and the next tried. The version is the image's own (its os-release, inside the
// verified data), never its file name's.
import test from "ava";
import type { ExecutionContext } from "ava";
import { imageVersionRefusal } from "../runtime/vpick.js";
import type { FakeKernel } from "./fake_kernel.js";
import { logLines, signatureJson, syntheticDdi, world } from "./fake_world.js";
import type { WorldOptions } from "./fake_world.js";
import { ESP_PART_UUID } from "../qemu/test_disk.js";

const V1 = "1111aaaa".repeat(8);
const V2 = "2222bbbb".repeat(8);
const V3 = "3333cccc".repeat(8);
const DIR = "/EFI/storage-init/root.v";
/** A DDI signed by a key the kernel trusts, whose image says IMAGE_VERSION=`version` (none when undefined). */
const signed = (hash: string, version: string | undefined) =>
  syntheticDdi(hash, signatureJson(hash, "signed"), version === undefined ? undefined : `IMAGE_VERSION=${version}\n`);
const SIGNED_DIR = `storage_init.root_policy=signed storage_init.ddi=${DIR}/ storage_init.failure_delay=0`;

function boot(cmdline: string, files: Array<[string, Uint8Array]>, opts: Partial<WorldOptions> = {}) {
  const { k, run } = world(cmdline, { ddi: new Uint8Array(0), espFiles: new Map(files), ...opts });
  return { k, stop: run(), log: logLines(k) };
}

/** The one dm table loaded, naming `hash`, and one erofs left mounted (on / after the switch). */
function bootedOnly(t: ExecutionContext, k: FakeKernel, hash: string): void {
  t.is(k.execs.length, 1, k.logText());
  t.true(k.dmTables[k.dmTables.length - 1].includes(` ${hash} `), k.dmTables.join("\n"));
  t.is(k.mounts.filter((m) => m.fstype === "erofs").length, 1, "the roots passed over were unmounted");
}

function fatalLine(log: string[]): string | undefined {
  return log.find((l) => l.startsWith("storage-init: failed to "));
}

test("an old signed DDI renamed to the newest is refused, naming both versions, and the real newest boots", (t) => {
  const { k, log } = boot(SIGNED_DIR, [
    [`${DIR}/root_1.raw`, signed(V1, "1")],
    [`${DIR}/root_2.raw`, signed(V2, "2")],
    [`${DIR}/root_99.raw`, signed(V3, "1")],
  ]);
  bootedOnly(t, k, V2);
  t.true(
    log.includes(
      `storage-init: passed over /dev/vda1 ${DIR}/root_99.raw: its name says version 99, the image says IMAGE_VERSION=1`,
    ),
    log.join("\n"),
  );
  t.true(log.includes(`storage-init: root from ${DIR}/root_2.raw on /dev/vda1 (version 2) after 1 passed over`));
});

test("a signed DDI of a vpick directory without IMAGE_VERSION= is refused", (t) => {
  const { k, log } = boot(SIGNED_DIR, [
    [`${DIR}/root_1.raw`, signed(V1, "1")],
    [`${DIR}/root_5.raw`, signed(V2, undefined)],
  ]);
  bootedOnly(t, k, V1);
  t.true(
    log.includes(
      `storage-init: passed over /dev/vda1 ${DIR}/root_5.raw: its name says version 5, but the image carries no IMAGE_VERSION= in its os-release`,
    ),
  );
});

test("storage_init.min_version= passes over older images and, past every DDI, ends in one line naming it", (t) => {
  const files: Array<[string, Uint8Array]> = [
    [`${DIR}/root_1.raw`, signed(V1, "1")],
    [`${DIR}/root_2.raw`, signed(V2, "2")],
  ];
  const ok = boot(`${SIGNED_DIR} storage_init.min_version=2`, files);
  bootedOnly(t, ok.k, V2);
  const { k, stop, log } = boot(`${SIGNED_DIR} storage_init.min_version=2.1`, files);
  t.is(stop.reason, "halted");
  t.is(
    fatalLine(log),
    `storage-init: failed to open the DDI ${DIR}/: none of the 2 DDIs is usable: ` +
      `/dev/vda1 ${DIR}/root_2.raw: its version 2 is older than storage_init.min_version=2.1; ` +
      `/dev/vda1 ${DIR}/root_1.raw: its version 1 is older than storage_init.min_version=2.1`,
  );
  t.is(k.mounts.filter((m) => m.fstype === "erofs").length, 0, "nothing left mounted");
  t.is(k.keys.size, 0);
});

test("pinned by roothash=, the floor holds too, and a name that disagrees with the image is only warned of", (t) => {
  const pinned = syntheticDdi(V1, undefined, "IMAGE_VERSION=3\n");
  const { k, log } = boot(`roothash=${V1} storage_init.ddi=${DIR}/`, [[`${DIR}/root_4.raw`, pinned]]);
  bootedOnly(t, k, V1);
  t.true(log.includes(`storage-init: ${DIR}/root_4.raw: its name says version 4, the image says IMAGE_VERSION=3`));
  const low = boot(
    `roothash=${V1} storage_init.ddi=${DIR}/ storage_init.min_version=3.1 storage_init.failure_delay=0`,
    [[`${DIR}/root_4.raw`, pinned]],
  );
  t.is(
    fatalLine(low.log),
    `storage-init: failed to mount the root /dev/dm-0: its version 3 is older than storage_init.min_version=3.1`,
  );
});

test("a root without an init is passed over once mounted, released, and the next DDI boots", (t) => {
  const { k, log } = boot(
    SIGNED_DIR,
    [
      [`${DIR}/root_1.raw`, signed(V1, "1")],
      [`${DIR}/root_2.raw`, signed(V2, "2")],
    ],
    {
      onRootMount: (fk, target, osRelease) => {
        if (osRelease.includes("IMAGE_VERSION=2")) fk.nodes.delete(target + "/sbin/init");
      },
    },
  );
  bootedOnly(t, k, V1);
  t.true(
    log.includes(
      `storage-init: passed over /dev/vda1 ${DIR}/root_2.raw: no init in the root (tried /usr/lib/systemd/systemd, /lib/systemd/systemd, /sbin/init, /etc/init, /bin/init)`,
    ),
    log.join("\n"),
  );
  t.is(k.dmTables.length, 2, "the second DDI's table loaded under the same name: the first device was removed");
});

test("the one DDI's failure after its mount is the boot's own line, and nothing stays mounted", (t) => {
  const { k, stop, log } = boot(`roothash=${V1} init=/bin/missing storage_init.failure_delay=0`, [
    ["/EFI/storage-init/root.raw", syntheticDdi(V1)],
  ]);
  t.is(stop.reason, "halted");
  t.is(fatalLine(log), "storage-init: failed to mount the root /dev/dm-0: no init in the root (tried /bin/missing)");
  t.is(k.mounts.filter((m) => m.fstype === "erofs").length, 0);
});

test("imageVersionRefusal() names what the policy refuses", (t) => {
  t.is(imageVersionRefusal(true, "2", "2", ""), "");
  t.is(imageVersionRefusal(true, undefined, "", ""), "", "a plain path needs no version without a floor");
  t.is(imageVersionRefusal(false, "2", "", ""), "", "pinned: the name vouches for nothing, and need not");
  t.is(imageVersionRefusal(false, "2", "1", ""), "", "pinned: a mismatch is a warning, not a refusal");
  t.is(imageVersionRefusal(true, "2", "1", ""), "its name says version 2, the image says IMAGE_VERSION=1");
  t.is(
    imageVersionRefusal(true, "2", "", ""),
    "its name says version 2, but the image carries no IMAGE_VERSION= in its os-release",
  );
  t.is(
    imageVersionRefusal(false, undefined, "", "1"),
    "the image carries no IMAGE_VERSION=, and storage_init.min_version=1 asks for one",
  );
  t.is(
    imageVersionRefusal(false, undefined, "1.9", "1.10"),
    "its version 1.9 is older than storage_init.min_version=1.10",
  );
  t.is(imageVersionRefusal(false, undefined, "1.10", "1.10"), "");
  t.is(
    imageVersionRefusal(false, undefined, "1.10~rc1", "1.10"),
    "its version 1.10~rc1 is older than storage_init.min_version=1.10",
  );
});

test("/run/storage-init/root.json records what was chosen and what was passed over, for the booted system", (t) => {
  const { k } = boot(SIGNED_DIR, [
    [`${DIR}/root_1.raw`, signed(V1, "1")],
    [`${DIR}/root_9.raw`, signed(V2, "1")],
  ]);
  t.is(k.execs.length, 1, k.logText());
  const node = k.nodes.get("/run/storage-init/root.json");
  t.truthy(node, "written in /run, which moves into the new root");
  t.deepEqual(JSON.parse(new TextDecoder().decode(node?.data)), {
    esp: { device: "/dev/vda1", partUuid: ESP_PART_UUID },
    path: `${DIR}/root_1.raw`,
    imageVersion: "1",
    versionFile: "/usr/lib/os-release",
    verified: true,
    rootHash: V1,
    signatureAccepted: true,
    policy: "signed",
    minVersion: "",
    init: "/sbin/init",
    passedOver: [
      {
        label: `/dev/vda1 ${DIR}/root_9.raw`,
        reason: "its name says version 9, the image says IMAGE_VERSION=1",
      },
    ],
  });
});
