/*
** main.c: the hostcall command line. It uses only the public API (hostcall.h), like any
** embedder would.
*/
#include "hostcall.h"

#include <limits.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_HANDLER_DIRS 64
#define EXIT_USAGE 2
#define EXIT_LOAD 2

static hc_runtime *g_rt;   /* for the signal handlers */

static const char *USAGE =
  "usage: hostcall COMMAND [OPTIONS]\n"
  "\n"
  "commands:\n"
  "  serve     --policy FILE [--handlers DIR]... (--stdio | --listen unix:PATH)\n"
  "            serve guests with JSON-RPC 2.0 (one on stdin/stdout, or many on a unix socket)\n"
  "  serve     --tenants DIR --listen-dir DIR         many tenants: DIR/NAME.lua, NAME.sock\n"
  "  call      --policy FILE METHOD [PARAMS_JSON]   make one call; result on stdout\n"
  "  check     --policy FILE                        validate policy and handlers\n"
  "  describe  --policy FILE                        the OpenRPC document of the granted methods\n"
  "  demo                                           a scripted guest session, as a transcript\n"
  "  reload    --control unix:PATH                  re-read a serving runtime's policies\n"
  "  stats     --control unix:PATH                  per-tenant calls, errors, latency, memory\n"
  "\n"
  "options:\n"
  "  --policy FILE          the tenant's policy (Lua)\n"
  "  --handlers DIR         an extra handler directory (repeatable; relative to the cwd)\n"
  "  --framing ndjson|lsp   one JSON text per line (default), or Content-Length headers\n"
  "  --audit FILE           audit lines to FILE (serve: default stderr)\n"
  "  --resolver openat2|walk  force the path resolver (tests, old kernels)\n"
  "  --control unix:PATH    serve: a control socket for reload and stats; reload/stats: where\n"
  "  --landlock, --user NAME  serve: confine the process; drop privileges after binding\n"
  "  --seccomp              serve: refuse the system calls hostcall never needs (EPERM)\n"
  "  --help, --version\n"
  "\n"
  "Exit status: 0 ok; 1 the call failed (call); 2 usage error or a policy/handler failed to load.\n";

static const char *CMD_HELP[][2] = {
  {"serve", "usage: hostcall serve --policy FILE [--handlers DIR]... [--framing ndjson|lsp]\n"
            "                      [--audit FILE] (--stdio | --listen unix:PATH)\n"
            "       hostcall serve --tenants DIR (--listen-dir DIR | --listen unix:PATH) [--handlers DIR]...\n"
            "Serve guests with JSON-RPC 2.0. --stdio: one guest on stdin/stdout, exits after stdin\n"
            "closes and every response is written (or with sys.exit's code). --listen: many guests\n"
            "on a unix socket (mode 0600). Audit lines go to stderr unless --audit is given.\n"
            "--tenants: one policy per tenant (DIR/NAME.lua, NAME from the file's name) and one\n"
            "socket per tenant (NAME.sock in the --listen-dir, mode 0600): a guest's tenant is\n"
            "the socket it connects to. A policy that fails to load is logged and skipped.\n"
            "--tenants DIR --listen unix:PATH: one socket (mode 0666) for every tenant; a guest\n"
            "is served by the tenant named after its peer's user (SO_PEERCRED), else by the\n"
            "one named by its uid (\"1000\"); anyone else is refused and logged.\n"
            "--landlock confines the process (Landlock) to its mounts, policy, handler and socket\n"
            "directories, tool programs and the system's CA and resolver files; --user NAME\n"
            "drops to that user after binding; --seccomp then refuses (EPERM) the system calls\n"
            "hostcall and its tools never need (ptrace, mount, namespaces, bpf, io_uring, ...).\n"
            "The kernel's support is reported at start.\n"
            "SIGHUP (or hostcall reload, with --control unix:PATH) re-reads the policies: a\n"
            "policy that fails to load keeps the old one (the error is logged); sessions in\n"
            "flight finish with the policy they started with.\n"
            "SIGTERM stops accepting, lets calls in flight finish (up to 10 s) and exits 0.\n"},
  {"call", "usage: hostcall call --policy FILE [--handlers DIR]... METHOD [PARAMS_JSON]\n"
           "Make one call. Prints the result JSON and exits 0, or prints the error object on\n"
           "stderr and exits 1.\n"},
  {"check", "usage: hostcall check --policy FILE [--handlers DIR]...\n"
            "Validate the policy and every handler file; print the effective capabilities.\n"
            "A bad file is reported as FILE:LINE: message, with exit status 2.\n"},
  {"describe", "usage: hostcall describe --policy FILE [--handlers DIR]...\n"
               "Print the OpenRPC 1.x document of exactly the methods the policy grants.\n"},
  {"reload", "usage: hostcall reload --control unix:PATH\n"
             "Ask the server listening on that control socket to re-read its policies and\n"
             "handlers (as SIGHUP does); prints its one-line JSON answer.\n"},
  {"stats", "usage: hostcall stats --control unix:PATH\n"
            "Print the server's per-tenant counters as JSON: calls, errors, denied, limited,\n"
            "p50_us, p99_us, memory, handles, sockets, sessions.\n"},
  {"demo", "usage: hostcall demo\n"
           "Run a scripted guest session against the built-in demo policy in a temporary\n"
           "workspace and print it as a transcript: requests, responses and audit lines.\n"},
};

typedef struct opts {
  const char *cmd;
  const char *policy;
  const char *handlers[MAX_HANDLER_DIRS + 1];
  int nhandlers;
  hc_framing framing;
  const char *audit;
  const char *listen;
  int stdio;
  int resolver;
  const char *tenants;
  const char *listen_dir;
  const char *control;
  int landlock;
  int seccomp;
  const char *user;
  char **rest;
  int nrest;
} opts;

static void die_usage(const char *fmt, const char *arg) {
  fprintf(stderr, "hostcall: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(try hostcall --help)\n");
  exit(EXIT_USAGE);
}

static void print_cmd_help(const char *cmd) {
  for (size_t i = 0; i < sizeof CMD_HELP / sizeof CMD_HELP[0]; i++)
    if (strcmp(CMD_HELP[i][0], cmd) == 0) { fputs(CMD_HELP[i][1], stdout); return; }
  fputs(USAGE, stdout);
}

static void parse(int argc, char **argv, opts *o) {
  enum { O_POLICY = 1, O_HANDLERS, O_FRAMING, O_AUDIT, O_LISTEN, O_STDIO, O_RESOLVER, O_HELP,
         O_VERSION, O_TENANTS, O_LISTEN_DIR, O_CONTROL, O_LANDLOCK, O_USER, O_SECCOMP };
  static const struct option longopts[] = {
    {"policy", required_argument, 0, O_POLICY}, {"handlers", required_argument, 0, O_HANDLERS},
    {"framing", required_argument, 0, O_FRAMING}, {"audit", required_argument, 0, O_AUDIT},
    {"listen", required_argument, 0, O_LISTEN}, {"stdio", no_argument, 0, O_STDIO},
    {"resolver", required_argument, 0, O_RESOLVER}, {"help", no_argument, 0, O_HELP},
    {"version", no_argument, 0, O_VERSION},
    {"tenants", required_argument, 0, O_TENANTS}, {"listen-dir", required_argument, 0, O_LISTEN_DIR},
    {"landlock", no_argument, 0, O_LANDLOCK}, {"user", required_argument, 0, O_USER},
    {"seccomp", no_argument, 0, O_SECCOMP},
    {"control", required_argument, 0, O_CONTROL},
    {0, 0, 0, 0}};
  memset(o, 0, sizeof *o);
  o->framing = HC_FRAMING_NDJSON;
  o->cmd = argv[1];
  optind = 2;
  opterr = 0;
  int c, idx = 0;
  while ((c = getopt_long(argc, argv, "+", longopts, &idx)) != -1) {
    switch (c) {
      case O_POLICY: o->policy = optarg; break;
      case O_HANDLERS:
        if (o->nhandlers == MAX_HANDLER_DIRS) die_usage("too many --handlers (at most %s)", "64");
        o->handlers[o->nhandlers++] = optarg;
        break;
      case O_FRAMING:
        if (strcmp(optarg, "ndjson") == 0) o->framing = HC_FRAMING_NDJSON;
        else if (strcmp(optarg, "lsp") == 0) o->framing = HC_FRAMING_LSP;
        else die_usage("--framing must be ndjson or lsp, not \"%s\"", optarg);
        break;
      case O_AUDIT: o->audit = optarg; break;
      case O_LISTEN: o->listen = optarg; break;
      case O_STDIO: o->stdio = 1; break;
      case O_TENANTS: o->tenants = optarg; break;
      case O_LISTEN_DIR: o->listen_dir = optarg; break;
      case O_CONTROL:
        if (strncmp(optarg, "unix:", 5) != 0) die_usage("--control takes unix:PATH, not \"%s\"", optarg);
        o->control = optarg + 5;
        break;
      case O_RESOLVER:
        if (strcmp(optarg, "openat2") == 0) o->resolver = 1;
        else if (strcmp(optarg, "walk") == 0) o->resolver = 2;
        else die_usage("--resolver must be openat2 or walk, not \"%s\"", optarg);
        break;
      case O_HELP: print_cmd_help(o->cmd); exit(0);
      case O_VERSION: printf("hostcall %s\n", hc_version()); exit(0);
      case O_LANDLOCK: o->landlock = 1; break;
      case O_SECCOMP: o->seccomp = 1; break;
      case O_USER: o->user = optarg; break;
      default:
        die_usage("unknown or incomplete option \"%s\"", argv[optind - 1]);
    }
  }
  o->rest = argv + optind;
  o->nrest = argc - optind;
}

static void log_stderr(void *ud, const char *msg) {
  (void)ud;
  fprintf(stderr, "hostcall: %s\n", msg);
}

static hc_runtime *load(const opts *o, hc_config *cfg) {
  char *err = NULL;
  if (!o->policy) die_usage("%s needs --policy FILE", o->cmd);
  cfg->handler_dirs = o->handlers;
  cfg->framing = o->framing;
  cfg->resolver = o->resolver;
  cfg->log = log_stderr;
  hc_runtime *rt = hc_runtime_new_file(o->policy, cfg, &err);
  if (!rt) {
    fprintf(stderr, "%s\n", err ? err : "hostcall: failed to load");
    hc_free(err);
    exit(EXIT_LOAD);
  }
  return rt;
}

static void on_signal(int sig) {
  (void)sig;
  if (g_rt) hc_stop(g_rt);
}

/* Every socket a guest opens is an fd of this process: serve with the hard limit, not the
** usual soft 1024. A failure only leaves the soft limit where it was. */
static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      fprintf(stderr, "hostcall: cannot raise the open-file limit: %s\n", strerror(errno));
  }
}

/* --control unix:PATH: the operator's socket for `hostcall reload` and `hostcall stats`. */
static int open_control(hc_runtime *rt, const opts *o) {
  if (!o->control) return 0;
  char *err = NULL;
  int fd = hc_listen_unix(o->control, &err);
  if (fd < 0 || hc_control_listen(rt, fd) != 0) {
    fprintf(stderr, "hostcall: control socket: %s\n", err ? err : strerror(errno));
    hc_free(err);
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

static void close_control(const opts *o, int fd) {
  if (fd <= 0) return;
  close(fd);
  unlink(o->control);
}

static void on_hup(int sig) {
  (void)sig;
  if (g_rt) hc_reload(g_rt);
}

/* --landlock / --user / --seccomp, after the sockets are bound and before serving. sock_a and
** sock_b are socket files whose directories must stay writable (removed at exit): --listen's,
** --control's. The seccomp filter goes last: the privilege drop needs calls it does not refuse,
** but it is the last thing the process should be able to change. */
static int confine(hc_runtime *rt, const opts *o, const char *sock_a, const char *sock_b) {
  if (!o->landlock && !o->user && !o->seccomp) return 0;
  char dirs[2][PATH_MAX];
  const char *socks[2] = {sock_a, sock_b}, *rw[3] = {NULL, NULL, NULL};
  int n = 0;
  for (int i = 0; i < 2; i++) {
    if (!socks[i]) continue;
    snprintf(dirs[i], sizeof dirs[i], "%s", socks[i]);
    char *slash = strrchr(dirs[i], '/');
    if (slash) *slash = '\0';
    else strcpy(dirs[i], ".");
    rw[n++] = dirs[i];
  }
  char *err = NULL;
  if ((o->landlock || o->user) && hc_confine(rt, o->user, o->landlock, rw, &err) != 0) {
    fprintf(stderr, "hostcall: %s\n", err ? err : "cannot confine the process");
    hc_free(err);
    return -1;
  }
  if (o->seccomp && hc_seccomp(&err) != 0) {
    fprintf(stderr, "hostcall: %s\n", err ? err : "cannot install the seccomp filter");
    hc_free(err);
    return -1;
  }
  return 0;
}

/* serve --tenants DIR --listen-dir DIR: one runtime, one socket per tenant (NAME.sock). */
static int serve_tenants(opts *o, hc_config *cfg) {
  if (!o->listen_dir == !o->listen) die_usage("--tenants needs --listen-dir DIR or --listen unix:PATH%s", "");
  if (o->listen && strncmp(o->listen, "unix:", 5) != 0) die_usage("--listen takes unix:PATH, not %s", o->listen);
  if (o->policy || o->stdio) die_usage("--tenants takes neither --policy nor --stdio%s", "");
  cfg->handler_dirs = o->handlers;
  cfg->framing = o->framing;
  cfg->resolver = o->resolver;
  cfg->log = log_stderr;
  char *err = NULL;
  hc_runtime *rt = hc_runtime_new_tenants(o->tenants, cfg, &err);
  if (!rt) {
    fprintf(stderr, "hostcall: %s\n", err ? err : "failed to load");
    hc_free(err);
    return EXIT_LOAD;
  }
  int cfd = open_control(rt, o);
  int code = 1;
  if (o->listen) {
    /* One socket for every tenant: each guest's tenant is its peer's user (SO_PEERCRED), so
    ** the socket is open to every local user (0666); the uid is the check. */
    const char *path = o->listen + 5;
    int fd = cfd < 0 ? -1 : hc_listen_unix(path, &err);
    if (fd >= 0 && chmod(path, 0666) != 0) {
      fprintf(stderr, "hostcall: chmod %s: %s\n", path, strerror(errno));
      close(fd);
      unlink(path);
      fd = -1;
    } else if (fd < 0 && err) {
      fprintf(stderr, "hostcall: %s\n", err);
      hc_free(err);
    }
    if (fd >= 0 && confine(rt, o, path, o->control) == 0) {
      g_rt = rt;
      code = hc_serve_peers(rt, fd) < 0 ? 1 : 0;
      if (code) fprintf(stderr, "hostcall: serve: %s\n", strerror(errno));
      g_rt = NULL;
    }
    if (fd >= 0) {
      close(fd);
      unlink(path);
    }
  } else if (cfd >= 0 && confine(rt, o, NULL, o->control) == 0) {
    g_rt = rt;
    code = hc_serve_tenants(rt, o->listen_dir) < 0 ? 1 : 0;
    if (code) fprintf(stderr, "hostcall: serve: no tenant socket could be made in %s\n", o->listen_dir);
    g_rt = NULL;
  }
  close_control(o, cfd);
  hc_runtime_free(rt);
  return code;
}

/* hostcall reload|stats --control unix:PATH: one command, its one-line answer on stdout. */
static int cmd_control(const opts *o) {
  if (!o->control) die_usage("%s needs --control unix:PATH", o->cmd);
  struct sockaddr_un sa = {0};
  sa.sun_family = AF_UNIX;
  if (strlen(o->control) >= sizeof sa.sun_path) die_usage("control socket path too long: %s", o->control);
  strcpy(sa.sun_path, o->control);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    fprintf(stderr, "hostcall: cannot reach the control socket %s: %s\n", o->control, strerror(errno));
    if (fd >= 0) close(fd);
    return 1;
  }
  char cmd[16];
  int n = snprintf(cmd, sizeof cmd, "%s\n", o->cmd);
  if (write(fd, cmd, (size_t)n) != n) { close(fd); return 1; }
  char buf[65536];
  ssize_t r;
  int any = 0;
  while ((r = read(fd, buf, sizeof buf)) > 0) {
    fwrite(buf, 1, (size_t)r, stdout);
    any = 1;
  }
  close(fd);
  return any ? 0 : 1;
}

static int cmd_serve(opts *o) {
  hc_config cfg;
  hc_config_init(&cfg);
  raise_nofile();
  fprintf(stderr, "hostcall: %s\n", hc_kernel_report());
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction hup = {0};
  hup.sa_handler = on_hup;
  sigemptyset(&hup.sa_mask);
  sigaction(SIGHUP, &hup, NULL);
  if (o->tenants) {
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    cfg.audit_fd = 2;
    if (o->audit && (cfg.audit_fd = open(o->audit, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0) {
      fprintf(stderr, "hostcall: cannot open audit file %s: %s\n", o->audit, strerror(errno));
      return EXIT_USAGE;
    }
    if (o->nrest) die_usage("unexpected argument \"%s\"", o->rest[0]);
    return serve_tenants(o, &cfg);
  }
  if (o->listen_dir) die_usage("--listen-dir goes with --tenants%s", "");
  if (!!o->stdio == !!o->listen) die_usage("serve needs exactly one of --stdio or --listen unix:PATH%s", "");
  if (o->listen && strncmp(o->listen, "unix:", 5) != 0)
    die_usage("--listen takes unix:PATH, not \"%s\"", o->listen);
  if (o->nrest) die_usage("unexpected argument \"%s\"", o->rest[0]);
  cfg.audit_fd = 2;
  if (o->audit) {
    cfg.audit_fd = open(o->audit, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (cfg.audit_fd < 0) {
      fprintf(stderr, "hostcall: cannot open audit file %s: %s\n", o->audit, strerror(errno));
      return EXIT_USAGE;
    }
  }
  hc_runtime *rt = load(o, &cfg);
  g_rt = rt;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  int code;
  if (o->stdio) {
    if (o->landlock || o->user || o->seccomp) {
      if (confine(rt, o, NULL, NULL) != 0) { hc_runtime_free(rt); return 1; }
    }
    code = hc_serve_fd(rt, 0, 1);
    if (code < 0) { fprintf(stderr, "hostcall: serve: %s\n", strerror(errno)); code = 1; }
  } else {
    char *err = NULL;
    const char *path = o->listen + 5;
    int fd = hc_listen_unix(path, &err);
    if (fd < 0) {
      fprintf(stderr, "hostcall: %s\n", err);
      hc_free(err);
      hc_runtime_free(rt);
      return 1;
    }
    int cfd = open_control(rt, o);
    code = cfd < 0 || confine(rt, o, path, o->control) != 0 ? 1 : hc_serve_listener(rt, fd) < 0 ? 1 : 0;
    close_control(o, cfd);
    close(fd);
    unlink(path);
  }
  g_rt = NULL;
  hc_runtime_free(rt);
  return code;
}

static void add_json_string(char **p, size_t *n, size_t *cap, const char *s) {
  for (;;) {
    size_t need = *n + strlen(s) * 6 + 3;
    if (need <= *cap) break;
    *cap = need * 2;
    *p = realloc(*p, *cap);
    if (!*p) { fprintf(stderr, "hostcall: out of memory\n"); exit(1); }
  }
  char *q = *p + *n;
  *q++ = '"';
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    if (*c == '"' || *c == '\\') { *q++ = '\\'; *q++ = (char)*c; }
    else if (*c < 0x20) q += sprintf(q, "\\u%04x", *c);
    else *q++ = (char)*c;
  }
  *q++ = '"';
  *n = (size_t)(q - *p);
}

static int cmd_call(opts *o) {
  if (o->nrest < 1 || o->nrest > 2) die_usage("call needs METHOD [PARAMS_JSON]%s", "");
  hc_config cfg;
  hc_config_init(&cfg);
  if (o->audit) cfg.audit_fd = open(o->audit, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  hc_runtime *rt = load(o, &cfg);
  const char *params = o->nrest == 2 ? o->rest[1] : NULL;
  size_t cap = 256 + (params ? strlen(params) : 0), n = 0;
  char *req = malloc(cap);
  if (!req) return 1;
  n = (size_t)sprintf(req, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":");
  add_json_string(&req, &n, &cap, o->rest[0]);
  if (params) {
    if (n + strlen(params) + 16 > cap) { cap = n + strlen(params) + 16; req = realloc(req, cap); }
    if (!req) return 1;
    n += (size_t)sprintf(req + n, ",\"params\":%s", params);
  }
  req[n++] = '}';
  char *resp = NULL;
  size_t rlen = 0;
  int rc = 1;
  if (hc_call(rt, req, n, &resp, &rlen) == 0 && resp) {
    static const char ok[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":";
    static const char bad[] = "{\"jsonrpc\":\"2.0\",\"id\":";
    if (strncmp(resp, ok, sizeof ok - 1) == 0) {
      fwrite(resp + sizeof ok - 1, 1, rlen - (sizeof ok - 1) - 1, stdout);
      fputc('\n', stdout);
      rc = 0;
    } else {
      const char *e = strstr(resp, "\"error\":");
      if (strncmp(resp, bad, sizeof bad - 1) == 0 && e) {
        fwrite(e + 8, 1, rlen - (size_t)(e + 8 - resp) - 1, stderr);
        fputc('\n', stderr);
      } else {
        fprintf(stderr, "%s\n", resp);
      }
    }
  } else {
    fprintf(stderr, "hostcall: the call failed (out of memory)\n");
  }
  hc_free(resp);
  free(req);
  hc_runtime_free(rt);
  if (cfg.audit_fd >= 0) close(cfg.audit_fd);
  return rc;
}

static int cmd_check(opts *o, int describe) {
  if (o->nrest) die_usage("unexpected argument \"%s\"", o->rest[0]);
  hc_config cfg;
  hc_config_init(&cfg);
  hc_runtime *rt = load(o, &cfg);
  char *doc = describe ? hc_describe(rt) : hc_capabilities(rt);
  if (!doc) {
    fprintf(stderr, "hostcall: out of memory\n");
    hc_runtime_free(rt);
    return 1;
  }
  if (!describe) printf("%s: ok (tenant %s)\n", o->policy, hc_tenant_name(rt));
  printf("%s\n", doc);
  hc_free(doc);
  hc_runtime_free(rt);
  return 0;
}

/* {===== demo ===== */

typedef struct demo_audit { char lines[64][1024]; int n; } demo_audit;

static void demo_on_audit(void *ud, const char *line, size_t len) {
  demo_audit *a = ud;
  if (a->n >= 64) return;
  snprintf(a->lines[a->n++], sizeof a->lines[0], "%.*s", (int)len, line);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st; (void)flag; (void)ftw;
  return remove(path);
}

static int write_file(const char *dir, const char *name, const char *data, size_t len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  ssize_t w = write(fd, data, len);
  close(fd);
  return w == (ssize_t)len ? 0 : -1;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void demo_step(hc_runtime *rt, demo_audit *a, const char *title, const char *req) {
  char *resp = NULL;
  size_t len = 0;
  a->n = 0;
  printf("\n## %s\n", title);
  printf("-> %s\n", req);
  double t0 = now_ms();
  if (hc_call(rt, req, strlen(req), &resp, &len) != 0) {
    printf("<- (the runtime failed: out of memory)\n");
    return;
  }
  double dt = now_ms() - t0;
  if (!resp) printf("<- (no response: a notification is never answered)\n");
  else if (len > 600) printf("<- %.600s... (%zu bytes)\n", resp, len);
  else printf("<- %s\n", resp);
  if (dt >= 50) printf("   (answered in %.0f ms)\n", dt);
  for (int i = 0; i < a->n; i++) printf("   audit: %s\n", a->lines[i]);
  hc_free(resp);
}

static int cmd_demo(opts *o) {
  if (o->nrest) die_usage("unexpected argument \"%s\"", o->rest[0]);
  char dir[] = "/tmp/hostcall-demo-XXXXXX";
  if (!mkdtemp(dir)) { perror("hostcall: mkdtemp"); return 1; }
  size_t plen;
  const char *policy = hc_builtin_policy("demo.lua", &plen);
  char path[4096];
  snprintf(path, sizeof path, "%s/input", dir);
  int ok = policy && write_file(dir, "demo.lua", policy, plen) == 0 && mkdir(path, 0755) == 0;
  snprintf(path, sizeof path, "%s/output", dir);
  ok = ok && mkdir(path, 0755) == 0 && write_file(dir, "input/hello.txt", "hello, guest\n", 13) == 0;
  if (!ok) { perror("hostcall: demo workspace"); nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); return 1; }

  demo_audit *a = calloc(1, sizeof *a);
  hc_config cfg;
  hc_config_init(&cfg);
  cfg.audit = demo_on_audit;
  cfg.audit_ud = a;
  cfg.handler_dirs = o->handlers;
  char *err = NULL;
  snprintf(path, sizeof path, "%s/demo.lua", dir);
  hc_runtime *rt = a ? hc_runtime_new_file(path, &cfg, &err) : NULL;
  if (!rt) {
    fprintf(stderr, "%s\n", err ? err : "hostcall: out of memory");
    hc_free(err);
    free(a);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return EXIT_LOAD;
  }
  printf("# hostcall %s demo: a guest session against policies/demo.lua (tenant \"%s\")\n",
         hc_version(), hc_tenant_name(rt));
  printf("# workspace: a temporary directory, removed at the end\n");
  demo_step(rt, a, "Liveness", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"sys.ping\"}");
  demo_step(rt, a, "What may this guest call? (OpenRPC, via the rpc.discover alias)",
            "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"rpc.discover\"}");
  demo_step(rt, a, "A batch: three 300 ms sleeps and a ping run concurrently (about 300 ms in all)",
            "[{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"sys.sleep\",\"params\":{\"ms\":300}},"
            "{\"jsonrpc\":\"2.0\",\"id\":\"b\",\"method\":\"sys.sleep\",\"params\":{\"ms\":300}},"
            "{\"jsonrpc\":\"2.0\",\"id\":\"c\",\"method\":\"sys.sleep\",\"params\":{\"ms\":300}},"
            "{\"jsonrpc\":\"2.0\",\"id\":\"d\",\"method\":\"sys.ping\"}]");
  demo_step(rt, a, "The guest's filesystem: only the policy's mounts exist",
            "{\"jsonrpc\":\"2.0\",\"id\":20,\"method\":\"fs.list\",\"params\":{\"path\":\"/\"}}");
  demo_step(rt, a, "Read a file from the read-only mount, as text",
            "{\"jsonrpc\":\"2.0\",\"id\":21,\"method\":\"fs.read\",\"params\":{\"path\":\"/input/hello.txt\",\"encoding\":\"utf8\"}}");
  demo_step(rt, a, "Write a file into the writable mount (bytes travel as base64)",
            "{\"jsonrpc\":\"2.0\",\"id\":22,\"method\":\"fs.write\",\"params\":{\"path\":\"/output/note.txt\",\"data\":\"aGVsbG8sIGhvc3QK\"}}");
  demo_step(rt, a, "Writing through the read-only mount is refused (-32001 EROFS)",
            "{\"jsonrpc\":\"2.0\",\"id\":23,\"method\":\"fs.write\",\"params\":{\"path\":\"/input/hello.txt\",\"data\":\"\"}}");
  demo_step(rt, a, "Escaping the mount is refused, whatever the path says (-32001 EPERM)",
            "{\"jsonrpc\":\"2.0\",\"id\":24,\"method\":\"fs.read\",\"params\":{\"path\":\"/input/../../../etc/passwd\"}}");
  demo_step(rt, a, "Refused by the policy's authorize hook (-32001 EACCES)",
            "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"sys.sleep\",\"params\":{\"ms\":5000}}");
  demo_step(rt, a, "Params checked against the method's schema before anything runs (-32602)",
            "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"sys.sleep\",\"params\":{\"ms\":\"soon\"}}");
  demo_step(rt, a, "A method nobody defined (-32601)",
            "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"kv.get\",\"params\":{\"key\":\"x\"}}");
  demo_step(rt, a, "Malformed JSON (-32700, id null)", "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":");
  demo_step(rt, a, "Not a JSON-RPC 2.0 request (-32600)", "{\"jsonrpc\":\"1.0\",\"id\":7,\"method\":\"sys.ping\"}");
  demo_step(rt, a, "A notification: runs, audited, never answered",
            "{\"jsonrpc\":\"2.0\",\"method\":\"sys.ping\"}");
  demo_step(rt, a, "Ids round-trip exactly, even past 2^53",
            "{\"jsonrpc\":\"2.0\",\"id\":9007199254740993,\"method\":\"sys.ping\"}");
  hc_runtime_free(rt);

  /* The same guest under the default policy: nothing is granted. */
  size_t dlen;
  const char *dflt = hc_builtin_policy("default.lua", &dlen);
  rt = dflt ? hc_runtime_new_string(dflt, dlen, "default.lua", &cfg, &err) : NULL;
  if (rt) {
    printf("\n# the same guest under policies/default.lua, which grants nothing\n");
    demo_step(rt, a, "A method that exists but is not granted (-32001 EACCES)",
              "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"sys.ping\"}");
    hc_runtime_free(rt);
  } else {
    fprintf(stderr, "%s\n", err ? err : "hostcall: out of memory");
    hc_free(err);
  }
  free(a);
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  printf("\n# done: workspace removed\n");
  return 0;
}

/* }===== */

int main(int argc, char **argv) {
  if (argc < 2) { fputs(USAGE, stderr); return EXIT_USAGE; }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
    fputs(USAGE, stdout);
    return 0;
  }
  if (strcmp(argv[1], "--version") == 0) { printf("hostcall %s\n", hc_version()); return 0; }
  static const char *const CMDS[] = {"serve", "call", "check", "describe", "demo", "reload", "stats"};
  int known = 0;
  for (size_t i = 0; i < sizeof CMDS / sizeof CMDS[0]; i++) known |= strcmp(argv[1], CMDS[i]) == 0;
  if (!known) die_usage("unknown command \"%s\"", argv[1]);
  opts o;
  parse(argc, argv, &o);
  if (strcmp(o.cmd, "serve") == 0) return cmd_serve(&o);
  if (strcmp(o.cmd, "call") == 0) return cmd_call(&o);
  if (strcmp(o.cmd, "check") == 0) return cmd_check(&o, 0);
  if (strcmp(o.cmd, "describe") == 0) return cmd_check(&o, 1);
  if (strcmp(o.cmd, "demo") == 0) return cmd_demo(&o);
  if (strcmp(o.cmd, "reload") == 0 || strcmp(o.cmd, "stats") == 0) return cmd_control(&o);
  die_usage("unknown command \"%s\"", o.cmd);
  return EXIT_USAGE;
}
