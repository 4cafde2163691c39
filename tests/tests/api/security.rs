//! Security hardening (issue 14), probed from outside the way an attacker
//! would: station credentials used against other stations' topics.

mod mqtt_acl;
mod operator_signin;
mod otp_enumeration;
mod slow_clients;
mod text_fields;
mod upload_quota;
