-- Background jobs (Celery's states). A STARTED job holds a lease that its
-- runner renews; a job whose lease ran out (its process died) is claimable
-- again, so no job stays STARTED forever and none is silently dropped.
CREATE TABLE jobs (
    id          TEXT    PRIMARY KEY,
    task        TEXT    NOT NULL,
    kwargs      TEXT    NOT NULL,
    state       TEXT    NOT NULL DEFAULT 'PENDING'
                CHECK (state IN ('PENDING', 'STARTED', 'SUCCESS', 'FAILURE')),
    progress    DOUBLE PRECISION NOT NULL DEFAULT 0,
    result      TEXT,
    error       TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_until BIGINT  NOT NULL DEFAULT 0,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);

CREATE INDEX jobs_state ON jobs (state, created_at);
