/* Signal names as images and the CRI give them; see signal_name.h. */
#include "pod/signal_name.h"
#include "common/util.h"

#include <ctype.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static const struct
{
  const char *name;
  int number;
} signal_names[] = {
  { "ABRT", SIGABRT }, { "ALRM", SIGALRM }, { "BUS", SIGBUS },       { "CHLD", SIGCHLD },
  { "CLD", SIGCHLD },  { "CONT", SIGCONT }, { "FPE", SIGFPE },       { "HUP", SIGHUP },
  { "ILL", SIGILL },   { "INT", SIGINT },   { "IO", SIGIO },         { "IOT", SIGIOT },
  { "KILL", SIGKILL }, { "PIPE", SIGPIPE }, { "POLL", SIGPOLL },     { "PROF", SIGPROF },
  { "PWR", SIGPWR },   { "QUIT", SIGQUIT }, { "SEGV", SIGSEGV },     { "STKFLT", SIGSTKFLT },
  { "STOP", SIGSTOP }, { "SYS", SIGSYS },   { "TERM", SIGTERM },     { "TRAP", SIGTRAP },
  { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU },     { "URG", SIGURG },
  { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "VTALRM", SIGVTALRM }, { "WINCH", SIGWINCH },
  { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
};

/* "RTMIN+3", "RTMINPLUS3", "RTMAX-2", "RTMAXMINUS2", "RTMIN". */
static int
parse_realtime(const char *name)
{
  const char *rest;
  int base, sign;
  char *end;
  long offset = 0;

  if (str_has_prefix(name, "RTMIN"))
    base = SIGRTMIN, sign = 1, rest = name + 5;
  else if (str_has_prefix(name, "RTMAX"))
    base = SIGRTMAX, sign = -1, rest = name + 5;
  else
    return -1;
  if (*rest == '\0')
    return base;
  if ((sign > 0 && *rest == '+') || (sign < 0 && *rest == '-'))
    rest++;
  else if (sign > 0 && str_has_prefix(rest, "PLUS"))
    rest += 4;
  else if (sign < 0 && str_has_prefix(rest, "MINUS"))
    rest += 5;
  else
    return -1;
  offset = strtol(rest, &end, 10);
  if (end == rest || *end || offset < 0 || base + sign * offset < SIGRTMIN
      || base + sign * offset > SIGRTMAX)
    return -1;
  return base + sign * (int)offset;
}

int
signal_parse(const char *text)
{
  char name[32];
  size_t i;

  if (text == NULL || *text == '\0' || strlen(text) >= sizeof name)
    return -1;
  if (isdigit((unsigned char)text[0]))
    {
      char *end;
      long n = strtol(text, &end, 10);
      return *end == '\0' && n > 0 && n <= SIGRTMAX ? (int)n : -1;
    }
  for (i = 0; text[i]; i++)
    name[i] = (char)toupper((unsigned char)text[i]);
  name[i] = '\0';
  text = str_has_prefix(name, "SIG") ? name + 3 : name;
  for (i = 0; i < sizeof signal_names / sizeof signal_names[0]; i++)
    if (strcmp(text, signal_names[i].name) == 0)
      return signal_names[i].number;
  return parse_realtime(text);
}
