/**
 * What the boot reads inside a mounted root before it switches into it: paths resolved as if
 * the root were already `/` (an absolute symlink such as Debian's /sbin/init ->
 * /lib/systemd/systemd would otherwise resolve in the initramfs), the init to execute, and the
 * image's version from its os-release, and whether it is a second stage (a systemd initrd). The
 * files are read through dm-verity: the image vouches for them, the ESP does not.
 */
import { InitError, ParseError } from "../lib/errors.js";
import { quote } from "../lib/quote.js";
import { splitText } from "../lib/text.js";
import { Errno, isErrno } from "../syscalls/errno.js";
import { readSmallFile } from "../syscalls/files.js";
import { fileType, FileType } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";
import type { SecondStage } from "./cmdline.js";
import { MOVE_MOUNTS } from "./switch_root.js";

/** The most symlinks one resolution follows, as the kernel's MAXSYMLINKS. */
const MAX_LINKS = 40;
/** The largest os-release read. */
const OS_RELEASE_MAX = 65536;

/**
 * Where `path` inside the tree mounted on `root` lies in the initramfs's view, symlinks followed
 * as chroot(2) would follow them (as openat2's RESOLVE_IN_ROOT): an absolute target starts again
 * at `root`, and `..` never climbs above it. Returns undefined when a component does not exist;
 * throws ParseError after MAX_LINKS links, or when a component that is not the last is not a
 * directory.
 */
export function resolveInRoot(k: Kernel, root: string, path: string): string | undefined {
  let todo = splitText(path, "/");
  let done: string[] = [];
  let links = 0;
  let i = 0;
  while (i < todo.length) {
    const c = todo[i];
    i++;
    if (c === "" || c === ".") continue;
    if (c === "..") {
      if (done.length > 0) done.pop();
      continue;
    }
    const here = root + "/" + (done.length > 0 ? done.join("/") + "/" : "") + c;
    let mode = 0;
    try {
      mode = fileType(k.lstat(here));
    } catch (e) {
      if (isErrno(e, Errno.ENOENT)) return undefined;
      throw e;
    }
    if (mode === FileType.LNK) {
      links++;
      if (links > MAX_LINKS) throw new ParseError(path + ": more than " + MAX_LINKS + " symlinks");
      const target = k.readlink(here);
      if (target.startsWith("/")) done = [];
      todo = splitText(target, "/").concat(todo.slice(i));
      i = 0;
      continue;
    }
    if (i < todo.length && mode !== FileType.DIR && rest(todo, i))
      throw new ParseError(path + ": " + quote(c) + " is not a directory");
    done.push(c);
  }
  return root + "/" + done.join("/");
}

/** Whether components after index `i` name anything (not only "" or "."). */
function rest(todo: string[], i: number): boolean {
  for (let j = i; j < todo.length; j++) if (todo[j] !== "" && todo[j] !== ".") return true;
  return false;
}

/** Where the kernel and systemd look for init when `init=` is not given. */
export const DEFAULT_INITS = [
  "/usr/lib/systemd/systemd",
  "/lib/systemd/systemd",
  "/sbin/init",
  "/etc/init",
  "/bin/init",
];

/** True when `path` inside `root` is a regular file with an execute bit. */
function isExecutable(k: Kernel, root: string, path: string): boolean {
  try {
    const at = resolveInRoot(k, root, path);
    if (at === undefined) return false;
    const st = k.stat(at);
    return fileType(st) === FileType.REG && (st.mode & 0o111) !== 0;
  } catch (e) {
    return false;
  }
}

/** The init to run in the root mounted on `root` (a path inside it), or undefined with what was tried. */
export function chooseInit(k: Kernel, root: string, requested: string | undefined): { path?: string; tried: string[] } {
  const paths = requested !== undefined ? [requested] : DEFAULT_INITS;
  for (const c of paths) if (isExecutable(k, root, c)) return { path: c, tried: paths };
  return { tried: paths };
}

/** The init chooseInit() finds in the root mounted on `root`; throws InitError naming what was tried. */
export function requireInit(k: Kernel, root: string, requested: string | undefined): string {
  const init = chooseInit(k, root, requested);
  if (init.path === undefined) throw new InitError("no init in the root (tried " + init.tried.join(", ") + ")");
  return init.path;
}

/**
 * The value of `key` in os-release text (os-release(5): shell-like assignments, one a line;
 * double quotes take backslash escapes, single quotes none); undefined when it is not assigned.
 * The last assignment wins, as a shell sourcing it would have it.
 */
export function osReleaseValue(text: string, key: string): string | undefined {
  let found: string | undefined;
  for (const raw of splitText(text, "\n")) {
    const line = raw.trim();
    if (!line.startsWith(key + "=")) continue;
    let v = line.slice(key.length + 1);
    if (v.length >= 2 && v[0] === "'" && v[v.length - 1] === "'") v = v.slice(1, v.length - 1);
    else if (v.length >= 2 && v[0] === '"' && v[v.length - 1] === '"') {
      let out = "";
      for (let i = 1; i < v.length - 1; i++) {
        if (v[i] === "\\" && i + 1 < v.length - 1) i++;
        out += v[i];
      }
      v = out;
    }
    found = v;
  }
  return found;
}

/** The image's os-release file: /etc/os-release, which takes precedence, else /usr/lib/os-release (os-release(5)). */
export const OS_RELEASE_FILES = ["/etc/os-release", "/usr/lib/os-release"];

/** The image's version: IMAGE_VERSION= of its os-release, and which file said it. */
export interface ImageVersion {
  /** "" when the image has no os-release or it assigns no IMAGE_VERSION=. */
  version: string;
  /** The os-release read (a path inside the root), "" when there is none. */
  file: string;
}

/** IMAGE_VERSION= of the os-release of the root mounted on `root`. */
export function readImageVersion(k: Kernel, root: string): ImageVersion {
  for (const f of OS_RELEASE_FILES) {
    const at = resolveInRoot(k, root, f);
    if (at === undefined) continue;
    const v = osReleaseValue(readSmallFile(k, at, OS_RELEASE_MAX), "IMAGE_VERSION");
    return { version: v === undefined ? "" : v, file: f };
  }
  return { version: "", file: "" };
}

/** What makes an image an initrd, for systemd (in_initrd(): it exists) and systemd-dissect (non-empty). */
export const INITRD_RELEASE = "/etc/initrd-release";
/** What systemd in an initrd whose /etc is the image's needs (empty is enough: a transient ID then). */
export const MACHINE_ID = "/etc/machine-id";

/** Whether `path` inside the root on `root` is (after its symlinks) a file of at least `minSize` bytes. */
function isFile(k: Kernel, root: string, path: string, minSize: number): boolean {
  const at = resolveInRoot(k, root, path);
  if (at === undefined) return false;
  const st = k.stat(at);
  return fileType(st) === FileType.REG && st.size >= minSize;
}

/** Whether the root on `root` is a systemd initrd: a non-empty INITRD_RELEASE. */
function isInitrdImage(k: Kernel, root: string): boolean {
  return isFile(k, root, INITRD_RELEASE, 1);
}

/**
 * What a second stage on `root` lacks for the boot to switch into it and systemd to run it as an
 * initrd, or "": MACHINE_ID, and the directories the API file systems move onto.
 */
function secondStageProblem(k: Kernel, root: string): string {
  if (!isFile(k, root, MACHINE_ID, 0))
    return "the second stage has no " + MACHINE_ID + " (systemd needs one in an image; empty is enough)";
  for (const m of MOVE_MOUNTS) {
    const at = resolveInRoot(k, root, m);
    if (at === undefined || fileType(k.stat(at)) !== FileType.DIR)
      return "the second stage has no directory " + m + " for the API file systems to move onto";
  }
  return "";
}

/**
 * Whether the root on `root` is a second stage, as storage_init.second_stage= (`want`) allows:
 * throws when the image is not what it asks for, or is a second stage that lacks what its switch
 * needs (secondStageProblem()). The boot and `storage-init check` both decide by it.
 */
export function secondStage(k: Kernel, root: string, want: SecondStage): boolean {
  const initrd = isInitrdImage(k, root);
  if (want === "yes" && !initrd)
    throw new InitError(
      "storage_init.second_stage=yes, but the image is not an initrd (no " + INITRD_RELEASE + ", or it is empty)",
    );
  if (want === "no" && initrd)
    throw new InitError("the image is an initrd (" + INITRD_RELEASE + "), but storage_init.second_stage=no");
  if (!initrd) return false;
  const problem = secondStageProblem(k, root);
  if (problem !== "") throw new InitError(problem);
  return true;
}
