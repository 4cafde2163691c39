-- Rental packages (the catalogue the app shows before a rental).

CREATE TABLE rental_packages (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes > 0),
    price_paisa INTEGER NOT NULL CHECK (price_paisa >= 0),
    payment_model TEXT NOT NULL DEFAULT 'prepaid' CHECK (payment_model IN ('prepaid', 'postpaid')),
    is_active INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL
);
