//! Server notices: what happens on the server, told to operators with user mode `+s` on every
//! shard (`:server NOTICE nick :*** Notice -- text`).

use std::sync::Arc;

use super::super::delivery::{broadcast, to_conn};
use super::super::envelope::Env;
use super::super::outbox::Outbox;
use crate::commands::envelope::Control;
use crate::local::shard::ShardState;
use crate::proto::Line;
use crate::state::UserModes;

/// Tells every `+s` operator, on this shard and the others.
pub fn snotice(st: &mut ShardState, out: &mut dyn Outbox, text: &str) {
    let text: Arc<str> = text.into();
    deliver(st, out, &text);
    broadcast(st, out, || Env::Control(Control::Snotice { text: text.clone() }));
}

/// Shows a server notice to this shard's `+s` operators.
pub fn deliver(st: &mut ShardState, out: &mut dyn Outbox, text: &str) {
    let targets = match st.snotice_targets.take() {
        Some(t) => t,
        None => st
            .local
            .iter()
            .filter(|(uid, _)| {
                st.directory.get(uid).is_some_and(|u| u.modes.has(UserModes::SNOTICE) && u.modes.has(UserModes::OPER))
            })
            .map(|(_, conn)| *conn)
            .collect(),
    };
    if !targets.is_empty() {
        let server = st.cfg.server.name.clone();
        let text = format!("*** Notice -- {text}");
        for &conn in &targets {
            let Some(c) = st.clients.get(&conn) else { continue };
            let line = Line::new().source(&server).verb("NOTICE").param(c.target()).trailing(&text).finish();
            to_conn(st, out, conn, &line);
        }
    }
    st.snotice_targets = Some(targets);
}
