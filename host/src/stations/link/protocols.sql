-- Station protocols are plugins (plugins.toml, kind station-protocol):
-- `stations.protocol` names the one a station speaks. `device_id` is how the
-- station names itself on the wire (an IMEI for volinks cabinets); NULL means
-- the serial number is used.
ALTER TABLE stations ADD COLUMN device_id TEXT;
CREATE UNIQUE INDEX stations_device_id ON stations (device_id) WHERE device_id IS NOT NULL;
