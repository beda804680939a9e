/* crid-pause: the infra process of every pod.  It holds the pod's
 * namespaces open by existing, reaps the zombies of a shared PID namespace,
 * and exits 0 on SIGTERM or SIGINT.  Static, so that a root filesystem with
 * nothing but this binary runs it. */
#include "version.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void
on_stop(int signo)
{
  _exit(0);
}

static void
on_child(int signo)
{
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0)
    ;
  errno = saved;
}

static void
say(const char *text)
{
  if (write(STDOUT_FILENO, text, strlen(text)) < 0)
    _exit(1);
}

int
main(int argc, char **argv)
{
  struct sigaction stop = { .sa_handler = on_stop };
  struct sigaction child = { .sa_handler = on_child, .sa_flags = SA_NOCLDSTOP | SA_RESTART };

  if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0))
    {
      say("crid-pause " CRID_VERSION "\n");
      return 0;
    }
  sigaction(SIGINT, &stop, NULL);
  sigaction(SIGTERM, &stop, NULL);
  sigaction(SIGCHLD, &child, NULL);
  for (;;)
    pause();
}
