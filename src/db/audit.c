/*
 * audit.c: rows of tds.audit.  The OS user comes from the real uid (not
 * $USER, which anyone can set), SSH_CONNECTION from the environment.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tds/audit.h"
#include "tds/db.h"

static const char *os_user(void)
{
    static char name[64];
    if (name[0] == '\0') {
        struct passwd *pw = getpwuid(getuid());
        if (pw != NULL)
            snprintf(name, sizeof name, "%s", pw->pw_name);
        else
            snprintf(name, sizeof name, "uid%ld", (long)getuid());
    }
    return name;
}

const char *audit_actor(const char *origin)
{
    static _Thread_local char actor[96];
    snprintf(actor, sizeof actor, "%s:%s", origin, os_user());
    return actor;
}

int audit_record(PGconn *c, const char *instance, const char *action, const char *target,
                 const char *detail_json, char **err)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    const char *params[] = {os_user(),          getenv("SSH_CONNECTION"), host, instance, action,
                            target,             detail_json ? detail_json : "{}"};
    return db_cmd(c,
                  "INSERT INTO tds.audit (os_user, ssh_connection, host, instance, action,"
                  " target, detail) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
                  7, params, err);
}
