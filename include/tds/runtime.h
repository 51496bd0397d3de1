/*
 * runtime.h: everything an engine process runs, started and stopped
 * together: the Zoho client, the sync handlers bound to it, the engine's
 * threads, and the HTTP listener (webhooks, /health, /metrics) when
 * webhooks.listen is set.  Used by `tds --daemon`, by the console's
 * embedded engine and by `tds --demo`.
 */
#ifndef TDS_RUNTIME_H
#define TDS_RUNTIME_H

#include <stdbool.h>

#include "tds/config.h"
#include "tds/engine.h"
#include "tds/zoho.h"

struct runtime;

/*
 * Starts the client, registers the sync handlers, starts the engine
 * (instance NULL: from cfg or host-pid; mode "daemon" or "embedded") and the
 * listener.  cfg must outlive the runtime.  Returns the runtime, or NULL
 * with *err (caller frees) and nothing left running.
 */
struct runtime *runtime_start(const struct tds_config *cfg, const char *instance,
                              const char *mode, char **err) TDS_MUST_CHECK;

/*
 * Checks that Zoho answers with a valid access token (minting or adopting
 * the fleet's).  Returns 0, or -1 with *err; *fatal (may be NULL) is set when
 * retrying cannot help (credentials rejected).
 */
int runtime_check_zoho(struct runtime *rt, bool *fatal, char **err) TDS_MUST_CHECK;

/* Graceful stop: the engine drains, the listener stops accepting.  Returns
 * at once; runtime_join waits (timeout_ms < 0: forever; 0 on success, -1 on
 * timeout — what was not finished is left to the janitor of another
 * engine: leases expire, runs are marked interrupted). */
void runtime_request_stop(struct runtime *rt);
int runtime_join(struct runtime *rt, int timeout_ms);
void runtime_free(struct runtime *rt);

/* Applies the reloadable keys of newcfg (copied, not retained). */
void runtime_reload(struct runtime *rt, const struct tds_config *newcfg);

struct engine *runtime_engine(struct runtime *rt);
struct zoho_client *runtime_zoho(struct runtime *rt);

#endif
