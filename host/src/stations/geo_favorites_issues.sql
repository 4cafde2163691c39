-- Stations, second migration: the spatial index for nearby search, users'
-- favourite stations and the issues users report at stations.

-- Station positions as degenerate boxes in an R*Tree: a bounding-box query
-- here narrows 100,000 stations to the handful near a point, and the exact
-- great-circle distance is then computed in Rust. R*Tree coordinates are
-- 32-bit floats rounded outwards, so a box query never misses a station; the
-- exact coordinates stay in `stations`. Kept in sync by the triggers below.
CREATE VIRTUAL TABLE station_geo USING rtree(id, min_lat, max_lat, min_lng, max_lng);

INSERT INTO station_geo (id, min_lat, max_lat, min_lng, max_lng)
    SELECT id, latitude, latitude, longitude, longitude FROM stations;

CREATE TRIGGER station_geo_after_insert AFTER INSERT ON stations BEGIN
    INSERT INTO station_geo (id, min_lat, max_lat, min_lng, max_lng)
    VALUES (NEW.id, NEW.latitude, NEW.latitude, NEW.longitude, NEW.longitude);
END;

CREATE TRIGGER station_geo_after_move AFTER UPDATE OF latitude, longitude ON stations BEGIN
    UPDATE station_geo
    SET min_lat = NEW.latitude, max_lat = NEW.latitude, min_lng = NEW.longitude, max_lng = NEW.longitude
    WHERE id = NEW.id;
END;

CREATE TRIGGER station_geo_after_delete AFTER DELETE ON stations BEGIN
    DELETE FROM station_geo WHERE id = OLD.id;
END;

CREATE TABLE user_station_favorites (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    station_id INTEGER NOT NULL REFERENCES stations (id),
    created_at INTEGER NOT NULL,
    UNIQUE (user_id, station_id)
);
CREATE INDEX user_station_favorites_user ON user_station_favorites (user_id, id);

CREATE TABLE station_issues (
    id INTEGER PRIMARY KEY,
    station_id INTEGER NOT NULL REFERENCES stations (id),
    reporter_id INTEGER NOT NULL REFERENCES users (id),
    issue_type TEXT NOT NULL
        CHECK (issue_type IN ('no_power_bank', 'slot_stuck', 'damaged', 'offline', 'payment', 'other')),
    description TEXT NOT NULL,
    -- JSON array of image URLs, each one of the reporter's own uploads.
    images TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(images) AND json_type(images) = 'array'),
    status TEXT NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'acknowledged', 'in_progress', 'resolved', 'dismissed')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    resolved_at INTEGER
);
CREATE INDEX station_issues_reporter ON station_issues (reporter_id, id);
-- The public list shows only unresolved issues of one station.
CREATE INDEX station_issues_station_open ON station_issues (station_id, id)
    WHERE status IN ('open', 'acknowledged', 'in_progress');
