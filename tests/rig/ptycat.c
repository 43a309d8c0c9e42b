/* ptycat CMD [ARGS...]: run CMD with a pseudo-terminal (raw mode) as its stdout and stderr and
 * copy everything it writes there to our stdout, the way a container's terminal is read
 * (tests/rig/stdio-init's stdio.tty). Exits with CMD's status, or non-zero with a message. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: ptycat CMD [ARGS...]\n"); return 2; }
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0) { perror("ptycat: pty"); return 1; }
  char *name = ptsname(m);
  if (!name) { perror("ptycat: ptsname"); return 1; }
  pid_t pid = fork();
  if (pid < 0) { perror("ptycat: fork"); return 1; }
  if (pid == 0) {
    setsid();
    int s = open(name, O_RDWR);
    if (s < 0) { perror("ptycat: open slave"); _exit(127); }
    struct termios t;
    if (tcgetattr(s, &t) == 0) { cfmakeraw(&t); tcsetattr(s, TCSANOW, &t); }
    dup2(s, 1); dup2(s, 2);
    if (s > 2) close(s);
    close(m);
    execvp(argv[1], argv + 1);
    perror("ptycat: exec");
    _exit(127);
  }
  static char buf[1 << 16];
  for (;;) {
    ssize_t n = read(m, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EIO) break; /* the slave side closed: the command is done */
      perror("ptycat: read"); return 1;
    }
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(1, buf + off, (size_t)(n - off));
      if (w < 0) { if (errno == EINTR) continue; perror("ptycat: write"); return 1; }
      off += w;
    }
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) { perror("ptycat: waitpid"); return 1; }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
