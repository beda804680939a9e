/* Unit tests of pod/user: image User strings in every form, CRI
 * run_as_user/run_as_username/run_as_group overrides, supplemental
 * groups with the Merge and Strict policies, runAsNonRoot, range checks,
 * the ImageStatus uid/username split, and hostile root file systems:
 * /etc/passwd as a symlink to a file outside (absolute and via ".."),
 * symlink loops, a FIFO, all through openat2 and through the fallback
 * walk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "pod/user.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                             "# a comment line\n"
                             "\n"
                             "alice:x:1000:1000::/home/alice:/bin/sh\n"
                             "bob:x:1001:100::/home/bob:/bin/sh\n"
                             "broken:x:notanumber:1::/:/bin/sh\n"
                             "+nisuser::::::\n"
                             "short:x:1002\n"
                             "last:x:1003:1003::/:/bin/sh"; /* no final newline */

static const char group[] = "root:x:0:\n"
                            "wheel:x:10:root,alice\n"
                            "users:x:100:\n"
                            "alice:x:1000:\n"
                            "video:x:44:alice, bob\n"
                            "audio:x:63:bob\n"
                            "bad:x:-3:alice\n"
                            "alicelike:x:77:alice2\n";

/* What a hostile image points /etc/passwd at: a host file. */
static const char outside_secret[] = "eve:x:0:0:stolen:/:/bin/sh\n";

struct fixture
{
  char dir[64];
  char *rootfs;
  char *outside;
};

static void
write_file(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");

  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static char *
path_in(const char *dir, const char *name)
{
  return xasprintf("%s/%s", dir, name);
}

static int
setup(void **state)
{
  struct fixture *f = xcalloc(1, sizeof *f);
  cleanup_free char *etc = NULL;
  cleanup_free char *p = NULL;
  cleanup_free char *g = NULL;
  cleanup_free char *secret = NULL;

  strcpy(f->dir, "/tmp/crid-test-user-XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  f->rootfs = path_in(f->dir, "rootfs");
  f->outside = path_in(f->dir, "outside");
  etc = path_in(f->rootfs, "etc");
  if (mkdir(f->rootfs, 0755) < 0 || mkdir(etc, 0755) < 0 || mkdir(f->outside, 0755) < 0)
    return -1;
  p = path_in(etc, "passwd");
  g = path_in(etc, "group");
  secret = path_in(f->outside, "shadow-like");
  write_file(p, passwd);
  write_file(g, group);
  write_file(secret, outside_secret);
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fixture *f = *state;
  cleanup_free char *cmd = xasprintf("rm -rf '%s'", f->dir);

  if (system(cmd) != 0)
    return -1;
  free(f->rootfs);
  free(f->outside);
  free(f);
  return 0;
}

/* Resolves and checks uid, gid and the additional gids (n of them). */
static void
expect_user(const char *rootfs, const struct user_request *req, uint32_t uid, uint32_t gid,
            const uint32_t *gids, size_t n)
{
  struct error err = ERROR_INIT;
  struct user_resolved r;

  if (user_resolve(rootfs, req, &r, &err) < 0)
    fail_msg("resolve: %s", error_message(&err));
  assert_int_equal(r.user.uid, uid);
  assert_int_equal(r.user.gid, gid);
  if (r.user.n_additional_gids != n)
    fail_msg("%zu additional gids, want %zu (first %u)", r.user.n_additional_gids, n,
             r.user.n_additional_gids ? r.user.additional_gids[0] : 0);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(r.user.additional_gids[i], gids[i]);
  user_resolved_clear(&r);
}

static void
expect_refused(const char *rootfs, const struct user_request *req, const char *needle)
{
  struct error err = ERROR_INIT;
  struct user_resolved r;

  assert_int_equal(user_resolve(rootfs, req, &r, &err), -1);
  assert_int_equal(err.code, EINVAL);
  if (strstr(error_message(&err), needle) == NULL)
    fail_msg("message \"%s\" lacks \"%s\"", error_message(&err), needle);
  error_clear(&err);
  user_resolved_clear(&r);
}

#define GIDS(...) ((const uint32_t[]){ __VA_ARGS__ }), (sizeof((uint32_t[]){ __VA_ARGS__ }) / 4)

static struct user_request
image(const char *user)
{
  struct user_request req = { .image_user = user };
  return req;
}

static void
test_image_user_forms(void **state)
{
  struct fixture *f = *state;
  struct user_request req;

  /* No user at all: root, with root's image groups. */
  req = image(NULL);
  expect_user(f->rootfs, &req, 0, 0, GIDS(0, 10));
  req = image("");
  expect_user(f->rootfs, &req, 0, 0, GIDS(0, 10));
  req = image("alice");
  expect_user(f->rootfs, &req, 1000, 1000, GIDS(1000, 10, 44));
  req = image("1001");
  expect_user(f->rootfs, &req, 1001, 100, GIDS(100, 44, 63));
  req = image("alice:users");
  expect_user(f->rootfs, &req, 1000, 100, GIDS(100, 10, 44));
  req = image("1000:44");
  expect_user(f->rootfs, &req, 1000, 44, GIDS(44, 10));
  req = image("bob:1234");
  expect_user(f->rootfs, &req, 1001, 1234, GIDS(1234, 44, 63));
  req = image("1001:audio");
  expect_user(f->rootfs, &req, 1001, 63, GIDS(63, 44));
  req = image("last"); /* the final line has no newline */
  expect_user(f->rootfs, &req, 1003, 1003, GIDS(1003));
  /* A uid without an entry: gid 0, no image groups. */
  req = image("5000");
  expect_user(f->rootfs, &req, 5000, 0, GIDS(0));
  req = image("5000:5000");
  expect_user(f->rootfs, &req, 5000, 5000, GIDS(5000));
  req = image("alice:");
  expect_user(f->rootfs, &req, 1000, 1000, GIDS(1000, 10, 44));
}

static void
test_unknown_names_refused(void **state)
{
  struct fixture *f = *state;
  struct user_request req;

  req = image("nobody");
  expect_refused(f->rootfs, &req, "nobody");
  req = image("alice:nogroup");
  expect_refused(f->rootfs, &req, "nogroup");
  /* Entries with bad numbers, NIS lines and short lines are no users. */
  req = image("broken");
  expect_refused(f->rootfs, &req, "broken");
  req = image("+nisuser");
  expect_refused(f->rootfs, &req, "+nisuser");
  req = image("short");
  expect_refused(f->rootfs, &req, "short");
  req = image("4294967295"); /* (uid_t)-1: not a uid, so a name */
  expect_refused(f->rootfs, &req, "4294967295");
  req = (struct user_request){ .run_as_username = "mallory" };
  expect_refused(f->rootfs, &req, "mallory");
}

static void
test_cri_overrides_image(void **state)
{
  struct fixture *f = *state;
  Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT;
  Runtime__V1__Int64Value gid = RUNTIME__V1__INT64_VALUE__INIT;
  int64_t supplemental[] = { 300, 10, 7, 300 };
  struct user_request req;

  uid.value = 1001;
  req = (struct user_request){ .run_as_user = &uid, .image_user = "alice:video" };
  expect_user(f->rootfs, &req, 1001, 100, GIDS(100, 44, 63));

  gid.value = 7;
  req.run_as_group = &gid;
  req.supplemental_groups = supplemental;
  req.n_supplemental_groups = 4;
  expect_user(f->rootfs, &req, 1001, 7, GIDS(7, 44, 63, 300, 10));

  /* run_as_username, over the image's user. */
  req = (struct user_request){ .run_as_username = "alice", .image_user = "bob" };
  expect_user(f->rootfs, &req, 1000, 1000, GIDS(1000, 10, 44));
  req.run_as_group = &gid;
  expect_user(f->rootfs, &req, 1000, 7, GIDS(7, 10, 44));

  /* run_as_user wins over run_as_username. */
  uid.value = 0;
  req = (struct user_request){ .run_as_user = &uid, .run_as_username = "alice" };
  expect_user(f->rootfs, &req, 0, 0, GIDS(0, 10));

  /* A group alone is refused, as by containerd and CRI-O. */
  req = (struct user_request){ .run_as_group = &gid, .image_user = "alice" };
  expect_refused(f->rootfs, &req, "without user or username");
}

static void
test_strict_policy(void **state)
{
  struct fixture *f = *state;
  int64_t supplemental[] = { 4000 };
  struct user_request req = image("alice");

  req.supplemental_groups = supplemental;
  req.n_supplemental_groups = 1;
  expect_user(f->rootfs, &req, 1000, 1000, GIDS(1000, 10, 44, 4000));
  req.strict_groups = true;
  expect_user(f->rootfs, &req, 1000, 1000, GIDS(1000, 4000));
}

static void
test_run_as_non_root(void **state)
{
  struct fixture *f = *state;
  Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT;
  struct user_request req;

  req = image("");
  req.run_as_non_root = true;
  expect_refused(f->rootfs, &req, "container's runAsNonRoot and image will run as root");
  req = image("root");
  req.run_as_non_root = true;
  expect_refused(f->rootfs, &req, "runAsNonRoot");
  req = image("0:1000");
  req.run_as_non_root = true;
  expect_refused(f->rootfs, &req, "runAsNonRoot");
  req = image("alice");
  req.run_as_non_root = true;
  expect_user(f->rootfs, &req, 1000, 1000, GIDS(1000, 10, 44));
  uid.value = 0;
  req = (struct user_request){ .run_as_user = &uid,
                               .image_user = "alice",
                               .run_as_non_root = true };
  expect_refused(f->rootfs, &req, "runAsNonRoot");
}

static void
test_ranges(void **state)
{
  struct fixture *f = *state;
  Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT;
  Runtime__V1__Int64Value gid = RUNTIME__V1__INT64_VALUE__INIT;
  int64_t bad_groups[] = { 5, -5 };
  struct user_request req;

  uid.value = -1;
  req = (struct user_request){ .run_as_user = &uid };
  expect_refused(f->rootfs, &req, "run_as_user -1 out of range");
  uid.value = 4294967295LL;
  expect_refused(f->rootfs, &req, "out of range");
  uid.value = 4294967294LL;
  expect_user(f->rootfs, &req, 4294967294u, 0, GIDS(0));
  gid.value = 1LL << 40;
  req.run_as_group = &gid;
  expect_refused(f->rootfs, &req, "run_as_group");
  req = image("alice");
  req.supplemental_groups = bad_groups;
  req.n_supplemental_groups = 2;
  expect_refused(f->rootfs, &req, "supplemental group -5");
}

static void
test_no_rootfs_numeric_only(void **state)
{
  Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT;
  Runtime__V1__Int64Value gid = RUNTIME__V1__INT64_VALUE__INIT;
  int64_t supplemental[] = { 2000 };
  struct user_request req;

  uid.value = 65534;
  gid.value = 65534;
  req = (struct user_request){ .run_as_user = &uid,
                               .run_as_group = &gid,
                               .supplemental_groups = supplemental,
                               .n_supplemental_groups = 1 };
  expect_user(NULL, &req, 65534, 65534, GIDS(65534, 2000));
  req = image("alice");
  expect_refused(NULL, &req, "alice");
}

static void
test_image_without_files(void **state)
{
  struct fixture *f = *state;
  cleanup_free char *empty = path_in(f->dir, "empty");
  struct user_request req;

  assert_int_equal(mkdir(empty, 0755), 0);
  req = image("123:456");
  expect_user(empty, &req, 123, 456, GIDS(456));
  req = image("alice");
  expect_refused(empty, &req, "alice");
  req = image("1:wheel");
  expect_refused(empty, &req, "wheel");
}

/* Replaces the rootfs's /etc/passwd with a symlink to target. */
static void
link_passwd(struct fixture *f, const char *target)
{
  cleanup_free char *p = xasprintf("%s/etc/passwd", f->rootfs);

  unlink(p);
  assert_int_equal(symlink(target, p), 0);
}

static void
test_hostile_passwd_symlink(void **state)
{
  struct fixture *f = *state;
  cleanup_free char *absolute = path_in(f->outside, "shadow-like");
  cleanup_free char *relative = NULL;
  Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT;
  struct user_request req;

  /* Absolute: would be the host file if followed from the host's "/". */
  link_passwd(f, absolute);
  req = (struct user_request){ .run_as_username = "eve" };
  expect_refused(f->rootfs, &req, "eve");
  uid.value = 0;
  req = (struct user_request){ .run_as_user = &uid };
  expect_user(f->rootfs, &req, 0, 0, GIDS(0)); /* no passwd name, so no image groups */

  /* Relative, climbing far above the rootfs. */
  relative = xasprintf("../../../../../../../..%s", absolute);
  link_passwd(f, relative);
  req = (struct user_request){ .run_as_username = "eve" };
  expect_refused(f->rootfs, &req, "eve");
  link_passwd(f, "../../outside/shadow-like");
  expect_refused(f->rootfs, &req, "eve");

  /* A loop is no file, not an endless walk. */
  link_passwd(f, "/etc/passwd");
  expect_refused(f->rootfs, &req, "eve");
}

static void
test_symlinks_inside_rootfs_followed(void **state)
{
  struct fixture *f = *state;
  cleanup_free char *real = xasprintf("%s/etc/real-passwd", f->rootfs);
  struct user_request req = image("alice");

  write_file(real, "alice:x:2000:2000::/:/bin/sh\n");
  /* Absolute, resolved at the rootfs as the container would. */
  link_passwd(f, "/etc/real-passwd");
  expect_user(f->rootfs, &req, 2000, 2000, GIDS(2000, 10, 44));
  link_passwd(f, "../../../etc/./real-passwd");
  expect_user(f->rootfs, &req, 2000, 2000, GIDS(2000, 10, 44));
}

static void
test_passwd_fifo_ignored(void **state)
{
  struct fixture *f = *state;
  cleanup_free char *p = xasprintf("%s/etc/passwd", f->rootfs);
  struct user_request req;

  unlink(p);
  assert_int_equal(mkfifo(p, 0644), 0);
  req = image("alice");
  expect_refused(f->rootfs, &req, "alice");
  req = image("1000");
  expect_user(f->rootfs, &req, 1000, 0, GIDS(0));
}

/* Opens path in the rootfs both ways; both must agree. */
static void
expect_open(struct fixture *f, const char *path, const char *content, int want_errno)
{
  cleanup_close int root = open(f->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);

  assert_true(root >= 0);
  for (int walk = 0; walk < 2; walk++)
    {
      struct error err = ERROR_INIT;
      char buffer[256] = "";
      int fd = user_open_in_root(root, path, walk, &err);
      ssize_t n;

      if (content == NULL)
        {
          if (fd >= 0)
            fail_msg("%s opened (walk %d), want errno %d", path, walk, want_errno);
          assert_int_equal(errno, want_errno);
          error_clear(&err);
          continue;
        }
      if (fd < 0)
        fail_msg("%s (walk %d): %s", path, walk, error_message(&err));
      n = read(fd, buffer, sizeof buffer - 1);
      close(fd);
      assert_true(n >= 0);
      buffer[n] = '\0';
      assert_string_equal(buffer, content);
    }
}

static void
test_open_in_root(void **state)
{
  struct fixture *f = *state;
  cleanup_free char *data = path_in(f->rootfs, "data");
  cleanup_free char *real = path_in(f->rootfs, "data/file");
  cleanup_free char *link_abs = path_in(f->rootfs, "etc/abs");
  cleanup_free char *link_dir = path_in(f->rootfs, "lnkdir");
  cleanup_free char *link_out = path_in(f->rootfs, "out");
  cleanup_free char *link_loop = path_in(f->rootfs, "loop");
  cleanup_free char *outside_abs = path_in(f->outside, "shadow-like");

  assert_int_equal(mkdir(data, 0755), 0);
  write_file(real, "inside");
  assert_int_equal(symlink("/data/file", link_abs), 0);
  assert_int_equal(symlink("../../../data", link_dir), 0);
  assert_int_equal(symlink(outside_abs, link_out), 0);
  assert_int_equal(symlink("loop", link_loop), 0);

  expect_open(f, "data/file", "inside", 0);
  expect_open(f, "/data/file", "inside", 0);
  expect_open(f, "etc/abs", "inside", 0);
  expect_open(f, "lnkdir/file", "inside", 0);
  expect_open(f, "../../data/./file", "inside", 0);
  expect_open(f, "data/../data/file", "inside", 0);
  expect_open(f, "out", NULL, ENOENT);
  expect_open(f, "../outside/shadow-like", NULL, ENOENT);
  expect_open(f, "loop", NULL, ELOOP);
  expect_open(f, "data/file/x", NULL, ENOTDIR);
  expect_open(f, "missing/file", NULL, ENOENT);
}

static void
test_request_from_cri(void **state)
{
  Runtime__V1__LinuxContainerSecurityContext sc
      = RUNTIME__V1__LINUX_CONTAINER_SECURITY_CONTEXT__INIT;
  Runtime__V1__LinuxSandboxSecurityContext ssc = RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
  Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT;
  int64_t groups[] = { 1, 2 };
  struct user_request req;

  sc.run_as_user = &uid;
  sc.run_as_username = "alice";
  sc.supplemental_groups = groups;
  sc.n_supplemental_groups = 2;
  sc.supplemental_groups_policy = RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
  user_request_for_container(&sc, "bob", &req);
  assert_ptr_equal(req.run_as_user, &uid);
  assert_string_equal(req.run_as_username, "alice");
  assert_null(req.run_as_group);
  assert_int_equal(req.n_supplemental_groups, 2);
  assert_true(req.strict_groups);
  assert_string_equal(req.image_user, "bob");
  assert_false(req.run_as_non_root);

  user_request_for_container(NULL, "bob", &req);
  assert_null(req.run_as_user);
  assert_string_equal(req.image_user, "bob");

  ssc.run_as_group = &uid;
  user_request_for_sandbox(&ssc, &req);
  assert_ptr_equal(req.run_as_group, &uid);
  assert_null(req.image_user);
  assert_false(req.strict_groups);
}

/* Resolves what a CRI security context asks for. */
static void
expect_context(const char *rootfs, const Runtime__V1__LinuxContainerSecurityContext *sc,
               const char *image_user, uint32_t uid, uint32_t gid, const uint32_t *gids, size_t n)
{
  struct user_request req;

  user_request_for_container(sc, image_user, &req);
  expect_user(rootfs, &req, uid, gid, gids, n);
}

/* critest v1.32.0's SupplementalGroupsPolicy specs, and what they leave
 * open: a uid from run_as_user whose passwd name /etc/group lists. */
static void
test_policy_from_security_context(void **state)
{
  struct fixture *f = *state;
  Runtime__V1__LinuxContainerSecurityContext sc
      = RUNTIME__V1__LINUX_CONTAINER_SECURITY_CONTEXT__INIT;
  Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT;
  Runtime__V1__Int64Value gid = RUNTIME__V1__INT64_VALUE__INIT;
  int64_t extra[] = { 1234 };
  int64_t with_primary[] = { 1000, 1234, 1234 };

  uid.value = 1000;
  gid.value = 7;
  sc.run_as_user = &uid;
  sc.supplemental_groups = extra;
  sc.n_supplemental_groups = 1;
  /* Merge is the zero value: the image's groups of alice come in. */
  expect_context(f->rootfs, &sc, "bob", 1000, 1000, GIDS(1000, 10, 44, 1234));
  sc.supplemental_groups_policy = RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
  expect_context(f->rootfs, &sc, "bob", 1000, 1000, GIDS(1000, 1234));

  /* run_as_group is the primary group either way; Strict keeps nothing
   * else of the image, not even the passwd entry's gid. */
  sc.run_as_group = &gid;
  expect_context(f->rootfs, &sc, "bob", 1000, 7, GIDS(7, 1234));
  sc.supplemental_groups_policy = RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Merge;
  expect_context(f->rootfs, &sc, "bob", 1000, 7, GIDS(7, 10, 44, 1234));

  /* Requested groups repeating the primary one or each other: once. */
  sc.run_as_group = NULL;
  sc.supplemental_groups_policy = RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
  sc.supplemental_groups = with_primary;
  sc.n_supplemental_groups = 3;
  expect_context(f->rootfs, &sc, "bob", 1000, 1000, GIDS(1000, 1234));

  /* Strict, nothing requested: the primary group alone; a uid without a
   * passwd entry has gid 0. */
  sc.n_supplemental_groups = 0;
  expect_context(f->rootfs, &sc, "bob", 1000, 1000, GIDS(1000));
  uid.value = 4321;
  expect_context(f->rootfs, &sc, "bob", 4321, 0, GIDS(0));

  /* The image's User with a group name: Strict still resolves the name
   * (it is the primary group), but adds no memberships. */
  expect_context(f->rootfs, NULL, "alice:video", 1000, 44, GIDS(44, 10));
  sc.run_as_user = NULL;
  expect_context(f->rootfs, &sc, "alice:video", 1000, 44, GIDS(44));
}

static void
test_image_split(void **state)
{
  bool has_uid;
  int64_t uid;
  char *name;

  user_image_split("", &has_uid, &uid, &name);
  assert_false(has_uid);
  assert_null(name);
  user_image_split(NULL, &has_uid, &uid, &name);
  assert_false(has_uid);
  assert_null(name);
  user_image_split("1000", &has_uid, &uid, &name);
  assert_true(has_uid);
  assert_int_equal(uid, 1000);
  assert_null(name);
  user_image_split("0:0", &has_uid, &uid, &name);
  assert_true(has_uid);
  assert_int_equal(uid, 0);
  assert_null(name);
  user_image_split("nginx", &has_uid, &uid, &name);
  assert_false(has_uid);
  assert_string_equal(name, "nginx");
  free(name);
  user_image_split("www-data:www-data", &has_uid, &uid, &name);
  assert_false(has_uid);
  assert_string_equal(name, "www-data");
  free(name);
  user_image_split(":users", &has_uid, &uid, &name);
  assert_false(has_uid);
  assert_null(name);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
    T(test_image_user_forms),
    T(test_unknown_names_refused),
    T(test_cri_overrides_image),
    T(test_strict_policy),
    T(test_run_as_non_root),
    T(test_ranges),
    T(test_no_rootfs_numeric_only),
    T(test_image_without_files),
    T(test_hostile_passwd_symlink),
    T(test_symlinks_inside_rootfs_followed),
    T(test_passwd_fifo_ignored),
    T(test_open_in_root),
    T(test_request_from_cri),
    T(test_image_split),
    T(test_policy_from_security_context),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
