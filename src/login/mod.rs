//! Logging in to Vercel: a personal token, or OAuth (authorization code with PKCE through a
//! loopback redirect).

pub mod oauth;
