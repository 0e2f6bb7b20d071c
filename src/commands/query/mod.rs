//! Queries about users and the server's view of them: WHO, WHOIS, WHOWAS, ISON, USERHOST,
//! AWAY and MONITOR.

pub mod away;
pub mod monitor;
pub mod userhost;
pub mod who;
pub mod whois;
pub mod whowas;
