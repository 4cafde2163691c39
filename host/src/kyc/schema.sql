-- KYC (seed §2): identity documents a user submits and an operator reviews.
-- Every submission is a row; a rejected one stays for the record and the user
-- submits a new one.

CREATE TABLE user_kyc (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    document_type TEXT NOT NULL
        CHECK (document_type IN ('citizenship', 'passport', 'driving_license', 'national_id')),
    document_number TEXT NOT NULL,
    -- The caller's own uploads (checked on submission).
    front_upload_id INTEGER NOT NULL REFERENCES media_uploads (id),
    back_upload_id INTEGER REFERENCES media_uploads (id),
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    rejection_reason TEXT,
    reviewed_by INTEGER REFERENCES users (id),
    reviewed_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CHECK (status != 'rejected' OR rejection_reason IS NOT NULL)
);
-- At most one open (pending or approved) submission per user.
CREATE UNIQUE INDEX user_kyc_open ON user_kyc (user_id) WHERE status IN ('pending', 'approved');
CREATE INDEX user_kyc_user ON user_kyc (user_id, id);
CREATE INDEX user_kyc_status ON user_kyc (status, id);
