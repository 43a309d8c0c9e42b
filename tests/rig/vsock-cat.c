/* vsock-cat PORT: copy stdin to a vsock stream connected to the host (CID 2) on PORT. The stdio
 * reference guest (tests/rig/stdio-init) uses it under lcow-vmm, whose hybrid vsock forwards
 * the connection to the unix socket "<vsock path>_PORT". Exits non-zero with a message on any
 * error. */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: vsock-cat PORT\n"); return 2; }
  int s = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (s < 0) { perror("vsock-cat: socket"); return 1; }
  struct sockaddr_vm a;
  memset(&a, 0, sizeof a);
  a.svm_family = AF_VSOCK;
  a.svm_cid = VMADDR_CID_HOST;
  a.svm_port = (unsigned)atoi(argv[1]);
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("vsock-cat: connect"); return 1; }
  static char buf[1 << 16];
  for (;;) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) { if (errno == EINTR) continue; perror("vsock-cat: read"); return 1; }
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(s, buf + off, (size_t)(n - off));
      if (w < 0) { if (errno == EINTR) continue; perror("vsock-cat: write"); return 1; }
      off += w;
    }
  }
  shutdown(s, SHUT_WR);
  close(s);
  return 0;
}
