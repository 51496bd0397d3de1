-- 0022: Zoho's own count of the day (issue 19 point 1).  Every answer of
-- Zoho's daily window carries X-Rate-Limit-Limit, -Remaining and -Reset
-- (seconds to the organization's midnight); the engines write the latest
-- figures here, per organization, and the budget planner takes whichever of
-- Zoho's count and tds.api_usage is stricter.
CREATE TABLE tds.zoho_day (
    org             text PRIMARY KEY,
    day_limit       bigint NOT NULL,
    remaining       bigint NOT NULL,
    reset_at        timestamptz NOT NULL,
    seen_at         timestamptz NOT NULL DEFAULT now()
);
