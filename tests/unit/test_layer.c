/* Unit tests of image/layer: tar streams built in memory with libarchive's
 * writer, compressed with zlib or libzstd, fed through a pipe or a file
 * into layer_unpack_fd, or written in chunks of every size into a
 * layer_unpacker (as a download does), and the tree checked node by node; every escape attempt runs
 * in a sandbox with a sentinel beside the layer directory, which must stay untouched; a real
 * overlay mount checks the whiteouts.  Needs root (chown, mknod, trusted.* xattrs, mount): as
 * another user the tests are skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "image/digest.h"
#include "common/trash.h"
#include "image/layer.h"
#include "tests/unit/proc_self.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define T_DIR 1600000000
#define T_FILE 1500000000
#define T_LINK 1400000000

/* ---- building tars ----------------------------------------------------- */

struct buf
{
  unsigned char *data;
  size_t len, cap;
};

static void
buf_append(struct buf *b, const void *p, size_t n)
{
  if (b->len + n > b->cap)
    {
      b->cap = (b->len + n) * 2 + 4096;
      b->data = xrealloc(b->data, b->cap);
    }
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static void
buf_free(struct buf *b)
{
  free(b->data);
  *b = (struct buf){ 0 };
}

struct spec
{
  const char *name;
  mode_t mode; /* type and permissions; no type: a regular file */
  unsigned uid, gid;
  time_t mtime;
  const char *data;
  size_t size; /* of data, when it is not a string */
  const char *link;
  const char *hardlink;
  unsigned major, minor;
  const char *xattr;
  const void *xattr_value;
  size_t xattr_len;
};

static la_ssize_t
tar_write_cb(struct archive *a, void *data, const void *p, size_t n)
{
  buf_append(data, p, n);
  return n;
}

static struct archive *
tar_begin(struct buf *out)
{
  struct archive *a = archive_write_new();

  assert_non_null(a);
  assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
  assert_int_equal(archive_write_open(a, out, NULL, tar_write_cb, NULL), ARCHIVE_OK);
  return a;
}

static void
tar_add(struct archive *a, const struct spec *s)
{
  struct archive_entry *e = archive_entry_new();
  mode_t type = s->mode & S_IFMT ? s->mode & S_IFMT : S_IFREG;
  size_t size = s->data ? (s->size ? s->size : strlen(s->data)) : 0;

  archive_entry_copy_pathname(e, s->name);
  archive_entry_set_filetype(e, type);
  archive_entry_set_perm(e, s->mode & 07777);
  archive_entry_set_uid(e, s->uid);
  archive_entry_set_gid(e, s->gid);
  archive_entry_set_mtime(e, s->mtime, 0);
  if (s->hardlink)
    archive_entry_copy_hardlink(e, s->hardlink);
  if (s->link)
    archive_entry_copy_symlink(e, s->link);
  if (type == S_IFCHR || type == S_IFBLK)
    {
      archive_entry_set_rdevmajor(e, s->major);
      archive_entry_set_rdevminor(e, s->minor);
    }
  if (s->xattr)
    archive_entry_xattr_add_entry(e, s->xattr, s->xattr_value, s->xattr_len);
  archive_entry_set_size(e, type == S_IFREG && !s->hardlink ? size : 0);
  assert_true(archive_write_header(a, e) >= ARCHIVE_WARN);
  if (size > 0 && !s->hardlink)
    assert_int_equal(archive_write_data(a, s->data, size), (la_ssize_t)size);
  archive_entry_free(e);
}

static void
tar_end(struct archive *a)
{
  assert_int_equal(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
}

#define ADD(a, ...) tar_add(a, &(struct spec){ __VA_ARGS__ })

static void
gzip_buf(const struct buf *in, struct buf *out)
{
  z_stream z = { 0 };

  assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  out->cap = deflateBound(&z, in->len) + 64;
  out->data = xmalloc(out->cap);
  z.next_in = in->data;
  z.avail_in = in->len;
  z.next_out = out->data;
  z.avail_out = out->cap;
  assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
  out->len = z.total_out;
  deflateEnd(&z);
}

static void
zstd_buf(const struct buf *in, struct buf *out)
{
  out->cap = ZSTD_compressBound(in->len);
  out->data = xmalloc(out->cap);
  out->len = ZSTD_compress(out->data, out->cap, in->data, in->len, 3);
  assert_false(ZSTD_isError(out->len));
}

/* ---- feeding ----------------------------------------------------------- */

enum feed
{
  FEED_PIPE,
  FEED_FILE,
  FEED_CHUNKS, /* layer_unpacker_write() in pieces of 1 byte to 300 KB */
};

struct writer
{
  int fd;
  const unsigned char *data;
  size_t len;
};

static void *
pipe_writer(void *arg)
{
  struct writer *w = arg;
  size_t done = 0;

  /* small writes, as a downloader hands over what each recv brought */
  while (done < w->len)
    {
      size_t chunk = w->len - done < 16384 ? w->len - done : 16384;
      ssize_t n = write(w->fd, w->data + done, chunk);
      if (n < 0)
        break; /* EPIPE: the reader gave up */
      done += n;
    }
  close(w->fd);
  return NULL;
}

/* Writes data into an unpacker the way downloads arrive: in pieces of
 * varied sizes (1 byte first, so the compression is sniffed across
 * writes), stopping when the unpacker refuses more. */
static int
push_chunks(const void *data, size_t len, const char *dir, enum layer_compression c, uint64_t max,
            char diff_id[72], struct error *err)
{
  static const size_t sizes[] = { 1, 3, 7, 16384, 1, 65536, 300000, 4095, 2 };
  struct layer_unpacker *u = layer_unpacker_start(dir, c, max, err);
  size_t done = 0;

  if (u == NULL)
    return -1;
  for (size_t i = 0; done < len; i++)
    {
      size_t n = sizes[i % (sizeof sizes / sizeof *sizes)];
      if (n > len - done)
        n = len - done;
      if (!layer_unpacker_write(u, (const char *)data + done, n))
        break;
      done += n;
    }
  return layer_unpacker_finish(u, diff_id, err);
}

static int
unpack_bytes(const void *data, size_t len, enum feed feed, const char *dir,
             enum layer_compression c, uint64_t max, char diff_id[72], struct error *err)
{
  int fds[2], r;

  if (feed == FEED_FILE)
    {
      int fd = memfd_create("layer", MFD_CLOEXEC);
      assert_true(fd >= 0);
      assert_int_equal(write(fd, data, len), (ssize_t)len);
      assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
      r = layer_unpack_fd(fd, dir, c, max, diff_id, err);
      close(fd);
      return r;
    }
  if (feed == FEED_CHUNKS)
    return push_chunks(data, len, dir, c, max, diff_id, err);
  pthread_t thread;
  struct writer w;

  assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
  w = (struct writer){ fds[1], data, len };
  assert_int_equal(pthread_create(&thread, NULL, pipe_writer, &w), 0);
  r = layer_unpack_fd(fds[0], dir, c, max, diff_id, err);
  close(fds[0]);
  pthread_join(thread, NULL);
  return r;
}

/* ---- the sandbox ------------------------------------------------------- */

struct sandbox
{
  char root[64];
  char layer[96];
  char sentinel_path[96];
  struct stat root_st;
  struct stat sentinel;
};

static void
sandbox_new(struct sandbox *sb)
{
  struct timespec ts[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
  int fd;

  strcpy(sb->root, "/tmp/crid-test-layer-XXXXXX");
  assert_non_null(mkdtemp(sb->root));
  snprintf(sb->layer, sizeof sb->layer, "%s/layer", sb->root);
  snprintf(sb->sentinel_path, sizeof sb->sentinel_path, "%s/sentinel", sb->root);
  assert_int_equal(mkdir(sb->layer, 0755), 0);
  fd = open(sb->sentinel_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "precious\n", 9), 9);
  assert_int_equal(futimens(fd, ts), 0);
  close(fd);
  assert_int_equal(lstat(sb->sentinel_path, &sb->sentinel), 0);
  assert_int_equal(lstat(sb->root, &sb->root_st), 0);
}

/* Nothing beside the layer directory changed: the sandbox holds exactly
 * the layer and the sentinel, which has its inode, content, mode, owner,
 * times and a single link. */
static void
sandbox_check(const struct sandbox *sb)
{
  cleanup_dir DIR *dir = opendir(sb->root);
  struct dirent *de;
  struct stat st;
  char content[32] = "";
  char value[8];
  int n = 0, fd;

  assert_non_null(dir);
  while ((de = readdir(dir)) != NULL)
    {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
        continue;
      if (strcmp(de->d_name, "layer") != 0 && strcmp(de->d_name, "sentinel") != 0)
        fail_msg("unexpected %s beside the layer", de->d_name);
      n++;
    }
  assert_int_equal(n, 2);
  assert_int_equal(lstat(sb->sentinel_path, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  assert_int_equal(st.st_ino, sb->sentinel.st_ino);
  assert_int_equal(st.st_mode, sb->sentinel.st_mode);
  assert_int_equal(st.st_uid, sb->sentinel.st_uid);
  assert_int_equal(st.st_nlink, 1);
  assert_int_equal(st.st_size, 9);
  assert_int_equal(st.st_mtim.tv_sec, sb->sentinel.st_mtim.tv_sec);
  assert_int_equal(st.st_ctim.tv_sec, sb->sentinel.st_ctim.tv_sec);
  assert_int_equal(st.st_ctim.tv_nsec, sb->sentinel.st_ctim.tv_nsec);
  fd = open(sb->sentinel_path, O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  assert_int_equal(read(fd, content, sizeof content), 9);
  close(fd);
  assert_string_equal(content, "precious\n");
  assert_int_equal(lstat(sb->root, &st), 0);
  assert_int_equal(st.st_mode, sb->root_st.st_mode);
  assert_int_equal(st.st_uid, sb->root_st.st_uid);
  assert_int_equal(lgetxattr(sb->root, "trusted.overlay.opaque", value, sizeof value), -1);
  assert_int_equal(errno, ENODATA);
}

static void
sandbox_free(struct sandbox *sb)
{
  struct error err = ERROR_INIT;
  struct stat st;

  assert_int_equal(remove_tree(sb->root, &err), 0);
  assert_int_equal(lstat(sb->root, &st), -1);
  assert_int_equal(errno, ENOENT);
}

/* Unpacks a plain tar through a pipe into the sandbox's layer. */
static int
unpack_tar(struct sandbox *sb, const struct buf *tar, struct error *err)
{
  char diff_id[72];
  return unpack_bytes(tar->data, tar->len, FEED_PIPE, sb->layer, LAYER_COMPRESSION_NONE,
                      LAYER_DEFAULT_MAX_SIZE, diff_id, err);
}

static char *
layer_path(const struct sandbox *sb, const char *rel)
{
  return xasprintf("%s/%s", sb->layer, rel);
}

static void
assert_file_content(const char *path, const char *expected)
{
  cleanup_free char *data = NULL;
  size_t len;
  struct error err = ERROR_INIT;

  assert_int_equal(read_file(path, 1 << 20, &data, &len, &err), 0);
  assert_int_equal(len, strlen(expected));
  assert_memory_equal(data, expected, len);
}

static void
assert_missing(const char *path)
{
  struct stat st;
  if (lstat(path, &st) == 0)
    fail_msg("%s exists", path);
  assert_int_equal(errno, ENOENT);
}

static void
assert_missing_in_layer(const struct sandbox *sb, const char *rel)
{
  cleanup_free char *path = layer_path(sb, rel);
  assert_missing(path);
}

static dev_t
rdev_in_layer(const struct sandbox *sb, const char *rel)
{
  cleanup_free char *path = layer_path(sb, rel);
  struct stat st;

  assert_int_equal(lstat(path, &st), 0);
  return st.st_rdev;
}

/* ---- a tree with every kind of node ------------------------------------ */

/* cap_net_raw+ep as setcap writes it: VFS_CAP_REVISION_2 with the
 * effective flag, permitted bit 13, little endian */
static const unsigned char cap_net_raw[20]
    = { 0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };

static void
build_tree(struct buf *out)
{
  struct archive *a = tar_begin(out);

  ADD(a, .name = "./", .mode = S_IFDIR | 0755, .mtime = T_DIR);
  ADD(a, .name = "./etc/", .mode = S_IFDIR | 0751, .mtime = T_DIR);
  ADD(a, .name = "./etc/hosts", .mode = 0644, .mtime = T_FILE, .data = "127.0.0.1 localhost\n");
  ADD(a, .name = "home/user/", .mode = S_IFDIR | 0700, .uid = 1000, .gid = 1001, .mtime = T_DIR);
  ADD(a, .name = "home/user/.profile", .mode = 0600, .uid = 1000, .gid = 1001, .mtime = T_FILE,
      .data = "export PS1='$ '\n");
  ADD(a, .name = "tmp/", .mode = S_IFDIR | 01777, .mtime = T_DIR);
  ADD(a, .name = "srv/shared/", .mode = S_IFDIR | 02775, .gid = 100, .mtime = T_DIR);
  ADD(a, .name = "usr/bin/sudo", .mode = 04755, .mtime = T_FILE, .data = "#!fake sudo\n");
  ADD(a, .name = "usr/bin/wall", .mode = 02755, .gid = 5, .mtime = T_FILE, .data = "wall\n");
  ADD(a, .name = "usr/bin/ping", .mode = 0755, .mtime = T_FILE, .data = "ping\n",
      .xattr = "security.capability", .xattr_value = cap_net_raw, .xattr_len = sizeof cap_net_raw);
  ADD(a, .name = "usr/bin/ping6", .hardlink = "usr/bin/ping");
  ADD(a, .name = "usr/bin/sh", .mode = S_IFLNK | 0777, .uid = 1000, .gid = 1001, .mtime = T_LINK,
      .link = "busybox");
  ADD(a, .name = "abs-link", .mode = S_IFLNK | 0777, .mtime = T_LINK, .link = "/etc/hosts");
  ADD(a, .name = "dev/null", .mode = S_IFCHR | 0666, .mtime = T_FILE, .major = 1, .minor = 3);
  ADD(a, .name = "dev/loop0", .mode = S_IFBLK | 0660, .gid = 6, .mtime = T_FILE, .major = 7,
      .minor = 0);
  ADD(a, .name = "run/fifo", .mode = S_IFIFO | 0620, .uid = 10, .gid = 20, .mtime = T_FILE);
  ADD(a, .name = "data/", .mode = S_IFDIR | 0755, .mtime = T_DIR, .xattr = "user.comment",
      .xattr_value = "hello", .xattr_len = 5);
  ADD(a, .name = "implicit/deep/file", .mode = 0640, .mtime = T_FILE, .data = "x");
  tar_end(a);
}

static void
check_node(const struct sandbox *sb, const char *rel, mode_t mode, uid_t uid, gid_t gid,
           time_t mtime)
{
  cleanup_free char *path = layer_path(sb, rel);
  struct stat st;

  if (lstat(path, &st) < 0)
    fail_msg("%s: %s", rel, strerror(errno));
  if (st.st_mode != mode)
    fail_msg("%s: mode %o, expected %o", rel, st.st_mode, mode);
  assert_int_equal(st.st_uid, uid);
  assert_int_equal(st.st_gid, gid);
  if (mtime)
    assert_int_equal(st.st_mtim.tv_sec, mtime);
}

static void
check_tree(const struct sandbox *sb)
{
  cleanup_free char *ping = layer_path(sb, "usr/bin/ping");
  cleanup_free char *ping6 = layer_path(sb, "usr/bin/ping6");
  cleanup_free char *sh = layer_path(sb, "usr/bin/sh");
  cleanup_free char *abs_link = layer_path(sb, "abs-link");
  cleanup_free char *data = layer_path(sb, "data");
  cleanup_free char *hosts = layer_path(sb, "etc/hosts");
  unsigned char value[64];
  char target[64];
  struct stat a, b;
  ssize_t n;

  check_node(sb, "etc", S_IFDIR | 0751, 0, 0, T_DIR);
  check_node(sb, "etc/hosts", S_IFREG | 0644, 0, 0, T_FILE);
  assert_file_content(hosts, "127.0.0.1 localhost\n");
  check_node(sb, "home", S_IFDIR | 0755, 0, 0, 0);
  check_node(sb, "home/user", S_IFDIR | 0700, 1000, 1001, T_DIR);
  check_node(sb, "home/user/.profile", S_IFREG | 0600, 1000, 1001, T_FILE);
  check_node(sb, "tmp", S_IFDIR | 01777, 0, 0, T_DIR);
  check_node(sb, "srv/shared", S_IFDIR | 02775, 0, 100, T_DIR);
  check_node(sb, "usr/bin/sudo", S_IFREG | 04755, 0, 0, T_FILE);
  check_node(sb, "usr/bin/wall", S_IFREG | 02755, 0, 5, T_FILE);
  check_node(sb, "usr/bin/ping", S_IFREG | 0755, 0, 0, T_FILE);
  n = lgetxattr(ping, "security.capability", value, sizeof value);
  assert_int_equal(n, sizeof cap_net_raw);
  assert_memory_equal(value, cap_net_raw, sizeof cap_net_raw);
  assert_int_equal(lstat(ping, &a), 0);
  assert_int_equal(lstat(ping6, &b), 0);
  assert_int_equal(a.st_ino, b.st_ino);
  assert_int_equal(a.st_nlink, 2);
  check_node(sb, "usr/bin/sh", S_IFLNK | 0777, 1000, 1001, T_LINK);
  n = readlink(sh, target, sizeof target);
  assert_int_equal(n, 7);
  assert_memory_equal(target, "busybox", 7);
  n = readlink(abs_link, target, sizeof target);
  assert_int_equal(n, 10);
  assert_memory_equal(target, "/etc/hosts", 10);
  check_node(sb, "dev/null", S_IFCHR | 0666, 0, 0, T_FILE);
  check_node(sb, "dev/loop0", S_IFBLK | 0660, 0, 6, T_FILE);
  assert_int_equal(rdev_in_layer(sb, "dev/null"), makedev(1, 3));
  assert_int_equal(rdev_in_layer(sb, "dev/loop0"), makedev(7, 0));
  check_node(sb, "run/fifo", S_IFIFO | 0620, 10, 20, T_FILE);
  check_node(sb, "data", S_IFDIR | 0755, 0, 0, T_DIR);
  n = lgetxattr(data, "user.comment", value, sizeof value);
  assert_int_equal(n, 5);
  assert_memory_equal(value, "hello", 5);
  check_node(sb, "implicit", S_IFDIR | 0755, 0, 0, 0);
  check_node(sb, "implicit/deep", S_IFDIR | 0755, 0, 0, 0);
  check_node(sb, "implicit/deep/file", S_IFREG | 0640, 0, 0, T_FILE);
}

static void
tree_roundtrip(enum layer_compression compression, enum feed feed)
{
  struct sandbox sb;
  struct buf tar = { 0 }, packed = { 0 };
  struct error err = ERROR_INIT;
  char diff_id[72], expected[72];
  const struct buf *input = &tar;

  build_tree(&tar);
  digest_buffer(tar.data, tar.len, expected);
  if (compression == LAYER_COMPRESSION_GZIP)
    gzip_buf(&tar, &packed), input = &packed;
  else if (compression == LAYER_COMPRESSION_ZSTD)
    zstd_buf(&tar, &packed), input = &packed;
  sandbox_new(&sb);
  if (unpack_bytes(input->data, input->len, feed, sb.layer, compression, LAYER_DEFAULT_MAX_SIZE,
                   diff_id, &err)
      < 0)
    fail_msg("unpack: %s", error_message(&err));
  assert_string_equal(diff_id, expected);
  check_tree(&sb);
  sandbox_check(&sb);
  sandbox_free(&sb);
  buf_free(&tar);
  buf_free(&packed);
}

static void
test_tree_gzip_pipe(void **state)
{
  tree_roundtrip(LAYER_COMPRESSION_GZIP, FEED_PIPE);
}

static void
test_tree_gzip_file(void **state)
{
  tree_roundtrip(LAYER_COMPRESSION_GZIP, FEED_FILE);
}

static void
test_tree_zstd_pipe(void **state)
{
  tree_roundtrip(LAYER_COMPRESSION_ZSTD, FEED_PIPE);
}

static void
test_tree_zstd_file(void **state)
{
  tree_roundtrip(LAYER_COMPRESSION_ZSTD, FEED_FILE);
}

static void
test_tree_plain_pipe(void **state)
{
  tree_roundtrip(LAYER_COMPRESSION_NONE, FEED_PIPE);
}

static void
test_tree_plain_file(void **state)
{
  tree_roundtrip(LAYER_COMPRESSION_NONE, FEED_FILE);
}

/* ---- streams ----------------------------------------------------------- */

/* A file big enough to span many decoder buffers, with data that does not
 * compress to nothing. */
static void
build_big(struct buf *out, size_t size)
{
  struct archive *a = tar_begin(out);
  char *data = xmalloc(size);
  uint32_t x = 12345;

  for (size_t i = 0; i < size; i++)
    {
      x = x * 1103515245 + 12345;
      data[i] = "abcdefgh"[(x >> 16) & 7];
    }
  ADD(a, .name = "big", .mode = 0644, .data = data, .size = size);
  ADD(a, .name = "after", .mode = 0644, .data = "after\n");
  tar_end(a);
  free(data);
}

static void
expect_unpack(const struct buf *input, enum layer_compression declared, enum feed feed,
              const char *expected_digest, int expected_code)
{
  struct sandbox sb;
  struct error err = ERROR_INIT;
  char diff_id[72];
  int r;

  /* the way asked for, then as a download writes it: the same outcome */
  for (int pass = 0; pass < 2; pass++)
    {
      sandbox_new(&sb);
      r = unpack_bytes(input->data, input->len, pass ? FEED_CHUNKS : feed, sb.layer, declared,
                       LAYER_DEFAULT_MAX_SIZE, diff_id, &err);
      if (expected_code == 0)
        {
          if (r < 0)
            fail_msg("unpack: %s", error_message(&err));
          if (expected_digest)
            assert_string_equal(diff_id, expected_digest);
        }
      else
        {
          assert_int_equal(r, -1);
          if (err.code != expected_code)
            fail_msg("code %d (%s), expected %d", err.code, error_message(&err), expected_code);
          error_clear(&err);
        }
      sandbox_check(&sb);
      sandbox_free(&sb);
    }
}

static void
test_big_file_streams(void **state)
{
  struct buf tar = { 0 }, gz = { 0 }, zst = { 0 };
  char expected[72];
  struct sandbox sb;
  struct error err = ERROR_INIT;
  char diff_id[72];
  cleanup_free char *after = NULL;
  struct stat st;

  build_big(&tar, 5 * 1024 * 1024 + 123);
  digest_buffer(tar.data, tar.len, expected);
  gzip_buf(&tar, &gz);
  zstd_buf(&tar, &zst);
  for (int i = 0; i < 6; i++)
    {
      const struct buf *in = i % 3 == 0 ? &tar : i % 3 == 1 ? &gz : &zst;
      enum layer_compression c = i % 3 == 0   ? LAYER_COMPRESSION_NONE
                                 : i % 3 == 1 ? LAYER_COMPRESSION_GZIP
                                              : LAYER_COMPRESSION_ZSTD;
      sandbox_new(&sb);
      if (unpack_bytes(in->data, in->len, i < 3 ? FEED_PIPE : FEED_FILE, sb.layer, c,
                       LAYER_DEFAULT_MAX_SIZE, diff_id, &err)
          < 0)
        fail_msg("unpack: %s", error_message(&err));
      assert_string_equal(diff_id, expected);
      after = layer_path(&sb, "big");
      assert_int_equal(lstat(after, &st), 0);
      assert_int_equal(st.st_size, 5 * 1024 * 1024 + 123);
      free(after);
      after = layer_path(&sb, "after");
      assert_file_content(after, "after\n");
      free(after);
      after = NULL;
      sandbox_check(&sb);
      sandbox_free(&sb);
    }
  buf_free(&tar);
  buf_free(&gz);
  buf_free(&zst);
}

/* Layers labelled plain tar that are compressed are sniffed and unpacked;
 * one labelled compressed that is not is refused. */
static void
test_sniffing(void **state)
{
  struct buf tar = { 0 }, gz = { 0 }, zst = { 0 };
  char expected[72];

  build_tree(&tar);
  digest_buffer(tar.data, tar.len, expected);
  gzip_buf(&tar, &gz);
  zstd_buf(&tar, &zst);
  expect_unpack(&gz, LAYER_COMPRESSION_NONE, FEED_PIPE, expected, 0);
  expect_unpack(&zst, LAYER_COMPRESSION_NONE, FEED_FILE, expected, 0);
  expect_unpack(&zst, LAYER_COMPRESSION_GZIP, FEED_FILE, expected, 0);
  expect_unpack(&tar, LAYER_COMPRESSION_GZIP, FEED_PIPE, NULL, EINVAL);
  expect_unpack(&tar, LAYER_COMPRESSION_ZSTD, FEED_PIPE, NULL, EINVAL);
  buf_free(&tar);
  buf_free(&gz);
  buf_free(&zst);
}

/* Two gzip members, as pigz or `cat a.gz b.gz` make: both are read. */
static void
test_gzip_members(void **state)
{
  struct buf tar = { 0 }, half1 = { 0 }, half2 = { 0 }, gz1 = { 0 }, gz2 = { 0 }, all = { 0 };
  char expected[72];

  build_big(&tar, 300000);
  digest_buffer(tar.data, tar.len, expected);
  buf_append(&half1, tar.data, tar.len / 3);
  buf_append(&half2, tar.data + tar.len / 3, tar.len - tar.len / 3);
  gzip_buf(&half1, &gz1);
  gzip_buf(&half2, &gz2);
  buf_append(&all, gz1.data, gz1.len);
  buf_append(&all, gz2.data, gz2.len);
  expect_unpack(&all, LAYER_COMPRESSION_GZIP, FEED_PIPE, expected, 0);
  /* trailing garbage after the last member is an error, as in Go */
  buf_append(&all, "garbage", 7);
  expect_unpack(&all, LAYER_COMPRESSION_GZIP, FEED_PIPE, NULL, EINVAL);
  buf_free(&tar);
  buf_free(&half1);
  buf_free(&half2);
  buf_free(&gz1);
  buf_free(&gz2);
  buf_free(&all);
}

static void
test_bad_streams(void **state)
{
  struct buf tar = { 0 }, gz = { 0 }, zst = { 0 }, cut = { 0 }, empty = { 0 };
  char expected[72];

  build_big(&tar, 200000);
  gzip_buf(&tar, &gz);
  zstd_buf(&tar, &zst);
  /* truncated compressed streams */
  buf_append(&cut, gz.data, gz.len - 10);
  expect_unpack(&cut, LAYER_COMPRESSION_GZIP, FEED_PIPE, NULL, EINVAL);
  cut.len = 0;
  buf_append(&cut, zst.data, zst.len - 10);
  expect_unpack(&cut, LAYER_COMPRESSION_ZSTD, FEED_FILE, NULL, EINVAL);
  /* a corrupt gzip body */
  cut.len = 0;
  buf_append(&cut, gz.data, gz.len);
  memset(cut.data + 100, 0xff, 200);
  expect_unpack(&cut, LAYER_COMPRESSION_GZIP, FEED_PIPE, NULL, EINVAL);
  /* a tar cut in the middle of a file */
  cut.len = 0;
  buf_append(&cut, tar.data, 100000);
  expect_unpack(&cut, LAYER_COMPRESSION_NONE, FEED_PIPE, NULL, EINVAL);
  /* a damaged header after a good entry: refused, not skipped */
  {
    struct buf two = { 0 };
    struct archive *a = tar_begin(&two);
    ADD(a, .name = "one", .mode = 0644, .data = "1\n");
    ADD(a, .name = "two", .mode = 0644, .data = "2\n");
    ADD(a, .name = "three", .mode = 0644, .data = "3\n");
    tar_end(a);
    assert_memory_equal(two.data + 1024, "two", 4);
    two.data[1024 + 1] ^= 0x40;
    expect_unpack(&two, LAYER_COMPRESSION_NONE, FEED_PIPE, NULL, EINVAL);
    buf_free(&two);
  }
  /* not a tar */
  cut.len = 0;
  for (int i = 0; i < 100; i++)
    buf_append(&cut, "this is not a tar archive, just text\n", 37);
  expect_unpack(&cut, LAYER_COMPRESSION_NONE, FEED_PIPE, NULL, EINVAL);
  /* an empty gzip or zstd file is not a layer */
  expect_unpack(&empty, LAYER_COMPRESSION_GZIP, FEED_PIPE, NULL, EINVAL);
  expect_unpack(&empty, LAYER_COMPRESSION_ZSTD, FEED_FILE, NULL, EINVAL);
  /* an empty plain stream is an empty layer */
  digest_buffer("", 0, expected);
  expect_unpack(&empty, LAYER_COMPRESSION_NONE, FEED_PIPE, expected, 0);
  buf_free(&tar);
  buf_free(&gz);
  buf_free(&zst);
  buf_free(&cut);
}

/* What follows the end-of-archive blocks belongs to the diff id too. */
static void
test_trailing_bytes_in_diff_id(void **state)
{
  struct buf tar = { 0 }, gz = { 0 };
  char expected[72];
  static const char zeros[20480];

  build_tree(&tar);
  buf_append(&tar, zeros, sizeof zeros);
  buf_append(&tar, "tail", 4);
  digest_buffer(tar.data, tar.len, expected);
  gzip_buf(&tar, &gz);
  expect_unpack(&tar, LAYER_COMPRESSION_NONE, FEED_PIPE, expected, 0);
  expect_unpack(&gz, LAYER_COMPRESSION_GZIP, FEED_FILE, expected, 0);
  buf_free(&tar);
  buf_free(&gz);
}

/* A bad entry while the downloader has stalled (its end of the pipe open,
 * nothing more written): the unpacker returns at once, it does not wait
 * for the rest of the stream. */
static void
test_error_with_stalled_pipe(void **state)
{
  struct sandbox sb;
  struct buf tar = { 0 };
  struct archive *a = tar_begin(&tar);
  struct error err = ERROR_INIT;
  char diff_id[72];
  int fds[2];

  ADD(a, .name = "../x", .mode = 0644, .data = "evil\n");
  ADD(a, .name = "more", .mode = 0644, .data = "more\n");
  tar_end(a);
  sandbox_new(&sb);
  assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
  assert_int_equal(write(fds[1], tar.data, 2048), 2048);
  alarm(20);
  assert_int_equal(layer_unpack_fd(fds[0], sb.layer, LAYER_COMPRESSION_NONE, LAYER_DEFAULT_MAX_SIZE,
                                   diff_id, &err),
                   -1);
  alarm(0);
  assert_int_equal(err.code, EINVAL);
  error_clear(&err);
  close(fds[0]);
  close(fds[1]);
  sandbox_check(&sb);
  sandbox_free(&sb);
  buf_free(&tar);
}

/* ---- the unpacker as a download drives it ------------------------------ */

/* A bad entry while the writer has megabytes more to write: the writer is
 * told to stop (it would otherwise fill the ring and wait forever), and
 * finish reports the bad entry, not the stop. */
static void
test_unpacker_stops_writer_on_bad_entry(void **state)
{
  struct sandbox sb;
  struct buf tar = { 0 };
  struct archive *a = tar_begin(&tar);
  struct error err = ERROR_INIT;
  size_t big = 4 * 1024 * 1024, done = 0;
  char *data = xcalloc(1, big);
  struct layer_unpacker *u;
  char diff_id[72];
  bool refused = false;

  ADD(a, .name = "../x", .mode = 0644, .data = "evil\n");
  ADD(a, .name = "big", .mode = 0644, .data = data, .size = big);
  tar_end(a);
  sandbox_new(&sb);
  u = layer_unpacker_start(sb.layer, LAYER_COMPRESSION_NONE, LAYER_DEFAULT_MAX_SIZE, &err);
  assert_non_null(u);
  alarm(20);
  while (done < tar.len && !refused)
    {
      size_t n = tar.len - done < 16384 ? tar.len - done : 16384;
      refused = !layer_unpacker_write(u, tar.data + done, n);
      done += n;
    }
  alarm(0);
  assert_true(refused);
  assert_true(done < tar.len);
  assert_int_equal(layer_unpacker_finish(u, diff_id, &err), -1);
  if (err.code != EINVAL || strstr(error_message(&err), "../x") == NULL)
    fail_msg("finish: code %d (%s), expected EINVAL about ../x", err.code, error_message(&err));
  error_clear(&err);
  sandbox_check(&sb);
  sandbox_free(&sb);
  buf_free(&tar);
  free(data);
}

/* A download that fails halfway: abort stops the extractor and leaves no
 * thread or fd behind. */
static void
test_unpacker_abort_leaves_nothing(void **state)
{
  struct sandbox sb;
  struct buf tar = { 0 }, gz = { 0 };
  struct error err = ERROR_INIT;
  struct layer_unpacker *u;
  int threads, fds;

  build_big(&tar, 3 * 1024 * 1024);
  gzip_buf(&tar, &gz);
  sandbox_new(&sb);
  threads = proc_self_count("task");
  fds = proc_self_count("fd");
  u = layer_unpacker_start(sb.layer, LAYER_COMPRESSION_GZIP, LAYER_DEFAULT_MAX_SIZE, &err);
  assert_non_null(u);
  assert_int_equal(proc_self_count("task"), threads + 1);
  assert_true(layer_unpacker_write(u, gz.data, gz.len / 2));
  layer_unpacker_abort(u);
  assert_int_equal(proc_self_count("task"), threads);
  assert_int_equal(proc_self_count("fd"), fds);
  sandbox_check(&sb);
  sandbox_free(&sb);
  buf_free(&tar);
  buf_free(&gz);
}

/* ---- later entries replace earlier ones -------------------------------- */

static void
test_replace(void **state)
{
  struct sandbox sb;
  struct buf tar = { 0 };
  struct error err = ERROR_INIT;
  struct archive *a = tar_begin(&tar);
  cleanup_free char *f = NULL, *d = NULL, *kept = NULL, *l = NULL, *x = NULL;
  cleanup_free char *hard = NULL, *lod = NULL, *wh = NULL;
  struct stat st;

  ADD(a, .name = "f", .mode = 0644, .data = "first\n");
  ADD(a, .name = "f", .mode = 0600, .data = "second\n");
  ADD(a, .name = "d/", .mode = S_IFDIR | 0755);
  ADD(a, .name = "d/kept", .mode = 0644, .data = "kept\n");
  ADD(a, .name = "d/", .mode = S_IFDIR | 0700, .uid = 7);
  ADD(a, .name = "file-then-dir", .mode = 0644, .data = "x");
  ADD(a, .name = "file-then-dir/", .mode = S_IFDIR | 0755);
  ADD(a, .name = "dir-then-file/sub/deep", .mode = 0644, .data = "x");
  ADD(a, .name = "dir-then-file", .mode = 0644, .data = "now a file\n");
  ADD(a, .name = "l", .mode = S_IFLNK | 0777, .link = "f");
  ADD(a, .name = "l", .mode = 0644, .data = "not a link\n");
  ADD(a, .name = "x", .mode = 0644, .data = "x");
  ADD(a, .name = "x", .mode = S_IFLNK | 0777, .link = "elsewhere");
  /* each kind of node over something else */
  ADD(a, .name = "hard", .mode = S_IFDIR | 0755);
  ADD(a, .name = "hard/inside", .mode = 0644, .data = "x");
  ADD(a, .name = "hard", .hardlink = "f");
  ADD(a, .name = "pipe", .mode = 0644, .data = "x");
  ADD(a, .name = "pipe", .mode = S_IFIFO | 0620, .uid = 3);
  ADD(a, .name = "link-over-dir/", .mode = S_IFDIR | 0755);
  ADD(a, .name = "link-over-dir", .mode = S_IFLNK | 0777, .link = "f");
  ADD(a, .name = "wh", .mode = 0644, .data = "x");
  ADD(a, .name = ".wh.wh", .mode = 0644);
  tar_end(a);

  sandbox_new(&sb);
  if (unpack_tar(&sb, &tar, &err) < 0)
    fail_msg("unpack: %s", error_message(&err));
  f = layer_path(&sb, "f");
  assert_file_content(f, "second\n");
  check_node(&sb, "f", S_IFREG | 0600, 0, 0, 0);
  check_node(&sb, "d", S_IFDIR | 0700, 7, 0, 0);
  kept = layer_path(&sb, "d/kept");
  assert_file_content(kept, "kept\n");
  check_node(&sb, "file-then-dir", S_IFDIR | 0755, 0, 0, 0);
  d = layer_path(&sb, "dir-then-file");
  assert_file_content(d, "now a file\n");
  l = layer_path(&sb, "l");
  assert_int_equal(lstat(l, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  x = layer_path(&sb, "x");
  assert_int_equal(lstat(x, &st), 0);
  assert_true(S_ISLNK(st.st_mode));
  hard = layer_path(&sb, "hard");
  assert_file_content(hard, "second\n");
  assert_int_equal(lstat(hard, &st), 0);
  assert_int_equal(st.st_nlink, 2);
  check_node(&sb, "pipe", S_IFIFO | 0620, 3, 0, 0);
  lod = layer_path(&sb, "link-over-dir");
  assert_int_equal(lstat(lod, &st), 0);
  assert_true(S_ISLNK(st.st_mode));
  wh = layer_path(&sb, "wh");
  assert_int_equal(lstat(wh, &st), 0);
  assert_true(S_ISCHR(st.st_mode));
  assert_int_equal(st.st_rdev, makedev(0, 0));
  sandbox_check(&sb);
  sandbox_free(&sb);
  buf_free(&tar);
}

/* ---- whiteouts --------------------------------------------------------- */

static void
test_whiteouts(void **state)
{
  struct sandbox sb;
  struct buf tar = { 0 };
  struct error err = ERROR_INIT;
  struct archive *a = tar_begin(&tar);
  cleanup_free char *opq = NULL, *newopq = NULL, *root = NULL, *plnk = NULL;
  char value[8];

  ADD(a, .name = ".wh.gone", .mode = 0644, .uid = 33, .gid = 44);
  ADD(a, .name = "dir/.wh.gone-too", .mode = 0644);
  ADD(a, .name = "replaced", .mode = 0644, .data = "same layer\n");
  ADD(a, .name = ".wh.replaced", .mode = 0644);
  ADD(a, .name = "replaced-dir/x", .mode = 0644, .data = "x");
  ADD(a, .name = ".wh.replaced-dir", .mode = 0644);
  ADD(a, .name = "opq/", .mode = S_IFDIR | 0755);
  ADD(a, .name = "opq/.wh..wh..opq", .mode = 0644);
  ADD(a, .name = "opq/mine", .mode = 0644, .data = "mine\n");
  ADD(a, .name = "new/opq/.wh..wh..opq", .mode = 0644);
  ADD(a, .name = ".wh..wh.plnk/12345.67", .mode = 0644, .data = "aufs\n");
  ADD(a, .name = ".wh..wh.aufs", .mode = 0644);
  tar_end(a);

  sandbox_new(&sb);
  if (unpack_tar(&sb, &tar, &err) < 0)
    fail_msg("unpack: %s", error_message(&err));
  check_node(&sb, "gone", S_IFCHR, 33, 44, 0);
  check_node(&sb, "dir/gone-too", S_IFCHR, 0, 0, 0);
  check_node(&sb, "replaced", S_IFCHR, 0, 0, 0);
  check_node(&sb, "replaced-dir", S_IFCHR, 0, 0, 0);
  assert_missing_in_layer(&sb, ".wh.gone");
  assert_missing_in_layer(&sb, "dir/.wh.gone-too");
  assert_missing_in_layer(&sb, "opq/.wh..wh..opq");
  assert_missing_in_layer(&sb, ".wh..wh.plnk");
  assert_missing_in_layer(&sb, ".wh..wh.aufs");
  opq = layer_path(&sb, "opq");
  assert_int_equal(lgetxattr(opq, "trusted.overlay.opaque", value, sizeof value), 1);
  assert_int_equal(value[0], 'y');
  newopq = layer_path(&sb, "new/opq");
  assert_int_equal(lgetxattr(newopq, "trusted.overlay.opaque", value, sizeof value), 1);
  root = layer_path(&sb, "");
  assert_int_equal(lgetxattr(root, "trusted.overlay.opaque", value, sizeof value), -1);
  check_node(&sb, "opq/mine", S_IFREG | 0644, 0, 0, 0);
  assert_int_equal(rdev_in_layer(&sb, "gone"), makedev(0, 0));
  sandbox_check(&sb);
  sandbox_free(&sb);
  buf_free(&tar);

  /* ".wh." alone, ".wh.." and ".wh..." name nothing */
  for (int i = 0; i < 3; i++)
    {
      static const char *const bad[] = { ".wh.", "d/.wh..", "d/.wh..." };
      struct buf t = { 0 };
      struct archive *w = tar_begin(&t);
      ADD(w, .name = bad[i], .mode = 0644);
      tar_end(w);
      expect_unpack(&t, LAYER_COMPRESSION_NONE, FEED_PIPE, NULL, EINVAL);
      buf_free(&t);
    }
}

/* The layers as a read-only overlay: the upper layer's whiteout hides a
 * lower file, its opaque directory hides the lower directory's content. */
static void
test_overlay_mount(void **state)
{
  char root[] = "/tmp/crid-test-overlay-XXXXXX";
  cleanup_free char *lower = NULL, *upper = NULL, *merged = NULL, *options = NULL;
  struct buf t1 = { 0 }, t2 = { 0 };
  struct archive *a;
  struct error err = ERROR_INIT;
  char diff_id[72];
  struct stat st;
  cleanup_free char *p = NULL;

  a = tar_begin(&t1);
  ADD(a, .name = "a", .mode = 0644, .data = "a\n");
  ADD(a, .name = "b", .mode = 0644, .data = "b\n");
  ADD(a, .name = "d/x", .mode = 0644, .data = "x\n");
  ADD(a, .name = "d/keep", .mode = 0644, .data = "keep\n");
  ADD(a, .name = "o/y", .mode = 0644, .data = "y\n");
  tar_end(a);
  a = tar_begin(&t2);
  ADD(a, .name = ".wh.a", .mode = 0644);
  ADD(a, .name = "d/.wh.x", .mode = 0644);
  ADD(a, .name = "o/", .mode = S_IFDIR | 0755);
  ADD(a, .name = "o/.wh..wh..opq", .mode = 0644);
  ADD(a, .name = "o/z", .mode = 0644, .data = "z\n");
  ADD(a, .name = "new", .mode = 0644, .data = "new\n");
  tar_end(a);

  assert_non_null(mkdtemp(root));
  lower = xasprintf("%s/lower", root);
  upper = xasprintf("%s/upper", root);
  merged = xasprintf("%s/merged", root);
  assert_int_equal(mkdir(lower, 0755), 0);
  assert_int_equal(mkdir(upper, 0755), 0);
  assert_int_equal(mkdir(merged, 0755), 0);
  assert_int_equal(unpack_bytes(t1.data, t1.len, FEED_PIPE, lower, LAYER_COMPRESSION_NONE,
                                LAYER_DEFAULT_MAX_SIZE, diff_id, &err),
                   0);
  assert_int_equal(unpack_bytes(t2.data, t2.len, FEED_PIPE, upper, LAYER_COMPRESSION_NONE,
                                LAYER_DEFAULT_MAX_SIZE, diff_id, &err),
                   0);
  options = xasprintf("lowerdir=%s:%s", upper, lower);
  if (mount("overlay", merged, "overlay", MS_RDONLY, options) < 0)
    fail_msg("mount overlay: %s", strerror(errno));

#define MERGED(rel) (free(p), p = xasprintf("%s/%s", merged, rel))
  assert_missing(MERGED("a"));
  assert_file_content(MERGED("b"), "b\n");
  assert_missing(MERGED("d/x"));
  assert_file_content(MERGED("d/keep"), "keep\n");
  assert_missing(MERGED("o/y"));
  assert_file_content(MERGED("o/z"), "z\n");
  assert_file_content(MERGED("new"), "new\n");
  assert_int_equal(lstat(MERGED("o"), &st), 0);
  assert_true(S_ISDIR(st.st_mode));
#undef MERGED

  assert_int_equal(umount2(merged, 0), 0);
  assert_int_equal(remove_tree(root, &err), 0);
  buf_free(&t1);
  buf_free(&t2);
}

/* ---- hostile archives -------------------------------------------------- */

/* Unpacks tar into the sandbox sb; expected_code 0 means it must succeed,
 * else fail with that code.  Either way nothing outside the layer may
 * change. */
static void
hostile(struct sandbox *sb, struct buf *tar, int expected_code, const char *message_part)
{
  struct error err = ERROR_INIT;
  int r;

  r = unpack_tar(sb, tar, &err);
  if (expected_code == 0 && r < 0)
    fail_msg("unpack: %s", error_message(&err));
  if (expected_code != 0)
    {
      if (r == 0)
        fail_msg("a hostile layer was unpacked");
      if (err.code != expected_code)
        fail_msg("code %d (%s), expected %d", err.code, error_message(&err), expected_code);
      if (message_part && strstr(error_message(&err), message_part) == NULL)
        fail_msg("\"%s\" does not name \"%s\"", error_message(&err), message_part);
    }
  error_clear(&err);
  sandbox_check(sb);
  buf_free(tar);
}

static void
test_dotdot(void **state)
{
  struct sandbox sb;
  struct buf tar = { 0 };
  struct archive *a;

  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "../x", .mode = 0644, .data = "evil\n");
  tar_end(a);
  hostile(&sb, &tar, EINVAL, "../x");
  sandbox_free(&sb);

  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "a/", .mode = S_IFDIR | 0755);
  ADD(a, .name = "a/../../sentinel", .mode = 0644, .data = "evil\n");
  tar_end(a);
  hostile(&sb, &tar, EINVAL, "a/../../sentinel");
  sandbox_free(&sb);

  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "ok", .mode = 0644, .data = "ok\n");
  ADD(a, .name = "..", .mode = S_IFDIR | 0755, .uid = 1234);
  tar_end(a);
  hostile(&sb, &tar, EINVAL, "..");
  sandbox_free(&sb);
}

/* Absolute names are contained: they land below the layer root. */
static void
test_absolute(void **state)
{
  struct sandbox sb;
  struct buf tar = { 0 };
  struct archive *a;
  cleanup_free char *name = xasprintf("/etc/crid-test-abs-%d", getpid());
  cleanup_free char *inside = NULL, *inside2 = NULL, *sentinel = NULL;

  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "/abs/x", .mode = 0644, .data = "x\n");
  ADD(a, .name = name, .mode = 0644, .data = "contained\n");
  ADD(a, .name = "//sentinel", .mode = 0644, .data = "contained\n");
  tar_end(a);
  hostile(&sb, &tar, 0, NULL);
  inside = layer_path(&sb, "abs/x");
  assert_file_content(inside, "x\n");
  inside2 = layer_path(&sb, name + 1);
  assert_file_content(inside2, "contained\n");
  sentinel = layer_path(&sb, "sentinel");
  assert_file_content(sentinel, "contained\n");
  assert_missing(name);
  sandbox_free(&sb);
}

static void
test_symlink_then_child(void **state)
{
  struct sandbox sb;
  struct buf tar = { 0 };
  struct archive *a;
  cleanup_free char *etc_name = xasprintf("crid-test-escape-%d", getpid());
  cleanup_free char *etc_path = xasprintf("/etc/%s", etc_name);
  cleanup_free char *etc_entry = xasprintf("a/%s", etc_name);
  cleanup_free char *root_path = xasprintf("/%s", etc_name);

  /* a -> /etc, then a/<name> */
  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "a", .mode = S_IFLNK | 0777, .link = "/etc");
  ADD(a, .name = etc_entry, .mode = 0644, .data = "evil\n");
  tar_end(a);
  hostile(&sb, &tar, EINVAL, etc_entry);
  assert_missing(etc_path);
  sandbox_free(&sb);

  /* a -> the sandbox, then a/sentinel */
  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "a", .mode = S_IFLNK | 0777, .link = sb.root);
  ADD(a, .name = "a/sentinel", .mode = 0644, .data = "evil\n");
  tar_end(a);
  hostile(&sb, &tar, EINVAL, "a/sentinel");
  sandbox_free(&sb);

  /* a -> ../../.., then a/<name>: / from the layer */
  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "a", .mode = S_IFLNK | 0777, .link = "../../..");
  ADD(a, .name = etc_entry, .mode = 0644, .data = "evil\n");
  tar_end(a);
  hostile(&sb, &tar, EINVAL, NULL);
  assert_missing(root_path);
  sandbox_free(&sb);

  /* b -> .., then b/sentinel and a directory b/x/ */
  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "b", .mode = S_IFLNK | 0777, .link = "..");
  ADD(a, .name = "b/x/", .mode = S_IFDIR | 0755);
  tar_end(a);
  hostile(&sb, &tar, EINVAL, "b/x/");
  sandbox_free(&sb);

  /* nested: d/ then d/l -> ../.. then d/l/sentinel */
  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "d/", .mode = S_IFDIR | 0755);
  ADD(a, .name = "d/l", .mode = S_IFLNK | 0777, .link = "../..");
  ADD(a, .name = "d/l/sentinel", .mode = 0644, .data = "evil\n");
  tar_end(a);
  hostile(&sb, &tar, EINVAL, "d/l/sentinel");
  sandbox_free(&sb);
}

/* Every way of creating a node goes through the same walk: devices,
 * fifos, symlinks, hardlinks and whiteouts below a planted symlink fail. */
static void
test_symlink_then_other_kinds(void **state)
{
  for (int i = 0; i < 7; i++)
    {
      struct sandbox sb;
      struct buf tar = { 0 };
      struct archive *a;

      sandbox_new(&sb);
      a = tar_begin(&tar);
      ADD(a, .name = "a", .mode = S_IFLNK | 0777, .link = sb.root);
      ADD(a, .name = "real", .mode = 0644, .data = "real\n");
      switch (i)
        {
        case 0:
          ADD(a, .name = "a/dev", .mode = S_IFCHR | 0666, .major = 1, .minor = 3);
          break;
        case 1:
          ADD(a, .name = "a/fifo", .mode = S_IFIFO | 0666);
          break;
        case 2:
          ADD(a, .name = "a/link", .mode = S_IFLNK | 0777, .link = "x");
          break;
        case 3:
          ADD(a, .name = "a/hard", .hardlink = "real");
          break;
        case 4:
          ADD(a, .name = "a/.wh.sentinel", .mode = 0644);
          break;
        case 5:
          ADD(a, .name = "a/.wh..wh..opq", .mode = 0644);
          break;
        case 6:
          ADD(a, .name = "a/dir/", .mode = S_IFDIR | 0777);
          break;
        }
      tar_end(a);
      hostile(&sb, &tar, EINVAL, "a/");
      sandbox_free(&sb);
    }
}

static void
test_hardlinks_out(void **state)
{
  struct sandbox sb;
  struct buf tar = { 0 };
  struct archive *a;
  struct stat before, after;

  assert_int_equal(lstat("/etc/passwd", &before), 0);
  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "h", .hardlink = "../../etc/passwd");
  tar_end(a);
  hostile(&sb, &tar, EINVAL, "../../etc/passwd");
  sandbox_free(&sb);
  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "h", .hardlink = "/etc/passwd");
  tar_end(a);
  /* contained: it names etc/passwd of the layer, which does not exist */
  hostile(&sb, &tar, EINVAL, "/etc/passwd");
  sandbox_free(&sb);
  assert_int_equal(lstat("/etc/passwd", &after), 0);
  assert_int_equal(after.st_nlink, before.st_nlink);

  /* through a symlink to the sandbox */
  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "s", .mode = S_IFLNK | 0777, .link = sb.root);
  ADD(a, .name = "h", .hardlink = "s/sentinel");
  tar_end(a);
  hostile(&sb, &tar, EINVAL, "s/sentinel");
  sandbox_free(&sb);

  /* to a symlink that points at the sentinel */
  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "s", .mode = S_IFLNK | 0777, .link = sb.sentinel_path);
  ADD(a, .name = "h", .hardlink = "s");
  tar_end(a);
  hostile(&sb, &tar, EINVAL, "not a regular file");
  sandbox_free(&sb);

  /* to a directory, to a device, to nothing */
  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "d/", .mode = S_IFDIR | 0755);
  ADD(a, .name = "h", .hardlink = "d");
  tar_end(a);
  hostile(&sb, &tar, EINVAL, "not a regular file");
  sandbox_free(&sb);
  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "null", .mode = S_IFCHR | 0666, .major = 1, .minor = 3);
  ADD(a, .name = "h", .hardlink = "null");
  tar_end(a);
  hostile(&sb, &tar, EINVAL, "not a regular file");
  sandbox_free(&sb);
  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "h", .hardlink = "missing");
  tar_end(a);
  hostile(&sb, &tar, EINVAL, "missing");
  sandbox_free(&sb);
}

/* A symlink replaced by a directory (or a file) mid-archive: later entries
 * land in the new directory, inside the layer. */
static void
test_symlink_replaced(void **state)
{
  struct sandbox sb;
  struct buf tar = { 0 };
  struct archive *a;
  cleanup_free char *inside = NULL, *dir = NULL, *file = NULL;
  struct stat st;

  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "a", .mode = S_IFLNK | 0777, .link = sb.root);
  ADD(a, .name = "sentinel", .mode = S_IFLNK | 0777, .link = sb.sentinel_path);
  ADD(a, .name = "a/", .mode = S_IFDIR | 0755);
  ADD(a, .name = "a/sentinel", .mode = 0644, .data = "evil\n");
  ADD(a, .name = "sentinel", .mode = 0644, .data = "evil\n");
  tar_end(a);
  hostile(&sb, &tar, 0, NULL);
  dir = layer_path(&sb, "a");
  assert_int_equal(lstat(dir, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  inside = layer_path(&sb, "a/sentinel");
  assert_file_content(inside, "evil\n");
  file = layer_path(&sb, "sentinel");
  assert_int_equal(lstat(file, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  sandbox_free(&sb);

  /* the other way round: a directory (whose fd the extractor may hold)
   * replaced by a symlink, then a child through it */
  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "a/", .mode = S_IFDIR | 0755);
  ADD(a, .name = "a/b/c", .mode = 0644, .data = "c\n");
  ADD(a, .name = "a/b/d", .mode = 0644, .data = "d\n");
  ADD(a, .name = "a", .mode = S_IFLNK | 0777, .link = sb.root);
  ADD(a, .name = "a/sentinel", .mode = 0644, .data = "evil\n");
  tar_end(a);
  hostile(&sb, &tar, EINVAL, "a/sentinel");
  sandbox_free(&sb);

  /* a directory replaced by a file after entries below it (the
   * extractor held the subdirectory as the current parent): the next
   * entry below it fails instead of landing in the deleted directory */
  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "a/b/c/f1", .mode = 0644, .data = "1\n");
  ADD(a, .name = "a/b", .mode = 0644, .data = "file\n");
  ADD(a, .name = "a/b/c/f2", .mode = 0644, .data = "2\n");
  tar_end(a);
  hostile(&sb, &tar, EINVAL, "a/b/c/f2");
  sandbox_free(&sb);
}

static void
test_size_bomb(void **state)
{
  struct buf tar = { 0 }, gz = { 0 }, zst = { 0 };
  struct archive *a = tar_begin(&tar);
  char *zeros = xcalloc(1, 64 << 20);
  struct sandbox sb;
  struct error err = ERROR_INIT;
  char diff_id[72];

  ADD(a, .name = "bomb", .mode = 0644, .data = zeros, .size = 64 << 20);
  tar_end(a);
  free(zeros);
  gzip_buf(&tar, &gz);
  zstd_buf(&tar, &zst);
  assert_true(gz.len < 1 << 20);
  for (int i = 0; i < 3; i++)
    {
      const struct buf *in = i == 0 ? &gz : i == 1 ? &zst : &tar;
      sandbox_new(&sb);
      assert_int_equal(unpack_bytes(in->data, in->len, FEED_PIPE, sb.layer,
                                    i == 0   ? LAYER_COMPRESSION_GZIP
                                    : i == 1 ? LAYER_COMPRESSION_ZSTD
                                             : LAYER_COMPRESSION_NONE,
                                    1 << 20, diff_id, &err),
                       -1);
      assert_int_equal(err.code, EFBIG);
      error_clear(&err);
      sandbox_check(&sb);
      sandbox_free(&sb);
    }
  /* exactly at the limit is fine */
  sandbox_new(&sb);
  assert_int_equal(unpack_bytes(gz.data, gz.len, FEED_FILE, sb.layer, LAYER_COMPRESSION_GZIP,
                                tar.len, diff_id, &err),
                   0);
  sandbox_free(&sb);
  buf_free(&tar);
  buf_free(&gz);
  buf_free(&zst);
}

static void
test_absurd_names(void **state)
{
  struct sandbox sb;
  struct buf tar = { 0 };
  struct archive *a;
  char *long_path = xmalloc(5001), *long_component = xmalloc(301);
  char *long_target = xmalloc(5001);

  for (int i = 0; i < 5000; i++)
    long_path[i] = i % 2 ? '/' : 'a';
  long_path[5000] = '\0';
  memset(long_component, 'c', 300);
  long_component[300] = '\0';
  memset(long_target, 't', 5000);
  long_target[5000] = '\0';

  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = long_path, .mode = 0644, .data = "x");
  tar_end(a);
  hostile(&sb, &tar, EINVAL, "longer than");
  sandbox_free(&sb);

  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = long_component, .mode = 0644, .data = "x");
  tar_end(a);
  hostile(&sb, &tar, EINVAL, "longer than");
  sandbox_free(&sb);

  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "l", .mode = S_IFLNK | 0777, .link = long_target);
  tar_end(a);
  hostile(&sb, &tar, EINVAL, "symlink target");
  sandbox_free(&sb);

  /* the layer root as something else than a directory */
  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "./", .mode = S_IFLNK | 0777, .link = "/");
  tar_end(a);
  hostile(&sb, &tar, EINVAL, "root");
  sandbox_free(&sb);

  free(long_path);
  free(long_component);
  free(long_target);
}

/* xattrs that belong to overlay itself or to the host's policy are not
 * taken from an image. */
static void
test_xattr_filter(void **state)
{
  struct sandbox sb;
  struct buf tar = { 0 };
  struct archive *a;
  cleanup_free char *d = NULL, *f = NULL, *l = NULL;
  char value[16];

  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = "d/", .mode = S_IFDIR | 0755, .xattr = "trusted.overlay.opaque",
      .xattr_value = "y", .xattr_len = 1);
  ADD(a, .name = "f", .mode = 0644, .data = "f", .xattr = "trusted.overlay.redirect",
      .xattr_value = "/etc", .xattr_len = 4);
  ADD(a, .name = "l", .mode = S_IFLNK | 0777, .link = "f", .xattr = "trusted.crid-test",
      .xattr_value = "v", .xattr_len = 1);
  tar_end(a);
  hostile(&sb, &tar, 0, NULL);
  d = layer_path(&sb, "d");
  f = layer_path(&sb, "f");
  l = layer_path(&sb, "l");
  assert_int_equal(lgetxattr(d, "trusted.overlay.opaque", value, sizeof value), -1);
  assert_int_equal(lgetxattr(f, "trusted.overlay.redirect", value, sizeof value), -1);
  /* xattrs land on the symlink itself */
  assert_int_equal(lgetxattr(l, "trusted.crid-test", value, sizeof value), 1);
  sandbox_free(&sb);
}

static void
test_utf8_names(void **state)
{
  struct sandbox sb;
  struct buf tar = { 0 };
  struct archive *a;
  const char *name = "caf\xc3\xa9/\xe2\x98\x83"
                     "-snow";
  cleanup_free char *path = NULL;

  sandbox_new(&sb);
  a = tar_begin(&tar);
  ADD(a, .name = name, .mode = 0644, .data = "snow\n");
  tar_end(a);
  hostile(&sb, &tar, 0, NULL);
  path = layer_path(&sb, name);
  assert_file_content(path, "snow\n");
  sandbox_free(&sb);
}

/* ---- remove_tree ------------------------------------------------------- */

static void
test_remove_tree(void **state)
{
  char root[] = "/tmp/crid-test-remove-XXXXXX";
  struct error err = ERROR_INIT;
  cleanup_free char *tree = NULL, *outside = NULL, *outside_file = NULL, *p = NULL;
  cleanup_free char *mnt = NULL;
  int fd;

  assert_non_null(mkdtemp(root));
  tree = xasprintf("%s/tree", root);
  outside = xasprintf("%s/outside", root);
  outside_file = xasprintf("%s/outside/file", root);
  assert_int_equal(mkdir(outside, 0755), 0);
  assert_int_equal(close(open(outside_file, O_WRONLY | O_CREAT, 0644)), 0);

  /* symlinks to the outside, a read-only directory, a fifo */
  assert_int_equal(mkdir(tree, 0755), 0);
  p = xasprintf("%s/sub", tree);
  assert_int_equal(mkdir(p, 0555), 0);
  free(p);
  p = xasprintf("%s/sub/to-dir", tree);
  assert_int_equal(symlink(outside, p), 0);
  free(p);
  p = xasprintf("%s/to-file", tree);
  assert_int_equal(symlink(outside_file, p), 0);
  free(p);
  p = xasprintf("%s/fifo", tree);
  assert_int_equal(mkfifo(p, 0600), 0);
  assert_int_equal(remove_tree(tree, &err), 0);
  assert_missing(tree);
  assert_int_equal(access(outside_file, F_OK), 0);

  /* missing: fine; a symlink at the top: only the link goes */
  assert_int_equal(remove_tree(tree, &err), 0);
  assert_int_equal(symlink(outside, tree), 0);
  assert_int_equal(remove_tree(tree, &err), 0);
  assert_missing(tree);
  assert_int_equal(access(outside_file, F_OK), 0);

  /* 3000 levels deep: more than the fds a process may have open */
  assert_int_equal(mkdir(tree, 0755), 0);
  fd = open(tree, O_RDONLY | O_DIRECTORY);
  for (int i = 0; i < 3000; i++)
    {
      int next;
      assert_int_equal(mkdirat(fd, "d", 0755), 0);
      if (i % 100 == 0)
        close(openat(fd, "f", O_WRONLY | O_CREAT, 0644));
      next = openat(fd, "d", O_RDONLY | O_DIRECTORY);
      assert_true(next >= 0);
      close(fd);
      fd = next;
    }
  close(fd);
  assert_int_equal(remove_tree(tree, &err), 0);
  assert_missing(tree);

  /* a mount point inside is refused, its content untouched */
  mnt = xasprintf("%s/a/mnt", tree);
  assert_int_equal(mkdir_p(mnt, 0755, &err), 0);
  assert_int_equal(mount("tmpfs", mnt, "tmpfs", 0, "size=1m"), 0);
  free(p);
  p = xasprintf("%s/precious", mnt);
  assert_int_equal(close(open(p, O_WRONLY | O_CREAT, 0644)), 0);
  assert_int_equal(remove_tree(tree, &err), -1);
  assert_int_equal(err.code, EBUSY);
  error_clear(&err);
  assert_int_equal(access(p, F_OK), 0);
  assert_int_equal(remove_tree(mnt, &err), -1);
  assert_int_equal(err.code, EBUSY);
  error_clear(&err);
  assert_int_equal(umount2(mnt, 0), 0);
  assert_int_equal(remove_tree(tree, &err), 0);

  assert_int_equal(remove_tree(root, &err), 0);
  assert_missing(root);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_tree_gzip_pipe),
    cmocka_unit_test(test_tree_gzip_file),
    cmocka_unit_test(test_tree_zstd_pipe),
    cmocka_unit_test(test_tree_zstd_file),
    cmocka_unit_test(test_tree_plain_pipe),
    cmocka_unit_test(test_tree_plain_file),
    cmocka_unit_test(test_big_file_streams),
    cmocka_unit_test(test_sniffing),
    cmocka_unit_test(test_gzip_members),
    cmocka_unit_test(test_bad_streams),
    cmocka_unit_test(test_trailing_bytes_in_diff_id),
    cmocka_unit_test(test_error_with_stalled_pipe),
    cmocka_unit_test(test_unpacker_stops_writer_on_bad_entry),
    cmocka_unit_test(test_unpacker_abort_leaves_nothing),
    cmocka_unit_test(test_replace),
    cmocka_unit_test(test_whiteouts),
    cmocka_unit_test(test_overlay_mount),
    cmocka_unit_test(test_dotdot),
    cmocka_unit_test(test_absolute),
    cmocka_unit_test(test_symlink_then_child),
    cmocka_unit_test(test_symlink_then_other_kinds),
    cmocka_unit_test(test_hardlinks_out),
    cmocka_unit_test(test_symlink_replaced),
    cmocka_unit_test(test_size_bomb),
    cmocka_unit_test(test_absurd_names),
    cmocka_unit_test(test_xattr_filter),
    cmocka_unit_test(test_utf8_names),
    cmocka_unit_test(test_remove_tree),
  };

  if (geteuid() != 0)
    {
      printf("test_layer: skipped, needs root (chown, mknod, trusted xattrs, mounts)\n");
      return 0;
    }
  /* the unpacker may stop reading a pipe early; the writer sees EPIPE */
  signal(SIGPIPE, SIG_IGN);
  umask(022);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
