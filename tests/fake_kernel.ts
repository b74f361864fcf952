/**
 * An in-memory Kernel for unit tests: a file tree with sysfs and devtmpfs entries, block devices
 * backed by image bytes, a mount table, loop and device-mapper emulation over ioctls, recorded
 * module loads, a virtual monotonic clock. Sleeping forever (after the failure action) ends the
 * run by throwing FakeStop; exec is recorded and returns.
 */
import { putU32le, putU64le, u32le, u64le, utf8Decode, utf8Encode } from "../lib/bytes.js";
import { quote } from "../lib/quote.js";
import { LoopIoctl } from "../runtime/loop.js";
import { DM_IOCTL_SIZE, DmIoctl } from "../runtime/devmapper.js";
import { Errno, KernelError } from "../syscalls/errno.js";
import { FileType, OpenFlags } from "../syscalls/kernel.js";
import type { DirEntry, Kernel, Stat } from "../syscalls/kernel.js";

interface FNode {
  type: number;
  mode: number;
  data: Uint8Array;
  target: string;
  major: number;
  minor: number;
  /** File-system id: differs on a mount. */
  fs: number;
}

export class FakeStop {
  readonly reason: string;
  readonly detail: string;
  constructor(reason: string, detail: string = "") {
    this.reason = reason;
    this.detail = detail;
  }
}

export interface Mount {
  source: string;
  target: string;
  fstype: string;
  flags: number;
  data: string;
}

export class FakeKernel implements Kernel {
  readonly nodes = new Map<string, FNode>();
  /** The mount table now. */
  readonly mounts: Mount[] = [];
  /** Every umount call, in order, by target. */
  umountLog: string[] = [];
  /** Every mount call that succeeded, in order (MS_MOVE included). */
  readonly mountLog: Mount[] = [];
  readonly modulesLoaded: string[] = [];
  readonly ioctls: Array<{ fd: number; path: string; request: number }> = [];
  readonly execs: Array<{ path: string; argv: string[]; envp: string[] }> = [];
  /**
   * What the old root's file system still held when a mount moved onto / (the paths): an
   * initramfs left there keeps its memory. undefined until then.
   */
  oldRoot: string[] | undefined;
  /** The `max` of each readdir call (-1 for none). */
  readonly readdirLimits: number[] = [];
  readonly reboots: number[] = [];
  readonly console: string[] = [];
  readonly kmsg: string[] = [];
  /** Called after a module loads (by name): lets a test make devices appear. */
  onModuleLoaded: (name: string) => void = () => undefined;
  /** Called on mount: lets a test put the mounted file system's contents in place. */
  onMount: (m: Mount) => void = () => undefined;
  /** Modules whose finit_module fails with this errno. */
  readonly failModules = new Map<string, number>();
  /** Status the fake dm-verity target reports. */
  verityStatus = "V";
  dmTables: string[] = [];
  /**
   * What the device mapper was asked, in order: "create NAME UUID", "load NAME START LENGTH TYPE"
   * (sectors; the parameters are in dmTables), "remove NAME".
   */
  readonly dmEvents: string[] = [];
  /** Keys added with add_key, by serial; an invalidated key is deleted. */
  readonly keys = new Map<number, { type: string; description: string; payload: Uint8Array; keyring: number }>();
  /**
   * The kernel's verdict on a root hash signature (0: trusted): by default, a PKCS#7 whose
   * signature value reads "signed:" + the root hash is trusted, "untrusted:" + it gives ENOKEY,
   * anything else EKEYREJECTED (fake_world.ts signatureJson()).
   */
  signatureVerdict: (pkcs7: string, rootHash: string) => number = (p, h) =>
    p.includes("signed:" + h) ? 0 : p.includes("untrusted:" + h) ? Errno.ENOKEY : Errno.EKEYREJECTED;
  private nextKey = 100;
  now = 1000;
  private fds = new Map<number, { path: string; pos: number }>();
  private nextFd = 3;
  private nextFs = 2;
  /** st_dev of the file systems mounted from a block device (others are 0:their number). */
  private fsDevs = new Map<number, [number, number]>();
  private loops: Array<{ configured: boolean; info: Uint8Array }> = [];
  private dmMinor = 0;
  private dmNames = new Map<string, number>();
  private dmLengths = new Map<string, number>();

  constructor() {
    this.mkdirp("/");
    for (const d of ["/dev", "/proc", "/sys", "/run", "/sysroot", "/modules"]) this.mkdirp(d);
    this.addFile("/init", "ELF");
    this.addFile("/proc/sys/kernel/osrelease", "6.1.0-test\n");
  }

  // ---- building the fake world ----

  private node(type: number, mode: number, fs: number): FNode {
    return { type, mode, data: new Uint8Array(0), target: "", major: 0, minor: 0, fs };
  }

  private fsOf(path: string): number {
    let best = "/";
    for (const m of this.mounts)
      if ((path === m.target || path.startsWith(m.target + "/")) && m.target.length > best.length) best = m.target;
    const n = this.nodes.get(best);
    return n === undefined ? 1 : n.fs;
  }

  mkdirp(path: string): void {
    let cur = "";
    for (const part of path.split("/")) {
      if (part === "") continue;
      cur += "/" + part;
      if (!this.nodes.has(cur)) this.nodes.set(cur, this.node(FileType.DIR, 0o755, this.fsOf(cur)));
    }
    if (path === "/" && !this.nodes.has("/")) this.nodes.set("/", this.node(FileType.DIR, 0o755, 1));
  }

  addFile(path: string, content: string | Uint8Array, mode: number = 0o644): void {
    this.mkdirp(path.slice(0, path.lastIndexOf("/")) || "/");
    const n = this.node(FileType.REG, mode, this.fsOf(path));
    n.data = typeof content === "string" ? utf8Encode(content) : content;
    this.nodes.set(path, n);
  }

  addSymlink(path: string, target: string): void {
    this.mkdirp(path.slice(0, path.lastIndexOf("/")) || "/");
    const n = this.node(FileType.LNK, 0o777, this.fsOf(path));
    n.target = target;
    this.nodes.set(path, n);
  }

  /** A device on a bus with its modalias, as sysfs shows it. */
  addBusDevice(bus: string, id: string, modalias: string): void {
    this.addFile("/sys/bus/" + bus + "/devices/" + id + "/modalias", modalias + "\n");
  }

  /** A block device backed by `bytes`, with partitions [number, offset, size]. */
  addDisk(
    name: string,
    bytes: Uint8Array,
    partitions: Array<[number, number, number]> = [],
    partName: (n: number) => string = (n) => name + n,
  ): void {
    this.addBlock(name, bytes, 8, 0);
    this.addFile("/sys/class/block/" + name + "/size", String(bytes.length / 512) + "\n");
    for (const [num, off, size] of partitions) {
      const p = partName(num);
      this.addBlock(p, bytes.subarray(off, off + size), 8, num);
      this.addFile("/sys/class/block/" + p + "/partition", num + "\n");
      this.addFile("/sys/class/block/" + p + "/size", String(size / 512) + "\n");
      this.addFile("/sys/class/block/" + p + "/start", String(off / 512) + "\n");
    }
  }

  private addBlock(name: string, bytes: Uint8Array, major: number, minor: number): void {
    const n = this.node(FileType.BLK, 0o600, this.fsOf("/dev"));
    n.data = bytes;
    n.major = major;
    n.minor = minor;
    this.nodes.set("/dev/" + name, n);
  }

  mountedAt(target: string): Mount | undefined {
    for (let i = this.mounts.length - 1; i >= 0; i--) if (this.mounts[i].target === target) return this.mounts[i];
    return undefined;
  }

  // ---- helpers ----

  private err(op: string, args: string, errno: number): KernelError {
    return new KernelError(op, args, errno);
  }

  private resolve(path: string, follow: boolean = true): string {
    let p = path;
    for (let i = 0; i < 16; i++) {
      const n = this.nodes.get(p);
      if (!follow || n === undefined || n.type !== FileType.LNK) return p;
      p = n.target.startsWith("/") ? n.target : p.slice(0, p.lastIndexOf("/") + 1) + n.target;
    }
    return p;
  }

  private get(op: string, path: string, follow: boolean = true): FNode {
    const n = this.nodes.get(this.resolve(path, follow));
    if (n === undefined) throw this.err(op, quote(path), Errno.ENOENT);
    return n;
  }

  private fd(op: string, fd: number): { path: string; pos: number } {
    const f = this.fds.get(fd);
    if (f === undefined) throw this.err(op, "fd " + fd, 9);
    return f;
  }

  // ---- Kernel ----

  open(path: string, flags: number, mode: number = 0): number {
    let n = this.nodes.get(this.resolve(path));
    if (n === undefined && (flags & OpenFlags.CREAT) !== 0) {
      this.addFile(path, "", mode);
      n = this.nodes.get(path);
    }
    if (n === undefined) throw this.err("open", quote(path), Errno.ENOENT);
    if ((flags & OpenFlags.DIRECTORY) !== 0 && n.type !== FileType.DIR) throw this.err("open", quote(path), 20);
    if ((flags & OpenFlags.TRUNC) !== 0) n.data = new Uint8Array(0);
    const fd = this.nextFd++;
    this.fds.set(fd, { path: this.resolve(path), pos: 0 });
    return fd;
  }

  read(fd: number, buf: Uint8Array): number {
    const f = this.fd("read", fd);
    if (f.path === "/uevent") throw this.err("read", "fd " + fd, Errno.EAGAIN);
    const n = this.pread(fd, buf, f.pos);
    f.pos += n;
    return n;
  }

  pread(fd: number, buf: Uint8Array, offset: number): number {
    const f = this.fd("pread", fd);
    const data = this.get("pread", f.path).data;
    if (offset >= data.length) return 0;
    const n = Math.min(buf.length, data.length - offset);
    buf.set(data.subarray(offset, offset + n), 0);
    return n;
  }

  write(fd: number, buf: Uint8Array): number {
    if (fd === 1 || fd === 2) {
      this.console.push(utf8Decode(buf));
      return buf.length;
    }
    const f = this.fd("write", fd);
    if (f.path === "/dev/kmsg") {
      this.kmsg.push(utf8Decode(buf));
      return buf.length;
    }
    const n = this.get("write", f.path);
    const out = new Uint8Array(Math.max(n.data.length, f.pos + buf.length));
    out.set(n.data, 0);
    out.set(buf, f.pos);
    n.data = out;
    f.pos += buf.length;
    return buf.length;
  }

  close(fd: number): void {
    this.fd("close", fd);
    this.fds.delete(fd);
  }

  mount(source: string, target: string, fstype: string, flags: number, data: string): void {
    const t = this.get("mount", target);
    if (t.type !== FileType.DIR) throw this.err("mount", quote(source) + " on " + quote(target), 20);
    const m = { source, target, fstype, flags, data };
    this.mountLog.push({ ...m });
    if ((flags & 8192) !== 0) {
      // MS_MOVE: the mount and everything below it move to target.
      const old = this.mountedAt(source);
      if (old === undefined)
        throw this.err("mount", quote(source) + " on " + quote(target) + " (flags " + flags + ")", Errno.EINVAL);
      const moved = new Map<string, FNode>();
      for (const [p, n] of this.nodes) if (p.startsWith(source + "/")) moved.set(p, n);
      if (target === "/") {
        // The new root replaces the old one, which is no longer reachable; what the old root's
        // file system still held is kept in `oldRoot`, as the kernel keeps rootfs's memory.
        const fs = this.nodes.get(source) as FNode;
        const rootFs = this.nodes.get("/")?.fs;
        this.oldRoot = [];
        for (const [p, n] of this.nodes)
          if (n.fs === rootFs && p !== "/" && p !== source && !p.startsWith(source + "/")) this.oldRoot.push(p);
        this.oldRoot.sort();
        this.nodes.clear();
        this.nodes.set("/", fs);
        for (const [p, n] of moved) this.nodes.set(p.slice(source.length), n);
        for (const o of this.mounts) if (o.target.startsWith(source + "/")) o.target = o.target.slice(source.length);
        old.target = "/";
        return;
      }
      for (const [p, n] of moved) {
        this.nodes.delete(p);
        this.nodes.set(target + p.slice(source.length), n);
      }
      const fs = this.nodes.get(source) as FNode;
      this.nodes.set(target, fs);
      this.nodes.set(
        source,
        this.node(FileType.DIR, 0o755, this.fsOf(source.slice(0, source.lastIndexOf("/")) || "/")),
      );
      old.target = target;
      for (const o of this.mounts)
        if (o.target.startsWith(source + "/")) o.target = target + o.target.slice(source.length);
      return;
    }
    const fs = this.nextFs++;
    if (source.startsWith("/dev/")) {
      // A file system on a block device has that device's number as its st_dev, as in Linux.
      const dev = this.get("mount", source);
      if (dev.type === FileType.BLK) this.fsDevs.set(fs, [dev.major, dev.minor]);
    }
    const root = this.node(FileType.DIR, 0o755, fs);
    this.nodes.set(target, root);
    this.mounts.push(m);
    this.onMount(m);
  }

  umount(target: string, _flags: number): void {
    this.umountLog.push(target);
    const i = this.mounts.findIndex((m) => m.target === target);
    if (i < 0) throw this.err("umount", quote(target), Errno.EINVAL);
    this.mounts.splice(i, 1);
    for (const p of [...this.nodes.keys()]) if (p.startsWith(target + "/")) this.nodes.delete(p);
    this.nodes.set(target, this.node(FileType.DIR, 0o755, this.fsOf(target)));
  }

  mkdir(path: string, mode: number): void {
    if (this.nodes.has(path)) throw this.err("mkdir", quote(path), Errno.EEXIST);
    const parent = path.slice(0, path.lastIndexOf("/")) || "/";
    if (!this.nodes.has(parent)) throw this.err("mkdir", quote(path), Errno.ENOENT);
    this.nodes.set(path, this.node(FileType.DIR, mode, this.fsOf(parent)));
  }

  mknod(path: string, mode: number, major: number, minor: number): void {
    const n = this.node(mode & FileType.MASK, mode & 0o7777, this.fsOf(path));
    n.major = major;
    n.minor = minor;
    this.nodes.set(path, n);
  }

  symlink(target: string, path: string): void {
    this.addSymlink(path, target);
  }

  readlink(path: string): string {
    const n = this.get("readlink", path, false);
    if (n.type !== FileType.LNK) throw this.err("readlink", quote(path), Errno.EINVAL);
    return n.target;
  }

  unlink(path: string): void {
    const n = this.get("unlink", path, false);
    if (n.type === FileType.DIR) throw this.err("unlink", quote(path), 21);
    this.nodes.delete(path);
  }

  rmdir(path: string): void {
    const n = this.get("rmdir", path, false);
    if (n.type !== FileType.DIR) throw this.err("rmdir", quote(path), 20);
    for (const p of this.nodes.keys()) if (p.startsWith(path + "/")) throw this.err("rmdir", quote(path), 39);
    this.nodes.delete(path);
  }

  readdir(path: string, max: number = -1): DirEntry[] {
    const real = this.resolve(path);
    const n = this.get("open", path);
    if (n.type !== FileType.DIR) throw this.err("open", quote(path), 20);
    const prefix = real === "/" ? "/" : real + "/";
    const out: DirEntry[] = [];
    for (const [p, c] of this.nodes) {
      if (!p.startsWith(prefix) || p === real) continue;
      const rest = p.slice(prefix.length);
      if (rest.indexOf("/") >= 0) continue;
      const dt =
        c.type === FileType.DIR
          ? 4
          : c.type === FileType.REG
            ? 8
            : c.type === FileType.LNK
              ? 10
              : c.type === FileType.BLK
                ? 6
                : 2;
      out.push({ name: rest, type: dt });
      if (max >= 0 && out.length > max) break;
    }
    this.readdirLimits.push(max);
    return out;
  }

  private statOf(op: string, path: string, follow: boolean): Stat {
    const n = this.get(op, path, follow);
    return {
      mode: n.type | n.mode,
      size: n.data.length,
      rdevMajor: n.major,
      rdevMinor: n.minor,
      devMajor: this.fsDevs.get(n.fs)?.[0] ?? 0,
      devMinor: this.fsDevs.get(n.fs)?.[1] ?? n.fs,
    };
  }

  stat(path: string): Stat {
    return this.statOf("stat", path, true);
  }

  lstat(path: string): Stat {
    return this.statOf("lstat", path, false);
  }

  ioctl(fd: number, request: number, buf: Uint8Array): number {
    const f = this.fd("ioctl", fd);
    this.ioctls.push({ fd, path: f.path, request });
    const loop = f.path.match(/^\/dev\/loop(\d+)$/);
    if (loop && request === LoopIoctl.CONFIGURE) {
      const l = this.loops[Number(loop[1])];
      if (l.configured) throw this.err("ioctl", "LOOP_CONFIGURE", Errno.EBUSY);
      const backing = this.fd("ioctl", u32le(buf, 0));
      const info = buf.slice(8, 8 + 232);
      l.configured = true;
      l.info = info;
      const data = this.get("ioctl", backing.path).data;
      const off = u64le(info, 24);
      const size = u64le(info, 32);
      this.addBlock("loop" + loop[1], data.subarray(off, off + size), 7, Number(loop[1]));
      return 0;
    }
    if (loop && request === LoopIoctl.GET_STATUS64) {
      buf.set(this.loops[Number(loop[1])].info, 0);
      return 0;
    }
    if (f.path === "/dev/mapper/control") return this.dm(request, buf);
    throw this.err("ioctl", "0x" + request.toString(16), Errno.ENOTTY);
  }

  private dm(request: number, b: Uint8Array): number {
    let name = "";
    for (let i = 48; b[i] !== 0 && i < 176; i++) name += String.fromCharCode(b[i]);
    if (request === DmIoctl.VERSION) {
      putU32le(b, 0, 4);
      putU32le(b, 4, 47);
      return 0;
    }
    if (request === DmIoctl.DEV_CREATE) {
      if (this.dmNames.has(name)) throw this.err("ioctl", "DM_DEV_CREATE", Errno.EBUSY);
      let uuid = "";
      for (let i = 176; b[i] !== 0 && i < 305; i++) uuid += String.fromCharCode(b[i]);
      this.dmEvents.push("create " + name + " " + uuid);
      const minor = this.dmMinor++;
      this.dmNames.set(name, minor);
      putU64le(b, 40, (253 << 8) | minor);
      return 0;
    }
    const minor = this.dmNames.get(name);
    if (minor === undefined) throw this.err("ioctl", "dm " + name, 6);
    if (request === DmIoctl.TABLE_LOAD) {
      let params = "";
      for (let i = DM_IOCTL_SIZE + 40; i < b.length && b[i] !== 0; i++) params += String.fromCharCode(b[i]);
      const words = params.split(" ");
      const sigAt = words.indexOf("root_hash_sig_key_desc");
      if (sigAt >= 0) {
        let key: Uint8Array | undefined;
        for (const k of this.keys.values())
          if (k.type === "user" && k.description === words[sigAt + 1]) key = k.payload;
        const verdict = key === undefined ? Errno.ENOKEY : this.signatureVerdict(utf8Decode(key), words[8]);
        if (verdict !== 0) throw this.err("ioctl", "DM_TABLE_LOAD", verdict);
      }
      this.dmTables.push(params);
      this.dmLengths.set(name, u64le(b, DM_IOCTL_SIZE + 8));
      let type = "";
      for (let i = DM_IOCTL_SIZE + 24; b[i] !== 0 && i < DM_IOCTL_SIZE + 40; i++) type += String.fromCharCode(b[i]);
      this.dmEvents.push(["load", name, u64le(b, DM_IOCTL_SIZE), u64le(b, DM_IOCTL_SIZE + 8), type].join(" "));
      return 0;
    }
    if (request === DmIoctl.DEV_SUSPEND) {
      // The device reads as its data device (the table's first device, major:minor), as long as the table says.
      const params = this.dmTables[this.dmTables.length - 1] ?? "";
      const data = params.split(" ")[1] ?? "";
      let bytes: Uint8Array = new Uint8Array(0);
      for (const n of this.nodes.values())
        if (n.type === FileType.BLK && n.major + ":" + n.minor === data) bytes = n.data;
      this.addBlock("dm-" + minor, bytes.subarray(0, (this.dmLengths.get(name) ?? 0) * 512), 253, minor);
      return 0;
    }
    if (request === DmIoctl.TABLE_STATUS) {
      putU32le(b, 12, b.length);
      putU32le(b, 16, DM_IOCTL_SIZE);
      putU32le(b, 20, 1);
      for (let i = 0; i < this.verityStatus.length; i++) b[DM_IOCTL_SIZE + 40 + i] = this.verityStatus.charCodeAt(i);
      b[DM_IOCTL_SIZE + 40 + this.verityStatus.length] = 0;
      return 0;
    }
    if (request === DmIoctl.DEV_REMOVE) {
      // DM_DEFERRED_REMOVE on a device in use: it goes when its last opener closes it.
      if ((u32le(b, 28) & (1 << 17)) !== 0) {
        this.dmEvents.push("remove " + name + " deferred");
        return 0;
      }
      this.dmNames.delete(name);
      this.dmEvents.push("remove " + name);
      return 0;
    }
    throw this.err("ioctl", "dm 0x" + request.toString(16), Errno.ENOTTY);
  }

  ioctlInt(fd: number, request: number, _arg: number): number {
    const f = this.fd("ioctl", fd);
    this.ioctls.push({ fd, path: f.path, request });
    if (f.path === "/dev/loop-control" && request === LoopIoctl.CTL_GET_FREE) {
      let i = this.loops.findIndex((l) => !l.configured);
      if (i < 0) {
        this.loops.push({ configured: false, info: new Uint8Array(232) });
        i = this.loops.length - 1;
      }
      if (!this.nodes.has("/dev/loop" + i)) this.addBlock("loop" + i, new Uint8Array(0), 7, i);
      return i;
    }
    throw this.err("ioctl", "0x" + request.toString(16), Errno.ENOTTY);
  }

  /** The parameters each module was loaded with. */
  readonly moduleParams = new Map<string, string>();

  addKey(type: string, description: string, payload: Uint8Array, keyring: number): number {
    const id = this.nextKey++;
    this.keys.set(id, { type, description, payload: payload.slice(), keyring });
    return id;
  }

  invalidateKey(id: number): void {
    if (!this.keys.delete(id)) throw this.err("keyctl", "KEYCTL_INVALIDATE " + id, Errno.ENOKEY);
  }

  finitModule(fd: number, params: string, _flags: number): void {
    const f = this.fd("finit_module", fd);
    const file = f.path.slice(f.path.lastIndexOf("/") + 1);
    const name = file.slice(0, file.indexOf(".ko")).split("-").join("_");
    const fail = this.failModules.get(name);
    if (fail !== undefined) throw this.err("finit_module", "fd " + fd, fail);
    if (this.modulesLoaded.indexOf(name) >= 0) throw this.err("finit_module", "fd " + fd, Errno.EEXIST);
    this.modulesLoaded.push(name);
    this.moduleParams.set(name, params);
    // As sysfs shows a bool parameter of dm_verity (0444: read back, never written).
    if (name === "dm_verity")
      this.addFile(
        "/sys/module/dm_verity/parameters/require_signatures",
        params.split(" ").includes("require_signatures=1") ? "Y\n" : "N\n",
      );
    this.now += 5;
    this.onModuleLoaded(name);
  }

  chdir(path: string): void {
    this.get("chdir", path);
  }

  /** Only the switch-root form: chdir into the new root, move it onto /, chroot("."). */
  chroot(path: string): void {
    if (path !== "." && path !== "/") throw this.err("chroot", quote(path), Errno.EINVAL);
  }

  /**
   * Records the exec and returns: a real exec never returns, so boot() returning stands for
   * "control left the init" (boot() has a catch-all, which a thrown stop would fall into).
   */
  execve(path: string, argv: string[], envp: string[]): never {
    this.get("execve", path);
    this.execs.push({ path, argv, envp });
    return undefined as never;
  }

  fork(): number {
    throw this.err("fork", "", 38);
  }

  wait(): number {
    throw this.err("wait4", "", 10);
  }

  sync(): void {}

  reboot(cmd: number): void {
    this.reboots.push(cmd);
  }

  getpid(): number {
    return 1;
  }

  /** What argv() and environ() return: the kernel's arguments for init, and its environment. */
  processArgv: string[] = ["/init"];
  processEnv: string[] = [];

  argv(): string[] {
    return [...this.processArgv];
  }

  environ(): string[] {
    return [...this.processEnv];
  }

  /** uevent sockets opened and polls made: how the boot waited for devices. */
  ueventSockets = 0;
  polls = 0;

  ueventSocket(): number {
    this.ueventSockets++;
    const fd = this.nextFd++;
    this.fds.set(fd, { path: "/uevent", pos: 0 });
    return fd;
  }

  poll(_fd: number, _events: number, timeoutMs: number): number {
    this.polls++;
    this.now += timeoutMs;
    return 0;
  }

  sleep(ms: number): void {
    if (ms >= 3600000)
      throw new FakeStop(
        "halted",
        this.reboots.length > 0
          ? "after reboot(0x" + (this.reboots[this.reboots.length - 1] >>> 0).toString(16) + ")"
          : "without reboot",
      );
    this.now += ms;
  }

  /** statfsType(): f_type by mount point ("/" is the initramfs, ramfs, unless a test says otherwise). */
  readonly fsTypes = new Map<string, number>([["/", 0x858458f6]]);

  statfsType(path: string): number {
    this.get("statfs", path);
    return this.fsTypes.get(path) ?? 0x01021994;
  }

  /** The page size pageSize() reports. */
  page = 4096;

  pageSize(): number {
    return this.page;
  }

  /** What the runtime's own exit would do (Kernel.setFailureAction), last set. */
  failureAction = { doing: "", rebootCmd: 0, delayMs: 0 };

  setFailureAction(doing: string, rebootCmd: number, delayMs: number): void {
    this.failureAction = { doing, rebootCmd, delayMs };
  }

  monotonicMs(): number {
    return this.now;
  }

  /** CLOCK_REALTIME at monotonic 0. */
  epochMs = 1_790_000_000_000;

  realtimeMs(): number {
    return this.epochMs + this.now;
  }

  /** What memfd() was given: name, contents and descriptor. */
  readonly memfds: Array<{ name: string; text: string; fd: number }> = [];

  memfd(name: string, data: Uint8Array): number {
    const path = "/proc/self/fd/memfd:" + name + ":" + this.memfds.length;
    this.addFile(path, data.slice());
    const fd = this.open(path, 0);
    this.memfds.push({ name, text: utf8Decode(data), fd });
    return fd;
  }

  /** All log text written so far (kmsg records and console). */
  /** The paths of the descriptors open now. */
  openPaths(): string[] {
    return [...this.fds.values()].map((f) => f.path);
  }

  logText(): string {
    return this.kmsg.join("") + this.console.join("");
  }
}
