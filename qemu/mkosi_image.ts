// A root built by mkosi (25, Debian 13's) from the configuration in qemu/mkosi/: a Debian 13
// image with systemd as a verity DDI, and a UKI of its kernel whose initrd is storage-init's
// proto-initrd, packed for that kernel from the built init. mkosi runs in a Debian 13 root of its
// own (qemu/debian_root.ts), chrooted; its packages come from this machine's Debian mirror,
// named in its sandbox tree's apt sources (mkosi would add Debian's debug and security
// repositories, which the mirror does not serve). Cached under .cache/mkosi/<key>/.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { distName } from "../toolchain/arches.ts";
import { packInitramfs } from "../toolchain/init_image.mjs";
import { CACHE, DIST, ROOT, run, WORK } from "../toolchain/tools.mjs";
import { readSection } from "../toolchain/uki.mjs";
import { debianRoot, inChroot } from "./debian_root.ts";
import { debianMirror } from "./demo_root.mjs";
import { fetchKernel } from "./kernel.mjs";
import { copyTree } from "./second_stage.ts";

/** What mkosi's root has: mkosi and the tools it runs for a disk image with verity and a UKI. */
const MKOSI_PACKAGES = [
  "mkosi",
  "bubblewrap",
  "systemd-repart",
  "systemd-ukify",
  "systemd-boot-efi",
  "erofs-utils",
  "cryptsetup-bin",
  "dosfstools",
  "mtools",
  "apt",
  "debian-archive-keyring",
  "zstd",
  "xz-utils",
  "kmod",
  "cpio",
  "python3-pefile",
];

const CONFIG = join(ROOT, "qemu", "mkosi");

export interface MkosiImage {
  /** The DDI (GPT: the erofs root and its verity hash partition). */
  ddi: string;
  /** The UKI: the image's kernel, the proto-initrd, a command line with the DDI's roothash=. */
  uki: string;
  rootHash: string;
  /** The kernel release of the image and of the proto-initrd. */
  kernel: string;
  /** The proto-initrd as mkosi was given it. */
  initrd: string;
}

/** Every file under `dir`, relative, sorted, with links as their targets: what the cache key covers. */
function configFiles(dir: string, at = ""): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, at)).sort()) {
    const rel = at === "" ? name : `${at}/${name}`;
    const st = statSync(join(dir, rel), { throwIfNoEntry: false });
    if (st?.isDirectory()) out.push(...configFiles(dir, rel));
    else out.push(rel);
  }
  return out;
}

/** The apt sources mkosi's sandbox uses: Debian 13 and its updates from this machine's mirror. */
function sandboxSources(): string {
  return [
    "Types: deb",
    `URIs: ${debianMirror()}`,
    "Suites: trixie trixie-updates",
    "Components: main",
    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
    "",
  ].join("\n");
}

/** Builds (or reuses) mkosi's DDI and UKI with the built init (dist/storage-init) and Debian 13's kernel. */
export async function buildMkosiImage(): Promise<MkosiImage> {
  const kernel = fetchKernel("x86-64", "trixie");
  const work = join(WORK, "mkosi");
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const initrd = join(work, "storage-init.img");
  await packInitramfs({
    init: join(DIST, distName("x86-64", "storage-init")),
    out: initrd,
    modulesDir: kernel.modulesDir,
    storage: ["virtio"],
  });
  const h = createHash("sha256");
  for (const f of configFiles(CONFIG)) h.update(`${f}\0${readFileSync(join(CONFIG, f))}\0`);
  h.update(readFileSync(initrd)).update(sandboxSources()).update(MKOSI_PACKAGES.join(","));
  const dir = join(CACHE, "mkosi", h.digest("hex").slice(0, 12));
  const image = (meta: { rootHash: string; kernel: string }): MkosiImage => ({
    ddi: join(dir, "root.raw"),
    uki: join(dir, "root.efi"),
    initrd: join(dir, "storage-init.img"),
    ...meta,
  });
  if (existsSync(join(dir, "meta.json"))) return image(JSON.parse(readFileSync(join(dir, "meta.json"), "utf8")));

  const t0 = performance.now();
  console.log("mkosi: building Debian 13 as a verity DDI and a UKI with storage-init (a few minutes)");
  const tree = join(work, "tree");
  copyTree(debianRoot("trixie", MKOSI_PACKAGES), tree);
  const inside = join(tree, "work");
  run("cp", ["-a", `${CONFIG}/.`, inside]);
  const sources = join(inside, "mkosi.sandbox", "etc", "apt", "sources.list.d");
  mkdirSync(sources, { recursive: true });
  writeFileSync(join(sources, "mkosi.sources"), sandboxSources());
  writeFileSync(join(inside, "storage-init.img"), readFileSync(initrd));
  try {
    inChroot(tree, ["sh", "-c", "cd /work && mkosi --force build > /work/mkosi.log 2>&1"]);
  } catch (e) {
    const logFile = join(inside, "mkosi.log");
    if (!existsSync(logFile)) throw e; // the chroot itself failed: its own error says why
    const log = readFileSync(logFile, "utf8").replace(/\r/g, "\n");
    throw new Error(`mkosi build failed in ${relative(ROOT, inside)}:\n${log.split("\n").slice(-25).join("\n")}`);
  }
  const uki = join(inside, "root.efi");
  const uname = readSection(uki, ".uname").toString().trim();
  if (uname !== kernel.version)
    throw new Error(
      `mkosi's image has kernel ${uname}, the proto-initrd was packed for ${kernel.version}: the Debian 13 ` +
        `package lists in .cache/debian/trixie are older than the mirror's; remove that folder to fetch them again`,
    );
  const rootHash = /(?:^|\s)roothash=([0-9a-f]{64})(?:\s|$)/.exec(readSection(uki, ".cmdline").toString())?.[1];
  if (rootHash === undefined) throw new Error(`${uki}: mkosi put no roothash= on the command line`);
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  for (const f of ["root.raw", "root.efi", "storage-init.img"]) renameSync(join(inside, f), join(tmp, f));
  writeFileSync(join(tmp, "meta.json"), JSON.stringify({ rootHash, kernel: uname }, null, 2));
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  rmSync(work, { recursive: true, force: true });
  console.log(`mkosi: built in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return image({ rootHash, kernel: uname });
}
