-- 0001_init: the data model of DESIGN.md.  Schema tds holds the engine's
-- state, schema zoho the synced data.  Names here are relied on by tests
-- outside the code: add columns freely, rename nothing.

CREATE SCHEMA IF NOT EXISTS tds;
CREATE SCHEMA IF NOT EXISTS zoho;

-- Sync runs: pending -> running -> completed | failed | cancelled;
-- running -> interrupted when the owning engine dies, then resumed.
CREATE TABLE tds.sync_runs (
    id              bigserial PRIMARY KEY,
    run_type        text NOT NULL
                    CHECK (run_type IN ('full', 'incremental', 'stock', 'items', 'webhook', 'reconcile')),
    entity_type     text,                       -- NULL: every entity
    trigger         text NOT NULL
                    CHECK (trigger IN ('manual', 'schedule', 'webhook', 'cli', 'heal')),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled', 'interrupted')),
    config          jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    total           bigint NOT NULL DEFAULT 0,
    expected_total  bigint,                     -- for progress, when known
    succeeded       bigint NOT NULL DEFAULT 0,
    failed          bigint NOT NULL DEFAULT 0,
    unchanged       bigint NOT NULL DEFAULT 0,
    api_calls       bigint NOT NULL DEFAULT 0,
    missing         bigint,                     -- reconcile: in Zoho, not here
    extra           bigint,                     -- reconcile: here, not in Zoho
    stale           bigint,                     -- reconcile: older here
    error           text,
    owner           text,                       -- engine instance
    heartbeat_at    timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    requested_by    text,
    resumed_from    bigint REFERENCES tds.sync_runs (id) ON DELETE SET NULL,
    CHECK (finished_at IS NULL OR started_at IS NULL OR finished_at >= started_at)
);
CREATE INDEX sync_runs_active_idx ON tds.sync_runs (status, id)
    WHERE status IN ('pending', 'running', 'interrupted');
CREATE INDEX sync_runs_entity_idx ON tds.sync_runs (entity_type, status, id DESC);
CREATE INDEX sync_runs_finished_idx ON tds.sync_runs (finished_at DESC) WHERE finished_at IS NOT NULL;

-- Every webhook as received, stored before it is answered.  The body is
-- bytea: it is stored even when it is not valid UTF-8.
CREATE TABLE tds.inbox (
    id              bigserial PRIMARY KEY,
    received_at     timestamptz NOT NULL DEFAULT now(),
    entity          text,
    zoho_id         text,
    last_modified_time text,
    remote_addr     text,
    method          text,
    path            text,
    content_type    text,
    headers         jsonb NOT NULL DEFAULT '{}',
    body            bytea,
    status          text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'queued', 'rejected')),
    reject_reason   text,
    http_status     smallint,
    queue_id        bigint
);
CREATE INDEX inbox_received_idx ON tds.inbox (received_at);
CREATE INDEX inbox_new_idx ON tds.inbox (id) WHERE status = 'new';
-- A duplicate delivery (same entity, id and last_modified_time) folds.
CREATE INDEX inbox_dedup_idx ON tds.inbox (entity, zoho_id, last_modified_time)
    WHERE status = 'queued';

-- The work queue.  Claimed in batches with FOR UPDATE SKIP LOCKED, ordered
-- by priority (higher first) then age; held by a lease, not a lock.
CREATE TABLE tds.sync_queue (
    id              bigserial PRIMARY KEY,
    run_id          bigint REFERENCES tds.sync_runs (id) ON DELETE SET NULL,
    inbox_id        bigint REFERENCES tds.inbox (id) ON DELETE SET NULL,
    entity_type     text NOT NULL,
    zoho_id         text NOT NULL,
    operation       text NOT NULL DEFAULT 'upsert' CHECK (operation IN ('upsert', 'delete')),
    payload         jsonb,
    priority        smallint NOT NULL DEFAULT 5 CHECK (priority BETWEEN 1 AND 10),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'processing', 'retry', 'completed', 'dead')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts    integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_by       text,
    locked_until    timestamptz,
    last_error      text,
    error_history   jsonb NOT NULL DEFAULT '[]',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    CHECK (status <> 'processing' OR (locked_by IS NOT NULL AND locked_until IS NOT NULL))
);
-- Claimable rows only: the claim query walks this index in order.
CREATE INDEX sync_queue_claim_idx ON tds.sync_queue (priority DESC, id)
    WHERE status IN ('pending', 'retry');
-- At most one pending item per record: a new change folds into it.
CREATE UNIQUE INDEX sync_queue_fold_idx ON tds.sync_queue (entity_type, zoho_id)
    WHERE status = 'pending';
CREATE INDEX sync_queue_lease_idx ON tds.sync_queue (locked_until) WHERE status = 'processing';
CREATE INDEX sync_queue_status_idx ON tds.sync_queue (status, entity_type);
CREATE INDEX sync_queue_retry_idx ON tds.sync_queue (next_attempt_at) WHERE status = 'retry';
CREATE INDEX sync_queue_completed_idx ON tds.sync_queue (completed_at) WHERE status = 'completed';
CREATE INDEX sync_queue_run_idx ON tds.sync_queue (run_id) WHERE run_id IS NOT NULL;

CREATE TABLE tds.dead_letter (
    id              bigserial PRIMARY KEY,
    queue_id        bigint,
    run_id          bigint,
    entity_type     text NOT NULL,
    zoho_id         text NOT NULL,
    operation       text NOT NULL CHECK (operation IN ('upsert', 'delete')),
    payload         jsonb,
    failure_reason  text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    error_history   jsonb NOT NULL DEFAULT '[]',
    created_at      timestamptz NOT NULL DEFAULT now(),
    resolved        boolean NOT NULL DEFAULT false,
    resolved_at     timestamptz,
    resolved_by     text,
    resolution      text CHECK (resolution IN ('retried', 'discarded')),
    resolution_note text,
    auto_retried_at timestamptz,
    CHECK (resolved = (resolution IS NOT NULL))
);
CREATE INDEX dead_letter_open_idx ON tds.dead_letter (created_at) WHERE NOT resolved;
CREATE INDEX dead_letter_group_idx ON tds.dead_letter (failure_reason, entity_type) WHERE NOT resolved;
CREATE INDEX dead_letter_resolved_idx ON tds.dead_letter (resolved_at) WHERE resolved;

CREATE TABLE tds.alerts (
    id              bigserial PRIMARY KEY,
    alert_type      text NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('info', 'warning', 'error', 'critical')),
    title           text NOT NULL,
    message         text NOT NULL DEFAULT '',
    entity_type     text,
    affected_count  bigint NOT NULL DEFAULT 0,
    dedup_key       text NOT NULL,
    occurrences     integer NOT NULL DEFAULT 1,
    first_seen      timestamptz NOT NULL DEFAULT now(),
    last_seen       timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    acknowledged_by text,
    resolved_at     timestamptz,
    notified_at     timestamptz,
    notify_attempts integer NOT NULL DEFAULT 0
);
-- One open alert per condition: a repeat bumps occurrences.
CREATE UNIQUE INDEX alerts_open_key_idx ON tds.alerts (dedup_key) WHERE resolved_at IS NULL;
CREATE INDEX alerts_recent_idx ON tds.alerts (last_seen DESC);

CREATE TABLE tds.events (
    id              bigserial PRIMARY KEY,
    type            text NOT NULL CHECK (type IN (
                        'tds.sync.started', 'tds.sync.completed', 'tds.sync.failed',
                        'tds.entity.create', 'tds.entity.update', 'tds.entity.delete',
                        'tds.entity.sync_failed', 'tds.queue.empty', 'tds.deadletter.added',
                        'tds.retry.scheduled', 'tds.alert.triggered')),
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    run_id          bigint,
    entity_type     text,
    entity_id       text,
    data            jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX events_type_idx ON tds.events (type, id DESC);
CREATE INDEX events_run_idx ON tds.events (run_id, id) WHERE run_id IS NOT NULL;
CREATE INDEX events_at_idx ON tds.events (at);

-- Every insert into tds.events is announced, in the inserting transaction,
-- once per statement (a bulk insert of 200 events is one NOTIFY).
CREATE FUNCTION tds.events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    last bigint;
BEGIN
    SELECT count(*), max(id) INTO n, last FROM new_events;
    IF n > 0 THEN
        PERFORM pg_notify('tds_events', json_build_object('n', n, 'last_id', last)::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER events_notify AFTER INSERT ON tds.events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION tds.events_notify();

CREATE TABLE tds.engines (
    instance        text PRIMARY KEY,
    host            text NOT NULL,
    pid             integer NOT NULL,
    version         text NOT NULL,
    mode            text NOT NULL DEFAULT 'daemon' CHECK (mode IN ('embedded', 'daemon', 'cli')),
    threads         integer NOT NULL DEFAULT 0,
    busy            integer NOT NULL DEFAULT 0,
    state           text NOT NULL DEFAULT 'starting'
                    CHECK (state IN ('starting', 'running', 'paused', 'draining', 'stopped')),
    pause_requested boolean NOT NULL DEFAULT false,
    listen          text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    heartbeat_at    timestamptz NOT NULL DEFAULT now(),
    stopped_at      timestamptz
);

-- Fleet-wide switches any engine obeys (e.g. key 'paused').
CREATE TABLE tds.control (
    key             text PRIMARY KEY,
    value           jsonb NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    updated_by      text
);
INSERT INTO tds.control (key, value, updated_by) VALUES ('paused', 'false', 'migrate');

-- Leader leases (the scheduler runs on one engine only).
CREATE TABLE tds.leases (
    name            text PRIMARY KEY,
    holder          text NOT NULL,
    expires_at      timestamptz NOT NULL,
    acquired_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tds.schedules (
    name            text PRIMARY KEY,
    cron            text NOT NULL,
    enabled         boolean NOT NULL DEFAULT true,
    last_run_at     timestamptz,
    next_run_at     timestamptz,
    last_status     text,
    last_run_id     bigint,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Per-entity cursors, advanced only after the data they cover is committed.
CREATE TABLE tds.sync_state (
    entity_type     text PRIMARY KEY,
    cursor_time     timestamptz,            -- newest last_modified_time applied
    cursor_ids      jsonb NOT NULL DEFAULT '[]', -- ids already seen at cursor_time
    last_full_at    timestamptz,
    last_incremental_at timestamptz,
    last_success_at timestamptz,
    last_run_id     bigint,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Who did what from a console, when.
CREATE TABLE tds.audit (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    os_user         text NOT NULL,
    ssh_connection  text,
    host            text,
    instance        text,
    action          text NOT NULL,
    target          text,
    detail          jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_at_idx ON tds.audit (at DESC);

-- Synced data.  Every table: the Zoho id as primary key, useful columns
-- typed, the whole record in raw, synced_at, and deleted_at for records
-- that reconciliation found gone from Zoho (marked, never erased).
CREATE TABLE zoho.items (
    item_id         text PRIMARY KEY,
    name            text,
    sku             text,
    status          text,
    rate            numeric,
    item_type       text,
    product_type    text,
    unit            text,
    track_inventory boolean,
    stock_on_hand   numeric,
    available_stock numeric,
    actual_available_stock numeric,
    created_time    timestamptz,
    last_modified_time timestamptz,
    image_document_id text,
    image_name      text,
    image_path      text,
    raw             jsonb NOT NULL,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
CREATE INDEX items_sku_idx ON zoho.items (sku);
CREATE INDEX items_lmt_idx ON zoho.items (last_modified_time);

CREATE TABLE zoho.item_locations (
    item_id         text NOT NULL REFERENCES zoho.items (item_id) ON DELETE CASCADE,
    location_id     text NOT NULL,
    location_name   text,
    is_primary      boolean,
    stock_on_hand   numeric,
    available_stock numeric,
    actual_available_stock numeric,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (item_id, location_id)
);

CREATE TABLE zoho.contacts (
    contact_id      text PRIMARY KEY,
    contact_name    text,
    company_name    text,
    contact_type    text,
    status          text,
    email           text,
    phone           text,
    currency_code   text,
    outstanding_receivable_amount numeric,
    outstanding_payable_amount numeric,
    created_time    timestamptz,
    last_modified_time timestamptz,
    raw             jsonb NOT NULL,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);

CREATE TABLE zoho.salesorders (
    salesorder_id   text PRIMARY KEY,
    salesorder_number text,
    customer_id     text,
    customer_name   text,
    status          text,
    date            date,
    shipment_date   date,
    total           numeric,
    currency_code   text,
    created_time    timestamptz,
    last_modified_time timestamptz,
    raw             jsonb NOT NULL,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);

CREATE TABLE zoho.invoices (
    invoice_id      text PRIMARY KEY,
    invoice_number  text,
    customer_id     text,
    customer_name   text,
    status          text,
    date            date,
    due_date        date,
    total           numeric,
    balance         numeric,
    currency_code   text,
    created_time    timestamptz,
    last_modified_time timestamptz,
    raw             jsonb NOT NULL,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);

CREATE TABLE zoho.customerpayments (
    payment_id      text PRIMARY KEY,
    payment_number  text,
    customer_id     text,
    customer_name   text,
    payment_mode    text,
    date            date,
    amount          numeric,
    unused_amount   numeric,
    currency_code   text,
    created_time    timestamptz,
    last_modified_time timestamptz,
    raw             jsonb NOT NULL,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);

CREATE TABLE zoho.creditnotes (
    creditnote_id   text PRIMARY KEY,
    creditnote_number text,
    customer_id     text,
    customer_name   text,
    status          text,
    date            date,
    total           numeric,
    balance         numeric,
    currency_code   text,
    created_time    timestamptz,
    last_modified_time timestamptz,
    raw             jsonb NOT NULL,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);

CREATE TABLE zoho.bills (
    bill_id         text PRIMARY KEY,
    bill_number     text,
    vendor_id       text,
    vendor_name     text,
    status          text,
    date            date,
    due_date        date,
    total           numeric,
    balance         numeric,
    currency_code   text,
    created_time    timestamptz,
    last_modified_time timestamptz,
    raw             jsonb NOT NULL,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);

CREATE TABLE zoho.vendorpayments (
    payment_id      text PRIMARY KEY,
    payment_number  text,
    vendor_id       text,
    vendor_name     text,
    payment_mode    text,
    date            date,
    amount          numeric,
    balance         numeric,
    currency_code   text,
    created_time    timestamptz,
    last_modified_time timestamptz,
    raw             jsonb NOT NULL,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);

CREATE TABLE zoho.users (
    user_id         text PRIMARY KEY,
    name            text,
    email           text,
    role_id         text,
    status          text,
    created_time    timestamptz,
    last_modified_time timestamptz,
    raw             jsonb NOT NULL,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);

CREATE TABLE zoho.locations (
    location_id     text PRIMARY KEY,
    location_name   text,
    type            text,
    status          text,
    is_primary      boolean,
    created_time    timestamptz,
    last_modified_time timestamptz,
    raw             jsonb NOT NULL,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);

CREATE TABLE zoho.inventoryadjustments (
    inventory_adjustment_id text PRIMARY KEY,
    reference_number text,
    adjustment_type text,
    reason          text,
    status          text,
    date            date,
    total           numeric,
    created_time    timestamptz,
    last_modified_time timestamptz,
    raw             jsonb NOT NULL,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);

CREATE TABLE zoho.pricebooks (
    pricebook_id    text PRIMARY KEY,
    name            text,
    pricebook_type  text,
    currency_code   text,
    status          text,
    created_time    timestamptz,
    last_modified_time timestamptz,
    raw             jsonb NOT NULL,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
