/* vsock-cat PORT|null: copy stdin to a vsock stream connected to the host (CID 2) on PORT (or,
 * given `null`, to /dev/null: the same guest work with no device traffic). The stdio
 * reference guest (tests/rig/stdio-init) uses it under lcow-vmm, whose hybrid vsock forwards
 * the connection to the unix socket "<vsock path>_PORT". Exits non-zero with a message on any
 * error. With VSOCK_CAT_PROGRESS set it prints to stderr how far the stream got at each MiB, with
 * the guest's uptime, so a stream that slowed down tells itself apart from one that stopped. */
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: vsock-cat PORT|null\n"); return 2; }
  int null_sink = strcmp(argv[1], "null") == 0;
  int s;
  if (null_sink) {
    s = open("/dev/null", O_WRONLY);
    if (s < 0) { perror("vsock-cat: /dev/null"); return 1; }
  } else {
    s = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s < 0) { perror("vsock-cat: socket"); return 1; }
    struct sockaddr_vm a;
    memset(&a, 0, sizeof a);
    a.svm_family = AF_VSOCK;
    a.svm_cid = VMADDR_CID_HOST;
    a.svm_port = (unsigned)atoi(argv[1]);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("vsock-cat: connect"); return 1; }
  }
  int progress = getenv("VSOCK_CAT_PROGRESS") != NULL;
  unsigned long long sent = 0;
  static char buf[1 << 16];
  for (;;) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) { if (errno == EINTR) continue; perror("vsock-cat: read"); return 1; }
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(s, buf + off, (size_t)(n - off));
      if (w < 0) { if (errno == EINTR) continue; perror("vsock-cat: write"); return 1; }
      off += w;
      if (progress && (sent >> 20) != ((sent + (unsigned long long)w) >> 20)) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        fprintf(stderr, "vsock-cat: %llu MiB at %lld.%01ld s\n", (sent + (unsigned long long)w) >> 20,
                (long long)t.tv_sec, t.tv_nsec / 100000000);
      }
      sent += (unsigned long long)w;
    }
  }
  if (!null_sink) shutdown(s, SHUT_WR);
  close(s);
  return 0;
}
