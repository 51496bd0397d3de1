-- 0018: who may do what, by the server's word (issue 18 point 12).
--   tds_viewer    reads tds.* and zoho.* (not the Zoho access token): a
--                 console or CLI connected with it is read-only whatever
--                 it is told.
--   tds_operator  a viewer that may also act: request and cancel runs,
--                 retry and discard dead letters, acknowledge alerts,
--                 pause and resume; every action writes its audit row.
--   tds_engine    an operator that runs engines: every table of both schemas.
-- The roles are NOLOGIN groups of the cluster, shared by its databases;
-- give a person one with GRANT tds_viewer TO alice (README).  They are
-- created only when the migrating role may (CREATEROLE); otherwise this
-- says so and grants nothing, and the roles can be made later by a
-- superuser and this file's grants run again.  audit.db_user is filled by
-- the server (session_user), whatever the client reports as its OS user.
DO $$
DECLARE
    may boolean := (SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user);
BEGIN
    IF NOT may THEN
        RAISE NOTICE 'tds: % may not create roles: tds_viewer, tds_operator and tds_engine are not made (see README, "Roles")', current_user;
        RETURN;
    END IF;
    -- Several databases of one cluster may migrate at once: a role another
    -- created a moment ago is fine.
    BEGIN
        CREATE ROLE tds_viewer NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    BEGIN
        CREATE ROLE tds_operator NOLOGIN IN ROLE tds_viewer;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    BEGIN
        CREATE ROLE tds_engine NOLOGIN IN ROLE tds_operator;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tds_engine') THEN
        RETURN;
    END IF;
    GRANT USAGE ON SCHEMA tds, zoho TO tds_viewer;
    GRANT SELECT ON ALL TABLES IN SCHEMA tds, zoho TO tds_viewer;
    REVOKE SELECT ON tds.zoho_token FROM tds_viewer;
    GRANT INSERT, UPDATE ON tds.sync_runs, tds.sync_queue, tds.dead_letter, tds.alerts,
        tds.control, tds.engines, tds.events, tds.queue_payloads TO tds_operator;
    GRANT INSERT ON tds.audit TO tds_operator;
    GRANT USAGE ON ALL SEQUENCES IN SCHEMA tds TO tds_operator;
    GRANT ALL ON ALL TABLES IN SCHEMA tds, zoho TO tds_engine;
    GRANT ALL ON ALL SEQUENCES IN SCHEMA tds, zoho TO tds_engine;
    -- Tables and sequences of later migrations (made by the same owner).
    ALTER DEFAULT PRIVILEGES IN SCHEMA tds, zoho GRANT SELECT ON TABLES TO tds_viewer;
    ALTER DEFAULT PRIVILEGES IN SCHEMA tds, zoho GRANT ALL ON TABLES TO tds_engine;
    ALTER DEFAULT PRIVILEGES IN SCHEMA tds, zoho GRANT ALL ON SEQUENCES TO tds_engine;
END $$;

ALTER TABLE tds.audit ADD COLUMN db_user text NOT NULL DEFAULT session_user;
CREATE FUNCTION tds.audit_db_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.db_user := session_user;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_db_user BEFORE INSERT ON tds.audit
    FOR EACH ROW EXECUTE FUNCTION tds.audit_db_user();
