-- Failed operator sign-ins per client address and account (users/operator_signin.rs).
CREATE TABLE operator_signin_failures (
    ip TEXT NOT NULL,
    email TEXT NOT NULL,
    failures INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    locked_until INTEGER,
    PRIMARY KEY (ip, email)
) WITHOUT ROWID;
CREATE INDEX operator_signin_failures_by_time ON operator_signin_failures (last_failure_at);
