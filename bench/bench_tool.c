/*
** bench_tool: the round trip of tool.call (hc_call in-process: schema check, JSON to stdin,
** spawn in a PID namespace where the kernel allows it, wait in the loop, JSON back) beside a
** plain fork/exec of the same program with the same stdin and stdout pipes, in the same run.
**
** usage: bench_tool [ROUNDS]
*/
#include "hostcall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* fork, exec /bin/cat with a pipe each way, write the input, read it back, reap. */
static void plain_once(void) {
  int in[2], out[2];
  if (pipe(in) || pipe(out)) { perror("pipe"); exit(1); }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[1]);
    close(out[0]);
    execl("/bin/cat", "cat", (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  static const char msg[] = "{\"x\":1}\n";
  if (write(in[1], msg, sizeof msg - 1) != (ssize_t)sizeof msg - 1) exit(1);
  close(in[1]);
  char buf[64];
  while (read(out[0], buf, sizeof buf) > 0) {}
  close(out[0]);
  waitpid(pid, NULL, 0);
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 5;
  if (rounds < 1 || rounds > 32) rounds = 5;
  const char *pol = "return { methods = { 'tool.*' }, tools = { echo = { argv = { '/bin/cat' } } } }";
  hc_config cfg;
  hc_config_init(&cfg);
  char *err = NULL;
  hc_runtime *rt = hc_runtime_new_string(pol, strlen(pol), "bench.lua", &cfg, &err);
  if (!rt) { fprintf(stderr, "bench_tool: %s\n", err); return 1; }
  const char *req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tool.call\",\"params\":{\"name\":\"echo\",\"args\":{\"x\":1}}}";
  double plain[32], viart[32], ratio[32];
  for (int k = 0; k < rounds; k++) {
    double t0 = now_s();
    int n = 0;
    do { plain_once(); n++; } while (now_s() - t0 < 0.3);
    plain[k] = (now_s() - t0) / n;
    t0 = now_s();
    n = 0;
    do {
      char *resp;
      size_t rl;
      if (hc_call(rt, req, strlen(req), &resp, &rl) != 0 || !resp || !strstr(resp, "\"result\":{\"x\":1}")) {
        fprintf(stderr, "bench_tool: %s\n", resp ? resp : "(none)");
        return 1;
      }
      hc_free(resp);
      n++;
    } while (now_s() - t0 < 0.3);
    viart[k] = (now_s() - t0) / n;
    ratio[k] = viart[k] / plain[k];
  }
  qsort(plain, (size_t)rounds, sizeof(double), cmp);
  qsort(viart, (size_t)rounds, sizeof(double), cmp);
  qsort(ratio, (size_t)rounds, sizeof(double), cmp);
  int m = rounds / 2;
  printf("-- tool round trip: /bin/cat with a JSON line (median of %d interleaved rounds; %s)\n", rounds,
         hc_kernel_report());
  printf("   plain fork/exec + pipes        %.0f us\n", plain[m] * 1e6);
  printf("   tool.call through hc_call      %.0f us  (%.2fx the plain round trip)\n", viart[m] * 1e6, ratio[m]);
  printf("RESULT plain_us=%.0f tool_us=%.0f ratio=%.2f\n", plain[m] * 1e6, viart[m] * 1e6, ratio[m]);
  hc_runtime_free(rt);
  return 0;
}
