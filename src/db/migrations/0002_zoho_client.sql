-- 0002_zoho_client: what the Zoho client shares across the fleet through
-- PostgreSQL: the access token (one per OAuth client id, so that one engine
-- mints and the others read it), the log of mints (Zoho allows 10 per 10
-- minutes per refresh token), the fleet's request pacer and daily budget,
-- the engines sharing the concurrency limit, and the API usage per minute.

-- The current access token per client id.  Read and written under a
-- transaction-scoped advisory lock on 'tds.zoho_token:' || client_id.
CREATE TABLE tds.zoho_token (
    client_id       text PRIMARY KEY,
    access_token    text NOT NULL,
    api_domain      text,
    minted_at       timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    minted_by       text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Every mint (or attempt whose answer was lost), to stay under Zoho's limit.
CREATE TABLE tds.zoho_token_mints (
    id              bigserial PRIMARY KEY,
    client_id       text NOT NULL,
    minted_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    instance        text,
    ok              boolean NOT NULL DEFAULT true
);
CREATE INDEX zoho_token_mints_idx ON tds.zoho_token_mints (client_id, minted_at);

-- The fleet's pacer per organization: requests are spaced evenly; tat is
-- the time after the last slot handed out (generic cell rate algorithm).
CREATE TABLE tds.rate_pacer (
    org             text PRIMARY KEY,
    tat             timestamptz NOT NULL
);

-- Counted windows per organization (kind 'day': the daily budget).
CREATE TABLE tds.rate_windows (
    org             text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('day')),
    window_start    timestamptz NOT NULL,
    used            integer NOT NULL DEFAULT 0,
    last_grant      integer NOT NULL DEFAULT 0,
    PRIMARY KEY (org, kind, window_start)
);

-- Engines making API calls for an organization, for the concurrency share.
CREATE TABLE tds.rate_clients (
    org             text NOT NULL,
    instance        text NOT NULL,
    heartbeat_at    timestamptz NOT NULL,
    PRIMARY KEY (org, instance)
);

-- API calls per minute, engine instance, endpoint and HTTP status (0: no
-- answer).  The janitor alerts on 429s and the daily budget from it; the
-- console's dashboard shows it.
CREATE TABLE tds.api_usage (
    minute          timestamptz NOT NULL,
    instance        text NOT NULL,
    endpoint        text NOT NULL,
    status          integer NOT NULL,
    calls           integer NOT NULL,
    PRIMARY KEY (minute, instance, endpoint, status)
);
CREATE INDEX api_usage_minute_idx ON tds.api_usage (minute);
