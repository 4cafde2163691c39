-- Rental issue reports carry up to 5 of the reporter's own uploads, as a JSON
-- array of URLs (as station issues do).
ALTER TABLE rental_issues ADD COLUMN images TEXT NOT NULL DEFAULT '[]'
    CHECK (json_valid(images) AND json_type(images) = 'array');
