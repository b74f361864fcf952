/**
 * `storage-init check`: what the boot would do with a disk image or an ESP directory and a
 * kernel command line, decided by the init's own modules (runtime/) under Node, and whether
 * the root it would mount verifies. For image builders, before they flash: the exit status is
 * 0 only when the boot would reach a verified root.
 *
 * Checked, per ESP candidate as the boot takes them: the DDI is there and a GPT image; its root
 * and root-verity partitions for the architecture match `roothash=`; the verity superblock's
 * geometry against the partitions; the root hash recomputed over the data (`veritysetup
 * verify`, cryptsetup's own implementation); the erofs superblock within what verity covers.
 * Signed root hashes (no `roothash=`) are not checked yet: the verdict then says so.
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { errorText } from "../lib/errors.js";
import { PartitionType } from "../lib/facts.js";
import { parseCmdline } from "../runtime/cmdline.js";
import { selectDdiPartitions } from "../runtime/ddi.js";
import type { DdiLayout } from "../runtime/ddi.js";
import { EROFS_SUPERBLOCK_OFFSET, EROFS_SUPERBLOCK_SIZE, parseErofsSuperblock } from "../runtime/erofs.js";
import { parseEspSelector } from "../runtime/esp.js";
import { parseGpt } from "../runtime/gpt.js";
import type { Gpt } from "../runtime/gpt.js";
import { checkVerityGeometry, parseVeritySuperblock } from "../runtime/verity.js";

export interface Verdict {
  /** True when the boot would reach a verified root. */
  ok: boolean;
  lines: string[];
}

/** Reads `n` bytes at `offset` of `file` (fewer at its end). */
function readAt(file: string, offset: number, n: number): Uint8Array {
  const fd = openSync(file, "r");
  try {
    const b = new Uint8Array(n);
    const got = readSync(fd, b, 0, n, offset);
    return b.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

function gptOf(file: string): Gpt {
  return parseGpt((o, n) => readAt(file, o, n), statSync(file).size);
}

/** The bytes [offset, offset + size) of `file` copied to `out`. */
function extract(file: string, offset: number, size: number, out: string): string {
  writeFileSync(out, readAt(file, offset, size));
  return out;
}

/** The ESPs of a disk image the boot would try: the selector's, else every ESP by type. */
function espCandidates(disk: string, selector: string | undefined): Array<{ name: string; offset: number }> {
  const gpt = gptOf(disk);
  const sel = selector === undefined ? undefined : parseEspSelector(selector);
  if (sel?.kind === "device") throw new Error(`${selector}: a device path cannot be checked in an image`);
  const out = [];
  for (const p of gpt.partitions) {
    const hit =
      sel === undefined
        ? p.typeGuid === PartitionType.ESP
        : sel.kind === "partuuid"
          ? p.partGuid === sel.value
          : p.name === sel.value;
    if (hit) out.push({ name: `partition ${p.number} (PARTUUID ${p.partGuid})`, offset: p.offset });
  }
  return out;
}

/** Checks the DDI file `ddi` against the configuration; throws with the first reason it fails. */
function checkDdi(
  ddi: string,
  config: ReturnType<typeof parseCmdline>,
  arch: string,
  tmp: string,
  say: (s: string) => void,
): void {
  const gpt = gptOf(ddi);
  if (gpt.skipped.length > 0) throw new Error(gpt.skipped.join("; "));
  const layout: DdiLayout = selectDdiPartitions(gpt, arch, config.rootHash, config.verityDisabled);
  say(`  root partition ${layout.root.number} (${layout.root.partGuid}), ${layout.root.size} bytes`);
  const verity = layout.verity;
  if (verity === undefined) {
    say("  systemd.verity=0: no verification (the boot mounts it unverified)");
    return;
  }
  const sb = parseVeritySuperblock(readAt(ddi, verity.partition.offset, 512));
  checkVerityGeometry(sb, layout.root.size, verity.partition.size, verity.rootHash, 4096, config.allowWeakHash);
  say(
    `  verity partition ${verity.partition.number} (${verity.partition.partGuid}): ${sb.algorithm}, ` +
      `${sb.dataBlocks} blocks of ${sb.dataBlockSize}`,
  );
  const data = extract(ddi, layout.root.offset, layout.root.size, join(tmp, "root"));
  const hash = extract(ddi, verity.partition.offset, verity.partition.size, join(tmp, "verity"));
  // The boot reads this superblock through dm-verity; here the recomputation below vouches for it.
  const fs = parseErofsSuperblock(readAt(data, EROFS_SUPERBLOCK_OFFSET, EROFS_SUPERBLOCK_SIZE));
  const covered = sb.dataBlocks * sb.dataBlockSize;
  if (fs.blocks * fs.blockSize > covered)
    throw new Error(
      `the erofs file system (${fs.blocks * fs.blockSize} bytes) is larger than verity covers (${covered})`,
    );
  say(`  erofs: ${fs.blocks} blocks of ${fs.blockSize}, within what verity covers`);
  try {
    execFileSync("veritysetup", ["verify", data, hash, verity.rootHash], { stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const err = String((e as { stderr?: Buffer }).stderr ?? "").trim();
    throw new Error(`the root hash recomputed over the data is not roothash= (veritysetup verify: ${err})`);
  }
  say("  root hash recomputed over the data: matches roothash=");
}

/**
 * The verdict for `target` (a disk image, or a directory holding an ESP's files) booted with
 * `cmdline` on `arch`.
 */
export function check(target: string, cmdline: string, arch: string = "x86-64"): Verdict {
  const lines: string[] = [];
  const say = (s: string) => lines.push(s);
  const config = parseCmdline(cmdline);
  if (config.problems.length > 0) return { ok: false, lines: ["kernel command line: " + config.problems.join("; ")] };
  if (config.rootHash === undefined && !config.verityDisabled)
    return {
      ok: false,
      lines: ["no roothash=: the boot refuses an unverified root (signed root hashes are not checked here yet)"],
    };
  const tmp = mkdtempSync(join(tmpdir(), "storage-init-check-"));
  try {
    const dir = statSync(target).isDirectory();
    const esps = dir ? [{ name: target, offset: -1 }] : espCandidates(target, config.esp);
    if (esps.length === 0) return { ok: false, lines: [`${target}: no ESP the boot would take`] };
    if (!dir && config.esp === undefined)
      say("ESP: by type (the boot takes LoaderDevicePartUUID first when a loader or the stub sets it)");
    for (const esp of esps) {
      say(`ESP ${esp.name}:`);
      try {
        let ddi = join(target, config.ddiPaths[0]);
        if (!dir) {
          ddi = join(tmp, "ddi.raw");
          rmSync(ddi, { force: true });
          try {
            execFileSync("mcopy", ["-n", "-i", `${target}@@${esp.offset}`, `::${config.ddiPaths[0]}`, ddi], {
              stdio: ["ignore", "pipe", "pipe"],
            });
          } catch (e) {
            throw new Error(
              `no DDI at ${config.ddiPaths[0]} (mcopy: ${String((e as { stderr?: Buffer }).stderr ?? "").trim()})`,
            );
          }
        }
        say(`  DDI ${config.ddiPaths[0]}`);
        checkDdi(ddi, config, arch, tmp, say);
        say(`verdict: the boot would take the DDI on ESP ${esp.name}, and its root verifies`);
        return { ok: true, lines };
      } catch (e) {
        say(`  refused: ${errorText(e)}`);
      }
    }
    say("verdict: no ESP holds a DDI this boot can use: the boot would fail");
    return { ok: false, lines };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
