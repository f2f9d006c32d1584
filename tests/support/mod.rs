// Each test binary uses a different part of the support code.
#![allow(dead_code)]

pub mod alerting;
pub mod bin;
pub mod files;
pub mod http;
pub mod keys;
pub mod oauth_server;
pub mod pagerduty;
pub mod pty;
pub mod redis;
pub mod smtp;
pub mod wait;
