/* The numeric user of a container's process from the CRI security
 * context, the image's User and the image's own /etc/passwd and
 * /etc/group, read without ever leaving the rootfs; see user.h. */
#include "pod/user.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* As the kernel's path walk: at most 40 symlinks in one lookup. */
#define MAX_SYMLINKS 40
#define MAX_WALK_DEPTH 256

/* --- opening a file inside a root ---------------------------------------- */

static int
open_with_openat2(int root_fd, const char *path)
{
  struct open_how how = {
    .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };

  return (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
}

/* The directories of the walk so far; dirs[0] is the root (not ours). */
struct walk
{
  int root_fd;
  int dirs[MAX_WALK_DEPTH];
  size_t depth;
};

static int
walk_top(const struct walk *w)
{
  return w->depth == 0 ? w->root_fd : w->dirs[w->depth];
}

static void
walk_pop(struct walk *w)
{
  if (w->depth > 0)
    close(w->dirs[w->depth--]);
}

static void
walk_reset(struct walk *w)
{
  while (w->depth > 0)
    walk_pop(w);
}

/* A symlink's target followed by what was left of the path. */
static char *
splice_link(int link_fd, const char *rest)
{
  char target[PATH_MAX];
  ssize_t n = readlinkat(link_fd, "", target, sizeof target - 1);

  if (n <= 0)
    {
      if (n == 0)
        errno = ENOENT; /* the kernel resolves an empty link to nothing */
      return NULL;
    }
  target[n] = '\0';
  return xasprintf("%s/%s", target, rest);
}

/* RESOLVE_IN_ROOT by hand: one component at a time with O_NOFOLLOW, a
 * symlink's target spliced into the rest of the path (an absolute one
 * restarting at the root), ".." popping a directory but never the
 * root.  Each step opens relative to an fd already inside the root, so
 * nothing resolves through the host. */
static int
open_by_walk(int root_fd, const char *path)
{
  struct walk w = { .root_fd = root_fd };
  cleanup_free char *rest = xstrdup(path);
  int symlinks = 0;
  int result = -1;

  for (;;)
    {
      char *p = rest, *component, *next;
      struct stat st;
      int fd, saved;

      while (*p == '/')
        p++;
      if (*p == '\0')
        {
          errno = EISDIR; /* the path names a directory, not a file */
          break;
        }
      component = p;
      next = strchr(p, '/');
      if (next)
        *next++ = '\0';
      else
        next = p + strlen(p);
      if (strcmp(component, ".") == 0 || strcmp(component, "..") == 0)
        {
          if (component[1] == '.')
            walk_pop(&w);
          memmove(rest, next, strlen(next) + 1);
          continue;
        }

      fd = openat(walk_top(&w), component, O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        break;
      if (fstat(fd, &st) < 0)
        {
          saved = errno;
          close(fd);
          errno = saved;
          break;
        }
      if (S_ISLNK(st.st_mode))
        {
          char *spliced;
          if (++symlinks > MAX_SYMLINKS)
            {
              close(fd);
              errno = ELOOP;
              break;
            }
          spliced = splice_link(fd, next);
          saved = errno;
          close(fd);
          if (spliced == NULL)
            {
              errno = saved;
              break;
            }
          if (spliced[0] == '/')
            walk_reset(&w);
          free(rest);
          rest = spliced;
          continue;
        }
      while (*next == '/')
        next++;
      if (*next == '\0')
        {
          /* The last component: reopened for reading, still without
           * following, in case it was swapped for a link meanwhile. */
          close(fd);
          result = openat(walk_top(&w), component,
                          O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
          break;
        }
      if (!S_ISDIR(st.st_mode) || w.depth + 1 >= MAX_WALK_DEPTH)
        {
          close(fd);
          errno = S_ISDIR(st.st_mode) ? ENAMETOOLONG : ENOTDIR;
          break;
        }
      w.dirs[++w.depth] = fd;
      memmove(rest, next, strlen(next) + 1);
    }
  {
    int saved = errno;
    walk_reset(&w);
    errno = saved;
  }
  return result;
}

int
user_open_in_root(int root_fd, const char *path, bool walk, struct error *err)
{
  int fd = -1;

  if (!walk)
    {
      /* EAGAIN: a rename or mount raced the lookup and the kernel could
       * not vouch for "..", worth a few more tries. */
      for (int attempt = 0; attempt < 8; attempt++)
        {
          fd = open_with_openat2(root_fd, path);
          if (fd >= 0 || errno != EAGAIN)
            break;
        }
      /* ENOSYS: an old kernel; EPERM: a seccomp filter around crid that
       * does not know openat2.  Both are what the walk is for. */
      if (fd < 0 && (errno == ENOSYS || errno == EPERM))
        walk = true;
    }
  if (walk)
    fd = open_by_walk(root_fd, path);
  if (fd < 0)
    {
      int saved = errno;
      error_set_errno(err, saved, "open %s in the container's root", path);
      errno = saved;
    }
  return fd;
}

/* The text of /etc/<name> of the rootfs in *text, NULL when the image
 * has no such regular file (then names cannot be resolved, numbers
 * still can). */
static int
read_etc_file(int root_fd, const char *path, char **text, struct error *err)
{
  cleanup_close int fd = -1;
  cleanup_free char *buffer = NULL;
  struct stat st;

  *text = NULL;
  if (root_fd < 0)
    return 0;
  fd = user_open_in_root(root_fd, path, false, err);
  if (fd < 0)
    {
      if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == EISDIR)
        {
          error_clear(err);
          return 0;
        }
      return -1;
    }
  if (fstat(fd, &st) < 0)
    return error_set_errno(err, errno, "stat %s of the image", path);
  if (!S_ISREG(st.st_mode))
    {
      log_warn("%s of the image is not a regular file: ignored", path);
      return 0;
    }
  if (read_fd(fd, USER_FILE_MAX_SIZE, &buffer, NULL, err) < 0)
    {
      /* A file too big is bad input of the image, not a failure here. */
      if (err->code == EFBIG)
        err->code = EINVAL;
      return error_wrap(err, "%s of the image", path);
    }
  *text = steal_pointer(&buffer);
  return 0;
}

/* --- /etc/passwd and /etc/group ------------------------------------------- */

/* A uid or gid: decimal, at most 4294967294 ((uid_t)-1 means "no
 * change" to the kernel). */
static bool
parse_id(const char *s, uint32_t *out)
{
  uint64_t value = 0;

  if (s == NULL || *s == '\0' || strlen(s) > 10)
    return false;
  for (const char *p = s; *p; p++)
    {
      if (*p < '0' || *p > '9')
        return false;
      value = value * 10 + (uint64_t)(*p - '0');
    }
  if (value >= UINT32_MAX)
    return false;
  *out = (uint32_t)value;
  return true;
}

/* Splits a line into at most max ':'-separated fields in place. */
static size_t
split_fields(char *line, char **fields, size_t max)
{
  size_t n = 0;

  while (line && n < max)
    fields[n++] = strsep(&line, ":");
  return n;
}

/* Calls fn on each line of text (a copy, split into fields) until fn
 * returns true.  Comment and NIS ("+", "-") lines are skipped, as libc
 * does for files. */
static bool
each_line(const char *text, size_t n_fields, bool (*fn)(char **fields, size_t n, void *data),
          void *data)
{
  const char *line = text;

  while (line && *line)
    {
      const char *end = strchr(line, '\n');
      size_t len = end ? (size_t)(end - line) : strlen(line);
      cleanup_free char *copy = xstrndup(line, len);
      char *fields[8];
      size_t n;

      line = end ? end + 1 : NULL;
      if (copy[0] == '#' || copy[0] == '+' || copy[0] == '-' || copy[0] == '\0')
        continue;
      n = split_fields(copy, fields, n_fields);
      if (fn(fields, n, data))
        return true;
    }
  return false;
}

struct passwd_query
{
  const char *name; /* by name, or */
  uint32_t uid;     /* by uid when name is NULL */
  bool found;
  uint32_t found_uid, found_gid;
  char *found_name;
};

static bool
passwd_match(char **f, size_t n, void *data)
{
  struct passwd_query *q = data;
  uint32_t uid, gid;

  /* name:password:uid:gid:gecos:home:shell; entries with bad numbers are
   * skipped like libc's parser does. */
  if (n < 4 || !parse_id(f[2], &uid) || !parse_id(f[3], &gid))
    return false;
  if (q->name ? strcmp(f[0], q->name) != 0 : uid != q->uid)
    return false;
  q->found = true;
  q->found_uid = uid;
  q->found_gid = gid;
  q->found_name = xstrdup(f[0]);
  return true;
}

struct group_query
{
  const char *name;
  bool found;
  uint32_t gid;
};

static bool
group_match(char **f, size_t n, void *data)
{
  struct group_query *q = data;
  uint32_t gid;

  if (n < 3 || !parse_id(f[2], &gid) || strcmp(f[0], q->name) != 0)
    return false;
  q->found = true;
  q->gid = gid;
  return true;
}

struct gid_list
{
  uint32_t *items;
  size_t n, allocated;
};

static int
gid_list_add(struct gid_list *list, uint32_t gid, struct error *err)
{
  for (size_t i = 0; i < list->n; i++)
    if (list->items[i] == gid)
      return 0;
  if (list->n >= USER_MAX_GROUPS)
    return error_set(err, EINVAL, "more than %d groups", USER_MAX_GROUPS);
  if (list->n == list->allocated)
    {
      list->allocated = list->allocated ? list->allocated * 2 : 8;
      list->items = xrealloc(list->items, list->allocated * sizeof *list->items);
    }
  list->items[list->n++] = gid;
  return 0;
}

struct membership_query
{
  const char *user;
  struct gid_list *gids;
  struct error *err;
  int ret;
};

static bool
membership_match(char **f, size_t n, void *data)
{
  struct membership_query *q = data;
  char *members;
  uint32_t gid;

  if (n < 4 || !parse_id(f[2], &gid))
    return false;
  members = f[3];
  for (char *m = strsep(&members, ","); m; m = strsep(&members, ","))
    {
      /* Tolerate "a, b" as libc does not, but as image authors write. */
      while (*m == ' ')
        m++;
      if (strcmp(m, q->user) != 0)
        continue;
      if (gid_list_add(q->gids, gid, q->err) < 0)
        {
          q->ret = -1;
          return true;
        }
      break;
    }
  return false;
}

/* --- resolution ---------------------------------------------------------- */

/* The files, read once and only when a lookup needs them. */
struct image_files
{
  int root_fd;
  bool passwd_read, group_read;
  char *passwd, *group;
};

static int
need_passwd(struct image_files *files, struct error *err)
{
  if (files->passwd_read)
    return 0;
  files->passwd_read = true;
  return read_etc_file(files->root_fd, "etc/passwd", &files->passwd, err);
}

static int
need_group(struct image_files *files, struct error *err)
{
  if (files->group_read)
    return 0;
  files->group_read = true;
  return read_etc_file(files->root_fd, "etc/group", &files->group, err);
}

static int
check_id(const Runtime__V1__Int64Value *value, const char *what, uint32_t *out, struct error *err)
{
  if (value->value < 0 || value->value >= (int64_t)UINT32_MAX)
    return error_set(err, EINVAL, "%s %" PRId64 " out of range", what, (int64_t)value->value);
  *out = (uint32_t)value->value;
  return 0;
}

/* The user part of a spec: a uid (with or without a passwd entry) or a
 * name that must have one. */
static int
resolve_user_part(struct image_files *files, const char *spec, struct user_resolved *out,
                  struct error *err)
{
  struct passwd_query q = { 0 };
  bool numeric = parse_id(spec, &q.uid);

  if (!numeric)
    q.name = spec;
  if (need_passwd(files, err) < 0)
    return -1;
  if (files->passwd)
    each_line(files->passwd, 7, passwd_match, &q);
  if (!q.found && !numeric)
    return error_set(err, EINVAL, "unable to find user %s: no matching entries in passwd file",
                     spec);
  out->user.uid = numeric ? q.uid : q.found_uid;
  out->user.gid = q.found ? q.found_gid : 0;
  free(out->name);
  out->name = q.found_name;
  return 0;
}

static int
resolve_group_part(struct image_files *files, const char *spec, uint32_t *gid, struct error *err)
{
  struct group_query q = { .name = spec };

  if (parse_id(spec, gid))
    return 0;
  if (need_group(files, err) < 0)
    return -1;
  if (files->group)
    each_line(files->group, 4, group_match, &q);
  if (!q.found)
    return error_set(err, EINVAL, "unable to find group %s: no matching entries in group file",
                     spec);
  *gid = q.gid;
  return 0;
}

/* Which user and group strings to resolve, from the request. */
static int
pick_specs(const struct user_request *req, char **user_spec, char **group_spec, struct error *err)
{
  const char *image = req->image_user ? req->image_user : "";
  const char *colon;

  *user_spec = NULL;
  *group_spec = NULL;
  if (req->run_as_user)
    return 0; /* numeric, taken by the caller */
  if (req->run_as_username && req->run_as_username[0])
    {
      *user_spec = xstrdup(req->run_as_username);
      return 0;
    }
  if (req->run_as_group)
    return error_set(err, EINVAL, "user group %" PRId64 " is specified without user or username",
                     (int64_t)req->run_as_group->value);
  colon = strchr(image, ':');
  *user_spec = colon ? xstrndup(image, (size_t)(colon - image)) : xstrdup(image);
  if (colon)
    *group_spec = xstrdup(colon + 1);
  if ((*user_spec)[0] == '\0')
    {
      free(*user_spec);
      *user_spec = xstrdup("0");
    }
  if (*group_spec && (*group_spec)[0] == '\0')
    {
      free(*group_spec);
      *group_spec = NULL;
    }
  return 0;
}

static int
collect_gids(struct image_files *files, const struct user_request *req, struct user_resolved *out,
             struct error *err)
{
  struct gid_list list = { 0 };

  if (gid_list_add(&list, out->user.gid, err) < 0)
    goto fail;
  if (!req->strict_groups && out->name)
    {
      struct membership_query q = { .user = out->name, .gids = &list, .err = err };
      if (need_group(files, err) < 0)
        goto fail;
      if (files->group)
        each_line(files->group, 4, membership_match, &q);
      if (q.ret < 0)
        goto fail;
    }
  for (size_t i = 0; i < req->n_supplemental_groups; i++)
    {
      int64_t gid = req->supplemental_groups[i];
      if (gid < 0 || gid >= (int64_t)UINT32_MAX)
        {
          error_set(err, EINVAL, "supplemental group %" PRId64 " out of range", gid);
          goto fail;
        }
      if (gid_list_add(&list, (uint32_t)gid, err) < 0)
        goto fail;
    }
  out->gids = list.items;
  out->user.additional_gids = list.items;
  out->user.n_additional_gids = list.n;
  return 0;
fail:
  free(list.items);
  return -1;
}

static int
resolve(struct image_files *files, const struct user_request *req, struct user_resolved *out,
        struct error *err)
{
  cleanup_free char *user_spec = NULL;
  cleanup_free char *group_spec = NULL;

  if (pick_specs(req, &user_spec, &group_spec, err) < 0)
    return -1;
  if (req->run_as_user)
    {
      cleanup_free char *uid = NULL;
      if (check_id(req->run_as_user, "run_as_user", &out->user.uid, err) < 0)
        return -1;
      uid = xasprintf("%" PRIu32, out->user.uid);
      if (resolve_user_part(files, uid, out, err) < 0)
        return -1;
    }
  else if (resolve_user_part(files, user_spec, out, err) < 0)
    return -1;
  if (group_spec && resolve_group_part(files, group_spec, &out->user.gid, err) < 0)
    return -1;
  if (req->run_as_group && check_id(req->run_as_group, "run_as_group", &out->user.gid, err) < 0)
    return -1;
  if (req->run_as_non_root && out->user.uid == 0)
    return error_set(err, EINVAL, "container's runAsNonRoot and image will run as root");
  return collect_gids(files, req, out, err);
}

int
user_resolve(const char *rootfs, const struct user_request *req, struct user_resolved *out,
             struct error *err)
{
  struct image_files files = { .root_fd = -1 };
  int ret;

  memset(out, 0, sizeof *out);
  if (rootfs)
    {
      files.root_fd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (files.root_fd < 0)
        return error_set_errno(err, errno, "open rootfs %s", rootfs);
    }
  ret = resolve(&files, req, out, err);
  if (files.root_fd >= 0)
    close(files.root_fd);
  free(files.passwd);
  free(files.group);
  return ret;
}

void
user_resolved_clear(struct user_resolved *resolved)
{
  free(resolved->gids);
  free(resolved->name);
  memset(resolved, 0, sizeof *resolved);
}

void
user_request_for_container(const Runtime__V1__LinuxContainerSecurityContext *sc,
                           const char *image_user, struct user_request *out)
{
  memset(out, 0, sizeof *out);
  out->image_user = image_user;
  if (sc == NULL)
    return;
  out->run_as_user = sc->run_as_user;
  out->run_as_username = sc->run_as_username;
  out->run_as_group = sc->run_as_group;
  out->supplemental_groups = sc->supplemental_groups;
  out->n_supplemental_groups = sc->n_supplemental_groups;
  out->strict_groups
      = sc->supplemental_groups_policy == RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
}

void
user_request_for_sandbox(const Runtime__V1__LinuxSandboxSecurityContext *sc,
                         struct user_request *out)
{
  memset(out, 0, sizeof *out);
  if (sc == NULL)
    return;
  out->run_as_user = sc->run_as_user;
  out->run_as_group = sc->run_as_group;
  out->supplemental_groups = sc->supplemental_groups;
  out->n_supplemental_groups = sc->n_supplemental_groups;
  out->strict_groups
      = sc->supplemental_groups_policy == RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
}

void
user_image_split(const char *user, bool *has_uid, int64_t *uid, char **username)
{
  const char *colon;
  cleanup_free char *part = NULL;
  uint32_t id;

  *has_uid = false;
  *uid = 0;
  *username = NULL;
  if (user == NULL || user[0] == '\0')
    return;
  colon = strchr(user, ':');
  part = colon ? xstrndup(user, (size_t)(colon - user)) : xstrdup(user);
  if (parse_id(part, &id))
    {
      *has_uid = true;
      *uid = id;
      return;
    }
  if (part[0])
    *username = steal_pointer(&part);
}
