/* Unit tests of common/sd_notify: NOTIFY_SOCKET addresses (paths and
 * abstract names), datagrams as sent, the environment taken and cleared,
 * WATCHDOG_PID, and the watchdog thread's pings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/sd_notify.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* A bound datagram socket standing in for systemd's. */
static int
bind_receiver(const char *address)
{
  struct sd_notifier n;
  struct error err = ERROR_INIT;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

  assert_true(fd >= 0);
  assert_int_equal(sd_notifier_init(&n, address, &err), 0);
  if (address[0] == '/')
    unlink(address);
  assert_int_equal(bind(fd, (struct sockaddr *)&n.address, n.address_len), 0);
  return fd;
}

/* The next datagram, or "" when none comes within timeout_ms. */
static void
receive(int fd, char *buf, size_t size, int timeout_ms)
{
  struct pollfd p = { .fd = fd, .events = POLLIN };
  ssize_t n = 0;

  buf[0] = '\0';
  if (poll(&p, 1, timeout_ms) == 1)
    n = recv(fd, buf, size - 1, 0);
  buf[n > 0 ? n : 0] = '\0';
}

static char *
unique_abstract_name(void)
{
  return xasprintf("@crid-unit-notify-%d-%ld", (int)getpid(), (long)time_monotonic_ns());
}

static void
test_addresses(void **state)
{
  struct sd_notifier n;
  struct error err = ERROR_INIT;
  char long_path[200];

  assert_int_equal(sd_notifier_init(&n, NULL, &err), 0);
  assert_false(n.enabled);
  assert_int_equal(sd_notifier_init(&n, "", &err), 0);
  assert_false(n.enabled);

  assert_int_equal(sd_notifier_init(&n, "/run/systemd/notify", &err), 0);
  assert_true(n.enabled);
  assert_string_equal(n.address.sun_path, "/run/systemd/notify");
  assert_int_equal(n.address_len, offsetof(struct sockaddr_un, sun_path) + 20);

  /* Abstract: a leading NUL, the name counted by the length, no NUL after. */
  assert_int_equal(sd_notifier_init(&n, "@sys/notify", &err), 0);
  assert_true(n.enabled);
  assert_int_equal(n.address.sun_path[0], '\0');
  assert_memory_equal(n.address.sun_path + 1, "sys/notify", 10);
  assert_int_equal(n.address_len, offsetof(struct sockaddr_un, sun_path) + 11);

  assert_int_equal(sd_notifier_init(&n, "relative/notify", &err), -1);
  assert_int_equal(err.code, EINVAL);
  assert_false(n.enabled);
  error_clear(&err);
  assert_int_equal(sd_notifier_init(&n, "vsock:2:1234", &err), -1);
  error_clear(&err);
  memset(long_path, 'a', sizeof long_path - 1);
  long_path[0] = '/';
  long_path[sizeof long_path - 1] = '\0';
  assert_int_equal(sd_notifier_init(&n, long_path, &err), -1);
  assert_false(n.enabled);
  error_clear(&err);
}

static void
test_send_to_path_and_abstract(void **state)
{
  cleanup_free char *dir = xasprintf("/tmp/crid-unit-notify-%d", (int)getpid());
  cleanup_free char *path = xasprintf("%s/notify.sock", dir);
  cleanup_free char *abstract = unique_abstract_name();
  const char *addresses[] = { path, abstract };
  char buf[256];

  assert_int_equal(mkdir(dir, 0700) == 0 || errno == EEXIST, 1);
  for (size_t i = 0; i < 2; i++)
    {
      struct sd_notifier n;
      struct error err = ERROR_INIT;
      int fd = bind_receiver(addresses[i]);

      assert_int_equal(sd_notifier_init(&n, addresses[i], &err), 0);
      assert_int_equal(sd_notify_send(&n, "READY=1\nSTATUS=serving", &err), 0);
      receive(fd, buf, sizeof buf, 2000);
      assert_string_equal(buf, "READY=1\nSTATUS=serving");
      sd_notifyf(&n, "STATUS=%s %d", "step", 3);
      receive(fd, buf, sizeof buf, 2000);
      assert_string_equal(buf, "STATUS=step 3");
      close(fd);
    }
  unlink(path);
  rmdir(dir);

  /* Nobody listening: an error to the caller, not a crash. */
  {
    struct sd_notifier n;
    struct error err = ERROR_INIT;
    cleanup_free char *nobody = unique_abstract_name();
    assert_int_equal(sd_notifier_init(&n, nobody, &err), 0);
    assert_int_equal(sd_notify_send(&n, "READY=1", &err), -1);
    error_clear(&err);
    sd_notifyf(&n, "READY=1");
  }
  /* Disabled: nothing to do. */
  {
    struct sd_notifier n;
    struct error err = ERROR_INIT;
    assert_int_equal(sd_notifier_init(&n, NULL, &err), 0);
    assert_int_equal(sd_notify_send(&n, "READY=1", &err), 0);
  }
}

static void
test_environment_is_taken_and_cleared(void **state)
{
  struct sd_notifier n;
  struct error err = ERROR_INIT;
  cleanup_free char *pid = xasprintf("%d", (int)getpid());

  setenv("NOTIFY_SOCKET", "@crid-unit", 1);
  setenv("WATCHDOG_USEC", "3000000", 1);
  setenv("WATCHDOG_PID", pid, 1);
  assert_int_equal(sd_notifier_from_environment(&n, &err), 0);
  assert_true(n.enabled);
  assert_int_equal(n.watchdog_usec, 3000000);
  assert_null(getenv("NOTIFY_SOCKET"));
  assert_null(getenv("WATCHDOG_USEC"));
  assert_null(getenv("WATCHDOG_PID"));

  /* Another process's watchdog. */
  setenv("NOTIFY_SOCKET", "@crid-unit", 1);
  setenv("WATCHDOG_USEC", "3000000", 1);
  setenv("WATCHDOG_PID", "1", 1);
  assert_int_equal(sd_notifier_from_environment(&n, &err), 0);
  assert_true(n.enabled);
  assert_int_equal(n.watchdog_usec, 0);

  /* No socket: no watchdog either (nowhere to send it). */
  setenv("WATCHDOG_USEC", "3000000", 1);
  assert_int_equal(sd_notifier_from_environment(&n, &err), 0);
  assert_false(n.enabled);
  assert_int_equal(n.watchdog_usec, 0);
  assert_null(getenv("WATCHDOG_USEC"));

  setenv("NOTIFY_SOCKET", "@crid-unit", 1);
  setenv("WATCHDOG_USEC", "soon", 1);
  assert_int_equal(sd_notifier_from_environment(&n, &err), -1);
  assert_int_equal(err.code, EINVAL);
  assert_true(n.enabled);
  assert_int_equal(n.watchdog_usec, 0);
  error_clear(&err);
}

static void
test_watchdog_pings(void **state)
{
  cleanup_free char *address = unique_abstract_name();
  struct sd_notifier n;
  struct error err = ERROR_INIT;
  struct sd_watchdog *watchdog;
  int fd = bind_receiver(address);
  char buf[64];
  int pings = 0;
  int64_t start;

  assert_int_equal(sd_notifier_init(&n, address, &err), 0);
  assert_null(sd_watchdog_start(&n)); /* no interval: no thread */
  n.watchdog_usec = 100000;
  watchdog = sd_watchdog_start(&n);
  assert_non_null(watchdog);
  start = time_monotonic_ns();
  while (time_monotonic_ns() - start < 500 * 1000000LL)
    {
      receive(fd, buf, sizeof buf, 100);
      if (strcmp(buf, "WATCHDOG=1") == 0)
        pings++;
    }
  sd_watchdog_stop(watchdog);
  /* Every 50 ms: about 10 in half a second. */
  assert_true(pings >= 5);
  assert_true(pings <= 14);
  sd_watchdog_stop(NULL);
  close(fd);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_addresses),
    cmocka_unit_test(test_send_to_path_and_abstract),
    cmocka_unit_test(test_environment_is_taken_and_cleared),
    cmocka_unit_test(test_watchdog_pings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
