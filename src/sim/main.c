/*
 * main.c: tds-zoho-sim's command line.  Parses the options (a bad one gets
 * one line naming it and exit status 2), generates the data set, binds the
 * listening socket, starts the HTTP front and the webhook sender, prints
 * "listening on http://HOST:PORT" once ready, and stops cleanly on SIGTERM
 * or SIGINT.
 */
#include "sim.h"

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "tds/log.h"

static const char usage[] =
    "usage: tds-zoho-sim [--listen HOST:PORT] [--port-file PATH] [--seed N] [--items N]\n"
    "         [--count ENTITY=N]... [--org ID] [--client-id S] [--client-secret S]\n"
    "         [--refresh-token S] [--token-ttl SECONDS] [--mint-limit N/SECONDS]\n"
    "         [--rate-minute N] [--rate-day N] [--concurrency N] [--no-limits]\n"
    "         [--legacy-warehouses] [--shape LIST] [--faults SPEC] [--webhook-url URL]\n"
    "         [--webhook-format json|form] [--webhook-secret S] [--webhook-hmac S]\n"
    "         [--threads N] [--quiet]\n"
    "A Zoho Books/Inventory API simulator on loopback; see src/sim/README.md.\n";

static void bad(const char *opt, const char *what)
{
    fprintf(stderr, "tds-zoho-sim: %s: %s\n", opt, what);
    exit(2);
}

static long num_arg(const char *opt, const char *s, long lo, long hi)
{
    long long v;
    if (!str_to_ll(s, &v) || v < lo || v > hi) {
        char msg[96];
        snprintf(msg, sizeof(msg), "expected a whole number from %ld to %ld, got \"%s\"", lo, hi,
                 s);
        bad(opt, msg);
    }
    return (long)v;
}

/* Binds and listens on HOST:PORT; returns the fd and sets *base to http://HOST:PORT. */
static int listen_on(const char *spec, char **base)
{
    char *copy = xstrdup(spec);
    char *colon = strrchr(copy, ':');
    if (!colon || colon == copy)
        bad("--listen", "expected HOST:PORT, e.g. 127.0.0.1:0");
    *colon = '\0';
    const char *port = colon + 1;
    num_arg("--listen", port, 0, 65535);
    char *host = copy;
    bool v6 = host[0] == '[';
    if (v6) {
        size_t n = strlen(host);
        if (n < 3 || host[n - 1] != ']')
            bad("--listen", "an IPv6 host goes in brackets: [::1]:8090");
        host[n - 1] = '\0';
        host++;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0)
        bad("--listen", gai_strerror(rc));
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        fprintf(stderr, "tds-zoho-sim: --listen: cannot listen on %s: %s\n", spec,
                strerror(errno));
        exit(1);
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    char hbuf[NI_MAXHOST], pbuf[NI_MAXSERV];
    getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof(hbuf), pbuf, sizeof(pbuf),
                NI_NUMERICHOST | NI_NUMERICSERV);
    *base = xasprintf(ss.ss_family == AF_INET6 ? "http://[%s]:%s" : "http://%s:%s", hbuf, pbuf);
    free(copy);
    return fd;
}

static void write_port_file(const char *path, const char *base)
{
    const char *port = strrchr(base, ':') + 1;
    char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%s\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "tds-zoho-sim: --port-file: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    free(tmp);
}

enum {
    O_LISTEN = 256, O_PORT_FILE, O_SEED, O_ITEMS, O_COUNT, O_ORG, O_CLIENT_ID, O_CLIENT_SECRET,
    O_REFRESH, O_TTL, O_MINT, O_RATE_MIN, O_RATE_DAY, O_CONC, O_NO_LIMITS, O_LEGACY, O_SHAPE, O_FAULTS,
    O_WH_URL, O_WH_FORMAT, O_WH_SECRET, O_WH_HMAC, O_THREADS, O_QUIET, O_HELP, O_VERSION,
};

static const struct option longopts[] = {
    {"listen", required_argument, NULL, O_LISTEN},
    {"port-file", required_argument, NULL, O_PORT_FILE},
    {"seed", required_argument, NULL, O_SEED},
    {"items", required_argument, NULL, O_ITEMS},
    {"count", required_argument, NULL, O_COUNT},
    {"org", required_argument, NULL, O_ORG},
    {"client-id", required_argument, NULL, O_CLIENT_ID},
    {"client-secret", required_argument, NULL, O_CLIENT_SECRET},
    {"refresh-token", required_argument, NULL, O_REFRESH},
    {"token-ttl", required_argument, NULL, O_TTL},
    {"mint-limit", required_argument, NULL, O_MINT},
    {"rate-minute", required_argument, NULL, O_RATE_MIN},
    {"rate-day", required_argument, NULL, O_RATE_DAY},
    {"concurrency", required_argument, NULL, O_CONC},
    {"no-limits", no_argument, NULL, O_NO_LIMITS},
    {"legacy-warehouses", no_argument, NULL, O_LEGACY},
    {"shape", required_argument, NULL, O_SHAPE},
    {"faults", required_argument, NULL, O_FAULTS},
    {"webhook-url", required_argument, NULL, O_WH_URL},
    {"webhook-format", required_argument, NULL, O_WH_FORMAT},
    {"webhook-secret", required_argument, NULL, O_WH_SECRET},
    {"webhook-hmac", required_argument, NULL, O_WH_HMAC},
    {"threads", required_argument, NULL, O_THREADS},
    {"quiet", no_argument, NULL, O_QUIET},
    {"help", no_argument, NULL, O_HELP},
    {"version", no_argument, NULL, O_VERSION},
    {NULL, 0, NULL, 0},
};

int main(int argc, char **argv)
{
    struct sim_config cfg = {.seed = 1};
    for (int e = 0; e < SIM_ENTITIES; e++)
        cfg.counts[e] = sim_entities[e].default_count;
    cfg.org = "60000000001";
    cfg.client_id = "sim-client-id";
    cfg.client_secret = "sim-client-secret";
    cfg.refresh_token = "sim-refresh-token";
    struct sim_http_opts o = {.token_ttl = 3600, .mint_limit = 10, .mint_window = 600,
                              .rate_minute = 100, .rate_day = 10000, .concurrency = 10};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o.threads = cpus > 2 ? (int)cpus : 2;
    const char *listen_spec = "127.0.0.1:8090", *port_file = NULL;
    const char *wh_url = NULL, *wh_secret = NULL, *wh_hmac = NULL;
    bool wh_form = false, no_limits = false, quiet = false;
    bool set_min = false, set_day = false, set_conc = false, set_mint = false;

    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
        switch (ch) {
        case O_LISTEN:
            listen_spec = optarg;
            break;
        case O_PORT_FILE:
            port_file = optarg;
            break;
        case O_SEED: {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno || !*optarg || *end || optarg[0] == '-')
                bad("--seed", "expected a whole number");
            cfg.seed = v;
            break;
        }
        case O_ITEMS:
            cfg.counts[sim_entity_find("items")] = num_arg("--items", optarg, 0, 10000000);
            break;
        case O_COUNT: {
            char *eq = strchr(optarg, '=');
            if (!eq)
                bad("--count", "expected ENTITY=N, e.g. contacts=500");
            *eq = '\0';
            int e = sim_entity_find(optarg);
            if (e < 0) {
                char msg[160];
                snprintf(msg, sizeof(msg), "unknown entity \"%.60s\"", optarg);
                bad("--count", msg);
            }
            cfg.counts[e] = num_arg("--count", eq + 1, 0, 10000000);
            break;
        }
        case O_ORG:
            if (!str_is_digits(optarg))
                bad("--org", "expected an organization id of digits");
            cfg.org = optarg;
            break;
        case O_CLIENT_ID:
            cfg.client_id = optarg;
            break;
        case O_CLIENT_SECRET:
            cfg.client_secret = optarg;
            break;
        case O_REFRESH:
            cfg.refresh_token = optarg;
            break;
        case O_TTL:
            o.token_ttl = num_arg("--token-ttl", optarg, 1, 86400 * 365);
            break;
        case O_MINT: {
            char *slash = strchr(optarg, '/');
            if (slash) {
                *slash = '\0';
                o.mint_window = num_arg("--mint-limit", slash + 1, 1, 86400);
            }
            o.mint_limit = num_arg("--mint-limit", optarg, 0, 1000000000);
            set_mint = true;
            break;
        }
        case O_RATE_MIN:
            o.rate_minute = num_arg("--rate-minute", optarg, 0, 1000000000);
            set_min = true;
            break;
        case O_RATE_DAY:
            o.rate_day = num_arg("--rate-day", optarg, 0, 1000000000);
            set_day = true;
            break;
        case O_CONC:
            o.concurrency = num_arg("--concurrency", optarg, 0, 1000000);
            set_conc = true;
            break;
        case O_NO_LIMITS:
            no_limits = true;
            break;
        case O_LEGACY:
            cfg.legacy_warehouses = true;
            break;
        case O_SHAPE: {
            char *bad = NULL;
            if (!sim_shapes_parse(optarg, &sim_shapes, &bad)) {
                fprintf(stderr, "tds-zoho-sim: --shape: unknown shape '%s' (numeric-ids, stock-figures, hide-inactive, books-pc-array, small-pages)\n", bad);
                free(bad);
                exit(2);
            }
            break;
        }
        case O_FAULTS: {
            char *err = NULL;
            if (!sim_faults_check(optarg, &err)) {
                fprintf(stderr, "tds-zoho-sim: %s\n", err);
                free(err);
                exit(2);
            }
            o.faults = optarg;
            break;
        }
        case O_WH_URL:
            if (!str_starts_with(optarg, "http://") && !str_starts_with(optarg, "https://"))
                bad("--webhook-url", "expected an http:// or https:// URL");
            wh_url = optarg;
            break;
        case O_WH_FORMAT:
            if (strcmp(optarg, "json") && strcmp(optarg, "form"))
                bad("--webhook-format", "expected json or form");
            wh_form = !strcmp(optarg, "form");
            break;
        case O_WH_SECRET:
            wh_secret = optarg;
            break;
        case O_WH_HMAC:
            wh_hmac = optarg;
            break;
        case O_THREADS:
            o.threads = (int)num_arg("--threads", optarg, 1, 256);
            break;
        case O_QUIET:
            quiet = true;
            break;
        case O_HELP:
            fputs(usage, stdout);
            return 0;
        case O_VERSION:
            printf("tds-zoho-sim %s\n", TDS_VERSION);
            return 0;
        case ':':
            fprintf(stderr, "tds-zoho-sim: %s: needs a value\n", name);
            return 2;
        default:
            if (optopt || optind > argc)
                fprintf(stderr, "tds-zoho-sim: %s: unknown option\n", name);
            else
                fprintf(stderr, "tds-zoho-sim: %s: unknown option or missing value\n", name);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tds-zoho-sim: %s: unexpected argument\n", argv[optind]);
        return 2;
    }
    if (no_limits) {
        if (!set_min)
            o.rate_minute = 0;
        if (!set_day)
            o.rate_day = 0;
        if (!set_conc)
            o.concurrency = 0;
        if (!set_mint)
            o.mint_limit = 0;
    }
    if (quiet)
        log_set_level(TDS_LOG_WARN);

    /* Signals: waited for by this thread only. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    int fd = listen_on(listen_spec, &cfg.base_url);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    long long t0 = time_mono_ms();
    sim_store_init(&cfg);
    log_info("tds-zoho-sim: generated %ld items and %d other entities in %lld ms (seed %llu)",
             cfg.counts[0], SIM_ENTITIES - 1, time_mono_ms() - t0,
             (unsigned long long)cfg.seed);
    if (!sim_webhook_start(wh_url, wh_form, wh_secret, wh_hmac)) {
        fprintf(stderr, "tds-zoho-sim: --webhook-url: cannot start the webhook sender\n");
        return 1;
    }
    if (!sim_http_start(fd, &cfg, &o)) {
        fprintf(stderr, "tds-zoho-sim: cannot start the HTTP server on %s\n", cfg.base_url);
        return 1;
    }
    if (port_file)
        write_port_file(port_file, cfg.base_url);
    printf("listening on %s\n", cfg.base_url);
    fflush(stdout);

    int sig = 0;
    sigwait(&set, &sig);
    log_info("tds-zoho-sim: %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    sim_http_stop(); /* closes the listening socket too */
    sim_webhook_stop();
    sim_store_free();
    curl_global_cleanup();
    free(cfg.base_url);
    return 0;
}
