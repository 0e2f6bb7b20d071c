//! What is at the other end of a connection: a client (a user, registered or not) or another
//! server (a link). Every connection the core holds has one (`Client::kind`); the dispatcher
//! picks the command table's handler for it (`commands::Spec::handler`).

/// The kind of a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A user's connection. Every accepted connection is one (every listener serves clients).
    #[default]
    Client,
    /// A link to another server. None is made yet: the link protocol comes with server links,
    /// and the glue closes the connections it opens (`server::IrcShard::on_connected`).
    Server,
}
