//! `jars event create`, `jars event max-listeners` and `jars event list`: events from the store,
//! owners named by the identity backend, and the live state and listener counts the running node
//! holds (`node`).

use super::out::out;
use std::collections::HashMap;
use std::time::Duration;

use super::node::{self, LiveState, Node};
use super::{EventCommand, Failure};
use crate::config::Config;
use crate::data_dir;
use crate::identity::{Identity, IdentityError, UsersFile};
use crate::log_input::Escaped;
use crate::rules;
use crate::setup;
use crate::store::{Event, ListFilter, NewEvent};
use crate::tokens::AccessLevel;

/// How long the token `event list` mints to ask the node lives: one listing.
const LISTING_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// Runs `jars event …`.
pub async fn run(config: &Config, cmd: EventCommand) -> Result<(), Failure> {
    if let EventCommand::List { .. } | EventCommand::MaxListeners { .. } = cmd {
        data_dir::existing_store(config).map_err(Failure::Runtime)?;
    }
    let store = crate::store::open(&config.store)
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    match cmd {
        EventCommand::Create {
            owner,
            title,
            description,
            private,
            max_listeners,
        } => {
            let most = rules::MAX_TEXT_CHARS;
            if title.trim().is_empty() || !rules::text_fits(&title) {
                return Err(Failure::Usage(format!("--title: 1 to {most} characters")));
            }
            if !rules::text_fits(&description) {
                return Err(Failure::Usage(format!(
                    "--description: at most {most} characters"
                )));
            }
            let identity = Identity::from_settings(&config.identity)?;
            let member = identity.member(&owner).await.map_err(|e| match e {
                IdentityError::NoUser => Failure::Runtime(format!("no user named \"{owner}\"")),
                other => other.into(),
            })?;
            let e = store
                .create(NewEvent {
                    created_by: member.id,
                    title,
                    description,
                    private,
                    lifetime: config.events.lifetime,
                    now: chrono::Utc::now(),
                    max_listeners,
                })
                .await
                .map_err(|e| Failure::Runtime(e.to_string()))?;
            out!("{}", e.id);
        }
        EventCommand::End { .. } => unreachable!("dispatched to event_end"),
        EventCommand::MaxListeners { event_id, max } => {
            let id = super::event_id(&event_id)?;
            let cap = rules::caps::event_cap(&max, crate::store::MAX_EVENT_LISTENERS, true)
                .map_err(|_| {
                    Failure::Usage(format!(
                        "\"{max}\" is not a listener cap: a number from 1, or none"
                    ))
                })?;
            if !store
                .set_max_listeners(id, cap)
                .await
                .map_err(|e| Failure::Runtime(e.to_string()))?
            {
                return Err(Failure::Runtime(format!("no event {id}")));
            }
            match cap {
                Some(n) => println!("{id}: at most {n} listeners at once"),
                None => println!("{id}: no listener cap of its own"),
            }
        }
        EventCommand::List { all, node } => {
            let events = store
                .list(ListFilter {
                    private_of: None,
                    all_private: true,
                    include_expired: all,
                    now: chrono::Utc::now(),
                    limit: None,
                    after: None,
                })
                .await
                .map_err(|e| Failure::Runtime(e.to_string()))?;
            let node = Node::new(config, node.url.as_deref())?;
            let live = match node::live_states(&node, admin_token(config).as_deref(), all).await {
                Ok(states) => Some(states),
                Err(why) => {
                    eprintln!(
                        "jars: live state and listeners unknown (\"?\"): {why}; is `jars serve` \
                         running? (--url names it)"
                    );
                    None
                }
            };
            print_events(&events, &owner_names(config), live.as_ref());
        }
    }
    Ok(())
}

/// Member id → user name, from the users file. MyRadio is not asked (jars asks it only for
/// permissions), so there, as for a removed user, the owner is shown by member id.
fn owner_names(config: &Config) -> HashMap<i64, String> {
    let Some(path) = config.users_file() else {
        return HashMap::new();
    };
    match UsersFile::new(path).users() {
        Ok(users) => users.iter().map(|u| (u.id, u.name.clone())).collect(),
        Err(e) => {
            eprintln!("jars: owners shown by member id: {e}");
            HashMap::new()
        }
    }
}

/// A short-lived token of the users file's first admin, signed with the key pair here, so the
/// node shows private events too; `None` without a users file, an admin or a signing key (the
/// node then shows public events only).
fn admin_token(config: &Config) -> Option<String> {
    data_dir::existing_signing_key(config).ok()?;
    let users = UsersFile::new(config.users_file()?).users().ok()?;
    let admin = users.iter().filter(|u| u.admin).min_by_key(|u| u.id)?;
    let tokens = setup::token_service(config).ok()?;
    let (token, _) = tokens
        .issue(admin.id, AccessLevel::Admin, Some(LISTING_TOKEN_LIFETIME))
        .ok()?;
    Some(token)
}

fn print_events(
    events: &[Event],
    names: &HashMap<i64, String>,
    live: Option<&HashMap<uuid::Uuid, LiveState>>,
) {
    super::out::write_bytes(events_table(events, names, live).as_bytes());
    let unseen = live.map_or(0, |l| {
        events.iter().filter(|e| !l.contains_key(&e.id)).count()
    });
    if unseen > 0 {
        eprintln!(
            "jars: the node did not show {unseen} of these events (\"?\"): private events need \
             an admin in the users file and the key pair here, or the node uses another store"
        );
    }
}

/// The table `jars event list` prints. Titles and names are shown with their control
/// characters escaped ([`Escaped`]): a title holding `\r\n` cannot forge a row, nor an escape
/// sequence drive the operator's terminal.
fn events_table(
    events: &[Event],
    names: &HashMap<i64, String>,
    live: Option<&HashMap<uuid::Uuid, LiveState>>,
) -> String {
    use std::fmt::Write;
    let name = |id: i64| {
        names
            .get(&id)
            .map_or_else(|| id.to_string(), |n| Escaped(n).to_string())
    };
    let mut out = format!(
        "{:<36}  {:<12}  {:<7}  {:<16}  {:<4}  {:>9}  {:<19}  TITLE\n",
        "EVENT", "OWNER", "PRIVATE", "CONNECTED", "LIVE", "LISTENERS", "EXPIRES (UTC)"
    );
    for e in events {
        let state = live.and_then(|l| l.get(&e.id));
        let _ = writeln!(
            out,
            "{:<36}  {:<12}  {:<7}  {:<16}  {:<4}  {:>9}  {:<19}  {}",
            e.id,
            name(e.created_by),
            if e.private { "yes" } else { "no" },
            match (e.connected, e.connected_by) {
                (true, Some(by)) => format!("yes ({})", name(by)),
                (true, None) => "yes".into(),
                (false, _) => "no".into(),
            },
            state.map_or("?", |s| if s.live { "yes" } else { "no" }),
            state.map_or("?".into(), |s| s.listeners.to_string()),
            e.expires_time.format("%Y-%m-%d %H:%M:%S"),
            Escaped(e.title.as_deref().unwrap_or_default())
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 28, item 5: a title holding `\r\n` forged a row of `jars event list`.
    #[test]
    fn titles_and_names_show_control_characters_escaped() {
        let now = chrono::Utc::now();
        let event = Event {
            id: uuid::Uuid::new_v4(),
            title: Some("Show\r\n00000000-0000-4000-8000-000000000000  admin  no\x1b[2J".into()),
            description: None,
            private: false,
            created_by: 7,
            created_time: now,
            expires_time: now,
            connected: true,
            connected_by: Some(7),
            last_connected_at: None,
            last_disconnected_at: None,
            relation_id: None,
            max_listeners: None,
        };
        let names = HashMap::from([(7, "carol\nroot".to_string())]);
        let text = events_table(&[event], &names, None);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("Show\\r\\n00000000"), "{text}");
        assert!(text.contains("\\x1b[2J"), "{text}");
        assert!(text.contains("carol\\nroot"), "{text}");
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
    }
}
