-- Stations, their slots, the power banks in them, amenities and media.

CREATE TABLE stations (
    id INTEGER PRIMARY KEY,
    serial_number TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    city TEXT NOT NULL,
    latitude REAL NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude REAL NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    status TEXT NOT NULL DEFAULT 'offline'
        CHECK (status IN ('online', 'offline', 'maintenance', 'retired')),
    protocol TEXT NOT NULL DEFAULT 'native',
    firmware_version TEXT,
    opening_hours TEXT,
    last_heartbeat_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX stations_city_status ON stations (city, status);
CREATE INDEX stations_lat_lng ON stations (latitude, longitude);

CREATE TABLE power_banks (
    id INTEGER PRIMARY KEY,
    serial_number TEXT NOT NULL UNIQUE,
    capacity_mah INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'in_slot'
        CHECK (status IN ('in_slot', 'rented', 'maintenance', 'lost')),
    battery_level INTEGER NOT NULL DEFAULT 0 CHECK (battery_level BETWEEN 0 AND 100),
    station_id INTEGER REFERENCES stations (id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE station_slots (
    id INTEGER PRIMARY KEY,
    station_id INTEGER NOT NULL REFERENCES stations (id),
    slot_index INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'empty'
        CHECK (status IN ('empty', 'occupied', 'reserved', 'fault')),
    power_bank_id INTEGER UNIQUE REFERENCES power_banks (id),
    updated_at INTEGER NOT NULL,
    UNIQUE (station_id, slot_index)
);

CREATE TABLE station_amenities (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL
);

CREATE TABLE station_amenity_mappings (
    station_id INTEGER NOT NULL REFERENCES stations (id),
    amenity_id INTEGER NOT NULL REFERENCES station_amenities (id),
    PRIMARY KEY (station_id, amenity_id)
);

CREATE TABLE station_media (
    id INTEGER PRIMARY KEY,
    station_id INTEGER NOT NULL REFERENCES stations (id),
    url TEXT NOT NULL,
    media_type TEXT NOT NULL DEFAULT 'image',
    is_primary INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX station_media_station ON station_media (station_id);
