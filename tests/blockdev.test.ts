import test from "ava";
import { ParseError } from "../lib/errors.js";
import { PartitionType } from "../lib/facts.js";
import { listDisks, readGptFile } from "../runtime/blockdev.js";
import { FakeKernel } from "./fake_kernel.js";
import { writeGpt } from "./helpers.js";

const DATA = PartitionType.LINUX_DATA;

function disks(): FakeKernel {
  const k = new FakeKernel();
  k.addDisk(
    "nvme0n1",
    writeGpt(4 * 1048576, 512, [{ type: DATA, uuid: DATA, first: 2048, last: 4095, name: "data" }]),
    [[1, 1048576, 1048576]],
    (n) => "nvme0n1p" + n,
  );
  k.addDisk("sda", new Uint8Array(2 * 1048576), [
    [1, 1048576, 524288],
    [2, 1572864, 524288],
  ]);
  k.addDisk("loop0", new Uint8Array(4096));
  k.addDisk("dm-0", new Uint8Array(4096));
  k.addFile("/sys/class/block/nvme0n10/size", "8\n"); // a name that starts like nvme0n1 but is another disk
  k.addFile("/sys/class/block/sdb/size", "0\n"); // an empty card reader
  return k;
}

test("listDisks() pairs partitions with their disks, in name order, and skips loop, dm and empty devices", (t) => {
  t.deepEqual(
    listDisks(disks()).map((d) => [d.name, d.size, [...d.partitions.entries()]]),
    [
      ["nvme0n1", 4194304, [[1, "nvme0n1p1"]]],
      ["nvme0n10", 4096, []],
      [
        "sda",
        2097152,
        [
          [1, "sda1"],
          [2, "sda2"],
        ],
      ],
    ],
  );
});

test("readGptFile() reads a device's GPT, and names what is wrong with one that has none", (t) => {
  const k = disks();
  t.deepEqual(
    readGptFile(k, "/dev/nvme0n1", 4194304).partitions.map((p) => [p.number, p.typeGuid, p.offset, p.size]),
    [[1, DATA, 1048576, 1048576]],
  );
  t.throws(() => readGptFile(k, "/dev/sda", 2097152), { any: true, instanceOf: ParseError, message: /^no GPT: / });
});
