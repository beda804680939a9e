/* crid-conmon: the per-container monitor (see DESIGN.md).  This first cut
 * only identifies itself; the monitor proper arrives with containers. */
#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
  if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0))
    {
      printf("crid-conmon version %s\n", CRID_VERSION);
      return 0;
    }
  fprintf(stderr, "crid-conmon: usage: crid-conmon --version\n");
  return 2;
}
