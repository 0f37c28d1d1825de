//! Everything that exists only to answer byte for byte as Django, DRF and
//! Python do, checked against the real simplejwt by
//! `tests/simplejwt_differential.rs`: [`drf`] (content negotiation, parsers,
//! field messages, view metadata), [`pyjson`] (Python's `json` text and
//! values), [`response`] (DRF's JSON rendering, Django's own pages and
//! security headers).

pub mod drf;
pub mod pyjson;
pub mod response;
