// The root search over FakeKernel's whole boot (fake_world.ts): a DDI is taken only once its
// root is verified, mounted, has an init and the version the policy asks for; one that fails
// is released and the next tried. The version is the image's own (its os-release, inside the
// verified data), never its file name's.
import test from "ava";
import type { ExecutionContext } from "ava";
import { MountFlags } from "../syscalls/kernel.js";
import type { FakeKernel } from "./fake_kernel.js";
import { FAKE_PIN, fakeFingerprint, logLines, signatureJson, syntheticDdi, world } from "./fake_world.js";
import type { WorldOptions } from "./fake_world.js";
import { ESP_PART_UUID } from "../qemu/test_disk.js";

const V1 = "1111aaaa".repeat(8);
const V2 = "2222bbbb".repeat(8);
const V3 = "3333cccc".repeat(8);
const DIR = "/EFI/storage-init/root.v";
/** A DDI signed by a key the kernel trusts, whose image says IMAGE_VERSION=`version` (none when undefined). */
const signed = (hash: string, version: string | undefined) =>
  syntheticDdi(hash, signatureJson(hash, "signed"), version === undefined ? undefined : `IMAGE_VERSION=${version}\n`);
const SIGNED_DIR = `storage_init.root_policy=signed ${FAKE_PIN} storage_init.ddi=${DIR}/ storage_init.failure_delay=0`;

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
    signer: fakeFingerprint("fake"),
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

const byOther = (hash: string, version: string) =>
  syntheticDdi(hash, signatureJson(hash, "signed", "other"), `IMAGE_VERSION=${version}\n`);

test("the signed policy takes only the pinned signer: a newer DDI another trusted key signed is refused before the kernel sees it", (t) => {
  const { k, log } = boot(SIGNED_DIR, [
    [`${DIR}/root_1.raw`, signed(V1, "1")],
    [`${DIR}/root_2.raw`, byOther(V2, "2")],
  ]);
  bootedOnly(t, k, V1);
  t.true(
    log.includes(
      `storage-init: passed over /dev/vda1 ${DIR}/root_2.raw: the signature of root hash ${V2} (certificate SHA-256 ${fakeFingerprint("other")}) is not taken: it was made by certificate SHA-256 ${fakeFingerprint("other")}, which storage_init.certificate_fingerprint= does not name`,
    ),
    log.join("\n"),
  );
  t.is(k.dmTables.length, 1, "the refused one never reached the kernel");
  const json = JSON.parse(new TextDecoder().decode(k.nodes.get("/run/storage-init/root.json")?.data));
  t.is(json.signer, fakeFingerprint("fake"), "the signer computed from the PKCS#7");
});

test("a certificateFingerprint that is not the signing certificate's is refused", (t) => {
  const lying = syntheticDdi(V1, signatureJson(V1, "signed", "other", fakeFingerprint("fake")), "IMAGE_VERSION=1\n");
  const { stop, log } = boot(SIGNED_DIR, [[`${DIR}/root_1.raw`, lying]]);
  t.is(stop.reason, "halted");
  t.is(
    fatalLine(log),
    `storage-init: failed to set up the root device: the signature of root hash ${V1} (certificate SHA-256 ${fakeFingerprint("other")}) is not taken: its certificateFingerprint ${fakeFingerprint("fake")} is not the certificate that signed, SHA-256 ${fakeFingerprint("other")}`,
  );
});

test("pinned by roothash=, a signature by a certificate the pin does not name is one warning, the root activated without it", (t) => {
  const { k, log } = boot(`roothash=${V1} ${FAKE_PIN}`, [["/EFI/storage-init/root.raw", byOther(V1, "1")]]);
  bootedOnly(t, k, V1);
  t.false(k.dmTables[0].includes("root_hash_sig_key_desc"));
  t.true(
    log.includes(
      `storage-init: the signature of root hash ${V1} (certificate SHA-256 ${fakeFingerprint("other")}) is not taken: it was made by certificate SHA-256 ${fakeFingerprint("other")}, which storage_init.certificate_fingerprint= does not name; roothash= pins the root: activating it without the signature`,
    ),
    log.join("\n"),
  );
});

test("the signed policy without a pinned signer stops at the command line, nothing mounted", (t) => {
  const { k, stop, log } = boot("storage_init.root_policy=signed storage_init.failure_delay=0", [
    ["/EFI/storage-init/root.raw", signed(V1, "1")],
  ]);
  t.is(stop.reason, "halted");
  t.is(
    fatalLine(log),
    "storage-init: failed to read the kernel command line: kernel command line: storage_init.root_policy=signed needs storage_init.certificate_fingerprint= (the SHA-256 of the certificate that signs the roots) or a build with --certificate",
  );
  t.deepEqual(
    k.mounts.map((m) => m.fstype),
    ["proc", "sysfs", "devtmpfs", "tmpfs"],
  );
});

const ROOT_RAW = "/EFI/storage-init/root.raw";
const SIGNED_ONE = `storage_init.root_policy=signed ${FAKE_PIN} storage_init.failure_delay=0`;

test("signed, several ESPs: a stick that sorts first, carrying the ESP's PARTUUID and an older signed DDI, does not win", (t) => {
  const { k, log } = boot(SIGNED_ONE, [[ROOT_RAW, signed(V2, "2")]], {
    cloneName: "sda",
    cloneEspFiles: new Map([[ROOT_RAW, signed(V1, "1")]]),
  });
  bootedOnly(t, k, V2);
  t.true(
    log.includes(
      "storage-init: 2 partitions match the ESP's selector (/dev/sda1, /dev/vda1): the newest image version among them is taken",
    ),
    log.join("\n"),
  );
  t.true(log.includes(`storage-init: root from ${ROOT_RAW} on /dev/vda1 (version 2)`), log.join("\n"));
  // Each plain path activated once to read its version, then the newest again to be taken.
  t.is(k.dmTables.length, 3);
});

test("signed, several ESPs: the newest version of every ESP's vpick directory is tried first, wherever it lies", (t) => {
  const { k, log } = boot(
    SIGNED_DIR,
    [
      [`${DIR}/root_1.raw`, signed(V1, "1")],
      [`${DIR}/root_3.raw`, signed(V3, "3")],
    ],
    { cloneName: "sda", cloneEspFiles: new Map([[`${DIR}/root_2.raw`, signed(V2, "2")]]) },
  );
  bootedOnly(t, k, V3);
  t.is(k.dmTables.length, 1, "the newest was the first tried");
  t.true(log.includes(`storage-init: root from ${DIR}/root_3.raw on /dev/vda1 (version 3)`), log.join("\n"));
});

test("pinned by roothash=, several ESPs: the first that holds the pinned DDI, in disk order", (t) => {
  const { k, log } = boot(`roothash=${V1}`, [[ROOT_RAW, syntheticDdi(V1)]], {
    cloneName: "sda",
    cloneEspFiles: new Map([[ROOT_RAW, syntheticDdi(V2)]]),
  });
  bootedOnly(t, k, V1);
  t.true(
    log.includes(
      "storage-init: 2 partitions match the ESP's selector (/dev/sda1, /dev/vda1): only the DDI roothash= pins can be taken",
    ),
  );
  t.true(log.some((l) => l.startsWith("storage-init: passed over /dev/sda1: root partition UUID")));
});

test("the search activates at most 16 DDIs, and names what it did not try", (t) => {
  const files: Array<[string, Uint8Array]> = [];
  const other = signed(V2, "1");
  for (let i = 1; i <= 20; i++) files.push([`${DIR}/root_${100 + i}.raw`, other]);
  files.push([`${DIR}/root_1.raw`, signed(V1, "1")]);
  const { k, stop, log } = boot(SIGNED_DIR, files);
  t.is(stop.reason, "halted");
  t.is(k.dmTables.length, 16);
  t.truthy(fatalLine(log));
  t.true(
    log.includes(
      `storage-init: passed over /dev/vda1 ${DIR}/root_104.raw and what follows it: not tried: at most 16 DDIs are activated in one boot`,
    ),
    log.join("\n"),
  );
});

test("the signed policy reads back dm_verity's require_signatures, and says where it belongs when it is off", (t) => {
  const files = new Map([[`${DIR}/root_1.raw`, signed(V1, "1")]]);
  const on = boot(SIGNED_DIR, [...files]);
  bootedOnly(t, on.k, V1);
  t.false(on.log.some((l) => l.includes("runs with require_signatures") || l.includes("has no require_signatures")));
  // dm_verity already loaded without it (built in, or by something before): the parameter reads N.
  const { k, run } = world(SIGNED_DIR, { ddi: new Uint8Array(0), espFiles: files });
  k.modulesLoaded.push("dm_verity");
  k.addFile("/sys/module/dm_verity/parameters/require_signatures", "N\n");
  t.is(run().reason, "exec", k.logText());
  t.true(
    logLines(k).includes(
      "storage-init: dm_verity runs with require_signatures=N (built in, or loaded before): put dm_verity.require_signatures=1 on the UKI's command line",
    ),
    k.logText(),
  );
});

test("the chosen ESP stays mounted read-only at /run/storage-init/esp, which moves into the new root with /run", (t) => {
  const { k } = boot(`roothash=${V1}`, [["/EFI/storage-init/root.raw", syntheticDdi(V1)]]);
  t.is(k.execs.length, 1, k.logText());
  const esp = k.mounts.filter((m) => m.fstype === "vfat");
  t.deepEqual(
    esp.map((m) => [
      m.source,
      m.target,
      m.flags & (MountFlags.RDONLY | MountFlags.NODEV | MountFlags.NOSUID | MountFlags.NOEXEC),
    ]),
    [
      [
        "/dev/vda1",
        "/run/storage-init/esp",
        MountFlags.RDONLY | MountFlags.NODEV | MountFlags.NOSUID | MountFlags.NOEXEC,
      ],
    ],
  );
  t.true(k.nodes.has("/run/storage-init/esp/EFI/storage-init/root.raw"), "its files under the new root's /run");
});
