import test from "ava";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { cpioArchive, readCpio, writeInitramfs } from "../../toolchain/initramfs.mjs";

test("cpioArchive() writes what readCpio() reads back, entry for entry", (t) => {
  const entries = [
    { path: "dev", type: "dir" as const, mode: 0o755 },
    { path: "dev/console", type: "chr" as const, mode: 0o600, major: 5, minor: 1 },
    { path: "init", type: "file" as const, mode: 0o755, data: Buffer.from("ELF!") },
  ];
  const back = readCpio(cpioArchive(entries));
  t.deepEqual(
    back.map((e) => [e.path, e.type, e.mode, Buffer.from(e.data ?? "").toString(), e.major, e.minor]),
    [
      ["dev", "dir", 0o755, "", 0, 0],
      ["dev/console", "chr", 0o600, "", 5, 1],
      ["init", "file", 0o755, "ELF!", 0, 0],
    ],
  );
});

test("writeInitramfs() writes a reproducible archive that GNU cpio lists", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "si-initramfs-"));
  try {
    writeFileSync(join(dir, "init"), "ELF");
    const a = writeInitramfs(join(dir, "init"), join(dir, "a.cpio.gz"), [
      { path: "modules/table", type: "file", data: "storage-init-modules 1\n" },
    ]);
    const b = writeInitramfs(join(dir, "init"), join(dir, "b.cpio.gz"), [
      { path: "modules/table", type: "file", data: "storage-init-modules 1\n" },
    ]);
    t.deepEqual(readFileSync(a.path), readFileSync(b.path));
    const listed = execFileSync("cpio", ["-it", "--quiet"], {
      input: gunzipSync(readFileSync(a.path)),
      encoding: "utf8",
    })
      .trim()
      .split("\n");
    t.deepEqual(listed, [
      "dev",
      "modules",
      "proc",
      "run",
      "sys",
      "sysroot",
      "dev/console",
      "dev/kmsg",
      "init",
      "modules/table",
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
