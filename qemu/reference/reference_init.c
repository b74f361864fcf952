/*
 * The yardstick for `npm run bench`: a hand-written C init doing the same syscalls as
 * storage-init on the benchmark disk, with everything hard-wired and no checks: mount the API
 * file systems, load the modules listed in /modules/order with finit_module, wait for /dev/vda1,
 * mount the ESP, read the DDI's GPT entries, attach root and verity partitions with
 * LOOP_CONFIGURE, create the verity device with raw dm ioctls, mount the erofs, switch root
 * (moves, delete the initramfs), exec /sbin/init. Not part of the product.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int kmsg = -1;
static void say(const char *s) {
  char buf[512];
  int n = snprintf(buf, sizeof buf, "<5>reference-init: %s\n", s);
  if (kmsg >= 0) (void)!write(kmsg, buf, (size_t)n);
}
static void die(const char *s) {
  say(s);
  reboot(RB_POWER_OFF);
  for (;;) pause();
}

static uint64_t le64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static int attach(const char *file, uint64_t off, uint64_t size, char *path) {
  int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  int n = ioctl(ctl, 0x4C82);
  close(ctl);
  sprintf(path, "/dev/loop%d", n);
  int back = open(file, O_RDONLY | O_CLOEXEC);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  uint8_t cfg[304] = {0};
  memcpy(cfg, &back, 4);
  memcpy(cfg + 8 + 24, &off, 8);
  memcpy(cfg + 8 + 32, &size, 8);
  uint32_t flags = 1 | 4 | 16;
  memcpy(cfg + 8 + 52, &flags, 4);
  if (ioctl(fd, 0x4C0A, cfg) < 0) die("LOOP_CONFIGURE failed");
  close(back);
  return n; /* fd stays open until the mount holds the device (AUTOCLEAR) */
}

static void dm(int ctl, unsigned long req, const char *name, uint32_t flags, const char *params, uint64_t sectors, uint8_t *out) {
  uint8_t b[1024] = {0};
  uint32_t v[3] = {4, 0, 0}, size = sizeof b, start = 312, count = params ? 1 : 0;
  memcpy(b, v, 12);
  memcpy(b + 12, &size, 4);
  memcpy(b + 16, &start, 4);
  memcpy(b + 20, &count, 4);
  memcpy(b + 28, &flags, 4);
  strcpy((char *)b + 48, name);
  if (params) {
    memcpy(b + 312 + 8, &sectors, 8);
    strcpy((char *)b + 312 + 24, "verity");
    strcpy((char *)b + 312 + 40, params);
  }
  if (ioctl(ctl, req, b) < 0) die("dm ioctl failed");
  if (out) memcpy(out, b, 312);
}

static void rm_tree(const char *dir, dev_t dev) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char p[512];
  while (d && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "sysroot")) continue;
    snprintf(p, sizeof p, "%s/%s", strcmp(dir, "/") ? dir : "", e->d_name);
    struct stat st;
    if (lstat(p, &st) < 0 || st.st_dev != dev) continue;
    if (S_ISDIR(st.st_mode)) { rm_tree(p, dev); rmdir(p); } else unlink(p);
  }
  if (d) closedir(d);
}

int main(void) {
  mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
  mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
  mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=755");
  mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755");
  kmsg = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
  say("started");

  char roothash[129] = {0};
  int cf = open("/proc/cmdline", O_RDONLY);
  char cmd[4096] = {0};
  (void)!read(cf, cmd, sizeof cmd - 1);
  close(cf);
  char *h = strstr(cmd, "roothash=");
  if (!h) die("no roothash=");
  sscanf(h + 9, "%128[0-9a-f]", roothash);

  FILE *order = fopen("/modules/order", "r");
  char name[256], path[300];
  while (order && fscanf(order, "%255s", name) == 1) {
    snprintf(path, sizeof path, "/modules/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    syscall(SYS_finit_module, fd, "", 0);
    close(fd);
  }
  for (int i = 0; i < 3000 && access("/dev/vda1", F_OK) != 0; i++) usleep(1000);
  say("disk found");

  mkdir("/esp", 0755);
  if (mount("/dev/vda1", "/esp", "vfat", MS_RDONLY | MS_NODEV | MS_NOSUID | MS_NOEXEC, "") < 0) die("ESP mount failed");
  const char *ddi = "/esp/EFI/storage-init/root.raw";
  int f = open(ddi, O_RDONLY | O_CLOEXEC);
  uint8_t gpt[512 + 512 * 2];
  if (pread(f, gpt, sizeof gpt, 512) != (ssize_t)sizeof gpt) die("DDI read failed");
  uint8_t *e1 = gpt + 512, *e2 = gpt + 512 + 128;
  uint64_t roff = le64(e1 + 32) * 512, rsize = (le64(e1 + 40) - le64(e1 + 32) + 1) * 512;
  uint64_t voff = le64(e2 + 32) * 512, vsize = (le64(e2 + 40) - le64(e2 + 32) + 1) * 512;
  uint8_t sb[512];
  (void)!pread(f, sb, sizeof sb, (off_t)voff);
  close(f);
  uint64_t blocks = le64(sb + 72);
  uint16_t saltlen; memcpy(&saltlen, sb + 80, 2);
  char salt[513] = {0};
  for (int i = 0; i < saltlen; i++) sprintf(salt + 2 * i, "%02x", sb[88 + i]);

  char lr[32], lv[32];
  int r = attach(ddi, roff, rsize, lr), v = attach(ddi, voff, vsize, lv);
  say("loops attached");
  int ctl = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
  char params[1024];
  snprintf(params, sizeof params, "1 7:%d 7:%d 4096 4096 %llu 1 sha256 %s %s", r, v, (unsigned long long)blocks, roothash, salt);
  uint8_t reply[312];
  dm(ctl, 0xc138fd03, "root", 0, NULL, 0, reply);
  dm(ctl, 0xc138fd09, "root", 1, params, blocks * 8, NULL);
  dm(ctl, 0xc138fd06, "root", 0, NULL, 0, NULL);
  uint64_t devn; memcpy(&devn, reply + 40, 8);
  char dmdev[32];
  sprintf(dmdev, "/dev/dm-%u", (unsigned)((devn & 0xff) | ((devn >> 12) & 0xfff00)));
  umount2("/esp", MNT_DETACH);
  if (mount(dmdev, "/sysroot", "erofs", MS_RDONLY, "") < 0) die("root mount failed");
  say("root mounted");

  const char *moves[] = {"/dev", "/proc", "/sys", "/run"};
  char to[64];
  for (int i = 0; i < 4; i++) { snprintf(to, sizeof to, "/sysroot%s", moves[i]); mount(moves[i], to, NULL, MS_MOVE, NULL); }
  struct stat rst;
  stat("/", &rst);
  rm_tree("/", rst.st_dev);
  if (chdir("/sysroot") < 0 || mount("/sysroot", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0) die("switch root failed");
  say("starting /sbin/init");
  char *argv[] = {"/sbin/init", NULL}, *envp[] = {"HOME=/", "TERM=linux", NULL};
  execve("/sbin/init", argv, envp);
  die("exec failed");
  return 0;
}
