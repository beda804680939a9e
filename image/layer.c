/* image/layer: unpacking one layer tar stream into its own directory.
 *
 * The bytes flow producer -> decompressor (image/gzip: ISA-L or zlib;
 * libzstd; straight) -> sha256 and size bound -> a small ring of buffers ->
 * libarchive's tar reader -> our own extraction.  The producer is the
 * thread that has the bytes: a download's, which decompresses and hashes
 * them as they arrive (no pipe and no copy in between), or the reader of a
 * file; extraction runs in a thread of the unpacker, so the file system
 * work overlaps with decompression.  The tar reader takes the buffers
 * through its read callback, and file data mostly goes from them to
 * write() without a copy.
 *
 * Extraction does not use archive_write_disk: every node is created
 * relative to a directory fd that was reached from the layer root one
 * component at a time with O_NOFOLLOW|O_DIRECTORY, so no symlink is ever
 * followed, whatever the archive planted earlier, and `..` is refused.
 *
 * Built into crid-pull.so (libarchive, the decompressors); the daemon
 * calls it through image/pull_plugin.c. */
#include "image/layer.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/trash.h"
#include "common/util.h"
#include "image/digest.h"
#include "image/gzip.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zstd.h>

/* A layer from a file descriptor is read in chunks of this size (a pipe
 * hands over at most its capacity per read anyway; a file gives it all). */
#define INPUT_BUFFER_SIZE (256 * 1024)
/* Uncompressed chunks handed to the tar reader: large enough that few calls
 * cross the library and the thread boundaries and file data is written in
 * big blocks. */
#define OUTPUT_BUFFER_SIZE (256 * 1024)
/* How many uncompressed chunks the producer may be ahead. */
#define RING_SLOTS 4
/* An entry name or link target must fit in a Linux path. */
#define ENTRY_NAME_MAX (PATH_MAX - 1)
/* The kernel's own limit on one xattr value. */
#define XATTR_VALUE_MAX 65536
/* zstd frames may ask for a window of at most 128 MiB (the zstd CLI's own
 * default limit): this bounds the decoder's memory per pull. */
#define ZSTD_WINDOW_LOG_MAX 27
/* Directory times are set after the whole archive (creating entries inside
 * a directory changes its mtime).  Beyond this many directories they are
 * set at once instead, so a hostile archive cannot make the list grow
 * without bound; the times may then be off, nothing worse. */
#define DEFERRED_DIRS_MAX 1000000

#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_META_PREFIX ".wh..wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"
#define OVERLAY_OPAQUE_XATTR "trusted.overlay.opaque"

/* ---- the uncompressed stream ------------------------------------------ */

/* The producer's side: what the writer of the layer's bytes runs, in its
 * own thread (a download's, or the reader of a file). */
struct stream
{
  enum layer_compression declared, codec;
  /* The first bytes, kept until they tell the compression apart. */
  unsigned char magic[4];
  size_t magic_len;
  bool sniffed;
  struct gzip_decoder *gzip;
  ZSTD_DStream *zstd;
  /* The last zstd frame is complete: the end of the input here is a clean
   * end, anywhere else the layer was truncated (gzip's decoder knows this
   * itself). */
  bool frame_complete;
  /* The decoder filled the output and may hold more of it. */
  bool pending;
  uint64_t total, max_size;
  /* Why producing data failed; it explains libarchive's failure.  Written
   * by the producer until it ends the stream, read by the extractor
   * after. */
  struct error err;
};

static const char *
compression_name(enum layer_compression c)
{
  switch (c)
    {
    case LAYER_COMPRESSION_GZIP:
      return "gzip";
    case LAYER_COMPRESSION_ZSTD:
      return "zstd";
    default:
      return "uncompressed";
    }
}

/* The magic bytes decide when they name a compression: registries and
 * old tools label compressed layers as plain tar (containerd and Docker
 * sniff too).  A layer declared compressed that does not start like one is
 * refused: its manifest is wrong. */
static int
stream_pick_codec(struct stream *s)
{
  static const unsigned char gzip_magic[] = { 0x1f, 0x8b };
  static const unsigned char zstd_magic[] = { 0x28, 0xb5, 0x2f, 0xfd };

  if (s->magic_len >= sizeof gzip_magic && memcmp(s->magic, gzip_magic, sizeof gzip_magic) == 0)
    s->codec = LAYER_COMPRESSION_GZIP;
  else if (s->magic_len >= sizeof zstd_magic
           && memcmp(s->magic, zstd_magic, sizeof zstd_magic) == 0)
    s->codec = LAYER_COMPRESSION_ZSTD;
  else if (s->declared != LAYER_COMPRESSION_NONE)
    return error_set(&s->err, EINVAL, "layer declared %s does not start with %s magic bytes",
                     compression_name(s->declared), compression_name(s->declared));
  else
    s->codec = LAYER_COMPRESSION_NONE;
  if (s->codec != s->declared)
    log_debug("layer declared %s is %s", compression_name(s->declared), compression_name(s->codec));
  s->sniffed = true;
  if (s->codec == LAYER_COMPRESSION_GZIP)
    {
      s->gzip = gzip_decoder_new(GZIP_DECODER_FASTEST, &s->err);
      if (s->gzip == NULL)
        return -1;
    }
  else if (s->codec == LAYER_COMPRESSION_ZSTD)
    {
      s->zstd = ZSTD_createDStream();
      if (s->zstd == NULL)
        return error_set(&s->err, ENOMEM, "zstd: cannot create the decoder");
      if (ZSTD_isError(ZSTD_DCtx_setParameter(s->zstd, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX)))
        return error_set(&s->err, EINVAL, "zstd: cannot limit the window size");
    }
  return 0;
}

/* Decodes what it can of in[0..len) into out[0..room).  The decoders use
 * all the input unless the output fills up (then s->pending). */
static int
stream_decode(struct stream *s, const unsigned char *in, size_t len, size_t *consumed,
              unsigned char *out, size_t room, size_t *produced)
{
  switch (s->codec)
    {
    case LAYER_COMPRESSION_GZIP:
      if (gzip_decoder_run(s->gzip, in, len, consumed, out, room, produced, &s->err) < 0)
        return -1;
      s->pending = *produced == room;
      return 0;
    case LAYER_COMPRESSION_ZSTD:
      {
        ZSTD_inBuffer zin = { in, len, 0 };
        ZSTD_outBuffer zout = { out, room, 0 };
        size_t r = ZSTD_decompressStream(s->zstd, &zout, &zin);

        if (ZSTD_isError(r))
          return error_set(&s->err, EINVAL, "zstd: %s", ZSTD_getErrorName(r));
        *consumed = zin.pos;
        *produced = zout.pos;
        /* zstd itself moves on to the frames that follow */
        s->frame_complete = r == 0;
        s->pending = r != 0 && zout.pos == room;
        return 0;
      }
    default:
      *consumed = *produced = len < room ? len : room;
      memcpy(out, in, *produced);
      s->pending = false;
      return 0;
    }
}

/* Every uncompressed byte is counted here, once. */
static int
stream_account(struct stream *s, size_t n)
{
  s->total += n;
  if (s->total > s->max_size)
    return error_set(&s->err, EFBIG, "layer is larger than %llu bytes uncompressed",
                     (unsigned long long)s->max_size);
  return 0;
}

/* The input ended: it must end where the compression says it may. */
static int
stream_check_end(struct stream *s)
{
  if (s->codec == LAYER_COMPRESSION_GZIP && !gzip_decoder_at_member_end(s->gzip))
    return error_set(&s->err, EINVAL, "gzip: unexpected end of data");
  if (s->codec == LAYER_COMPRESSION_ZSTD && !s->frame_complete)
    return error_set(&s->err, EINVAL, "zstd: unexpected end of data");
  return 0;
}

static void
stream_free(struct stream *s)
{
  gzip_decoder_free(s->gzip);
  ZSTD_freeDStream(s->zstd);
  error_clear(&s->err);
}

/* ---- the ring between producer and extractor ------------------------- */

/* Slots first .. first+filled-1 (mod RING_SLOTS) hold data; the consumer
 * may hold slot first (handed), the producer fills slot first+filled
 * (it may take several writes to). */
struct ring
{
  pthread_mutex_t lock;
  pthread_cond_t cond;
  unsigned char *buffers[RING_SLOTS];
  size_t lengths[RING_SLOTS];
  size_t first, filled;
  bool handed;
  bool finished; /* the producer is done: end of stream, or s->err */
  bool stop;     /* the extractor is gone: the producer stops */
  struct stream *s;
  /* The diff id: every byte is hashed as the extractor takes it, so the
   * hashing is on the extractor's side of the work, not the producer's
   * (which decompresses), and the two threads of a layer weigh about the
   * same. */
  struct digester *digest;
};

static void
ring_init(struct ring *r, struct stream *s)
{
  r->s = s;
  r->digest = digester_new();
  for (int i = 0; i < RING_SLOTS; i++)
    r->buffers[i] = xmalloc(OUTPUT_BUFFER_SIZE);
  pthread_mutex_init(&r->lock, NULL);
  pthread_cond_init(&r->cond, NULL);
}

static void
ring_destroy(struct ring *r)
{
  for (int i = 0; i < RING_SLOTS; i++)
    free(r->buffers[i]);
  digester_free(r->digest);
  pthread_mutex_destroy(&r->lock);
  pthread_cond_destroy(&r->cond);
}

/* The next chunk for the tar reader; 0 at the end, -1 when the producer
 * failed (s->err says why).  The previous chunk goes back to the producer:
 * libarchive keeps a callback's buffer only until its next call. */
static ssize_t
ring_take(struct ring *r, const void **buf)
{
  ssize_t n = 0;

  pthread_mutex_lock(&r->lock);
  if (r->handed)
    {
      r->first = (r->first + 1) % RING_SLOTS;
      r->filled--;
      r->handed = false;
      pthread_cond_broadcast(&r->cond);
    }
  while (r->filled == 0 && !r->finished)
    pthread_cond_wait(&r->cond, &r->lock);
  if (r->filled > 0)
    {
      r->handed = true;
      *buf = r->buffers[r->first];
      n = r->lengths[r->first];
    }
  else if (r->s->err.code != 0)
    n = -1;
  pthread_mutex_unlock(&r->lock);
  /* handed: the producer leaves the slot alone until the next call */
  if (n > 0)
    digester_update(r->digest, *buf, n);
  return n;
}

/* Whether the producer stopped on an error (then s->err is final). */
static bool
ring_failed(struct ring *r)
{
  bool failed;

  pthread_mutex_lock(&r->lock);
  failed = r->finished && r->s->err.code != 0;
  pthread_mutex_unlock(&r->lock);
  return failed;
}

static la_ssize_t
archive_read_cb(struct archive *a, void *data, const void **buf)
{
  struct ring *r = data;
  ssize_t n = ring_take(r, buf);

  if (n < 0)
    {
      archive_set_error(a, r->s->err.code, "%s", error_message(&r->s->err));
      return -1;
    }
  return n;
}

/* ---- safe walking ------------------------------------------------------ */

struct dir_time
{
  char *path;
  struct timespec times[2];
};

struct extract
{
  int root_fd;
  struct archive *ar;
  struct ring *ring;
  uint64_t max_size;
  /* the parent directory of the previous entry: archives list the files
   * of one directory together, so most entries reuse it */
  char *cached_path;
  int cached_fd;
  struct dir_time *dirs;
  size_t n_dirs, dirs_allocated;
};

/* Opens the directory name in dir_fd, never through a symlink.  With
 * create, a missing directory is made (0755 root:root, as tar and Docker
 * make the parents an archive does not list). */
static int
open_child_dir(int dir_fd, const char *name, bool create)
{
  int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

  if (fd >= 0 || errno != ENOENT || !create)
    return fd;
  if (mkdirat(dir_fd, name, 0755) < 0 && errno != EEXIST)
    return -1;
  fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  /* the umask must not decide the mode */
  if (fd >= 0 && fchmod(fd, 0755) < 0)
    {
      int saved = errno;
      close(fd);
      errno = saved;
      return -1;
    }
  return fd;
}

/* Opens the directory at path (clean, relative, "" for the root) below
 * root_fd one component at a time.  A symlink or a non-directory on the way
 * is an error (EINVAL), so nothing the archive planted can lead out.
 *
 * An existing path is first opened in one openat2() call that refuses the
 * same things (a symlink anywhere on the way, a way out of root_fd): a
 * layer changes directory thousands of times, and the walk costs two
 * calls per component.  The walk remains for what openat2() does not do
 * (create what is missing, say which component is in the way) and for
 * kernels without it. */
static int
walk_dir(int root_fd, const char *path, bool create, const char *entry, struct error *err)
{
  cleanup_close int fd = -1;
  const char *p = path;

  if (*path)
    {
      fd = openat2_resolve(root_fd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                           RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
      if (fd >= 0)
        return steal_fd(&fd);
    }
  fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
  if (fd < 0)
    return error_set_errno(err, errno, "dup");
  while (*p)
    {
      const char *end = strchrnul(p, '/');
      char name[NAME_MAX + 1];
      int next;

      /* paths here are clean: components are 1..NAME_MAX bytes */
      memcpy(name, p, end - p);
      name[end - p] = '\0';
      next = open_child_dir(fd, name, create);
      if (next < 0)
        {
          int e = errno;
          if (e == ELOOP || e == ENOTDIR)
            return error_set(err, EINVAL,
                             "layer entry \"%.256s\": \"%.*s\" is not a directory (a symlink or "
                             "file is in the way)",
                             entry, (int)(end - path), path);
          return error_set_errno(err, e, "layer entry \"%.256s\": open \"%.*s\"", entry,
                                 (int)(end - path), path);
        }
      close(fd);
      fd = next;
      p = *end ? end + 1 : end;
    }
  return steal_fd(&fd);
}

static void
cache_drop(struct extract *x)
{
  if (x->cached_fd >= 0)
    close(x->cached_fd);
  x->cached_fd = -1;
  free(x->cached_path);
  x->cached_path = NULL;
}

/* The parent directory of an entry, created if missing; the fd is
 * borrowed from the cache. */
static int
parent_dir(struct extract *x, const char *path, const char *entry, struct error *err)
{
  int fd;

  if (x->cached_path && strcmp(x->cached_path, path) == 0)
    return x->cached_fd;
  cache_drop(x);
  fd = walk_dir(x->root_fd, path, true, entry, err);
  if (fd < 0)
    return -1;
  x->cached_fd = fd;
  x->cached_path = xstrdup(path);
  return fd;
}

/* The directory at removed is going away: a cached fd at or below it
 * would point into a deleted tree. */
static void
cache_forget(struct extract *x, const char *removed)
{
  size_t len = strlen(removed);

  if (x->cached_path && strncmp(x->cached_path, removed, len) == 0
      && (x->cached_path[len] == '\0' || x->cached_path[len] == '/'))
    cache_drop(x);
}

/* ---- entries ----------------------------------------------------------- */

/* Normalises an entry name: leading "/" and "./", empty and "."
 * components go (absolute names are relative to the layer root, as every
 * runtime reads them); ".." is refused (Docker refuses it too) and so are
 * absurd lengths.  "" is the layer root. */
static int
clean_entry_path(const char *raw, char **out, struct error *err)
{
  size_t len = strlen(raw);
  cleanup_free char *clean = NULL;
  char *p;

  if (len > ENTRY_NAME_MAX)
    return error_set(err, EINVAL, "layer entry \"%.64s...\": name longer than %d bytes", raw,
                     ENTRY_NAME_MAX);
  clean = xmalloc(len + 1);
  p = clean;
  for (const char *s = raw; *s;)
    {
      const char *end;
      size_t n;

      if (*s == '/')
        {
          s++;
          continue;
        }
      end = strchrnul(s, '/');
      n = end - s;
      if (n == 2 && s[0] == '.' && s[1] == '.')
        return error_set(err, EINVAL, "layer entry \"%.256s\": \"..\" in the name", raw);
      if (n > NAME_MAX)
        return error_set(err, EINVAL, "layer entry \"%.256s\": a component is longer than %d bytes",
                         raw, NAME_MAX);
      if (!(n == 1 && s[0] == '.'))
        {
          if (p != clean)
            *p++ = '/';
          memcpy(p, s, n);
          p += n;
        }
      s = end;
    }
  *p = '\0';
  *out = steal_pointer(&clean);
  return 0;
}

/* Splits a clean path in place into its parent ("" at the root) and last
 * component. */
static void
split_path(char *path, const char **parent, const char **base)
{
  char *slash = strrchr(path, '/');

  if (slash)
    {
      *slash = '\0';
      *parent = path;
      *base = slash + 1;
    }
  else
    {
      *parent = "";
      *base = path;
    }
}

/* AUFS kept its own bookkeeping below ".wh..wh."-prefixed directories;
 * Docker and containerd skip those entries, and so do we. */
static bool
is_aufs_metadata(const char *path)
{
  for (const char *p = path; *p;)
    {
      if (str_has_prefix(p, WHITEOUT_META_PREFIX))
        return strcmp(p, WHITEOUT_OPAQUE) != 0;
      p = strchrnul(p, '/');
      if (*p)
        p++;
    }
  return false;
}

/* xattrs an image may not set: overlay's own (an image could redirect
 * lookups or fake whiteouts in the merged view), and the SELinux label,
 * which is the host policy's to choose. */
static bool
xattr_allowed(const char *name)
{
  return !str_has_prefix(name, "trusted.overlay.") && !str_has_prefix(name, "user.overlay.")
         && strcmp(name, "security.selinux") != 0;
}

/* A node just created: fd is open on it for regular files and
 * directories, else -1 and the node is name in parent_fd. */
struct node
{
  int fd;
  int parent_fd;
  const char *name;
  bool symlink;
};

/* chown first: it clears setuid/setgid bits and file capabilities, so the
 * mode and the xattrs come after it. */
static int
set_owner_mode(const struct node *n, struct archive_entry *e, const char *entry, struct error *err)
{
  uid_t uid = archive_entry_uid(e);
  gid_t gid = archive_entry_gid(e);
  mode_t mode = archive_entry_perm(e) & 07777;
  int r;

  r = n->fd >= 0 ? fchown(n->fd, uid, gid)
                 : fchownat(n->parent_fd, n->name, uid, gid, AT_SYMLINK_NOFOLLOW);
  if (r < 0)
    return error_set_errno(err, errno, "layer entry \"%.256s\": chown", entry);
  if (n->symlink)
    return 0;
  r = n->fd >= 0 ? fchmod(n->fd, mode) : fchmodat(n->parent_fd, n->name, mode, AT_SYMLINK_NOFOLLOW);
  if (r < 0)
    return error_set_errno(err, errno, "layer entry \"%.256s\": chmod", entry);
  return 0;
}

static int
set_xattrs(const struct node *n, struct archive_entry *e, const char *entry, struct error *err)
{
  char path[64 + NAME_MAX];
  const char *name;
  const void *value;
  size_t size;

  if (archive_entry_xattr_reset(e) == 0)
    return 0;
  /* there is no lsetxattrat(): the parent's fd in /proc names the node,
   * and the l-variant does not follow it when it is a symlink */
  snprintf(path, sizeof path, "/proc/self/fd/%d/%s", n->parent_fd, n->name);
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK)
    {
      int r;

      if (name == NULL || !xattr_allowed(name))
        {
          log_debug("layer entry \"%.256s\": xattr %.256s not kept", entry, name ? name : "");
          continue;
        }
      if (size > XATTR_VALUE_MAX)
        return error_set(err, EINVAL, "layer entry \"%.256s\": xattr %.256s is too large", entry,
                         name);
      r = n->fd >= 0 ? fsetxattr(n->fd, name, value, size, 0)
                     : lsetxattr(path, name, value, size, 0);
      if (r == 0)
        continue;
      /* a file system without xattrs, or user.* on a symlink or device,
       * which the kernel refuses: the rest of the layer is still good */
      if (errno == ENOTSUP || (errno == EPERM && str_has_prefix(name, "user.")))
        {
          log_warn("layer entry \"%.256s\": xattr %.256s not kept: %s", entry, name,
                   strerror(errno));
          continue;
        }
      return error_set_errno(err, errno, "layer entry \"%.256s\": set xattr %.256s", entry, name);
    }
  return 0;
}

static void
entry_times(struct archive_entry *e, struct timespec ts[2])
{
  ts[1].tv_sec = archive_entry_mtime(e);
  ts[1].tv_nsec = archive_entry_mtime_nsec(e);
  if (!archive_entry_mtime_is_set(e))
    ts[1].tv_nsec = UTIME_OMIT;
  else if (ts[1].tv_nsec < 0 || ts[1].tv_nsec > 999999999)
    ts[1].tv_nsec = 0;
  ts[0] = ts[1];
  if (archive_entry_atime_is_set(e))
    {
      ts[0].tv_sec = archive_entry_atime(e);
      ts[0].tv_nsec = archive_entry_atime_nsec(e);
      if (ts[0].tv_nsec < 0 || ts[0].tv_nsec > 999999999)
        ts[0].tv_nsec = 0;
    }
}

static int
set_times(const struct node *n, struct archive_entry *e, const char *entry, struct error *err)
{
  struct timespec ts[2];
  int r;

  entry_times(e, ts);
  r = n->fd >= 0 ? futimens(n->fd, ts) : utimensat(n->parent_fd, n->name, ts, AT_SYMLINK_NOFOLLOW);
  if (r < 0)
    return error_set_errno(err, errno, "layer entry \"%.256s\": set times", entry);
  return 0;
}

static int
set_metadata(const struct node *n, struct archive_entry *e, const char *entry, bool times,
             struct error *err)
{
  if (set_owner_mode(n, e, entry, err) < 0 || set_xattrs(n, e, entry, err) < 0)
    return -1;
  return times ? set_times(n, e, entry, err) : 0;
}

/* Makes room for a new node at name (path is its clean path): a later
 * entry replaces an earlier one, as tar does, except that a directory
 * over a directory merges (*kept_dir). */
static int
remove_existing(struct extract *x, int parent_fd, const char *path, const char *name, bool keep_dir,
                bool *kept_dir, const char *entry, struct error *err)
{
  cleanup_close int fd = -1;
  struct stat st;

  if (kept_dir)
    *kept_dir = false;
  if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    {
      if (errno == ENOENT)
        return 0;
      return error_set_errno(err, errno, "layer entry \"%.256s\": stat", entry);
    }
  if (!S_ISDIR(st.st_mode))
    {
      if (unlinkat(parent_fd, name, 0) < 0)
        return error_set_errno(err, errno, "layer entry \"%.256s\": replace", entry);
      return 0;
    }
  if (keep_dir)
    {
      *kept_dir = true;
      return 0;
    }
  cache_forget(x, path);
  fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return error_set_errno(err, errno, "layer entry \"%.256s\": replace", entry);
  if (remove_dir_contents(fd, path, err) < 0)
    return error_wrap(err, "layer entry \"%.256s\"", entry);
  if (unlinkat(parent_fd, name, AT_REMOVEDIR) < 0)
    return error_set_errno(err, errno, "layer entry \"%.256s\": replace", entry);
  return 0;
}

/* How a node is made at name in parent_fd: fails with EEXIST when
 * something is there already.  Returns an fd (a regular file) or 0. */
struct maker
{
  int (*make)(const struct maker *m, int parent_fd, const char *name);
  const char *what; /* for the error message */
  const char *target;
  int target_dir_fd;
  mode_t type;
  dev_t dev;
};

static int
make_file(const struct maker *m, int parent_fd, const char *name)
{
  return openat(parent_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

static int
make_symlink(const struct maker *m, int parent_fd, const char *name)
{
  return symlinkat(m->target, parent_fd, name);
}

static int
make_node(const struct maker *m, int parent_fd, const char *name)
{
  return mknodat(parent_fd, name, m->type, m->dev);
}

static int
make_hardlink(const struct maker *m, int parent_fd, const char *name)
{
  return linkat(m->target_dir_fd, m->target, parent_fd, name, 0);
}

/* Makes the node; when something is at name already (an earlier entry: a
 * later one replaces it, as tar does) it goes and the node is made again.
 * Trying first saves a stat per entry, and names are rarely taken. */
static int
make_replacing(struct extract *x, const struct maker *m, int parent_fd, const char *path,
               const char *name, const char *entry, struct error *err)
{
  int r = m->make(m, parent_fd, name);

  if (r < 0 && errno == EEXIST)
    {
      if (remove_existing(x, parent_fd, path, name, false, NULL, entry, err) < 0)
        return -1;
      r = m->make(m, parent_fd, name);
    }
  if (r < 0)
    return error_set_errno(err, errno, "layer entry \"%.256s\": %s", entry, m->what);
  return r;
}

/* libarchive failed: the producer's own error explains it when there is
 * one (EFBIG, a corrupt gzip), else the archive is damaged. */
static int
archive_failure(struct extract *x, const char *entry, struct error *err)
{
  const char *msg = archive_error_string(x->ar);

  if (ring_failed(x->ring))
    {
      error_move(err, &x->ring->s->err);
      return -1;
    }
  if (entry)
    return error_set(err, EINVAL, "layer entry \"%.256s\": %s", entry, msg ? msg : "bad archive");
  return error_set(err, EINVAL, "layer: %s", msg ? msg : "bad archive");
}

static int
pwrite_all(int fd, const char *buf, size_t size, off_t offset)
{
  while (size > 0)
    {
      ssize_t n = pwrite(fd, buf, size, offset);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return -1;
        }
      buf += n;
      size -= n;
      offset += n;
    }
  return 0;
}

static int
write_file_data(struct extract *x, struct archive_entry *e, int fd, const char *entry,
                struct error *err)
{
  int64_t end = 0;

  for (;;)
    {
      const void *buf;
      size_t size;
      la_int64_t offset;
      int r = archive_read_data_block(x->ar, &buf, &size, &offset);

      if (r == ARCHIVE_EOF)
        break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
        return archive_failure(x, entry, err);
      if (offset < 0 || (uint64_t)offset > x->max_size)
        return error_set(err, EINVAL, "layer entry \"%.256s\": bad data offset", entry);
      if (size > 0 && pwrite_all(fd, buf, size, offset) < 0)
        return error_set_errno(err, errno, "layer entry \"%.256s\": write", entry);
      if (offset + (int64_t)size > end)
        end = offset + size;
    }
  /* a sparse file may end in a hole; its size is bounded like the data */
  if (archive_entry_size_is_set(e) && archive_entry_size(e) > end)
    {
      if ((uint64_t)archive_entry_size(e) > x->max_size)
        return error_set(err, EFBIG, "layer entry \"%.256s\": larger than the layer limit", entry);
      if (ftruncate(fd, archive_entry_size(e)) < 0)
        return error_set_errno(err, errno, "layer entry \"%.256s\": truncate", entry);
    }
  return 0;
}

static int
extract_file(struct extract *x, struct archive_entry *e, int parent_fd, const char *path,
             const char *name, const char *entry, struct error *err)
{
  const struct maker maker = { .make = make_file, .what = "create" };
  cleanup_close int fd = make_replacing(x, &maker, parent_fd, path, name, entry, err);

  if (fd < 0)
    return -1;
  if (write_file_data(x, e, fd, entry, err) < 0)
    return -1;
  return set_metadata(&(struct node){ fd, parent_fd, name, false }, e, entry, true, err);
}

static void
defer_dir_times(struct extract *x, const char *path, int fd, struct archive_entry *e)
{
  struct dir_time *d;

  if (x->n_dirs == DEFERRED_DIRS_MAX)
    {
      struct timespec ts[2];
      entry_times(e, ts);
      futimens(fd, ts);
      return;
    }
  if (x->n_dirs == x->dirs_allocated)
    {
      x->dirs_allocated = x->dirs_allocated ? x->dirs_allocated * 2 : 64;
      x->dirs = xrealloc(x->dirs, x->dirs_allocated * sizeof *x->dirs);
    }
  d = &x->dirs[x->n_dirs++];
  d->path = xstrdup(path);
  entry_times(e, d->times);
}

static int
extract_dir(struct extract *x, struct archive_entry *e, int parent_fd, const char *path,
            const char *name, const char *entry, struct error *err)
{
  cleanup_close int fd = -1;
  bool exists = false;
  int r = mkdirat(parent_fd, name, 0700);

  /* something there: a directory stays (the two merge), the rest goes */
  if (r < 0 && errno == EEXIST)
    {
      if (remove_existing(x, parent_fd, path, name, true, &exists, entry, err) < 0)
        return -1;
      r = exists ? 0 : mkdirat(parent_fd, name, 0700);
    }
  if (r < 0)
    return error_set_errno(err, errno, "layer entry \"%.256s\": mkdir", entry);
  fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return error_set_errno(err, errno, "layer entry \"%.256s\": open", entry);
  if (set_metadata(&(struct node){ fd, parent_fd, name, false }, e, entry, false, err) < 0)
    return -1;
  defer_dir_times(x, path, fd, e);
  return 0;
}

static int
extract_symlink(struct extract *x, struct archive_entry *e, int parent_fd, const char *path,
                const char *name, const char *entry, struct error *err)
{
  const char *target = archive_entry_symlink(e);
  const struct maker maker = { .make = make_symlink, .what = "symlink", .target = target };

  /* the target is never resolved here: it means something only inside
   * the container */
  if (target == NULL || *target == '\0' || strlen(target) > ENTRY_NAME_MAX)
    return error_set(err, EINVAL, "layer entry \"%.256s\": bad symlink target", entry);
  if (make_replacing(x, &maker, parent_fd, path, name, entry, err) < 0)
    return -1;
  return set_metadata(&(struct node){ -1, parent_fd, name, true }, e, entry, true, err);
}

static int
extract_special(struct extract *x, struct archive_entry *e, int parent_fd, const char *path,
                const char *name, const char *entry, struct error *err)
{
  mode_t type = archive_entry_filetype(e);
  struct maker maker = { .make = make_node, .what = "mknod", .type = type | 0600 };

  if (type == AE_IFCHR || type == AE_IFBLK)
    maker.dev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
  if (make_replacing(x, &maker, parent_fd, path, name, entry, err) < 0)
    return -1;
  return set_metadata(&(struct node){ -1, parent_fd, name, false }, e, entry, true, err);
}

/* A hardlink's target must already be a regular file of this layer,
 * reached without symlinks: a link can then never give the container a
 * host file, nor a device. */
static int
extract_hardlink(struct extract *x, struct archive_entry *e, int parent_fd, const char *path,
                 const char *name, const char *entry, struct error *err)
{
  const char *raw_target = archive_entry_hardlink(e);
  cleanup_free char *target = NULL;
  cleanup_close int target_fd = -1;
  const char *target_parent, *target_base;
  char what[300];
  struct maker maker = { .make = make_hardlink, .what = what };
  struct stat st;

  if (clean_entry_path(raw_target, &target, err) < 0)
    return error_wrap(err, "layer entry \"%.256s\": hardlink target", entry);
  if (strcmp(target, path) == 0)
    return 0; /* a link to itself: the file is already there */
  if (*target == '\0')
    return error_set(err, EINVAL, "layer entry \"%.256s\": hardlink to the layer root", entry);
  split_path(target, &target_parent, &target_base);
  target_fd = walk_dir(x->root_fd, target_parent, false, entry, err);
  if (target_fd < 0)
    {
      /* a target that is not in the layer is the archive's fault */
      if (err->code == ENOENT)
        err->code = EINVAL;
      return error_wrap(err, "hardlink target \"%.256s\"", raw_target);
    }
  if (fstatat(target_fd, target_base, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return error_set(err, EINVAL, "layer entry \"%.256s\": hardlink target \"%.256s\": %s", entry,
                     raw_target, strerror(errno));
  if (!S_ISREG(st.st_mode))
    return error_set(err, EINVAL,
                     "layer entry \"%.256s\": hardlink target \"%.256s\" is not a regular file",
                     entry, raw_target);
  snprintf(what, sizeof what, "link to \"%.256s\"", raw_target);
  maker.target = target_base;
  maker.target_dir_fd = target_fd;
  return make_replacing(x, &maker, parent_fd, path, name, entry, err) < 0 ? -1 : 0;
}

/* Overlay whiteouts, for a layer that is one lowerdir among others:
 * ".wh.NAME" becomes a 0/0 character device NAME, ".wh..wh..opq" the
 * opaque xattr on its directory.  Neither materialises as a file. */
static int
extract_whiteout(struct extract *x, struct archive_entry *e, const char *parent, const char *base,
                 const char *entry, struct error *err)
{
  const char *name = base + strlen(WHITEOUT_PREFIX);
  const struct maker whiteout
      = { .make = make_node, .what = "mknod whiteout", .type = S_IFCHR, .dev = makedev(0, 0) };
  cleanup_free char *path = NULL;
  int parent_fd;

  if (strcmp(base, WHITEOUT_OPAQUE) == 0)
    {
      parent_fd = parent_dir(x, parent, entry, err);
      if (parent_fd < 0)
        return -1;
      if (fsetxattr(parent_fd, OVERLAY_OPAQUE_XATTR, "y", 1, 0) < 0)
        return error_set_errno(err, errno, "layer entry \"%.256s\": set %s", entry,
                               OVERLAY_OPAQUE_XATTR);
      return 0;
    }
  if (*name == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return error_set(err, EINVAL, "layer entry \"%.256s\": invalid whiteout", entry);
  parent_fd = parent_dir(x, parent, entry, err);
  if (parent_fd < 0)
    return -1;
  path = *parent ? xasprintf("%s/%s", parent, name) : xstrdup(name);
  if (make_replacing(x, &whiteout, parent_fd, path, name, entry, err) < 0)
    return -1;
  if (fchownat(parent_fd, name, archive_entry_uid(e), archive_entry_gid(e), AT_SYMLINK_NOFOLLOW)
      < 0)
    return error_set_errno(err, errno, "layer entry \"%.256s\": chown", entry);
  return 0;
}

/* Checks what does not depend on the node's type. */
static int
check_entry(struct archive_entry *e, const char *entry, struct error *err)
{
  la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);

  /* (uid_t)-1 means "unchanged" to chown */
  if (uid < 0 || uid >= (la_int64_t)UINT32_MAX || gid < 0 || gid >= (la_int64_t)UINT32_MAX)
    return error_set(err, EINVAL, "layer entry \"%.256s\": bad owner %lld:%lld", entry,
                     (long long)uid, (long long)gid);
  return 0;
}

static int
extract_entry(struct extract *x, struct archive_entry *e, struct error *err)
{
  const char *entry = archive_entry_pathname(e);
  cleanup_free char *path = NULL;
  cleanup_free char *split = NULL;
  const char *parent, *base;
  int parent_fd;

  if (entry == NULL)
    return error_set(err, EINVAL, "layer entry without a name");
  if (clean_entry_path(entry, &path, err) < 0 || check_entry(e, entry, err) < 0)
    return -1;
  if (*path == '\0')
    {
      /* "./": the layer root is ours, its entry is skipped as Docker does */
      if (archive_entry_filetype(e) != AE_IFDIR || archive_entry_hardlink(e))
        return error_set(err, EINVAL, "layer entry \"%.256s\": the root is not a directory", entry);
      return 0;
    }
  if (is_aufs_metadata(path))
    {
      log_debug("layer entry \"%.256s\": AUFS metadata skipped", entry);
      return 0;
    }
  split = xstrdup(path);
  split_path(split, &parent, &base);
  if (str_has_prefix(base, WHITEOUT_PREFIX))
    return extract_whiteout(x, e, parent, base, entry, err);

  parent_fd = parent_dir(x, parent, entry, err);
  if (parent_fd < 0)
    return -1;
  if (archive_entry_hardlink(e))
    return extract_hardlink(x, e, parent_fd, path, base, entry, err);
  switch (archive_entry_filetype(e))
    {
    case AE_IFREG:
      return extract_file(x, e, parent_fd, path, base, entry, err);
    case AE_IFDIR:
      return extract_dir(x, e, parent_fd, path, base, entry, err);
    case AE_IFLNK:
      return extract_symlink(x, e, parent_fd, path, base, entry, err);
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
      return extract_special(x, e, parent_fd, path, base, entry, err);
    default:
      return error_set(err, EINVAL, "layer entry \"%.256s\": unsupported type %#o", entry,
                       (unsigned)archive_entry_filetype(e));
    }
}

/* Directory times last: nothing is created any more.  A directory a later
 * entry removed or replaced is skipped. */
static void
apply_dir_times(struct extract *x)
{
  for (size_t i = 0; i < x->n_dirs; i++)
    {
      struct error ignored = ERROR_INIT;
      int fd = walk_dir(x->root_fd, x->dirs[i].path, false, x->dirs[i].path, &ignored);

      error_clear(&ignored);
      if (fd < 0)
        continue;
      if (futimens(fd, x->dirs[i].times) < 0)
        log_debug("layer directory %.256s: set times: %s", x->dirs[i].path, strerror(errno));
      close(fd);
    }
}

static void
extract_free(struct extract *x)
{
  cache_drop(x);
  for (size_t i = 0; i < x->n_dirs; i++)
    free(x->dirs[i].path);
  free(x->dirs);
  if (x->root_fd >= 0)
    close(x->root_fd);
  if (x->ar)
    archive_read_free(x->ar);
}

/* Reads what follows the tar's end (padding, usually): it belongs to the
 * diff id, and the producer must see its bytes consumed. */
static int
ring_drain(struct ring *r, struct error *err)
{
  const void *buf;
  ssize_t n;

  while ((n = ring_take(r, &buf)) > 0)
    ;
  if (n < 0)
    {
      error_move(err, &r->s->err);
      return -1;
    }
  return 0;
}

static int
unpack(struct extract *x, struct error *err)
{
  struct archive_entry *e;

  archive_read_support_format_tar(x->ar);
  /* a zero-byte stream is an empty layer */
  archive_read_support_format_empty(x->ar);
  if (archive_read_open(x->ar, x->ring, NULL, archive_read_cb, NULL) != ARCHIVE_OK)
    return archive_failure(x, NULL, err);
  for (;;)
    {
      int r = archive_read_next_header(x->ar, &e);

      if (r == ARCHIVE_EOF)
        break;
      /* ARCHIVE_RETRY is a damaged header that a tar tool would skip
       * ahead of: a damaged layer is refused whole */
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
        return archive_failure(x, NULL, err);
      if (r == ARCHIVE_WARN)
        log_debug("layer entry \"%.256s\": %s", archive_entry_pathname(e) ?: "",
                  archive_error_string(x->ar) ?: "warning");
      if (extract_entry(x, e, err) < 0)
        return -1;
    }
  if (ring_drain(x->ring, err) < 0)
    return -1;
  apply_dir_times(x);
  return 0;
}

/* ---- the unpacker ------------------------------------------------------ */

struct layer_unpacker
{
  struct stream s;
  struct ring ring;
  struct extract x;
  pthread_t thread;
  /* Signalled when the extractor thread ends, whatever the outcome: a
   * producer reading a pipe that stalled stops waiting for it. */
  int ended_fd;
  /* The extractor's outcome, final once it has ended. */
  int ret;
  struct error err;
  /* The producer's side: the slot it fills, and whether it is done. */
  bool have_slot;
  size_t slot, slot_len;
  bool failed;
  bool ended;
};

static void *
extractor_main(void *arg)
{
  struct layer_unpacker *u = arg;
  struct ring *r = &u->ring;
  uint64_t one = 1;

  u->ret = unpack(&u->x, &u->err);
  /* a producer waiting for a free slot stops */
  pthread_mutex_lock(&r->lock);
  r->stop = true;
  pthread_cond_broadcast(&r->cond);
  pthread_mutex_unlock(&r->lock);
  if (write(u->ended_fd, &one, sizeof one) < 0)
    abort(); /* an eventfd far from overflow cannot refuse */
  return NULL;
}

static void
unpacker_free(struct layer_unpacker *u)
{
  extract_free(&u->x);
  ring_destroy(&u->ring);
  stream_free(&u->s);
  error_clear(&u->err);
  if (u->ended_fd >= 0)
    close(u->ended_fd);
  free(u);
}

struct layer_unpacker *
layer_unpacker_start(const char *dir, enum layer_compression compression, uint64_t max_size,
                     struct error *err)
{
  struct layer_unpacker *u = xcalloc(1, sizeof *u);
  int e;

  u->s.declared = compression;
  u->s.max_size = max_size;
  ring_init(&u->ring, &u->s);
  u->x = (struct extract){ .root_fd = -1, .cached_fd = -1, .ring = &u->ring, .max_size = max_size };
  u->ended_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (u->ended_fd < 0)
    {
      error_set_errno(err, errno, "eventfd");
      goto fail;
    }
  u->x.root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (u->x.root_fd < 0)
    {
      error_set_errno(err, errno, "open %s", dir);
      goto fail;
    }
  u->x.ar = archive_read_new();
  if (u->x.ar == NULL)
    abort();
  e = pthread_create(&u->thread, NULL, extractor_main, u);
  if (e != 0)
    {
      error_set_errno(err, e, "start the layer extractor");
      goto fail;
    }
  pthread_setname_np(u->thread, "layer-unpack");
  return u;
fail:
  unpacker_free(u);
  return NULL;
}

/* A slot to fill: the one being filled, else the next free one (waits for
 * it); false when the extractor has stopped. */
static bool
producer_slot(struct layer_unpacker *u)
{
  struct ring *r = &u->ring;
  bool ok;

  if (u->have_slot)
    return true;
  pthread_mutex_lock(&r->lock);
  while (!r->stop && r->filled == RING_SLOTS)
    pthread_cond_wait(&r->cond, &r->lock);
  ok = !r->stop;
  if (ok)
    u->slot = (r->first + r->filled) % RING_SLOTS;
  pthread_mutex_unlock(&r->lock);
  u->have_slot = ok;
  u->slot_len = 0;
  return ok;
}

/* Hands the slot being filled to the extractor, unless it is empty. */
static void
producer_publish(struct layer_unpacker *u)
{
  struct ring *r = &u->ring;

  if (!u->have_slot || u->slot_len == 0)
    return;
  pthread_mutex_lock(&r->lock);
  r->lengths[u->slot] = u->slot_len;
  r->filled++;
  pthread_cond_broadcast(&r->cond);
  pthread_mutex_unlock(&r->lock);
  u->have_slot = false;
}

/* No more data: the end of the stream, or its failure when s->err is set
 * (which then belongs to the extractor). */
static void
producer_end(struct layer_unpacker *u)
{
  struct ring *r = &u->ring;

  if (u->ended)
    return;
  u->ended = true;
  pthread_mutex_lock(&r->lock);
  r->finished = true;
  pthread_cond_broadcast(&r->cond);
  pthread_mutex_unlock(&r->lock);
}

/* The producer cannot go on: s->err says why when it is the stream. */
static bool
producer_fail(struct layer_unpacker *u)
{
  u->failed = true;
  producer_end(u);
  return false;
}

/* Decodes in[0..len) into the ring (len 0: what the decoder still holds);
 * false on failure. */
static bool
decode_into_ring(struct layer_unpacker *u, const unsigned char *in, size_t len)
{
  struct stream *s = &u->s;

  do
    {
      size_t room, consumed, produced;
      unsigned char *out;

      if (!producer_slot(u))
        return producer_fail(u);
      out = u->ring.buffers[u->slot] + u->slot_len;
      room = OUTPUT_BUFFER_SIZE - u->slot_len;
      if (stream_decode(s, in, len, &consumed, out, room, &produced) < 0
          || stream_account(s, produced) < 0)
        return producer_fail(u);
      in += consumed;
      len -= consumed;
      u->slot_len += produced;
      if (u->slot_len == OUTPUT_BUFFER_SIZE)
        producer_publish(u);
      else if (len > 0 && consumed == 0 && produced == 0)
        {
          /* the decoders promise never to come here */
          error_set(&s->err, EINVAL, "layer: the %s decoder is stuck", compression_name(s->codec));
          return producer_fail(u);
        }
    }
  while (len > 0 || s->pending);
  return true;
}

/* Keeps the first bytes until they tell the compression, then decodes
 * them; at_end: the input ended before there were enough. */
static bool
sniff_then_decode(struct layer_unpacker *u, const unsigned char **data, size_t *len, bool at_end)
{
  struct stream *s = &u->s;
  size_t take = sizeof s->magic - s->magic_len;

  if (take > *len)
    take = *len;
  memcpy(s->magic + s->magic_len, *data, take);
  s->magic_len += take;
  *data += take;
  *len -= take;
  if (s->magic_len < sizeof s->magic && !at_end)
    return true;
  if (stream_pick_codec(s) < 0)
    return producer_fail(u);
  return decode_into_ring(u, s->magic, s->magic_len);
}

bool
layer_unpacker_write(struct layer_unpacker *u, const void *data, size_t len)
{
  const unsigned char *p = data;

  if (u->failed)
    return false;
  if (!u->s.sniffed && !sniff_then_decode(u, &p, &len, false))
    return false;
  if (len == 0 || !u->s.sniffed)
    return true;
  return decode_into_ring(u, p, len);
}

/* Waits for the extractor; its outcome is the unpacker's. */
static int
unpacker_join(struct layer_unpacker *u, char diff_id[72], struct error *err)
{
  int ret;

  producer_end(u);
  pthread_join(u->thread, NULL);
  ret = u->ret;
  if (ret < 0)
    error_move(err, &u->err);
  else if (diff_id)
    {
      digester_finish(u->ring.digest, diff_id);
      u->ring.digest = NULL;
    }
  unpacker_free(u);
  return ret;
}

int
layer_unpacker_finish(struct layer_unpacker *u, char diff_id[72], struct error *err)
{
  const unsigned char *none = NULL;
  size_t zero = 0;

  if (!u->failed && !u->s.sniffed)
    sniff_then_decode(u, &none, &zero, true);
  if (!u->failed && u->s.pending)
    decode_into_ring(u, NULL, 0);
  if (!u->failed && stream_check_end(&u->s) < 0)
    producer_fail(u);
  if (!u->failed)
    producer_publish(u);
  return unpacker_join(u, diff_id, err);
}

void
layer_unpacker_abort(struct layer_unpacker *u)
{
  struct error ignored = ERROR_INIT;

  if (u == NULL)
    return;
  if (!u->ended && u->s.err.code == 0)
    error_set(&u->s.err, ECANCELED, "layer: its input ended early");
  producer_fail(u);
  unpacker_join(u, NULL, &ignored);
  error_clear(&ignored);
}

/* ---- layers from a file descriptor ------------------------------------ */

/* read(2) that waits on a pipe or a non-blocking fd together with the end
 * of the extractor, and retries on EINTR: 0 at EOF or when the extractor
 * has ended (it failed: it ends only after the stream does). */
static ssize_t
read_input(int fd, bool pollable, int ended_fd, void *buffer, size_t size, struct error *err)
{
  for (;;)
    {
      ssize_t n;

      if (pollable)
        {
          struct pollfd p[2]
              = { { .fd = fd, .events = POLLIN }, { .fd = ended_fd, .events = POLLIN } };
          if (poll(p, 2, -1) < 0)
            {
              if (errno == EINTR)
                continue;
              return error_set_errno(err, errno, "read layer: poll");
            }
          if (p[1].revents)
            return 0;
        }
      n = read(fd, buffer, size);
      if (n >= 0)
        return n;
      if (errno == EINTR || errno == EAGAIN)
        continue;
      return error_set_errno(err, errno, "read layer");
    }
}

int
layer_extract_fd(int fd, const char *dir, enum layer_compression compression, uint64_t max_size,
                 char diff_id[72], struct error *err)
{
  struct layer_unpacker *u = layer_unpacker_start(dir, compression, max_size, err);
  cleanup_free unsigned char *buffer = NULL;
  struct stat st;
  bool pollable;

  if (u == NULL)
    return -1;
  /* a regular file never blocks; anything else might, forever */
  pollable = fstat(fd, &st) < 0 || !S_ISREG(st.st_mode);
  buffer = xmalloc(INPUT_BUFFER_SIZE);
  for (;;)
    {
      ssize_t n;

      /* what is decoded goes to the extractor before a read that may
       * wait: the writer of a pipe may wait for the extractor */
      if (pollable && !u->failed)
        producer_publish(u);
      n = read_input(fd, pollable, u->ended_fd, buffer, INPUT_BUFFER_SIZE, &u->s.err);

      if (n < 0)
        producer_fail(u);
      if (n <= 0 || !layer_unpacker_write(u, buffer, n))
        break;
    }
  return layer_unpacker_finish(u, diff_id, err);
}
