//! Topics of a volinks cabinet: `{root}/{imei}/user/update` and `.../heart`
//! (cabinet → host) and `.../get` (host → cabinet), root `/powerbank`.

use crate::native::valid_serial;

/// The root when the operator configures none (the firmware's default).
pub const DEFAULT_ROOT: &str = "/powerbank";

/// The topics of every cabinet under one root.
#[derive(Debug, Clone)]
pub struct Topics {
    root: String,
}

/// The last level of a cabinet topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Command answers and unsolicited frames (0x10, 0x21, 0x31, 0x40, 0x28).
    Update,
    /// Heartbeats (0x7A).
    Heart,
    /// JSON commands to the cabinet.
    Get,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Update => "update",
            Channel::Heart => "heart",
            Channel::Get => "get",
        }
    }
}

impl Default for Topics {
    fn default() -> Self {
        Topics::new(DEFAULT_ROOT)
    }
}

impl Topics {
    pub fn new(root: &str) -> Self {
        Self { root: root.trim_end_matches('/').to_string() }
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn topic(&self, imei: &str, channel: Channel) -> String {
        format!("{}/{imei}/user/{}", self.root, channel.as_str())
    }

    pub fn update(&self, imei: &str) -> String {
        self.topic(imei, Channel::Update)
    }

    pub fn heart(&self, imei: &str) -> String {
        self.topic(imei, Channel::Heart)
    }

    pub fn get(&self, imei: &str) -> String {
        self.topic(imei, Channel::Get)
    }

    /// The filters on which cabinets publish.
    pub fn host_filters(&self) -> [String; 2] {
        [format!("{}/+/user/update", self.root), format!("{}/+/user/heart", self.root)]
    }

    /// `{root}/{imei}/user/{channel}` → (imei, channel). The IMEI must be a
    /// valid device id (1-64 of A-Z a-z 0-9 - _).
    pub fn parse<'t>(&self, topic: &'t str) -> Option<(&'t str, Channel)> {
        let rest = topic.strip_prefix(self.root.as_str())?.strip_prefix('/')?;
        let (imei, rest) = rest.split_once('/')?;
        let channel = match rest {
            "user/update" => Channel::Update,
            "user/heart" => Channel::Heart,
            "user/get" => Channel::Get,
            _ => return None,
        };
        valid_serial(imei).then_some((imei, channel))
    }
}

/// Whether `root` can stand in front of the topics: no wildcards, no NUL, at
/// most 128 bytes.
pub fn valid_root(root: &str) -> bool {
    root.len() <= 128 && !root.contains(['+', '#', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        let t = Topics::default();
        assert_eq!(t.update("864601068412899"), "/powerbank/864601068412899/user/update");
        assert_eq!(t.heart("864601068412899"), "/powerbank/864601068412899/user/heart");
        assert_eq!(t.get("864601068412899"), "/powerbank/864601068412899/user/get");
        assert_eq!(t.host_filters(), ["/powerbank/+/user/update".to_string(), "/powerbank/+/user/heart".to_string()]);
        assert_eq!(t.parse("/powerbank/864601068412899/user/update"), Some(("864601068412899", Channel::Update)));
        assert_eq!(t.parse("/powerbank/864601068412899/user/heart"), Some(("864601068412899", Channel::Heart)));
        assert_eq!(t.parse("/powerbank/864601068412899/user/get"), Some(("864601068412899", Channel::Get)));
        for bad in [
            "/powerbank/864601068412899/user/upload",
            "/powerbank//user/update",
            "/powerbank/a+b/user/update",
            "powerbank/864601068412899/user/update",
            "/powerbankx/864601068412899/user/update",
            "/powerbank/864601068412899/user/update/x",
        ] {
            assert_eq!(t.parse(bad), None, "{bad}");
        }
        let custom = Topics::new("/pb-test/");
        assert_eq!(custom.parse(&custom.update("X1")), Some(("X1", Channel::Update)));
        assert!(valid_root("/powerbank") && valid_root("") && !valid_root("/a/+"));
    }
}
