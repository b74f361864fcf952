// The root search over FakeKernel's whole boot (fake_world.ts): a DDI is taken only once its
// root is verified, mounted, has an init and the version the policy asks for; one that fails
// is released and the next tried. The version is the image's own (its os-release, inside the
// verified data), never its file name's.
import test from "ava";
import type { ExecutionContext } from "ava";
import { MountFlags } from "../syscalls/kernel.js";
import type { FakeKernel } from "./fake_kernel.js";
import { FAKE_PIN, fakeFingerprint, logLines, signatureJson, syntheticDdi, world, worldDisk } from "./fake_world.js";
import { Errno, KernelError } from "../syscalls/errno.js";
import type { WorldOptions } from "./fake_world.js";
import { ESP_PART_UUID } from "../qemu/test_disk.js";

const V1 = "1111aaaa".repeat(8);
const V2 = "2222bbbb".repeat(8);
const V3 = "3333cccc".repeat(8);
const DIR = "/EFI/storage-init/root.v";
/** A DDI signed by a key the kernel trusts, whose image says IMAGE_VERSION=`version` (none when undefined). */
const signed = (hash: string, version: string | undefined) =>
  syntheticDdi(hash, signatureJson(hash, "signed"), version === undefined ? undefined : `IMAGE_VERSION=${version}\n`);
/** The same with a corrupted signature: the kernel refuses it (EKEYREJECTED). */
const corrupted = (hash: string, version: string) =>
  syntheticDdi(hash, signatureJson(hash, "corrupted"), `IMAGE_VERSION=${version}\n`);
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
    source: "esp",
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
    secondStage: false,
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
  // A kernel without root hash signatures has no such parameter at all.
  const none = world(SIGNED_DIR, { ddi: new Uint8Array(0), espFiles: files });
  none.k.modulesLoaded.push("dm_verity");
  t.is(none.run().reason, "exec", none.k.logText());
  t.true(
    logLines(none.k).includes(
      "storage-init: dm_verity has no require_signatures parameter (a kernel without CONFIG_DM_VERITY_VERIFY_ROOTHASH_SIG cannot check root signatures)",
    ),
    none.k.logText(),
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

/** Disks after vda and the clone, each with an ESP (the world's PARTUUID) holding `files`. */
function moreEsps(k: FakeKernel, disks: Array<[string, Map<string, Uint8Array>]>): void {
  const loaded = k.onModuleLoaded;
  k.onModuleLoaded = (name) => {
    loaded(name);
    if (name === "virtio_blk") for (const [d] of disks) k.addDisk(d, worldDisk(), [[1, 1048576, 2097152]]);
  };
  const mounted = k.onMount;
  k.onMount = (m) => {
    const extra = disks.find(([d]) => m.source === "/dev/" + d + "1");
    if (m.fstype === "vfat" && extra !== undefined) for (const [p, data] of extra[1]) k.addFile(m.target + p, data);
    else mounted(m);
  };
}

/** A FakeKernel whose monotonic clock stands still until a test moves it. */
function stillClock(k: FakeKernel): { set: (ms: number) => void } {
  let now = 1000;
  k.monotonicMs = () => now;
  return { set: (ms) => (now = ms) };
}

const TIMEOUT_MS = 5000;
/** Where a search that started at 1000 ms with storage_init.timeout=5 must stop. */
const DEADLINE = 1000 + TIMEOUT_MS;

test("the search goes on at its deadline and stops past it, naming what it did not try", (t) => {
  for (const [at, booted] of [
    [DEADLINE, true],
    [DEADLINE + 1, false],
  ] as const) {
    const { k, run } = world(`${SIGNED_DIR} storage_init.timeout=5`, {
      ddi: new Uint8Array(0),
      espFiles: new Map([
        [`${DIR}/root_1.raw`, signed(V1, "1")],
        [`${DIR}/root_2.raw`, signed(V2, "2")],
      ]),
      onRootMount: (fk, target, osRelease) => {
        if (!osRelease.includes("IMAGE_VERSION=2")) return;
        fk.nodes.delete(target + "/sbin/init");
        clock.set(at);
      },
    });
    const clock = stillClock(k);
    t.is(run().reason, booted ? "exec" : "halted", String(at));
    if (!booted) {
      t.true(
        logLines(k).includes(
          `storage-init: passed over /dev/vda1 ${DIR}/root_1.raw and what follows it: not tried: the search ran past storage_init.timeout`,
        ),
        k.logText(),
      );
      t.true(
        fatalLine(logLines(k))?.endsWith(
          `; /dev/vda1 ${DIR}/root_1.raw: not tried: the search ran past storage_init.timeout`,
        ),
      );
    }
  }
});

test("the one-ESP search says what it lists and mounts, and warns of nothing when the newest boots", (t) => {
  const { k, log } = boot(SIGNED_DIR, [
    [`${DIR}/root_1.raw`, signed(V1, "1")],
    [`${DIR}/root_2.raw`, signed(V2, "2")],
  ]);
  bootedOnly(t, k, V2);
  t.true(log.includes(`storage-init: ${DIR}/: 2 candidates, newest first: ${DIR}/root_2.raw, ${DIR}/root_1.raw`));
  t.true(log.includes("storage-init: mounted /dev/dm-0 (erofs) on /sysroot"));
  t.deepEqual(
    log.filter((l) =>
      /passed over|match the ESP|runs with require_signatures|has no require_signatures|IMAGE_VERSION|: $/.test(l),
    ),
    [],
  );
  const one = boot(SIGNED_DIR, [[`${DIR}/root_1.raw`, signed(V1, "1")]]);
  t.true(one.log.includes(`storage-init: ${DIR}/: 1 candidate, newest first: ${DIR}/root_1.raw`));
});

test("a vpick directory with nothing for this machine is one line among several paths, and alone the boot's failure", (t) => {
  const other = `${DIR.replace("root.v", "other.v")}`;
  const files: Array<[string, Uint8Array]> = [
    [`${DIR}/root_1_arm64.raw`, signed(V1, "1")],
    [ROOT_RAW, syntheticDdi(V2)],
  ];
  const two = boot(`roothash=${V2} storage_init.ddi=${DIR}/,${ROOT_RAW}`, files);
  bootedOnly(t, two.k, V2);
  t.true(two.log.includes(`storage-init: ${DIR}/: 0 candidates`), two.log.join("\n"));
  const alone = boot(`roothash=${V2} storage_init.ddi=${DIR}/ storage_init.failure_delay=0`, files);
  t.is(
    fatalLine(alone.log),
    `storage-init: failed to open the DDI ${DIR}/ on /dev/vda1: ${DIR}/ holds no DDI for x86-64`,
  );
  const none = boot(`roothash=${V2} storage_init.ddi=${DIR}/,${other}/ storage_init.failure_delay=0`, files);
  t.is(fatalLine(none.log), `storage-init: failed to open the DDI ${DIR}/,${other}/ on /dev/vda1: no DDI to try`);
});

test("the fatal line names every path of storage_init.ddi=, and root.json an unverified, unsigned root", (t) => {
  const bad = boot(`roothash=${V1} storage_init.ddi=/a.raw,/b.raw storage_init.failure_delay=0`, [
    ["/a.raw", syntheticDdi(V2)],
    ["/b.raw", syntheticDdi(V3)],
  ]);
  t.regex(
    fatalLine(bad.log) ?? "",
    /^storage-init: failed to open the DDI \/a\.raw,\/b\.raw: none of the 2 DDIs is usable: \/dev\/vda1 \/a\.raw: .*; \/dev\/vda1 \/b\.raw: /,
  );
  const { k } = boot(`systemd.verity=0 storage_init.ddi=/a.raw,/b.raw,${ROOT_RAW}`, [
    ["/a.raw", new Uint8Array(512)],
    ["/b.raw", new Uint8Array(512)],
    [ROOT_RAW, syntheticDdi(V1)],
  ]);
  t.is(k.execs.length, 1, k.logText());
  const json = JSON.parse(new TextDecoder().decode(k.nodes.get("/run/storage-init/root.json")?.data));
  t.like(json, { verified: false, rootHash: "", signatureAccepted: false, signer: "", policy: "none" });
  t.deepEqual(
    json.passedOver.map((p: { label: string }) => p.label),
    ["/dev/vda1 /a.raw", "/dev/vda1 /b.raw"],
  );
});

test("pinned, several ESPs: one that cannot be mounted or lists nothing is passed over, and each DDI of one is named", (t) => {
  const cases: Array<[string, (k: FakeKernel) => void, Map<string, Uint8Array>, RegExp]> = [
    [
      "cannot be mounted",
      (k) => {
        const mount = k.mount.bind(k);
        k.mount = (source, target, fstype, flags, data) => {
          if (source === "/dev/sda1") throw new KernelError("mount", `"${source}"`, Errno.EIO);
          mount(source, target, fstype, flags, data);
        };
      },
      new Map(),
      /^storage-init: passed over \/dev\/sda1: mount "\/dev\/sda1": EIO$/,
    ],
    ["has no directory", () => undefined, new Map(), /^storage-init: passed over \/dev\/sda1: .*ENOENT$/],
    [
      "has two DDIs, neither pinned",
      () => undefined,
      new Map([
        [`${DIR}/root_2.raw`, syntheticDdi(V2)],
        [`${DIR}/root_3.raw`, syntheticDdi(V3)],
      ]),
      new RegExp(`^storage-init: passed over /dev/sda1 ${DIR}/root_3\\.raw: `),
    ],
  ];
  for (const [what, prepare, sda, line] of cases) {
    const { k, run } = world(`roothash=${V1} storage_init.ddi=${DIR}/`, {
      ddi: new Uint8Array(0),
      espFiles: new Map([[`${DIR}/root_1.raw`, syntheticDdi(V1)]]),
      cloneName: "sda",
      cloneEspFiles: sda,
    });
    prepare(k);
    t.is(run().reason, "exec", what + "\n" + k.logText());
    const passed = logLines(k).filter((l) => l.startsWith("storage-init: passed over /dev/sda1"));
    t.true(
      passed.some((l) => line.test(l)),
      what + "\n" + k.logText(),
    );
    t.is(passed.length, what.startsWith("has two") ? 2 : 1, what);
    t.deepEqual(
      k.mounts.filter((m) => m.fstype === "vfat").map((m) => m.source),
      ["/dev/vda1"],
      what,
    );
  }
});

test("signed, several ESPs: an ESP that fails is passed over, the newest that fails gives way to the next, on its own ESP", (t) => {
  // The newest (3, on vdb) fails at the kernel; 1 on vda boots, from vda's ESP mounted again.
  const { k, log } = boot(SIGNED_DIR, [[`${DIR}/root_1.raw`, signed(V1, "1")]], {
    cloneEspFiles: new Map([[`${DIR}/root_3.raw`, corrupted(V3, "3")]]),
  });
  bootedOnly(t, k, V1);
  t.true(log.some((l) => l.startsWith(`storage-init: passed over /dev/vdb1 ${DIR}/root_3.raw: the kernel refused`)));
  t.deepEqual(
    k.mounts.filter((m) => m.fstype === "vfat").map((m) => m.source),
    ["/dev/vda1"],
    "vdb's ESP unmounted",
  );
  // Equal versions: the first ESP in disk order.
  const tie = boot(SIGNED_DIR, [[`${DIR}/root_2.raw`, signed(V1, "2")]], {
    cloneEspFiles: new Map([[`${DIR}/root_2.raw`, signed(V2, "2")]]),
  });
  bootedOnly(t, tie.k, V1);
  // Nothing usable anywhere: one line, nothing of the ESPs left mounted.
  const none = boot(SIGNED_DIR, [[`${DIR}/root_1.raw`, corrupted(V1, "1")]], {
    cloneEspFiles: new Map([[`${DIR}/root_3.raw`, corrupted(V3, "3")]]),
  });
  t.regex(
    fatalLine(none.log) ?? "",
    /: none of the 2 ESPs holds a DDI this boot can use: \/dev\/vdb1 .*; \/dev\/vda1 /,
  );
  t.deepEqual(
    none.k.mounts.filter((m) => m.fstype === "vfat"),
    [],
  );
});

test("signed, several ESPs: one that cannot be mounted, at first or when its DDI's turn comes, or lists nothing, is passed over", (t) => {
  for (const [what, failOn] of [
    ["at first", 1],
    ["at its turn", 2],
    ["no directory", 0],
  ] as const) {
    const { k, run } = world(SIGNED_DIR, {
      ddi: new Uint8Array(0),
      espFiles: new Map([[`${DIR}/root_1.raw`, signed(V1, "1")]]),
      cloneEspFiles: failOn === 0 ? new Map() : new Map([[`${DIR}/root_3.raw`, signed(V3, "3")]]),
    });
    const mount = k.mount.bind(k);
    let vdbMounts = 0;
    k.mount = (source, target, fstype, flags, data) => {
      if (source === "/dev/vdb1" && ++vdbMounts === failOn) throw new KernelError("mount", `"${source}"`, Errno.EIO);
      mount(source, target, fstype, flags, data);
    };
    t.is(run().reason, "exec", what + "\n" + k.logText());
    t.true(k.dmTables[k.dmTables.length - 1].includes(` ${V1} `), what);
    t.deepEqual(
      logLines(k)
        .filter((l) => l.startsWith("storage-init: passed over /dev/vdb1"))
        .map((l) => l.slice(0, "storage-init: passed over /dev/vdb1: ".length)),
      ["storage-init: passed over /dev/vdb1: "],
      what + "\n" + k.logText(),
    );
  }
});

test("signed, several ESPs: a plain path is activated once for its version; one that fails or has none is passed over", (t) => {
  const cases: Array<[string, Uint8Array, string]> = [
    ["fails", corrupted(V3, "3"), "the kernel refused the signature"],
    [
      "has no version",
      signed(V3, undefined),
      "the image carries no IMAGE_VERSION=, by which the newest of several ESPs is chosen",
    ],
  ];
  for (const [what, sda, reason] of cases) {
    const { k } = boot(SIGNED_ONE, [[ROOT_RAW, signed(V1, "1")]], {
      cloneName: "sda",
      cloneEspFiles: new Map([[ROOT_RAW, sda]]),
    });
    bootedOnly(t, k, V1);
    const json = JSON.parse(new TextDecoder().decode(k.nodes.get("/run/storage-init/root.json")?.data));
    t.is(json.passedOver.length, 1, what);
    t.is(json.passedOver[0].label, `/dev/sda1 ${ROOT_RAW}`, what);
    t.true(json.passedOver[0].reason.includes(reason), what + ": " + json.passedOver[0].reason);
  }
});

test("signed, several ESPs: the search past its deadline probes no further plain path, and tries nothing more", (t) => {
  const { k, run } = world(`${SIGNED_ONE} storage_init.timeout=5`, {
    ddi: signed(V1, "1"),
    cloneEspFiles: new Map([[ROOT_RAW, signed(V2, "2")]]),
    onRootMount: () => clock.set(DEADLINE + 1),
  });
  const clock = stillClock(k);
  t.is(run().reason, "halted");
  t.is(k.dmTables.length, 1, "vdb's DDI was not activated");
  t.true(
    logLines(k).includes(
      `storage-init: passed over /dev/vda1 ${ROOT_RAW} and what follows it: not tried: the search ran past storage_init.timeout`,
    ),
    k.logText(),
  );
});

test("signed, several ESPs: at most 16 DDIs activated across them, and what was not tried is named", (t) => {
  const files: Array<[string, Uint8Array]> = [];
  for (let i = 1; i <= 17; i++) files.push([`${DIR}/root_${100 + i}.raw`, signed(V2, "1")]);
  const { k, stop, log } = boot(SIGNED_DIR, files, {
    cloneEspFiles: new Map([[`${DIR}/root_1.raw`, signed(V1, "1")]]),
  });
  t.is(stop.reason, "halted");
  t.is(k.dmTables.length, 16);
  t.true(
    log.includes(
      `storage-init: passed over /dev/vda1 ${DIR}/root_101.raw and what follows it: not tried: at most 16 DDIs are activated in one boot`,
    ),
    log.join("\n"),
  );
});

test("eight ESPs are searched, nine refused; one ESP is not called several", (t) => {
  const eight = world(`roothash=${V1}`, {
    ddi: syntheticDdi(V1),
    cloneEspFiles: new Map([[ROOT_RAW, syntheticDdi(V1)]]),
  });
  const extra = ["vdc", "vdd", "vde", "vdf", "vdg", "vdh"];
  moreEsps(
    eight.k,
    extra.map((d) => [d, new Map()]),
  );
  t.is(eight.run().reason, "exec", eight.k.logText());
  t.true(logLines(eight.k).some((l) => l.startsWith("storage-init: 8 partitions match the ESP's selector (")));
  const nine = world(`roothash=${V1} storage_init.failure_delay=0`, {
    ddi: syntheticDdi(V1),
    cloneEspFiles: new Map(),
  });
  moreEsps(
    nine.k,
    [...extra, "vdi"].map((d) => [d, new Map()]),
  );
  t.is(nine.run().reason, "halted");
  t.true(
    logLines(nine.k).some((l) =>
      l.endsWith(": 9 partitions match the ESP's selector; at most 8 are considered: none is chosen"),
    ),
    nine.k.logText(),
  );
  const one = boot(`roothash=${V1}`, [[ROOT_RAW, syntheticDdi(V1)]]);
  t.false(one.log.some((l) => l.includes("match the ESP's selector")));
});

test("signed, several ESPs: an ESP holding two DDIs is mounted once to try them, and with no DDI anywhere nothing is left", (t) => {
  const { k } = boot(
    SIGNED_DIR,
    [
      [`${DIR}/root_1.raw`, signed(V1, "1")],
      [`${DIR}/root_3.raw`, corrupted(V3, "3")],
    ],
    { cloneEspFiles: new Map([[`${DIR}/root_0.raw`, signed(V2, "0")]]) },
  );
  bootedOnly(t, k, V1);
  t.is(
    k.mountLog.filter((m) => m.source === "/dev/vda1").length,
    2,
    "once to list its DDIs, once to try root_3 and then root_1 on it",
  );
  const none = boot(SIGNED_DIR, [], { cloneEspFiles: new Map() });
  t.regex(
    fatalLine(none.log) ?? "",
    /: none of the 2 ESPs holds a DDI this boot can use: \/dev\/vda1: .*ENOENT; \/dev\/vdb1: .*ENOENT$/,
  );
  t.deepEqual(
    none.k.mounts.filter((m) => m.fstype === "vfat"),
    [],
  );
});

test("a root whose mount fails is passed over without an unmount, and the next DDI boots", (t) => {
  const { k, run } = world(SIGNED_DIR, {
    ddi: new Uint8Array(0),
    espFiles: new Map([
      [`${DIR}/root_1.raw`, signed(V1, "1")],
      [`${DIR}/root_2.raw`, signed(V2, "2")],
    ]),
  });
  const mount = k.mount.bind(k);
  let erofs = 0;
  k.mount = (source, target, fstype, flags, data) => {
    if (fstype === "erofs" && ++erofs === 1) throw new KernelError("mount", `"${source}"`, Errno.EIO);
    mount(source, target, fstype, flags, data);
  };
  t.is(run().reason, "exec", k.logText());
  t.true(k.dmTables[k.dmTables.length - 1].includes(` ${V1} `));
  t.deepEqual(
    logLines(k).filter((l) => l.includes("cannot unmount")),
    [],
  );
});

/** A root that is a systemd initrd: /etc/initrd-release (a symlink, as mkosi makes it), and what else `files` says. */
function initrdRoot(files: Record<string, string | undefined> = {}) {
  return (k: FakeKernel, target: string) => {
    k.addFile(target + "/usr/lib/os-release", "ID=debian\n");
    k.symlink("../usr/lib/os-release", target + "/etc/initrd-release");
    const all: Record<string, string | undefined> = { "/etc/machine-id": "", ...files };
    for (const [p, data] of Object.entries(all)) {
      if (data === undefined) k.nodes.delete(target + p);
      else k.addFile(target + p, data);
    }
  };
}

const PINNED = `roothash=${V1} storage_init.failure_delay=0`;
const ONE: Array<[string, Uint8Array]> = [["/EFI/storage-init/root.raw", syntheticDdi(V1)]];

test("a DDI whose root is a systemd initrd is a second stage: its erofs under a tmpfs overlay, the layers detached, root.json says so", (t) => {
  const { k, log } = boot(PINNED, ONE, { onRootMount: initrdRoot() });
  t.is(k.execs.length, 1, k.logText());
  const mounts = k.mountLog.map((m) => [m.source, m.target, m.fstype, m.flags, m.data]);
  const at = mounts.findIndex((m) => m[1] === "/run/storage-init/lower");
  t.deepEqual(mounts.slice(at, at + 3), [
    ["/sysroot", "/run/storage-init/lower", "", MountFlags.MOVE, ""],
    ["tmpfs", "/run/storage-init/upper", "tmpfs", MountFlags.NOSUID | MountFlags.NODEV, "mode=0755"],
    [
      "overlay",
      "/sysroot",
      "overlay",
      0,
      "lowerdir=/run/storage-init/lower,upperdir=/run/storage-init/upper/upper,workdir=/run/storage-init/upper/work",
    ],
  ]);
  t.true(mounts[at - 1][2] === "erofs" && mounts[at - 1][1] === "/sysroot", "the verified root was mounted first");
  t.is(mounts[at + 3][0], "/dev", "then the API file systems move into the overlay");
  t.deepEqual(
    k.umountLog.filter((u) => u.startsWith("/run/storage-init/")),
    ["/run/storage-init/lower", "/run/storage-init/upper"],
    "the layers are detached: the overlay holds them",
  );
  t.true(
    log.includes(
      "storage-init: second stage: /EFI/storage-init/root.raw under a tmpfs overlay on /sysroot, 0 files of /.extra handed over",
    ),
  );
  const json = JSON.parse(new TextDecoder().decode(k.nodes.get("/run/storage-init/root.json")?.data));
  t.is(json.secondStage, true);
  t.is(k.dmEvents[k.dmEvents.length - 1], "remove root deferred", "the verity device goes once unmounted");
});

test("storage_init.second_stage= takes only what it names; a second stage without /etc/machine-id or a mount point is refused naming it", (t) => {
  const fatal = (cmdline: string, files?: Record<string, string | undefined>) =>
    fatalLine(boot(cmdline, ONE, files === undefined ? {} : { onRootMount: initrdRoot(files) }).log);
  t.is(
    fatal(`${PINNED} storage_init.second_stage=yes`),
    "storage-init: failed to mount the root /dev/dm-0: storage_init.second_stage=yes, but the image is not an initrd (no /etc/initrd-release, or it is empty)",
  );
  t.is(
    fatal(`${PINNED} storage_init.second_stage=no`, {}),
    "storage-init: failed to mount the root /dev/dm-0: the image is an initrd (/etc/initrd-release), but storage_init.second_stage=no",
  );
  t.is(
    fatal(PINNED, { "/etc/machine-id": undefined }),
    "storage-init: failed to mount the root /dev/dm-0: the second stage has no /etc/machine-id (systemd needs one in an image; empty is enough)",
  );
  t.is(
    fatal(PINNED, { "/run": undefined }),
    "storage-init: failed to mount the root /dev/dm-0: the second stage has no directory /run for the API file systems to move onto",
  );
  t.is(boot(`${PINNED} storage_init.second_stage=yes`, ONE, { onRootMount: initrdRoot() }).k.execs.length, 1);
  t.is(boot(`${PINNED} storage_init.second_stage=no`, ONE).k.execs.length, 1);
  // An empty /etc/initrd-release does not make an initrd (systemd-dissect's rule).
  const empty = boot(PINNED, ONE, {
    onRootMount: (k, target) => {
      k.addFile(target + "/etc/initrd-release", "");
    },
  });
  t.is(empty.k.execs.length, 1);
  t.false(empty.k.mountLog.some((m) => m.fstype === "overlay"));
});
