-- Content (issue 16): pages with versions per language, legal acceptance,
-- the FAQ with its full-text index and votes, support threads.

-- A page is a slug; what it says lives in its published versions, which
-- never change once published (old versions stay readable).
CREATE TABLE content_pages (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE content_page_versions (
    id INTEGER PRIMARY KEY,
    page_id INTEGER NOT NULL REFERENCES content_pages (id),
    version INTEGER NOT NULL CHECK (version > 0),
    -- Riders who accepted an older version are asked to accept this one
    -- (legal pages only).
    requires_acceptance INTEGER NOT NULL DEFAULT 0,
    published_by INTEGER REFERENCES users (id),
    published_at INTEGER NOT NULL,
    UNIQUE (page_id, version)
);

CREATE TABLE content_page_texts (
    version_id INTEGER NOT NULL REFERENCES content_page_versions (id),
    lang TEXT NOT NULL CHECK (lang IN ('en', 'ne')),
    title TEXT NOT NULL,
    markdown TEXT NOT NULL,
    -- Rendered and sanitised once, when published.
    html TEXT NOT NULL,
    PRIMARY KEY (version_id, lang)
) WITHOUT ROWID;

-- Which legal page versions each user accepted, and how.
CREATE TABLE legal_acceptances (
    user_id INTEGER NOT NULL REFERENCES users (id),
    version_id INTEGER NOT NULL REFERENCES content_page_versions (id),
    source TEXT NOT NULL CHECK (source IN ('signup', 'prompt')),
    accepted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, version_id)
) WITHOUT ROWID;
CREATE INDEX legal_acceptances_version ON legal_acceptances (version_id);

CREATE TABLE faq_categories (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    position INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE faq_category_names (
    category_id INTEGER NOT NULL REFERENCES faq_categories (id) ON DELETE CASCADE,
    lang TEXT NOT NULL CHECK (lang IN ('en', 'ne')),
    name TEXT NOT NULL,
    PRIMARY KEY (category_id, lang)
) WITHOUT ROWID;

CREATE TABLE faq_items (
    id INTEGER PRIMARY KEY,
    category_id INTEGER NOT NULL REFERENCES faq_categories (id),
    position INTEGER NOT NULL DEFAULT 0,
    is_published INTEGER NOT NULL DEFAULT 1,
    helpful_count INTEGER NOT NULL DEFAULT 0 CHECK (helpful_count >= 0),
    not_helpful_count INTEGER NOT NULL DEFAULT 0 CHECK (not_helpful_count >= 0),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX faq_items_category ON faq_items (category_id, position, id);

CREATE TABLE faq_item_texts (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES faq_items (id) ON DELETE CASCADE,
    lang TEXT NOT NULL CHECK (lang IN ('en', 'ne')),
    question TEXT NOT NULL,
    answer_markdown TEXT NOT NULL,
    answer_html TEXT NOT NULL,
    UNIQUE (item_id, lang)
);

-- Full-text index over the texts (external content: the text is stored once,
-- in faq_item_texts). Combining marks (M*) count as word characters, so
-- Devanagari vowel signs do not split Nepali words.
CREATE VIRTUAL TABLE faq_search USING fts5 (
    question, answer_markdown,
    content = 'faq_item_texts', content_rowid = 'id',
    tokenize = "unicode61 remove_diacritics 2 categories 'L* N* Co M*'"
);
CREATE TRIGGER faq_item_texts_ai AFTER INSERT ON faq_item_texts BEGIN
    INSERT INTO faq_search (rowid, question, answer_markdown) VALUES (new.id, new.question, new.answer_markdown);
END;
CREATE TRIGGER faq_item_texts_ad AFTER DELETE ON faq_item_texts BEGIN
    INSERT INTO faq_search (faq_search, rowid, question, answer_markdown)
    VALUES ('delete', old.id, old.question, old.answer_markdown);
END;
CREATE TRIGGER faq_item_texts_au AFTER UPDATE ON faq_item_texts BEGIN
    INSERT INTO faq_search (faq_search, rowid, question, answer_markdown)
    VALUES ('delete', old.id, old.question, old.answer_markdown);
    INSERT INTO faq_search (rowid, question, answer_markdown) VALUES (new.id, new.question, new.answer_markdown);
END;

-- One vote per user and item; a second vote changes the first.
CREATE TABLE faq_votes (
    item_id INTEGER NOT NULL REFERENCES faq_items (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id),
    helpful INTEGER NOT NULL CHECK (helpful IN (0, 1)),
    voted_at INTEGER NOT NULL,
    PRIMARY KEY (item_id, user_id)
) WITHOUT ROWID;

-- Support: a rider's message opens a thread; operators reply and close it.
CREATE TABLE support_threads (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    subject TEXT NOT NULL,
    -- open: waiting for an operator; answered: an operator replied last;
    -- closed: no more messages.
    status TEXT NOT NULL CHECK (status IN ('open', 'answered', 'closed')),
    rental_id INTEGER REFERENCES rentals (id),
    station_id INTEGER REFERENCES stations (id),
    closed_by INTEGER REFERENCES users (id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    closed_at INTEGER
);
CREATE INDEX support_threads_user ON support_threads (user_id, id);
CREATE INDEX support_threads_status ON support_threads (status, id);

CREATE TABLE support_messages (
    id INTEGER PRIMARY KEY,
    thread_id INTEGER NOT NULL REFERENCES support_threads (id),
    author_id INTEGER NOT NULL REFERENCES users (id),
    from_operator INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX support_messages_thread ON support_messages (thread_id, id);

CREATE TABLE support_message_uploads (
    message_id INTEGER NOT NULL REFERENCES support_messages (id),
    upload_id INTEGER NOT NULL REFERENCES media_uploads (id),
    PRIMARY KEY (message_id, upload_id)
) WITHOUT ROWID;

INSERT INTO notification_templates (key, title_template, body_template, updated_at) VALUES
    ('support_reply', 'Support replied: {{subject}}', '{{preview}}', 0);
INSERT INTO notification_rules (template_key, channel, sms_fallback, updated_at) VALUES
    ('support_reply', 'push', 0, 0);
